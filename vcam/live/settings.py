"""Settings of ``kdcam start``, declared once: ``LiveSettings``.

Each field is one option, declared once with ``opt()``: its default, its ``--help`` line,
its parser, and the TOML types a config file may give it. ``kdcam start``'s flags
(``engines.foundation.options.typer_overrides``), the config file's keys and their checks
all come from these declarations.

Precedence: built-in defaults < ``~/.config/kdcam/config.toml`` (or ``--config PATH``) <
the flags the user actually gave. Every value is checked here, once, so the live loop
never sees a bad one; a bad key or value is named in a one-line ``KdcamError``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.errors import KdcamError, shown
from engines.foundation.options import opt, option_fields
from engines.foundation.values import (
    AUTO,
    DEFAULT_FPS,
    DEFAULT_SIZE,
    DEFAULT_STRENGTH,
    MAX_STRENGTH,
    parse_fps,
    parse_size,
    parse_strength,
    parse_text,
    size_text,
)
from engines.registry import engine_help
from vcam.live.config_file import default_config_path, load_toml, toml_value, write_toml
from vcam.media.camera_name import DEFAULT_CAMERA_NAME, parse_camera_name


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


def parse_model(value: Any, *, what: str = "--model") -> str | Path:
    """``auto`` or an installed model's name stay names; anything else is a checkpoint path."""
    from engines.model.zoo import ORDER

    text = parse_text(str(value) if isinstance(value, Path) else value, what=what)
    if (text == AUTO or text in ORDER) and not Path(text).exists():
        return text
    return Path(text).expanduser()


def parse_duration(value: Any, *, what: str = "--duration") -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise KdcamError(f"bad {what} {shown(value)}: give a number of seconds above 0")
    return number


