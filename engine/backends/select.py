"""Which backend runs the models on this machine, and why.

``choose_backend`` is a pure function of a :class:`~engine.backends.probe.Probe` (the machine,
looked at once): for "auto",

1. TensorRT, when cuda-python proved device 0 works (a tiny allocation and a stream, see
   :mod:`engine.backends.probe`) and ``tensorrt`` 10 imports;
2. else ONNX Runtime with its CUDA execution provider, when a GPU is seen and onnxruntime-gpu
   is installed;
3. else ONNX Runtime on the CPU.

The :class:`Choice` also lists the fallbacks, in order: ``engine.backends.session`` tries them
when the chosen backend cannot open a model (no TensorRT plan built yet, CUDA provider failing
to load), and records what happened on the session as a :class:`Selection` (``session.selection``:
``backend``, ``reason``, ``fallbacks``, ``summary()``), the string ``facescope doctor``, the log
and the GUI's status bar show. An explicit backend is honoured as asked: no fallback, its own
factory fails with a clear message when it cannot run.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.backends.probe import Gpu, Probe, probe

__all__ = ["Choice", "Gpu", "Probe", "Selection", "choose_backend", "probe"]

HINT_TRT = "pip install 'facescope[trt-cu12]' (or [trt-cu13] with a CUDA 13 driver)"


@dataclass(frozen=True)
class Choice:
    backend: str
    reason: str
    fallbacks: tuple[str, ...] = ()     # tried in order when ``backend`` cannot open a model


@dataclass(frozen=True)
class Selection:
    """How one session's backend was chosen: ``requested`` ("auto" or a name), the ``backend``
    that runs, why, and each backend tried before it with the reason it could not open."""

    requested: str
    backend: str
    reason: str
    fallbacks: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        """One line for a log or a status bar, e.g. "onnxruntime-cuda (tensorrt: no plan yet)"."""
        if not self.fallbacks:
            return f"{self.backend} ({self.reason})"
        return f"{self.backend} (" + "; ".join(f"{b} failed: {why}" for b, why in self.fallbacks) + ")"


def _not_tensorrt(m: Probe) -> list[str]:
    """Why TensorRT is not chosen on ``m`` (empty when it is)."""
    why = []
    if not m.gpus:
        why.append(m.gpu_verdict())
    elif not m.cuda_works:
        why.append(m.gpu_verdict() if m.cuda_python else
                   f"{m.gpu_verdict()}: cuda-python is needed to prove the GPU works ({HINT_TRT})")
    if m.gpus and not m.tensorrt:
        why.append(f"tensorrt 10 not installed ({HINT_TRT})")
    return why


def choose_backend(requested: str = "auto", machine: Probe | None = None) -> Choice:
    """Resolve ``requested`` ("auto" or a backend name) against ``machine`` (default: this one)."""
    if requested != "auto":
        return Choice(requested, "asked for explicitly")
    m = machine if machine is not None else probe()
    cuda_ep = "CUDAExecutionProvider" in m.ort_providers
    not_trt = _not_tensorrt(m)
    if not not_trt:
        g = m.gpus[0]
        return Choice("tensorrt", f"GPU {g.name} (sm {g.compute_capability}) proven by a CUDA allocation + stream; "
                                  f"TensorRT {m.tensorrt}, cuda-python {m.cuda_python}",
                      ("onnxruntime-cuda", "onnxruntime") if cuda_ep else ("onnxruntime",))
    if m.gpus and cuda_ep:
        return Choice("onnxruntime-cuda", f"ONNX Runtime's CUDA provider; not TensorRT: {', '.join(not_trt)}",
                      ("onnxruntime",))
    if m.gpus:
        not_trt.append("ONNX Runtime has no CUDAExecutionProvider (that needs onnxruntime-gpu)")
    return Choice("onnxruntime", "CPU: " + ", ".join(not_trt))
