"""Build a TensorRT engine for a student's frame graph (``kdcam build-engine``).

Building is separate from running (``engines/tensorrt_engine.py``): it is slow (tens of
seconds), needs the ONNX exporter, and its result is cached per GPU model and TensorRT
version (see ``engines/engine_cache.py``).

The steps follow the documented Python API of TensorRT 10.x and 11.x:
https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/python-api-docs.html

1. Export the frame graph to ONNX with the precision baked in (fp16 casts inside the
   graph). TensorRT 11 builds only strongly typed networks, whose precision is the
   graph's own; ``BuilderFlag.FP16`` was removed there
   (https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html).
   On TensorRT 10.x we also set that flag, when it exists.
2. ``create_network(0)``, ``OnnxParser.parse_from_file``, and every parser error reported.
3. One optimization profile for the dynamic height and width (min/opt/max), a workspace
   limit, and a timing cache that is loaded before and saved after every build.
4. ``build_serialized_network``, with a progress monitor, and an atomic write of the
   engine and its metadata.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from distill.atomic import atomic_write_bytes
from distill.errors import KdcamError
from engines import engine_cache as ec

INSTALL_HINT = "pip install 'kdcam[tensorrt]'"
INPUT_NAME = "frame"  # see distill.onnx_export.GRAPHS["frame"]
DEFAULT_WORKSPACE_MB = 2048


# --- imports and checks -------------------------------------------------------------------


def import_tensorrt():
    """The ``tensorrt`` module, or a KdcamError that names the extra to install."""
    try:
        import tensorrt as trt
    except ImportError as err:
        detail = "" if getattr(err, "name", None) == "tensorrt" else f" ({str(err).splitlines()[0]})"
        raise KdcamError(f"TensorRT is not installed{detail}; install it with: {INSTALL_HINT}") from None
    return trt


def cuda_problem() -> str | None:
    """None when PyTorch sees a CUDA GPU (TensorRT's I/O buffers are torch CUDA tensors),
    else why not."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "PyTorch is not installed"
    if torch.version.cuda is None:
        return f"PyTorch {torch.__version__} is a CPU-only build (install a CUDA build of PyTorch)"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)"
    return None


def require_cuda() -> None:
    why = cuda_problem()
    if why is not None:
        raise KdcamError(
            f"TensorRT needs an NVIDIA GPU, but {why}; on this machine use a CPU engine (--engine onnxruntime)"
        )


def tensorrt_major(trt) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        return 0


def device_info(trt) -> dict[str, str]:
    """This machine's GPU and TensorRT version (a seam the tests replace)."""
    return ec.current_device_info(trt.__version__)


# --- logger and progress ------------------------------------------------------------------


def make_logger(trt, *, verbose: bool = False):
    """A ``trt.ILogger`` that prints warnings and errors with a kdcam prefix and keeps the
    errors, so a failed build can say why in its one-line message.

    Python loggers must call ``trt.ILogger.__init__`` (Python API docs, "The Build Phase").
    """

    class KdcamTrtLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg) -> None:
            try:
                if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                    self.errors.append(" ".join(str(msg).split()))
                    print(f"kdcam: tensorrt: {msg}", file=sys.stderr)
                elif severity == trt.ILogger.WARNING or verbose:
                    print(f"kdcam: tensorrt: {msg}", file=sys.stderr)
            except Exception:  # never raise into TensorRT
                pass

    return KdcamTrtLogger()


