"""Settings of ``kdcam start``: defaults, the config file, and command-line overrides.

Precedence: built-in defaults < ``~/.config/kdcam/config.toml`` (or ``--config PATH``) <
the flags the user actually gave. Every value is checked here, once, so the live loop
never sees a bad one; a bad key or value is named in a one-line ``KdcamError``.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.errors import KdcamError, shown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_CAMERA_NAME = "KD Sharpen Cam"
#: what a camera is asked for when no --size is given
DEFAULT_CAMERA_SIZE = (1280, 720)
MIN_SIDE, MAX_SIDE = 16, 7680
MIN_FPS, MAX_FPS = 1.0, 240.0


@dataclass(frozen=True)
class LiveSettings:
    """Everything ``kdcam start`` needs; every field already validated."""

    #: a camera index (int), or a video file path or URL (str)
    device: int | str = 0
    #: published frame size; None keeps the source's own size (cameras are asked for 1280x720)
    size: tuple[int, int] | None = None
    #: target (and published) frame rate
    fps: float = 30.0
    engine: str = "auto"
    strength: float = 1.0
    #: None or "auto": the best installed model that keeps up (vcam.model_choice); a name, or a checkpoint path
    model: str | Path | None = None
    camera_name: str = DEFAULT_CAMERA_NAME
    #: a pyvirtualcam backend name; None picks the one for this OS
    vcam_backend: str | None = None
    #: replay a video file from the start when it ends
    loop: bool = False
    output: Path | None = None
    vcam: bool = True
    preview: bool = False
    max_frames: int | None = None
    duration: float | None = None
    #: where `kdcam ctl save` writes the settings changed live (the config file read, or the default one)
    config_file: Path | None = None


#: keys a config file may set (the per-run ones, like output or max_frames, are flags only), with the TOML
#: types each takes: a config file is typed, so a string is never taken for a number (strength = "1" is refused)
CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "device": (int, str), "size": (str,), "fps": (int, float), "engine": (str,), "strength": (int, float),
    "model": (str,), "camera_name": (str,), "vcam_backend": (str,), "loop": (bool,), "preview": (bool,),
}
CONFIG_KEYS = tuple(CONFIG_TYPES)
#: a config file holds a few short lines: a larger one is refused before it is read
MAX_CONFIG_BYTES = 64 * 1024
_TOML_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "kdcam" / "config.toml"


def parse_size(text: str, *, what: str = "--size") -> tuple[int, int]:
    """'1280x720' -> (1280, 720); both sides even and within bounds."""
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise KdcamError(f"bad {what} {shown(text)}: use WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise KdcamError(f"bad {what} {shown(text)}: each side must be {MIN_SIDE}..{MAX_SIDE} pixels, e.g. 1280x720")
    if width % 2 or height % 2:
        raise KdcamError(f"bad {what} {shown(text)}: width and height must be even (browsers reject odd widths), e.g. 1280x720")
    return width, height


def parse_fps(value: Any, *, what: str = "--fps") -> float:
    try:
        if isinstance(value, bool):  # TOML's true is not a number
            raise TypeError
        fps = float(value)
    except (TypeError, ValueError):
        raise KdcamError(f"bad {what} {shown(value)}: give frames per second as a number, e.g. 30") from None
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise KdcamError(f"bad {what} {shown(value)}: must be between {MIN_FPS:g} and {MAX_FPS:g}, e.g. 30")
    return fps


def parse_device(value: Any, *, what: str = "--device") -> int | str:
    """A camera index stays an int; anything else is a file path or URL."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise KdcamError(f"bad {what} {shown(value)}: give a camera index (0, 1, ...), a video file or a URL")
    if isinstance(value, int):
        if value < 0:
            raise KdcamError(f"bad {what} {value}: camera indices start at 0; run `kdcam devices` to list them")
        return value
    text = value.strip()
    if not text:
        raise KdcamError(f"empty {what}: give a camera index (0, 1, ...), a video file or a URL")
    return int(text) if text.isdigit() else text


def parse_strength(value: Any, *, what: str = "--strength") -> float:
    from engines.base import MAX_STRENGTH, check_strength

    try:
        if isinstance(value, bool):
            raise TypeError
        return check_strength(float(value))
    except (TypeError, ValueError, KdcamError):
        raise KdcamError(f"bad {what} {shown(value)}: give a number from 0 (off) to {MAX_STRENGTH:g}; 1 is the trained model") from None


#: a camera name becomes v4l2loopback's card_label: the V4L2 'card' field holds 31 bytes
MAX_CAMERA_NAME_BYTES = 31


def parse_camera_name(value: Any, *, what: str = "--camera-name") -> str:
    """A virtual camera's name, as v4l2loopback (and a shell line, and modprobe.d) can take it."""
    text = _parse_text(value, what=what)
    if len(text.encode("utf-8")) > MAX_CAMERA_NAME_BYTES:
        raise KdcamError(f"bad {what} {shown(text)}: at most {MAX_CAMERA_NAME_BYTES} bytes (v4l2loopback's card_label); shorten it")
    bad = next((c for c in text if c in ',"\\' or not c.isprintable()), None)
    if bad is not None:
        raise KdcamError(f"bad {what} {shown(text)}: v4l2loopback cannot take {bad!r} in a camera name "
                         "(a comma separates devices; quotes and backslashes break its options)")
    return text


def parse_model(value: Any, *, what: str = "--model") -> str | Path:
    """``auto`` or an installed model's name stay names; anything else is a checkpoint path."""
    from engines.model.zoo import ORDER

    text = _parse_text(str(value) if isinstance(value, Path) else value, what=what)
    if (text == "auto" or text in ORDER) and not Path(text).exists():
        return text
    return Path(text).expanduser()


