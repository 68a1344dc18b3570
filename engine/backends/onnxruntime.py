"""ONNX Runtime backends: "onnxruntime" (CPU) and "onnxruntime-cuda" (CUDA execution provider)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.backends.base import BACKENDS
from engine.config import RuntimeConfig
from engine.errors import ModelError


class OrtSession:
    """One ``onnxruntime.InferenceSession``.

    ``threads`` bounds intra-op parallelism (0 = ORT's default, all cores). Inter-op stays at 1:
    these graphs are chains, so a second pool only adds contention with the capture thread.
    """

    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int = 0, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = all cores), got {threads}")
        if not Path(path).is_file():
            raise ModelError(f"model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings about initializers are noise here
        # No busy-waiting between ops: on 2 cores the capture thread and the Numba warp need the
        # other core, and spinning ORT workers measurably slowed both (and ORT itself, p95).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise ModelError(f"ONNX Runtime providers not available: {missing} (available: {available})")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/... types
            raise ModelError(f"ONNX Runtime cannot load {path}: {exc}") from None
        self.path = Path(path)
        self.providers = tuple(self._session.get_providers())
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self.output_names = tuple(o.name for o in self._session.get_outputs())

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(list(self.output_names), inputs)
        return dict(zip(self.output_names, outputs, strict=True))


@BACKENDS.register("onnxruntime")
def _create(path: Path, runtime: RuntimeConfig, card=None, max_side: int | None = None,
            max_batch: int | None = None) -> OrtSession:
    return OrtSession(path, threads=runtime.threads)


@BACKENDS.register("onnxruntime-cuda")
def _create_cuda(path: Path, runtime: RuntimeConfig, card=None, max_side: int | None = None,
                 max_batch: int | None = None) -> OrtSession:
    """ORT's CUDA execution provider, CPU for the nodes it does not take (needs onnxruntime-gpu).

    ONNX Runtime drops a CUDA provider that fails to load (missing cuDNN, driver too old) with
    only a log line and runs on the CPU; that is refused here, so "auto" moves on with the
    reason and a session that says CUDA really runs on CUDA."""
    session = OrtSession(path, threads=runtime.threads, providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    if "CUDAExecutionProvider" not in session.providers:
        raise ModelError(f"ONNX Runtime's CUDA provider did not load for {Path(path).name} (active: "
                         f"{', '.join(session.providers)}); check CUDA/cuDNN libraries for onnxruntime-gpu")
    session.backend = "onnxruntime-cuda"
    return session
