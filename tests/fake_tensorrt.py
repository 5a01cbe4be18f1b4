"""A stand-in for the ``tensorrt`` module: the subset of its documented 10.x / 11.x Python
API that kdcam's builder calls, recording every call in ``trt.log`` so tests check what
kdcam asks of TensorRT, and in which order, without a GPU."""

from __future__ import annotations

import types
from pathlib import Path


class _State:
    def __init__(self, *, parse_errors, build_fails: bool) -> None:
        self.log: list = []
        self.parse_errors = list(parse_errors)
        self.build_fails = build_fails


class ILogger:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)
    state: _State

    def __init__(self):
        self.state.log.append("ILogger.__init__")


class IProgressMonitor:
    state: _State

    def __init__(self):
        self.state.log.append("IProgressMonitor.__init__")


class MemoryPoolType:
    WORKSPACE = "WORKSPACE"


class _Tensor:
    def __init__(self, name):
        self.name = name


class _Network:
    def __init__(self):
        self.inputs = []

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, i):
        return _Tensor(self.inputs[i])


class _ParserError:
    def __init__(self, text):
        self.text = text

    def desc(self):
        return self.text

    def node_name(self):
        return "node_7"

    def node_operator(self):
        return "Conv"


class OnnxParser:
    state: _State

    def __init__(self, network, logger):
        self.network = network
        self.errors = [_ParserError(e) for e in self.state.parse_errors]

    def parse_from_file(self, path):
        import onnx

        model = onnx.load(path, load_external_data=False)
        self.network.inputs = [i.name for i in model.graph.input]
        self.state.log.append(("parse_from_file", Path(path).name))
        return not self.errors

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, i):
        return self.errors[i]


class _TimingCache:
    def __init__(self, data):
        self.data = bytes(data)

    def serialize(self):
        return memoryview(self.data + b"+timing")


class _OptimizationProfile:
    def __init__(self, state):
        self.state = state

    def set_shape(self, name, lo, opt, hi):
        self.state.log.append(("set_shape", name, tuple(lo), tuple(opt), tuple(hi)))


class _BuilderConfig:
    def __init__(self, state):
        self.state = state
        self.progress_monitor = None
        self.cache = None

    def set_memory_pool_limit(self, pool, size):
        self.state.log.append(("set_memory_pool_limit", pool, size))

    def set_flag(self, flag):
        self.state.log.append(("set_flag", flag))

    def clear_flag(self, flag):
        self.state.log.append(("clear_flag", flag))

    def add_optimization_profile(self, profile):
        self.state.log.append("add_optimization_profile")
        return 0

    def create_timing_cache(self, data):
        self.state.log.append(("create_timing_cache", bytes(data)))
        return _TimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.cache = cache
        return True

    def get_timing_cache(self):
        return self.cache


class Builder:
    state: _State

    def __init__(self, logger):
        self.logger = logger

    def create_network(self, flags):
        self.state.log.append(("create_network", flags))
        return _Network()

    def create_builder_config(self):
        return _BuilderConfig(self.state)

    def create_optimization_profile(self):
        return _OptimizationProfile(self.state)

    def build_serialized_network(self, network, config):
        log = self.state.log
        log.append("build_serialized_network")
        mon = config.progress_monitor
        if mon is not None:
            mon.phase_start("Building engine", None, 2)
            mon.phase_start("Tactic search", "Building engine", 3)
            for s in range(3):
                assert mon.step_complete("Tactic search", s) is True
            mon.phase_finish("Tactic search")
            mon.step_complete("Building engine", 0)
            mon.phase_finish("Building engine")
        if self.state.build_fails:
            self.logger.log(ILogger.ERROR, "out of\nmemory")
            return None
        flags = [e[1] for e in log if isinstance(e, tuple) and e[0] == "set_flag"]
        return memoryview(b"FAKE-ENGINE:" + ",".join(flags).encode())


def fake_tensorrt(version: str = "10.9.0.34", *, parse_errors=(), build_fails: bool = False) -> types.ModuleType:
    """A fresh stand-in module; ``BuilderFlag.FP16`` exists before TensorRT 11 only."""
    state = _State(parse_errors=parse_errors, build_fails=build_fails)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.log = state.log
    flags = {"TF32": "TF32"} if int(version.split(".")[0]) >= 11 else {"TF32": "TF32", "FP16": "FP16"}
    trt.BuilderFlag = type("BuilderFlag", (), flags)
    trt.MemoryPoolType = MemoryPoolType
    for cls in (ILogger, IProgressMonitor, OnnxParser, Builder):
        setattr(trt, cls.__name__, type(cls.__name__, (cls,), {"state": state}))
    return trt
