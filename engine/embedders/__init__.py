"""Face embedders: ``create_embedder("sface", config=..., runtime=...)``."""
from engine.embedders import onnx_embedder as _onnx  # noqa: F401  (registers "sface", "onnx")
from engine.embedders.base import EMBEDDERS, Embedder, create_embedder

__all__ = ["EMBEDDERS", "Embedder", "create_embedder"]
