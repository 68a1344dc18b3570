"""TensorRT tensor data types as numpy dtypes, and numpy views over raw (pinned) host memory.

``trt.nptype`` covers only the types numpy has (no BF16, no FP8), and numpy has no ctypes
type for float16, so ``np.ctypeslib.as_ctypes_type`` fails for an FP16 tensor. Here every
type maps by its ``trt.DataType`` *name* to a numpy dtype (BF16 and FP8-E4M3 through
``ml_dtypes``, which onnx already depends on), and host memory is viewed as bytes first, then
as that dtype, so no ctypes element type is ever needed. Sub-byte types (INT4, FP4) are packed
two per byte; no network this app builds has them at its I/O, so they are refused by name.
"""
from __future__ import annotations

import ctypes

import numpy as np

# trt.DataType.<name> -> numpy dtype name (ml_dtypes registers bfloat16 / float8_e4m3fn with numpy)
_BY_NAME = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "FP8": "float8_e4m3fn",
    "INT8": "int8", "UINT8": "uint8", "INT32": "int32", "INT64": "int64", "BOOL": "bool",
}


def numpy_dtype(trt_dtype) -> np.dtype:
    """The numpy dtype of a ``trt.DataType`` (or its name); ValueError for types with no
    byte-addressable numpy equivalent (INT4, FP4, E8M0)."""
    name = trt_dtype if isinstance(trt_dtype, str) else getattr(trt_dtype, "name", str(trt_dtype))
    name = name.rsplit(".", 1)[-1]
    if name not in _BY_NAME:
        raise ValueError(f"TensorRT tensor type {name} has no numpy equivalent; facescope supports "
                         f"{', '.join(_BY_NAME)} at an engine's inputs and outputs")
    np_name = _BY_NAME[name]
    if np_name in ("bfloat16", "float8_e4m3fn"):
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, np_name))
    return np.dtype(np_name)


def host_view(address: int, nbytes: int, dtype: np.dtype) -> np.ndarray:
    """A 1-D numpy array of ``dtype`` over ``nbytes`` at ``address`` (no copy, no ownership).

    Viewed as uint8 first (ctypes has a type for that), then reinterpreted: works for every
    dtype of :func:`numpy_dtype`, float16 and bfloat16 included."""
    dtype = np.dtype(dtype)
    if nbytes % dtype.itemsize:
        raise ValueError(f"{nbytes} bytes is not a whole number of {dtype} elements")
    raw = np.frombuffer((ctypes.c_uint8 * nbytes).from_address(address), np.uint8) if nbytes else np.empty(0, np.uint8)
    return raw.view(dtype)


def to_engine(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Host array -> contiguous array of the engine input's dtype (float32 -> float16/bfloat16 casts)."""
    return np.ascontiguousarray(np.asarray(x).astype(dtype, copy=False))


def from_engine(x: np.ndarray) -> np.ndarray:
    """An output copy for the caller: floating types widened to float32 (what every stage
    decodes), integer and bool outputs kept as they are."""
    if x.dtype.kind == "f" or x.dtype.name in ("bfloat16", "float8_e4m3fn"):
        return x.astype(np.float32)
    return x.copy()