def parse_positive_int(value: Any, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KdcamError(f"bad {what} {shown(value)}: give a whole number of 1 or more")
    return value


def parse_port(value: Any, *, what: str = "--panel-port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise KdcamError(f"bad {what} {shown(value)}: give a TCP port from 1 to 65535, or 0 for a free one")
    return value


def parse_bool(value: Any, *, what: str) -> bool:
    if not isinstance(value, bool):
        raise KdcamError(f"bad {what} {shown(value)}: use true or false")
    return value


def parse_path(value: Any, *, what: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise KdcamError(f"bad {what} {shown(value)}: give a file name")
    return Path(value)


#: the help of --model, shared by every command that takes one
MODEL_HELP = ("auto (the best installed model that keeps up here), an installed model's name, or a student "
              "checkpoint (.safetensors).")
STRENGTH_HELP = f"Sharpening strength, 0 (off) to {MAX_STRENGTH:g}; {DEFAULT_STRENGTH:g} is the trained model."
NUMBER, TEXT, BOOL = (int, float), (str,), (bool,)


@dataclass(frozen=True)
class LiveSettings:
    """Sharpen a webcam (or video) live and publish it as a virtual camera."""

    # a camera index (int), or a video file path or URL (str)
    device: int | str = opt(0, "Camera index (0, 1, ...), video file or URL.", parse=parse_device,
                            config=(int, str), cli_type=str)
    # published frame size; None keeps the source's own size (cameras are asked for DEFAULT_SIZE)
    size: tuple[int, int] | None = opt(None, "Frame size WIDTHxHEIGHT, asked of the camera and published.",
                                       parse=parse_size, config=TEXT, cli_type=str,
                                       show_default=f"the camera's {size_text(DEFAULT_SIZE)} / the file's own")
    # target (and published) frame rate
    fps: float = opt(DEFAULT_FPS, "Target (published) frames per second.", parse=parse_fps, config=NUMBER,
                     cli_type=str)
    # an engine name, or auto: the first usable one
    engine: str = opt(AUTO, engine_help(), parse=parse_text, config=TEXT)
    # 0 is the input, 1 the trained model
    strength: float = opt(DEFAULT_STRENGTH, STRENGTH_HELP, parse=parse_strength, config=NUMBER)
    # None or "auto": the best installed model that keeps up (vcam.live.model_choice); a name, or a checkpoint path
    model: str | Path | None = opt(None, MODEL_HELP, parse=parse_model, config=TEXT, cli_type=str, show_default=AUTO)
    # the virtual camera published to (and the name of the instance's control socket)
    camera_name: str = opt(DEFAULT_CAMERA_NAME, "Virtual camera to publish to.", parse=parse_camera_name,
                           config=TEXT)
    # a pyvirtualcam backend name; None picks the one for this OS
    vcam_backend: str | None = opt(None, "pyvirtualcam backend (v4l2loopback, obs, unitycapture).",
                                   parse=parse_text, config=TEXT, show_default="this OS's")
    # replay a video file from the start when it ends
    loop: bool = opt(False, "Replay a video file when it ends.", parse=parse_bool, config=BOOL)
    # also record the sent stream (a flag only, like every per-run field below)
    output: Path | None = opt(None, "Also record the sharpened stream: .mp4 (small), .avi (MJPEG), .mkv (lossless).",
                              parse=parse_path)
    vcam: bool = opt(True, "Publish to the virtual camera (--no-vcam: record or check only).", parse=parse_bool)
    preview: bool = opt(False, "Open a before/after window (space, +/-, m, s, q).", parse=parse_bool, config=BOOL)
    # serve the control panel (vcam.panel) on 127.0.0.1 while the camera runs; its address is printed once
    panel: bool = opt(True, "Serve the control panel in the browser on 127.0.0.1 (`kdcam panel` opens it).",
                      parse=parse_bool, config=BOOL)
    # the panel's port on 127.0.0.1; 0 takes a free one
    panel_port: int = opt(0, "Port of the control panel on 127.0.0.1 (0: a free one).", parse=parse_port,
                          config=(int,), cli_type=int)
    # None: on demand where it works (Linux with a v4l2loopback device: vcam.live.on_demand), else always on
    on_demand: bool | None = opt(None, "On demand: release the camera and send a still frame while no app watches "
                                 "the virtual camera (--always-on: keep it running).", parse=parse_bool, config=BOOL,
                                 cli_type=bool, negative="--always-on",
                                 show_default="on demand with v4l2loopback on Linux")
    max_frames: int | None = opt(None, "Stop after sending this many frames.", parse=parse_positive_int)
    duration: float | None = opt(None, "Stop after this many seconds.", parse=parse_duration)
    # where `kdcam ctl save` writes the settings changed live (the config file read, or the default one)
    config_file: Path | None = opt(None, flag=False)

    def check_seen(self) -> None:
        """A session nobody sees would run forever: --no-vcam needs an output, a preview or an end."""
        if not self.vcam and self.output is None and not self.preview and self.max_frames is None \
                and self.duration is None:
            raise KdcamError("--no-vcam without --output, --preview, --max-frames or --duration would run unseen "
                             "forever: add one of them")


#: field -> its parser (every field a flag or a config key can set)
PARSERS = {f.name: meta["parse"] for f, meta in option_fields(LiveSettings) if meta.get("parse")}
#: keys a config file may set (the per-run ones, like output or max_frames, are flags only), with the TOML
#: types each takes: a config file is typed, so a string is never taken for a number (strength = "1" is refused)
CONFIG_TYPES: dict[str, tuple[type, ...]] = {f.name: meta["config"] for f, meta in option_fields(LiveSettings)
                                             if meta.get("config")}
CONFIG_KEYS = tuple(CONFIG_TYPES)
_TOML_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_EXAMPLES = {"fps": f"{DEFAULT_FPS:g}", "strength": repr(DEFAULT_STRENGTH), "device": "0", "loop": "true",
             "preview": "false"}
_TEXT_EXAMPLE = '"..."'


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw key -> value table of a kdcam config file, keys and their TOML types checked."""
    table = load_toml(path)
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        raise KdcamError(f"config file {path}: unknown key {shown(unknown[0])}; known keys: {', '.join(CONFIG_KEYS)}")
    for key, value in table.items():
        types = CONFIG_TYPES[key]
        if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
            want = " or ".join(_TOML_NAMES[t] for t in types)
            raise KdcamError(f"config file {path}: '{key}' must be {want} (TOML is typed: write {key} = "
                             f"{_EXAMPLES.get(key, _TEXT_EXAMPLE)}), not {shown(value)}")
    return table


def resolve_settings(*, overrides: dict[str, Any], config_path: Path | None = None) -> LiveSettings:
    """Defaults, then the config file, then ``overrides`` (only the flags the user gave).

    ``config_path`` None reads the default config file when it exists; an explicit path
    must exist. The settings are checked as a whole too (``LiveSettings.check_seen``).
    """
    values: dict[str, Any] = {}
    path = config_path if config_path is not None else default_config_path()
    if config_path is not None or path.is_file():
        values.update(_checked(read_config_file(path), source=str(path)))
    values.update(_checked(overrides, source=None))
    settings = LiveSettings(**values, config_file=path)
    settings.check_seen()
    return settings


def _checked(raw: dict[str, Any], *, source: str | None) -> dict[str, Any]:
    """Parse every value; ``source`` None means command-line flags."""
    checked = {}
    for key, value in raw.items():
        if key not in PARSERS:
            raise TypeError(f"not a LiveSettings field: {key}")  # a programming error, not user input
        what = f"--{key.replace('_', '-')}" if source is None else f"'{key}' in {source}"
        checked[key] = PARSERS[key](value, what=what)
    return checked


def save_settings(path: Path, updates: dict[str, Any]) -> str:
    """Write ``updates`` (config keys) into the config file at ``path``, atomically, keeping its
    other keys (comments are not kept). A config file that is a symbolic link (a dotfiles
    repository) is written through the link, to its target, which keeps its permissions.
    Returns what was done, in one line."""
    unknown = sorted(set(updates) - set(CONFIG_KEYS))
    if unknown:
        raise TypeError(f"not config keys: {unknown}")  # a programming error
    if not updates:
        return f"nothing was changed live; {path} is left as it is"
    target = Path(os.path.realpath(path))  # through every link: the file the user keeps
    table = read_config_file(target) if target.exists() else {}
    _checked({**table, **updates}, source=str(path))  # never write a file that would not load
    table.update(updates)
    write_toml(target, table)
    where = str(path) if target == Path(path) else f"{path} (-> {target})"
    return f"saved {', '.join(f'{k} = {toml_value(v)}' for k, v in updates.items())} to {where}"
