"""Build TensorRT engines for a student's frame graph, and find or build the one to run.

Building is separate from running (``engines/tensorrt_engine.py``): it is slow (tens of
seconds), needs the ONNX exporter, and its result is cached per GPU model and TensorRT
version (``engines/engine_cache.py``). This module owns that cache: ``build_engine`` is
``kdcam build-engine``; ``create`` is the engine registry's factory, which finds the
cached engine (building or rebuilding it when it is missing, stale or too small for a
frame) or checks an engine file given explicitly, and hands its path to the runner.

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
from pathlib import Path

from engines import engine_cache as ec
from engines.foundation import values
from engines import tensorrt_common as trtc
from engines.atomic import atomic_write_bytes, file_sha256
from engines.errors import KdcamError
from engines.model.checkpoint import ResolvedModel, open_model
from engines.model.onnx_cache import onnx_for
from engines.tensorrt_engine import EngineLoadError, TensorRTEngine
from engines.tensorrt_progress import PhaseBars, make_progress_monitor

DEFAULT_WORKSPACE_MB = trtc.DEFAULT_WORKSPACE_MB
DEFAULT_SIZE = values.size_text(values.DEFAULT_SIZE)


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


def _parse(trt, builder, logger, onnx_path: Path):
    """The network parsed from ``onnx_path``; every parser error in one line on failure."""
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
    if trtc.INPUT_NAME not in inputs:
        raise KdcamError(
            f"{onnx_path}: expected an input named '{trtc.INPUT_NAME}', found {inputs}; re-export the model"
        )
    return network, parser


def _configure(trt, builder, profile: ec.Profile, *, precision: str, workspace_mb: int, timing_cache: Path | None):
    """The builder config: workspace, precision flags, the shape profile, the timing cache."""
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
    opt_profile.set_shape(trtc.INPUT_NAME, lo, opt, hi)
    config.add_optimization_profile(opt_profile)

    # Timing cache: reused between builds on the same GPU and TensorRT version.
    # https://docs.nvidia.com/deeplearning/tensorrt/latest/performance/builder-performance.html#timing-cache
    if timing_cache is not None:
        try:
            data = timing_cache.read_bytes()
        except OSError:
            data = b""
        cache = config.create_timing_cache(data)
        if cache is None or not config.set_timing_cache(cache, False):
            config.set_timing_cache(config.create_timing_cache(b""), False)  # stale or corrupt file: start afresh
    return config


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
    logger = trtc.make_logger(trt, verbose=verbose)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)  # the parser must outlive the build
    config = _configure(
        trt, builder, profile, precision=precision, workspace_mb=workspace_mb, timing_cache=timing_cache
    )
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
    model: ResolvedModel,
    size: str | tuple[int, int],
    min_size: str | tuple[int, int] | None,
    max_size: str | tuple[int, int] | None,
    precision: str,
    current: dict[str, str],
) -> tuple[Path, dict, ec.Profile]:
    """ONNX file, engine metadata and profile for a build (no TensorRT calls)."""
    ec.check_precision(precision)
    profile = ec.make_profile(size, min_size, max_size, multiple=model.multiple)
    onnx_path = onnx_for(model, graph="frame", precision=precision)
    meta = ec.make_meta(
        current, onnx_sha256=file_sha256(onnx_path), precision=precision, profile=profile, model=str(model.path)
    )
    return onnx_path, meta, profile


def is_current(path: Path, meta: dict) -> bool:
    """True when ``path`` is an engine built from exactly ``meta``'s inputs on this device."""
    if not path.is_file():
        return False
    built = ec.read_meta(path)
    if built is None or built.get("profile") != meta["profile"]:
        return False
    decision = ec.check_engine(
        built, meta, onnx_sha256=meta["onnx_sha256"], precision=meta["precision"], engine_sha256=file_sha256(path)
    )
    return decision.usable


