"""Embedder interface and registry."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from engine.config import EmbedderConfig, RuntimeConfig
from engine.records import Faces
from engine.registry import Registry


class Embedder(Protocol):
    """Maps aligned faces to L2-normalised embeddings.

    ``id`` names the weights (galleries refuse embeddings from another id); ``dim`` is D;
    ``threshold`` is the card's default cosine threshold.
    """

    id: str
    dim: int
    threshold: float

    def embed_faces(self, image: np.ndarray, faces: Faces) -> Faces: ...

    def embed_crops(self, crops: np.ndarray) -> np.ndarray: ...

    def aligned_crops(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """(N, 5, 2) alignment points -> (N, h, w, 3) uint8 BGR aligned crops (what a gallery stores)."""
        ...

    def align(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """(N, 5, 2) alignment points -> (N, 3, h, w) float32 network input (the pipeline's path)."""
        ...

    def embed_tensor(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 network input -> (N, D) float32 unit vectors."""
        ...


EMBEDDERS: Registry[Embedder] = Registry("embedder")


def create_embedder(name: str = "sface", config: EmbedderConfig | None = None,
                    runtime: RuntimeConfig | None = None, **kwargs) -> Embedder:
    """The one factory for embedders. ``name`` is a registered name, or "onnx" with ``card=PATH``."""
    return EMBEDDERS.create(name, config=config or EmbedderConfig(name=name), runtime=runtime or RuntimeConfig(),
                            **kwargs)
