"""Import TensorRT and the CUDA runtime bindings with messages a user can act on.

CUDA memory goes through cuda-python's ``cuda.bindings.runtime`` (cudart), not torch: the app's
run-time path must not need the training stack (an import-linter contract), and cudart is a
small wheel that maps one-to-one onto the CUDA calls TensorRT's own samples use.
"""
from __future__ import annotations

from engine.errors import ModelError

INSTALL_HINT = "pip install 'facescope[trt]' (TensorRT 10 and cuda-python, NVIDIA GPU and driver needed)"


def import_tensorrt():
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or OSError when libnvinfer cannot be loaded
        raise ModelError(f"TensorRT is not available ({type(exc).__name__}: {exc}); {INSTALL_HINT}") from None
    if not str(trt.__version__).startswith("10."):
        raise ModelError(f"TensorRT {trt.__version__} found; facescope is written against the TensorRT 10 API")
    return trt


def import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise ModelError(f"cuda-python is not available ({exc}); {INSTALL_HINT}") from None
    return cudart


def cuda_call(result):
    """cuda-python returns ``(err, *values)``; raise on an error, return the value(s)."""
    cudart = import_cudart()
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        raise ModelError(f"CUDA call failed: {cudart.cudaGetErrorString(err)[1].decode(errors='replace')} ({err.name})")
    return values[0] if len(values) == 1 else (tuple(values) or None)