def build_engine(
    *,
    model: str | Path | ResolvedModel | None = None,
    size: str | tuple[int, int] = DEFAULT_SIZE,
    min_size: str | tuple[int, int] | None = None,
    max_size: str | tuple[int, int] | None = None,
    precision: str = ec.DEFAULT_PRECISION,
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
    ec.check_precision(precision)
    ec.make_profile(size, min_size, max_size)  # bad sizes fail before anything heavy
    trt = trtc.import_tensorrt()
    trtc.require_cuda()
    resolved = open_model(model)
    onnx_path, meta, profile = prepare(
        model=resolved,
        size=size,
        min_size=min_size,
        max_size=max_size,
        precision=precision,
        current=trtc.device_info(trt),
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


# --- the registry's factory: find, build or check the engine file, then run it ---------------


def availability() -> str | None:
    return trtc.availability()


def create(
    model: ResolvedModel,
    *,
    engine_file: str | Path | None = None,
    size: str | tuple[int, int] | None = None,
    precision: str | None = None,
    quiet: bool = False,
) -> TensorRTEngine:
    """The TensorRT engine for ``model``.

    Without ``engine_file``: the per-user cache entry for this GPU, TensorRT version,
    model and ``precision`` (default fp16), built now if missing or stale, and rebuilt with
    a wider profile if a frame falls outside it. With ``engine_file``: that file, checked
    against its metadata; a mismatch raises with the command that builds a fitting one.
    ``size`` (WxH) is the frame size to optimize a new build for (default 1280x720).
    """
    trt = trtc.import_tensorrt()
    why = trtc.cuda_problem()
    if why is not None:
        raise KdcamError(f"TensorRT needs an NVIDIA GPU, but {why}; use a CPU engine (--engine onnxruntime)")
    current = trtc.device_info(trt)
    if engine_file is not None:
        return _from_file(Path(engine_file).expanduser(), model=model, precision=precision, trt=trt, current=current)
    return _from_cache(
        model=model,
        size=size or DEFAULT_SIZE,
        precision=precision or ec.DEFAULT_PRECISION,
        trt=trt,
        current=current,
        quiet=quiet,
    )


def _from_cache(*, model: ResolvedModel, size, precision: str, trt, current: dict, quiet: bool) -> TensorRTEngine:
    _onnx, meta, profile = prepare(
        model=model, size=size, min_size=None, max_size=None, precision=precision, current=current
    )
    state = {"profile": profile}

    def build(prof: ec.Profile, *, force: bool = False) -> Path:
        return build_engine(
            model=model,
            size=prof.opt,
            min_size=prof.min,
            max_size=prof.max,
            precision=precision,
            force=force,
            quiet=quiet,
        )

    def rebuild(frame_size: tuple[int, int]) -> Path:
        state["profile"] = ec.widened_profile(state["profile"], frame_size)
        if not quiet:
            print(
                f"kdcam: frame {ec.format_size(frame_size)} is outside the cached TensorRT engine's range; rebuilding",
                file=sys.stderr,
            )
        return build(state["profile"])

    path = ec.default_engine_path(meta)
    if not is_current(path, meta):
        path = build(profile)
    try:
        return TensorRTEngine(engine_path=path, multiple=model.multiple, rebuild=rebuild, trt=trt)
    except EngineLoadError as err:
        if not quiet:
            print(f"kdcam: cached TensorRT engine {path} does not load ({err}); rebuilding", file=sys.stderr)
        path = build(profile, force=True)
        try:
            return TensorRTEngine(engine_path=path, multiple=model.multiple, rebuild=rebuild, trt=trt)
        except EngineLoadError as err2:
            raise KdcamError(
                f"a freshly built TensorRT engine does not load ({err2}); use --engine torch-cuda"
            ) from None


def _from_file(path: Path, *, model: ResolvedModel, precision: str | None, trt, current: dict) -> TensorRTEngine:
    if not path.is_file():
        raise KdcamError(f"{path}: TensorRT engine file not found; build it with: kdcam build-engine --output {path}")
    meta = ec.read_meta(path)
    built_precision = precision or (meta or {}).get("precision", ec.DEFAULT_PRECISION)
    built_profile = _profile_of(meta)
    _onnx, want, _ = prepare(
        model=model,
        size=built_profile.opt,
        min_size=built_profile.min,
        max_size=built_profile.max,
        precision=built_precision if built_precision in ec.PRECISIONS else ec.DEFAULT_PRECISION,
        current=current,
    )

    def command(frame_size: tuple[int, int] | None = None) -> str:
        prof = built_profile if frame_size is None else ec.widened_profile(built_profile, frame_size)
        return ec.rebuild_command(model=str(model.path), profile=prof, precision=want["precision"], output=path)

    decision = ec.check_engine(
        meta, current, onnx_sha256=want["onnx_sha256"], precision=precision, engine_sha256=file_sha256(path)
    )
    if not decision.usable:
        raise KdcamError(
            f"{path}: this TensorRT engine cannot run here ({decision.why()}); rebuild it with: {command()}"
        )
    try:
        return TensorRTEngine(engine_path=path, multiple=model.multiple, what_to_run=command, trt=trt)
    except EngineLoadError as err:
        raise KdcamError(f"{path}: TensorRT cannot load this engine ({err}); rebuild it with: {command()}") from None


def _profile_of(meta: dict | None) -> ec.Profile:
    try:
        return ec.Profile.from_dict(meta["profile"])  # type: ignore[index]
    except (KeyError, TypeError, KdcamError):
        return ec.make_profile(DEFAULT_SIZE)