class PhaseBars:
    """Progress bars for TensorRT's builder phases (pure Python, driven by the monitor).

    Uses rich when it is importable, else tqdm, else plain lines. Nested phases are
    indented and removed when they finish; top-level phases stay.
    """

    def __init__(self, *, file=None, backend: str | None = None) -> None:
        self._file = file or sys.stderr
        self._lock = threading.Lock()
        self._tasks: dict[str, tuple[object, int]] = {}  # phase -> (bar/task, depth)
        self._backend = backend or self._pick_backend()
        self._progress = None

    @staticmethod
    def _pick_backend() -> str:
        for name in ("rich", "tqdm"):
            try:
                __import__(name)
                return name
            except ImportError:
                continue
        return "plain"

    def start(self, phase: str, parent: str | None, steps: int) -> None:
        with self._lock:
            depth = self._tasks[parent][1] + 1 if parent in self._tasks else 0
            label = "  " * depth + str(phase)
            if self._backend == "rich":
                if self._progress is None:
                    from rich.console import Console
                    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                    self._progress = Progress(
                        TextColumn("{task.description}"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TimeElapsedColumn(),
                        console=Console(file=self._file),
                    )
                    self._progress.start()
                bar = self._progress.add_task(label, total=max(int(steps), 1))
            elif self._backend == "tqdm":
                from tqdm import tqdm

                bar = tqdm(total=max(int(steps), 1), desc=label, position=depth, leave=depth == 0, file=self._file)
            else:
                print(f"kdcam: {label} ({steps} steps)", file=self._file)
                bar = None
            self._tasks[phase] = (bar, depth)

    def step(self, phase: str, step: int) -> None:
        with self._lock:
            bar, _ = self._tasks.get(phase, (None, 0))
            if bar is None:
                return
            if self._backend == "rich":
                self._progress.update(bar, completed=int(step) + 1)
            else:
                bar.n = int(step) + 1
                bar.refresh()

    def finish(self, phase: str) -> None:
        with self._lock:
            bar, depth = self._tasks.pop(phase, (None, 0))
            if bar is None:
                return
            if self._backend == "rich":
                task = next(t for t in self._progress.tasks if t.id == bar)
                self._progress.update(bar, completed=task.total)
                if depth:
                    self._progress.remove_task(bar)
            else:
                bar.n = bar.total
                bar.close()

    def close(self) -> None:
        with self._lock:
            for bar, _ in self._tasks.values():
                if self._backend == "tqdm" and bar is not None:
                    bar.close()
            self._tasks.clear()
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def make_progress_monitor(trt, bars: PhaseBars):
    """A ``trt.IProgressMonitor`` that drives ``bars``.

    TensorRT calls it from its own threads; it must not raise, and returning False from
    ``step_complete`` would cancel the build. Python API reference:
    https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/ProgressMonitor.html
    """

    class KdcamProgressMonitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.cancelled = False

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            try:
                bars.start(phase_name, parent_phase, num_steps)
            except Exception:
                pass

        def step_complete(self, phase_name, step) -> bool:
            try:
                bars.step(phase_name, step)
            except Exception:
                pass
            return not self.cancelled

        def phase_finish(self, phase_name) -> None:
            try:
                bars.finish(phase_name)
            except Exception:
                pass

    return KdcamProgressMonitor()


# --- the build ------------------------------------------------------------------------------


def _parser_error_text(err) -> str:
    """One line for an ``IParserError`` (node name and operator where the API has them)."""
    try:
        desc = " ".join(str(err.desc()).split())
        where = []
        for attr in ("node_name", "node_operator"):
            fn = getattr(err, attr, None)
            value = fn() if callable(fn) else None
            if value:
                where.append(str(value))
        return f"{'/'.join(where)}: {desc}" if where else desc
    except Exception:
        return " ".join(str(err).split())


def build_serialized(
    trt,
    onnx_path: Path,
    profile: ec.Profile,
    *,
    precision: str,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    timing_cache: Path | None = None,
    progress: bool = True,
    verbose: bool = False,
):
    """Parse ``onnx_path`` and build; returns the serialized engine (an ``IHostMemory``)."""
    logger = make_logger(trt, verbose=verbose)
    builder = trt.Builder(logger)
    # Flags 0: on 10.x a weakly typed network (precision from the builder flags and the
    # graph's casts); on 11.x every network is strongly typed and the
    # STRONGLY_TYPED flag is ignored, so 0 is right for both. Builder reference:
    # https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Builder.html
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error_text(parser.get_error(i)) for i in range(parser.num_errors)]
        listed = " | ".join(f"({i + 1}) {e}" for i, e in enumerate(errors)) or "no details"
        raise KdcamError(f"TensorRT cannot parse {onnx_path} ({len(errors)} error(s)): {listed}")

    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    if INPUT_NAME not in inputs:
        raise KdcamError(f"{onnx_path}: expected an input named '{INPUT_NAME}', found {inputs}; re-export the model")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if precision == "fp16" and hasattr(trt.BuilderFlag, "FP16"):
        config.set_flag(trt.BuilderFlag.FP16)  # TensorRT 10.x only; gone in 11.x (see module doc)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: the reference-accuracy engine

    # Dynamic H and W: one profile with min/opt/max shapes of the frame input; the builder
    # tunes for opt and stays valid over the whole range. IOptimizationProfile reference:
    # https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/OptimizationProfile.html
    opt_profile = builder.create_optimization_profile()
    lo, opt, hi = profile.input_shapes()
    opt_profile.set_shape(INPUT_NAME, lo, opt, hi)
    config.add_optimization_profile(opt_profile)

    # Timing cache: reused between builds on the same GPU and TensorRT version.
    # https://docs.nvidia.com/deeplearning/tensorrt/latest/performance/builder-performance.html#timing-cache
    cache = None
    if timing_cache is not None:
        data = b""
        try:
            data = timing_cache.read_bytes()
        except OSError:
            pass
        cache = config.create_timing_cache(data)
        if cache is None or not config.set_timing_cache(cache, False):
            cache = config.create_timing_cache(b"")  # stale or corrupt file: start afresh
            config.set_timing_cache(cache, False)

    bars = PhaseBars() if progress else None
    monitor = None
    if bars is not None and hasattr(trt, "IProgressMonitor"):
        monitor = make_progress_monitor(trt, bars)  # must outlive the build: keep the reference
        config.progress_monitor = monitor
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if bars is not None:
            bars.close()
    if serialized is None:
        why = "; ".join(logger.errors[-3:]) or "see the TensorRT messages above"
        raise KdcamError(f"TensorRT could not build an engine from {onnx_path}: {why}")

    if timing_cache is not None:
        try:
            atomic_write_bytes(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
        except (OSError, AttributeError, TypeError) as err:
            print(f"kdcam: could not save the TensorRT timing cache {timing_cache}: {err}", file=sys.stderr)
    del monitor
    return serialized


def prepare(
    *,
    model: str | Path | None,
    size: str | tuple[int, int],
    min_size: str | tuple[int, int] | None,
    max_size: str | tuple[int, int] | None,
    precision: str,
    trt=None,
    current: dict[str, str] | None = None,
) -> tuple[Path, dict, ec.Profile]:
    """ONNX file, engine metadata and profile for a build (no TensorRT calls)."""
    from distill.checkpoint import load_student, resolve_model_path
    from distill.atomic import file_sha256
    from engines.onnx_model import onnx_for

    if precision not in ec.PRECISIONS:
        raise KdcamError(f"unknown precision '{precision}'; choose one of: {', '.join(ec.PRECISIONS)}")
    student, _ = load_student(model)
    profile = ec.make_profile(size, min_size, max_size, multiple=student.multiple)
    onnx_path = onnx_for(model, graph="frame", precision=precision)
    if current is None:
        current = device_info(trt)
    meta = ec.make_meta(
        current,
        onnx_sha256=file_sha256(onnx_path),
        precision=precision,
        profile=profile,
        model=str(resolve_model_path(model)),
    )
    return onnx_path, meta, profile


def is_current(path: Path, meta: dict) -> bool:
    """True when ``path`` is an engine built from exactly ``meta``'s inputs on this device."""
    from distill.atomic import file_sha256

    if not path.is_file():
        return False
    built = ec.read_meta(path)
    if built is None or built.get("profile") != meta["profile"]:
        return False
    decision = ec.check_engine(
        built,
        meta,
        onnx_sha256=meta["onnx_sha256"],
        precision=meta["precision"],
        engine_sha256=file_sha256(path),
    )
    return decision.usable


def build_engine(
    *,
    model: str | Path | None = None,
    size: str | tuple[int, int] = "1280x720",
    min_size: str | tuple[int, int] | None = None,
    max_size: str | tuple[int, int] | None = None,
    precision: str = "fp16",
    output: str | Path | None = None,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    force: bool = False,
    progress: bool = True,
    quiet: bool = False,
    verbose: bool = False,
) -> Path:
    """Build (or find up to date) the TensorRT engine of ``model``; returns its path.

    ``size`` is the optimal frame size (``WxH``); ``min_size``/``max_size`` bound the
    frame sizes the engine accepts (default: any size up to 1920x1080, or up to ``size`` if larger).
    ``output`` defaults to the per-user cache, keyed by the metadata. An existing engine
    with the same metadata is reused unless ``force``.
    """
    if precision not in ec.PRECISIONS:
        raise KdcamError(f"unknown precision '{precision}'; choose one of: {', '.join(ec.PRECISIONS)}")
    ec.make_profile(size, min_size, max_size)  # bad sizes fail before anything heavy
    trt = import_tensorrt()
    require_cuda()
    onnx_path, meta, profile = prepare(
        model=model, size=size, min_size=min_size, max_size=max_size, precision=precision, trt=trt
    )
    path = Path(output).expanduser() if output is not None else ec.default_engine_path(meta)
    if not force and is_current(path, meta):
        if not quiet:
            print(f"kdcam: engine is up to date: {path}", file=sys.stderr)
        return path
    p = profile.to_dict()
    if not quiet:
        print(
            f"kdcam: building a TensorRT {trt.__version__} {precision} engine for {meta['gpu_name']} "
            f"(frames {p['min']}..{p['max']}, optimal {p['opt']}); this takes a minute the first time",
            file=sys.stderr,
        )
    serialized = build_serialized(
        trt,
        onnx_path,
        profile,
        precision=precision,
        workspace_mb=workspace_mb,
        timing_cache=ec.timing_cache_path(meta),
        progress=progress and not quiet,
        verbose=verbose,
    )
    ec.write_engine(path, serialized, meta)
    if not quiet:
        print(f"kdcam: wrote {path} (+ {ec.meta_path_for(path).name})", file=sys.stderr)
    return path