def _parse_positive_int(value: Any, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KdcamError(f"bad {what} {shown(value)}: give a whole number of 1 or more")
    return value


def parse_duration(value: Any, *, what: str = "--duration") -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise KdcamError(f"bad {what} {shown(value)}: give a number of seconds above 0")
    return number


def _parse_bool(value: Any, *, what: str) -> bool:
    if not isinstance(value, bool):
        raise KdcamError(f"bad {what} {shown(value)}: use true or false")
    return value


def _parse_text(value: Any, *, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KdcamError(f"bad {what} {shown(value)}: give a non-empty string")
    return value.strip()


def _parse_path(value: Any, *, what: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise KdcamError(f"bad {what} {shown(value)}: give a file name")
    return Path(value)


# One parser per settings field; each raises a KdcamError that names the field as ``what``.
_PARSERS = {
    "device": parse_device,
    "size": parse_size,
    "fps": parse_fps,
    "engine": _parse_text,
    "strength": parse_strength,
    "model": parse_model,
    "camera_name": parse_camera_name,
    "vcam_backend": _parse_text,
    "loop": _parse_bool,
    "output": _parse_path,
    "vcam": _parse_bool,
    "preview": _parse_bool,
    "max_frames": _parse_positive_int,
    "duration": parse_duration,
}


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw key -> value table of a kdcam config file, keys and their TOML types checked.

    At most ``MAX_CONFIG_BYTES``; a UTF-8 byte-order mark (which some editors write) is allowed."""
    try:
        with open(path, "rb") as f:
            if not os.path.isfile(f.name) or os.fstat(f.fileno()).st_size > MAX_CONFIG_BYTES:
                kind = "not a regular file" if not os.path.isfile(f.name) else f"over {MAX_CONFIG_BYTES // 1024} KiB"
                raise KdcamError(f"config file {path} is {kind}; a kdcam config is a short .toml file")
            data = f.read(MAX_CONFIG_BYTES + 1)
        table = tomllib.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except FileNotFoundError:
        raise KdcamError(f"config file {path} not found: create it or drop --config") from None
    except IsADirectoryError:
        raise KdcamError(f"config file {path} is a folder: give the path of a .toml file, or drop --config") from None
    except OSError as err:
        raise KdcamError(f"config file {path} cannot be read ({err.strerror or err}); fix it or drop --config") from None
    except UnicodeDecodeError:
        raise KdcamError(f"config file {path} is not text (TOML is UTF-8 text); fix it or drop --config") from None
    except tomllib.TOMLDecodeError as err:
        raise KdcamError(f"config file {path} is not valid TOML ({err}); fix it or drop --config") from None
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        raise KdcamError(f"config file {path}: unknown key {shown(unknown[0])}; known keys: {', '.join(CONFIG_KEYS)}")
    for key, value in table.items():
        types = CONFIG_TYPES[key]
        if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
            want = " or ".join(_TOML_NAMES[t] for t in types)
            raise KdcamError(f"config file {path}: '{key}' must be {want} (TOML is typed: write {key} = "
                             f"{_example(key)}), not {shown(value)}")
    return table


def _example(key: str) -> str:
    return {"fps": "30", "strength": "1.0", "device": "0", "loop": "true", "preview": "false"}.get(key, '"..."')


def resolve_settings(*, overrides: dict[str, Any], config_path: Path | None = None) -> LiveSettings:
    """Defaults, then the config file, then ``overrides`` (only the flags the user gave).

    ``config_path`` None reads the default config file when it exists; an explicit path
    must exist.
    """
    values: dict[str, Any] = {}
    path = config_path if config_path is not None else default_config_path()
    if config_path is not None or path.is_file():
        values.update(_checked(read_config_file(path), source=str(path)))
    values.update(_checked(overrides, source=None))
    return LiveSettings(**values, config_file=path)


def _checked(raw: dict[str, Any], *, source: str | None) -> dict[str, Any]:
    """Parse every value; ``source`` None means command-line flags."""
    checked = {}
    for key, value in raw.items():
        if key not in _PARSERS:
            raise TypeError(f"not a LiveSettings field: {key}")  # a programming error, not user input
        what = f"--{key.replace('_', '-')}" if source is None else f"'{key}' in {source}"
        checked[key] = _PARSERS[key](value, what=what)
    return checked


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # JSON's escapes are TOML basic-string escapes


def save_settings(path: Path, updates: dict[str, Any]) -> str:
    """Write ``updates`` (config keys) into the config file at ``path``, atomically, keeping its
    other keys (comments are not kept). A config file that is a symbolic link (a dotfiles
    repository) is written through the link, to its target, which keeps its permissions.
    Returns what was done, in one line."""
    from engines.atomic import atomic_write_text

    unknown = sorted(set(updates) - set(CONFIG_KEYS))
    if unknown:
        raise TypeError(f"not config keys: {unknown}")  # a programming error
    if not updates:
        return f"nothing was changed live; {path} is left as it is"
    target = Path(os.path.realpath(path))  # through every link: the file the user keeps
    table = read_config_file(target) if target.exists() else {}
    _checked({**table, **updates}, source=str(path))  # never write a file that would not load
    table.update(updates)
    text = "# kdcam config (written by `kdcam ctl save`)\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in table.items())
    mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else None
    atomic_write_text(target, text, mode=mode)
    where = str(path) if target == Path(path) else f"{path} (-> {target})"
    return f"saved {', '.join(f'{k} = {_toml_value(v)}' for k, v in updates.items())} to {where}"
