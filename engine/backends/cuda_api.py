"""TensorRT and the CUDA runtime bindings, imported with messages a user can act on.

CUDA memory goes through cuda-python's ``cuda.bindings.runtime`` (cudart), not torch: the app's
run-time path must not need the training stack (an import-linter contract), and cudart is a
small wheel that maps one-to-one onto the CUDA calls TensorRT's own samples use
(``samples/python/common_runtime.py``). Both the runtime (``engine.backends.tensorrt``) and the
build tools (``trt_build``) use this module; it sits in the engine so that the runtime never
imports the build tools.

- ``cuda_call``: cuda-python returns ``(err, *values)``; raise on an error, return the value(s).
- ``native_handle``: the integer handle of a ``cudaStream_t`` for ``execute_async_v3``.
  ``int(stream)`` is deprecated since cuda-bindings 12.9.1 in favour of
  ``cuda.bindings.utils.get_cuda_native_handle`` (NVIDIA/cuda-python#773); older 12.x lack it.
- ``trt_logger``: one ``trt.ILogger`` for the process. TensorRT keeps a pointer to the logger of
  the first builder/runtime and wants it alive (and thread-safe) while any object made with it
  lives; a logger per build (as before) could be collected under a live runtime.
"""
from __future__ import annotations

import functools
import importlib.metadata
import logging
import threading

from engine.errors import ModelError

log = logging.getLogger("engine.backends.tensorrt")

INSTALL_HINT = ("pip install 'facescope[trt-cu12]' (driver R525+) or 'facescope[trt-cu13]' (driver R580+); "
                "TensorRT 10 and cuda-python need an NVIDIA GPU and driver")


def import_tensorrt():
    try:
        import tensorrt as trt
    except Exception as exc:  # noqa: BLE001 - ImportError, or OSError when libnvinfer cannot be loaded
        raise ModelError(f"TensorRT is not available ({type(exc).__name__}: {exc}); {INSTALL_HINT}") from None
    if not str(trt.__version__).startswith("10."):
        raise ModelError(f"TensorRT {trt.__version__} found; facescope is written against the TensorRT 10 API "
                         "(11 drops the implicit INT8 calibrators); " + INSTALL_HINT)
    return trt


def import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:   # cuda-python < 12.6.1 has no cuda.bindings
        raise ModelError(f"cuda-python (cuda.bindings, >= 12.6.1) is not available ({exc}); {INSTALL_HINT}") from None
    return cudart


def cuda_call(result):
    """cuda-python returns ``(err, *values)``; raise ModelError on an error, return the value(s)."""
    cudart = import_cudart()
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        raise ModelError(f"CUDA call failed: {cudart.cudaGetErrorString(err)[1].decode(errors='replace')} ({err.name})")
    return values[0] if len(values) == 1 else (tuple(values) or None)


def native_handle(obj) -> int:
    """The integer value of a cuda-bindings handle (stream, event) without the deprecated ``int()``."""
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:          # cuda-bindings < 12.9.1: int() is the documented way there
        return int(obj)
    return int(get_cuda_native_handle(obj))


_LOGGER = None
_LOGGER_LOCK = threading.Lock()


def trt_logger(trt):
    """The process's one TensorRT logger, forwarding to Python logging (thread-safe: ``log.log`` is)."""
    global _LOGGER
    with _LOGGER_LOCK:
        if _LOGGER is None:
            class Logger(trt.ILogger):
                def __init__(self) -> None:
                    trt.ILogger.__init__(self)

                def log(self, severity, msg) -> None:
                    sev = trt.ILogger.Severity
                    level = {sev.INTERNAL_ERROR: logging.CRITICAL, sev.ERROR: logging.ERROR,
                             sev.WARNING: logging.WARNING, sev.INFO: logging.INFO}.get(severity, logging.DEBUG)
                    log.log(level, "TensorRT: %s", msg)

            _LOGGER = Logger()
        return _LOGGER


@functools.lru_cache(maxsize=1)
def tensorrt_cuda_build() -> str:
    """Which CUDA major the installed TensorRT wheels were built for: "cu12", "cu13" or "unknown".

    Part of the engine cache key: a cu12 and a cu13 build of one TensorRT version are different
    libraries. Read from the installed distributions, so it costs no TensorRT import."""
    for build in ("cu13", "cu12", "cu11"):
        for dist in (f"tensorrt-{build}-libs", f"tensorrt_{build}_libs", f"tensorrt-{build}"):
            try:
                importlib.metadata.version(dist)
                return build
            except importlib.metadata.PackageNotFoundError:
                continue
    return "unknown"
