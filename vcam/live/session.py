"""``kdcam start``: open everything one live session needs, run the stages, shut down cleanly.

Opened cheapest first, so a typo or a missing camera fails before the engine loads: the
instance lock (the ``kdcam ctl`` socket), the source, the virtual camera, the engine
(switchable while running); only then, once every check has passed (``vcam.live.readiness``),
the recording; then the live controls (``vcam.live.controls``): the control panel in the
browser (``vcam.live.panel_link``), terminal keys and the preview window. A refused start
leaves every existing file as it was. Ctrl-C, SIGTERM, SIGHUP and the ``q`` key only set the
stop event: every stage then ends normally, the camera and the virtual device are released,
and a recording is finalized and renamed into place; the summary lists the changes made live.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from engines.atomic import check_writable, recover_partials
from engines.errors import KdcamError
from engines.foundation.signals import stop_on_signals
from vcam.live.sources import SourceFactory, describe_source, output_shape, source_factory
from vcam.live.stage import default_log
from vcam.live.settings import LiveSettings, save_settings
from vcam.live.controls.socket_server import ControlServer
from vcam.live.controls.protocol import handle_request
from vcam.live.controls.state import Controls
from vcam.live.engine_switch import EngineSwitch, live_engine, warm_up
from vcam.live.controls.keys import TerminalKeys, key_actions
from engines.foundation.values import AUTO
from vcam.live.model_choice import choose_model
from vcam.live.on_demand import start_on_demand
from vcam.live.panel_link import PanelFrames, session_panel
from vcam.live.pipeline import FrameLog, run_loop
from vcam.live.controls.preview import Preview, check_display
from vcam.live.readiness import ReadyToWrite, ready_to_write
from vcam.live.recording import Recording
from vcam.media.video_writer import codec_for, describe_codec
from vcam.live.sender import Observer, Sink
from vcam.live.stats import LiveStats, format_summary


def _open_vcam(stack: contextlib.ExitStack, s: LiveSettings, shape, sysfs_root: Path, log):
    """Open the virtual camera for the run (closed with ``stack``); returns the pyvirtualcam camera."""
    from vcam.media.virtual_camera import open_virtual_camera

    height, width = shape[:2]
    cam = stack.enter_context(
        open_virtual_camera(
            width=width,
            height=height,
            fps=s.fps,
            camera_name=s.camera_name,
            backend=s.vcam_backend,
            sysfs_root=sysfs_root,
            log=log,
        )
    )
    log(f"kdcam: virtual camera {cam.device} ({cam.backend}): {width}x{height} @ {s.fps:g} fps BGR")
    return cam


def _model_choices(model: str | Path | None) -> tuple[str, dict[str, str | Path]]:
    """The running model's name, and name -> model for every model a live switch may pick:
    the installed ones (by name only), plus the checkpoint the session started with."""
    from engines.model.checkpoint import resolve_model_path
    from engines.model.zoo import DEFAULT_NAME, ORDER, installed

    choices: dict[str, str | Path] = {name: name for name in installed()}
    if model is None:
        return DEFAULT_NAME, choices
    if str(model) in ORDER and not Path(model).exists():
        return str(model), choices
    path = resolve_model_path(model)
    name = path.stem if path.stem not in choices else str(path)
    return name, {name: path, **choices}


def _save(controls: Controls, s: LiveSettings, start: dict) -> str:
    """``kdcam ctl save``: the settings the user changed live (against ``start``, what the
    session began with), into the config file. What was not changed is not written, so a
    config that says ``model = "auto"`` keeps saying it."""
    from engines.model.zoo import ORDER

    now = {"strength": controls.strength, "engine": controls.engine, "model": controls.model}
    updates = {key: value for key, value in now.items() if value != start[key]}
    if updates.get("model") is not None and updates["model"] not in ORDER:
        del updates["model"]  # an installed model is saved by name; a file given with --model is not moved
    return save_settings(s.config_file, updates)


class _Session:
    """What the stages run on, opened into ``stack``: the source, the virtual camera, the engine
    and the live controls. Nothing here writes a file: the recording starts in ``record``."""

    def __init__(self, stack: contextlib.ExitStack, s: LiveSettings, *, engine, factory, sysfs_root, log) -> None:
        self.source = factory()
        self._handed_over = False
        stack.callback(lambda: None if self._handed_over else self.source.close())
        log(
            "kdcam: "
            + describe_source(self.source.info, asked_size=s.size, asked_fps=s.fps, camera=isinstance(s.device, int))
        )
        self.shape = output_shape(self.source.info, s.size)
        self.vcam = _open_vcam(stack, s, self.shape, sysfs_root, log) if s.vcam else None
        self.sinks: list[Sink] = [self.vcam.send] if self.vcam is not None else []
        model = None if s.model is None or str(s.model) == AUTO else s.model
        name, choices = _model_choices(model)
        if engine is None and model is None:  # auto: the chosen model, already read once
            name, model = choose_model(engine=s.engine, size=(self.shape[1], self.shape[0]), fps=s.fps, log=log)
        self.switch: EngineSwitch | None = None
        if engine is None:
            engine = live_engine(s.engine, model=model if model is not None else choices.get(name))
            stack.callback(lambda: (self.switch or engine).close())  # whichever engine runs at the end
        warm_up(engine, shape=self.shape, strength=s.strength)
        self.engine = engine
        self.stats = LiveStats(engine=engine.describe())
        self.switch = EngineSwitch(
            engine,
            engine_name=s.engine,
            model=model if model is not None else choices.get(name),
            shape=self.shape,
            strength=lambda: self.controls.strength,
            on_swap=self._swapped,
        )
        self.controls = Controls(
            strength=s.strength,
            model=name,
            models=list(choices),
            engine=s.engine,
            switch=lambda m, e: self.switch.switch(None if m is None else choices[m], e),
        )
        self.observers: list[Observer] = []
        self.recording = None

    def record(self, stack: contextlib.ExitStack, s: LiveSettings, *, ready: ReadyToWrite, log) -> None:
        """Start the recording (``--output``), now that every check has passed."""
        if s.output is None:
            return
        self.recording = stack.enter_context(Recording(s.output, ready=ready, shape=self.shape, fps=s.fps))
        self.observers.append(lambda slot, _fresh: self.recording.offer(slot.frame))
        log(f"kdcam: recording to {s.output} ({describe_codec(s.output)})")

    def _swapped(self, engine) -> None:
        self.stats.engine = engine.describe()

    def handed_over(self) -> None:
        self._handed_over = True  # from now on the capture thread closes the source


class _LateHandler:
    """The control socket's handler. The socket is bound first, as the instance lock, so a
    request that comes while the session is still opening waits for it (up to ``WAIT_S``)."""

    WAIT_S = 30.0

    def __init__(self) -> None:
        self._handle: Callable[[dict], dict] | None = None
        self._settled = threading.Event()

    def set(self, handle: Callable[[dict], dict]) -> None:
        self._handle = handle
        self._settled.set()

    def close(self) -> None:
        self._settled.set()  # the session ended (or never opened): nobody waits any longer

    def __call__(self, request: dict) -> dict:
        if not self._settled.wait(self.WAIT_S) or self._handle is None:
            return {
                "ok": False,
                "error": "kdcam start is not ready (still opening the camera and the engine, or it stopped); try again",
            }
        return self._handle(request)


def _check_not_the_source(output: Path, device: int | str) -> None:
    # samefile: the same file by any path, through links too
    if isinstance(device, str) and Path(device).is_file() and output.exists() and os.path.samefile(output, device):
        raise KdcamError(
            f"--output {output} is the video being played (--device {device}): the recording would replace "
            "it; give the recording another name"
        )


def run_live(
    *,
    settings: LiveSettings,
    frame_log: Path | None = None,
    log: Callable[[str], None] = default_log,
    engine=None,
    factory: SourceFactory | None = None,
    sysfs_root: Path = Path("/sys"),
    report_every: float | None = 1.0,
    stdin=None,
) -> dict:
    """``kdcam start``: the whole live virtual camera for ``settings``; returns the summary,
    with ``signal`` set to the number of the stop signal that ended it (None otherwise) and
    ``changes`` listing what was changed live.

    ``engine`` and ``factory`` replace the configured engine and source (tests, benchmarks).
    """
    s = settings
    # Checks that need no hardware come first, so a typo fails before the camera is taken.
    if s.preview:
        check_display()
    if s.output is not None:
        codec_for(s.output)
        _check_not_the_source(s.output, s.device)
        check_writable(s.output, what="recording")
        for kept in recover_partials(s.output, keep=True):
            log(
                f"kdcam: an earlier recording to {s.output} was cut off (its process was killed); "
                f"what it wrote is kept as {kept} (it may not play to the end)"
            )
    factory = factory or source_factory(device=s.device, size=s.size, fps=s.fps, loop=s.loop)
    with contextlib.ExitStack() as stack:
        # the instance lock (and the runtime folder's check) before the camera, the engine or any file
        handler = _LateHandler()
        lock = stack.enter_context(
            ControlServer(camera_name=s.camera_name, stop=threading.Event(), log=log, handle=handler)
        )
        stack.callback(handler.close)
        session = _Session(stack, s, engine=engine, factory=factory, sysfs_root=sysfs_root, log=log)
        session.record(stack, s, ready=ready_to_write(lock=lock, source=session.source, engine=session.engine), log=log)
        stop = threading.Event()
        controls = session.controls
        start = {"strength": controls.strength, "engine": controls.engine, "model": controls.model}
        handler.set(partial(handle_request, controls=controls, save=lambda: _save(controls, s, start)))
        demand, watch = start_on_demand(mode=s.on_demand, device=getattr(session.vcam, "device", None),
                                        backend=getattr(session.vcam, "backend", None), stop=stop, log=log)
        if watch is not None:
            stack.callback(watch.join, 1.0)
            stack.callback(stop.set)  # runs first: the watch ends with the session, however it ends
        frames = FrameLog() if frame_log is not None else None
        observers = session.observers + ([frames] if frames is not None else [])
        if s.preview:
            preview = Preview(shape=session.shape, controls=controls, stats=session.stats, stop=stop, log=log)
            stack.callback(preview.close)
            observers.append(preview)
        panel_frames = PanelFrames() if s.panel else None
        if panel_frames is not None:  # the same handler as `kdcam ctl`: one control layer
            stack.enter_context(session_panel(camera_name=s.camera_name, port=s.panel_port, handle=handler,
                                              frames=panel_frames, stats=session.stats, log=log))
            observers.append(panel_frames)
        stack.enter_context(TerminalKeys(key_actions(controls, stop), stream=stdin, log=log))
        session.handed_over()
        with stop_on_signals(stop) as stopped:
            summary = run_loop(
                source=session.source,
                factory=factory,
                engine=None,
                current_engine=session.switch.current,
                shape=session.shape,
                fps=s.fps,
                controls=controls,
                stats=session.stats,
                stop=stop,
                sinks=session.sinks,
                observers=observers,
                keep_before=True if s.preview else panel_frames.watching if panel_frames else False,
                max_frames=s.max_frames,
                duration=s.duration,
                report_every=report_every,
                demand=demand,
                log=log,
            )
        summary.update(signal=stopped.signum, changes=list(controls.changes))
        if frames is not None:
            frames.write(frame_log)
    if session.recording is not None:  # finalized and renamed into place when the stack closed
        summary.update(session.recording.summary())
    print(format_summary(summary), flush=True)
    return summary
