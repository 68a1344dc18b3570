"""Inference backends behind one small interface (see :mod:`engine.backends.base`).

The run-time side only: sessions load prepared ONNX files (ONNX Runtime) or cached TensorRT
plans; building a missing plan is ``trt_build``'s job (``trt_build.background.EngineBuilder``),
started by the front ends for the requests in :func:`missing_plans`.
"""
from engine.backends import onnxruntime as _ort  # noqa: F401  (registers "onnxruntime", "onnxruntime-cuda")
from engine.backends import tensorrt as _trt  # noqa: F401  (registers "tensorrt"; imports TensorRT only when used)
from engine.backends.base import BACKENDS, InferenceSession
from engine.backends.select import Selection
from engine.backends.session import create_session
from engine.backends.trt_plan import PlanRequest, missing_plans

__all__ = ["BACKENDS", "InferenceSession", "PlanRequest", "Selection", "create_session", "missing_plans"]
