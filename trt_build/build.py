"""ONNX -> serialized TensorRT plan, written against the TensorRT 10 Python API.

TensorRT 10 notes that shape this code: networks are always explicit-batch
(``create_network(0)``); memory limits go through ``set_memory_pool_limit(WORKSPACE, bytes)``;
dynamic inputs need one optimisation profile (``set_shape(name, min, opt, max)``); progress
comes from an ``IProgressMonitor`` (``config.progress_monitor``), whose ``step_complete``
returning False cancels the build. Precision: ``BuilderFlag.FP16/INT8`` with an
``IInt8EntropyCalibrator2`` (``config.int8_calibrator``, ``set_calibration_profile``) is the
weakly-typed, implicit-quantization path; TensorRT deprecates it (calibrator 10.1, precision
flags 10.12) in favour of strongly typed networks with explicit Q/DQ, which would need a
quantization toolkit (ModelOpt) and the training stack, but it works throughout 10.x and is
removed in 11, hence the ``<11`` pins. Those calls are made inside
``_deprecated_but_pinned()``, which silences only their DeprecationWarning.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.backends.cuda_api import import_tensorrt, trt_logger
from engine.backends.trt_cache import Profile
from engine.config import PRECISIONS
from engine.errors import ModelError
from engine.util.fsio import atomic_write_bytes

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]   # (phase name, fraction of that phase done in [0, 1])


@dataclass(frozen=True)
class BuildOptions:
    """``precision``: fp32 | fp16 | int8 (int8 also enables fp16 for layers without int8
    kernels); ``workspace_mb``: builder scratch memory; ``profile``: shapes for the dynamic
    inputs (required when the network has any); ``calibrator``: an ``IInt8Calibrator`` (int8);
    ``calibration_profile``: the fixed shapes calibration batches have (int8 with dynamic inputs);
    ``progress``: called from TensorRT's builder threads; ``cancel``: set it to stop the build."""

    precision: str = "fp16"
    workspace_mb: int = 1024
    profile: Profile | None = None
    calibrator: object | None = None
    calibration_profile: Profile | None = None
    progress: Progress | None = None
    cancel: threading.Event | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.precision == "int8" and self.calibrator is None:
            raise ValueError("an int8 build needs a calibrator (trt_build.calibrate.make_calibrator)")
        if self.workspace_mb < 64:
            raise ValueError(f"workspace_mb must be >= 64, got {self.workspace_mb}")


@contextlib.contextmanager
def _deprecated_but_pinned():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _monitor(trt, progress: Progress | None, cancel: threading.Event | None):
    """An ``IProgressMonitor`` forwarding to ``progress``; thread-safe (TensorRT calls it from
    several threads); never lets an exception cross into TensorRT."""

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock, self._steps = threading.Lock(), {}

        def _report(self, phase: str, fraction: float) -> None:
            if progress is None:
                return
            try:
                progress(phase, fraction)
            except Exception:
                log.exception("progress callback failed")

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            with self._lock:
                self._steps[phase_name] = max(int(num_steps), 1)
            self._report(phase_name, 0.0)

        def step_complete(self, phase_name, step) -> bool:
            with self._lock:
                total = self._steps.get(phase_name, 1)
            self._report(phase_name, min((int(step) + 1) / total, 1.0))
            return not (cancel is not None and cancel.is_set())

        def phase_finish(self, phase_name) -> None:
            with self._lock:
                self._steps.pop(phase_name, None)
            self._report(phase_name, 1.0)

    return Monitor()


def _describe(error) -> str:
    """One ONNX parser error (``trt.ParserError``) as text: description, then node index, name,
    operator and code where this TensorRT's bindings expose them (node_name/node_operator are 10.x)."""
    extra = [f"{a}={getattr(error, a)()}" for a in ("node", "node_name", "node_operator", "code") if hasattr(error, a)]
    return f"{error.desc()} ({', '.join(extra)})"


def _trt_profile(builder, profile: Profile):
    p = builder.create_optimization_profile()
    for name, lo, opt, hi in profile.shapes:
        p.set_shape(name, min=lo, opt=opt, max=hi)
    return p


def build_engine(onnx_path: str | Path, plan_path: str | Path, options: BuildOptions = BuildOptions()) -> dict:
    """Parse ``onnx_path``, build, write the plan to ``plan_path`` atomically; returns a summary.

    Every ONNX parser error is logged and quoted in the ModelError. A network with dynamic
    inputs and no profile, or a profile naming unknown inputs, is refused before building; a
    calibration batch the calibrator refused fails the build with the calibrator's reason.
    """
    trt = import_tensorrt()
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_describe(parser.get_error(i)) for i in range(parser.num_errors)]
        for e in errors:
            log.error("ONNX parser: %s", e)
        raise ModelError(f"TensorRT cannot parse {onnx_path.name}: " + " | ".join(errors or ["no detail"]))
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    dynamic = {n for n, s in inputs.items() if any(d < 0 for d in s)}
    named = {n for n, *_ in options.profile.shapes} if options.profile else set()
    if dynamic - named:
        raise ModelError(f"{onnx_path.name}: dynamic inputs {sorted(dynamic - named)} need an optimisation profile")
    if named - set(inputs):
        raise ModelError(f"{onnx_path.name}: profile names unknown inputs {sorted(named - set(inputs))}; "
                         f"the network has {sorted(inputs)}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    monitor = _monitor(trt, options.progress, options.cancel)    # alive until the build returns
    config.progress_monitor = monitor
    if options.profile is not None:
        config.add_optimization_profile(_trt_profile(builder, options.profile))
    with _deprecated_but_pinned():
        if options.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = options.calibrator
            if options.calibration_profile is not None:
                config.set_calibration_profile(_trt_profile(builder, options.calibration_profile))
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    error = getattr(options.calibrator, "error", None)
    if error:
        raise ModelError(f"INT8 calibration of {onnx_path.name} stopped: {error}")
    if options.cancel is not None and options.cancel.is_set():
        raise ModelError(f"TensorRT build of {onnx_path.name} cancelled")
    if plan is None:
        raise ModelError(f"TensorRT could not build an engine from {onnx_path.name} ({options.precision}); "
                         "see the TensorRT messages logged above")
    atomic_write_bytes(plan_path, bytes(plan))
    return {"plan": str(plan_path), "bytes": plan_path.stat().st_size, "seconds": round(time.perf_counter() - t0, 1),
            "precision": options.precision, "tensorrt": trt.__version__,
            "inputs": {k: list(v) for k, v in inputs.items()}}
