"""Inference backends behind one small interface (see :mod:`engine.backends.base`)."""
from engine.backends.base import BACKENDS, InferenceSession, create_session
from engine.backends import onnxruntime as _ort  # noqa: F401  (registers "onnxruntime", "onnxruntime-cuda")
from engine.backends import tensorrt as _trt  # noqa: F401  (registers "tensorrt"; imports TensorRT only when used)

__all__ = ["BACKENDS", "InferenceSession", "create_session"]
