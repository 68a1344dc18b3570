"""Inference backends behind one small interface (see :mod:`engine.backends.base`)."""
from engine.backends.base import BACKENDS, InferenceSession, create_session
from engine.backends import onnxruntime as _ort  # noqa: F401  (registers "onnxruntime")

__all__ = ["BACKENDS", "InferenceSession", "create_session"]
