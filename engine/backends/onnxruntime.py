"""ONNX Runtime backends: "onnxruntime" (CPU) and "onnxruntime-cuda" (CUDA execution provider)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.backends.base import BACKENDS
from engine.config import RuntimeConfig
from engine.errors import ModelError
from engine.util.heap import release_free_heap

_ARENA_LOCK = threading.Lock()
_shared_arena = False


def shared_cpu_arena() -> None:
    """Register (once) one CPU memory arena for every ONNX Runtime session of the process, grown
    by what is asked (ORT's ``kSameAsRequested``); sessions opt in with ``session.use_env_allocators``.

    By default each session owns an arena that grows by powers of two and never shrinks: with
    the detector, the landmark model and the embedder that was ~15 MB more resident memory for
    the same work (batch-1 inference, measured), and more where batch sizes vary. CPU time per
    inference is unchanged (measured, interleaved)."""
    global _shared_arena
    with _ARENA_LOCK:
        if not _shared_arena:
            info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(info, ort.OrtArenaCfg({"arena_extend_strategy": 1}))
            _shared_arena = True


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
        shared_cpu_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
        # No memory pattern: it allocates one block for all of a run's intermediate tensors
        # per input shape; without it they come from the arena and are reused as they die.
        # SFace's working memory for 7 faces: 119 -> 73 MB; same CPU time (measured, interleaved).
        options.enable_mem_pattern = False
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise ModelError(f"ONNX Runtime providers not available: {missing} (available: {available})")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/... types
            raise ModelError(f"ONNX Runtime cannot load {path}: {exc}") from None
        # The parsed model (as big as the file) is freed by now, but glibc keeps those pages:
        # give them back (32 MB of resident memory with the three shipped models).
        release_free_heap()
        self.path = Path(path)
        self.threads = threads  # intra-op threads asked for (0 = ORT's default, all cores)
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
