"""The config file of ``kdcam start`` as TOML text: where it is, reading it, writing it.

What its keys mean and how each is checked is ``vcam.live.settings``; this module only
reads a bounded TOML table and writes one back atomically.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from engines.errors import KdcamError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: a config file holds a few short lines: a larger one is refused before it is read
MAX_CONFIG_BYTES = 64 * 1024


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "kdcam" / "config.toml"


def load_toml(path: Path) -> dict[str, Any]:
    """The TOML table of ``path``: at most ``MAX_CONFIG_BYTES``; a UTF-8 byte-order mark
    (which some editors write) is allowed."""
    try:
        with open(path, "rb") as f:
            if not os.path.isfile(f.name) or os.fstat(f.fileno()).st_size > MAX_CONFIG_BYTES:
                kind = "not a regular file" if not os.path.isfile(f.name) else f"over {MAX_CONFIG_BYTES // 1024} KiB"
                raise KdcamError(f"config file {path} is {kind}; a kdcam config is a short .toml file")
            data = f.read(MAX_CONFIG_BYTES + 1)
        return tomllib.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except FileNotFoundError:
        raise KdcamError(f"config file {path} not found: create it or drop --config") from None
    except IsADirectoryError:
        raise KdcamError(f"config file {path} is a folder: give the path of a .toml file, or drop --config") from None
    except OSError as err:
        raise KdcamError(
            f"config file {path} cannot be read ({err.strerror or err}); fix it or drop --config"
        ) from None
    except UnicodeDecodeError:
        raise KdcamError(f"config file {path} is not text (TOML is UTF-8 text); fix it or drop --config") from None
    except tomllib.TOMLDecodeError as err:
        raise KdcamError(f"config file {path} is not valid TOML ({err}); fix it or drop --config") from None


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # JSON's escapes are TOML basic-string escapes


def write_toml(target: Path, table: dict[str, Any]) -> None:
    """Write ``table`` to ``target`` atomically, keeping the file's permissions."""
    from engines.atomic import atomic_write_text

    text = "# kdcam config (written by `kdcam ctl save`)\n" + "".join(
        f"{k} = {toml_value(v)}\n" for k, v in table.items()
    )
    mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else None
    atomic_write_text(target, text, mode=mode)
