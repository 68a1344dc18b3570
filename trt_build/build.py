"""ONNX -> serialized TensorRT plan, written against the TensorRT 10 Python API.

TensorRT 10 notes that shape this code: networks are always explicit-batch
(``create_network(0)``; the EXPLICIT_BATCH flag is deprecated and ignored); memory limits go
through ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``; dynamic inputs need one
optimisation profile (``set_shape(name, min, opt, max)``); implicit INT8 with an
``IInt8EntropyCalibrator2`` is deprecated since 10.1 (explicit Q/DQ is the successor) but
still supported throughout 10.x, and with dynamic shapes it calibrates at the calibration
profile's opt shape. TensorRT 11 removes it, hence the ``tensorrt<11`` pin in the trt extra.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from engine.backends.trt_cache import PRECISIONS, Profile, atomic_write
from engine.errors import ModelError
from trt_build.cuda_api import import_tensorrt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """``precision``: fp32 | fp16 | int8 (int8 also enables fp16 for layers without int8
    kernels); ``workspace_mb``: builder scratch memory; ``profile``: shapes for the dynamic
    inputs (required when the network has any); ``calibrator``: an ``IInt8Calibrator`` (int8);
    ``calibration_profile``: the fixed shapes calibration batches have (int8 with dynamic inputs)."""

    precision: str = "fp16"
    workspace_mb: int = 1024
    profile: Profile | None = None
    calibrator: object | None = None
    calibration_profile: Profile | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.precision == "int8" and self.calibrator is None:
            raise ValueError("an int8 build needs a calibrator (trt_build.calibrate.make_calibrator)")
        if self.workspace_mb < 64:
            raise ValueError(f"workspace_mb must be >= 64, got {self.workspace_mb}")


class _Logger:
    """TensorRT's messages into Python logging (the trt.ILogger subclass is made lazily)."""

    def __new__(cls, trt):
        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity, msg) -> None:
                sev = trt.ILogger.Severity
                level = {sev.INTERNAL_ERROR: logging.CRITICAL, sev.ERROR: logging.ERROR, sev.WARNING: logging.WARNING,
                         sev.INFO: logging.INFO}.get(severity, logging.DEBUG)
                log.log(level, "TensorRT: %s", msg)

        return Logger()


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
    inputs and no profile, or a profile naming unknown inputs, is refused before building.
    """
    trt = import_tensorrt()
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    logger = _Logger(trt)
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
    if options.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if options.profile is not None:
        config.add_optimization_profile(_trt_profile(builder, options.profile))
    if options.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = options.calibrator
        if options.calibration_profile is not None:
            config.set_calibration_profile(_trt_profile(builder, options.calibration_profile))
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(f"TensorRT could not build an engine from {onnx_path.name} ({options.precision}); "
                         "see the TensorRT messages logged above")
    atomic_write(plan_path, bytes(plan))
    return {"plan": str(plan_path), "bytes": plan_path.stat().st_size, "seconds": round(time.perf_counter() - t0, 1),
            "precision": options.precision, "tensorrt": trt.__version__, "inputs": {k: list(v) for k, v in inputs.items()}}
