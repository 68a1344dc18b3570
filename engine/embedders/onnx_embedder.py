"""Embedders whose preprocessing is fully described by their model card.

SFace is one card; an embedder trained with the toolkit and exported with its own card is
another, through the same code: align with the card's template, colour order and mean/std,
run in batches, L2-normalise.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.align import crops_to_tensor, estimate_transforms, scaled_template, warp_crops, warp_to_tensor
from engine.backends import create_session
from engine.config import EmbedderConfig, RuntimeConfig
from engine.embedders.base import EMBEDDERS
from engine.errors import ModelError
from engine.models import ModelCard, find_card, prepared_model_path
from engine.records import Faces


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


class OnnxEmbedder:
    """``embed_faces(image, faces) -> faces with (N, D) unit embeddings``.

    Trade-off: ``config.batch_size`` bounds memory and latency per call; larger batches
    amortise per-call overhead. ``config.flip`` doubles the cost for mirror averaging.
    """

    def __init__(self, card: ModelCard, config: EmbedderConfig, runtime: RuntimeConfig) -> None:
        if card.family != "embedder":
            raise ModelError(f"model {card.name!r} is a {card.family}, not an embedder")
        self.card = card
        self.config = config
        self.id = card.id
        self.dim = int(card.embedding_size)
        self.threshold = float(card.threshold)
        self.size = tuple(card.input_size)  # (w, h)
        self.template = scaled_template(self.size)
        self.rgb = card.color_order == "RGB"
        self.mean = np.asarray(card.mean, np.float32)
        self.std = np.asarray(card.std, np.float32)
        if card.extra.get("notice"):     # licence terms the user must see whenever the model is used
            logging.getLogger("facescope.models").warning("%s: %s", card.name, card.extra["notice"])
        self.session = create_session(prepared_model_path(card), runtime, card=card)
        self.input_name = self.session.input_names[0]
        shape = (1, 3, self.size[1], self.size[0])
        try:
            probe = self.session.run({self.input_name: np.zeros(shape, np.float32)})
        except Exception as exc:  # noqa: BLE001 - the backend's own error type; a model of another kind
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{card.path}: not an embedder with the card's input {shape} (is it another kind "
                             f"of model?): {first}") from None
        out = next(iter(probe.values()))
        if out.shape != (1, self.dim):
            raise ModelError(f"{card.path}: output shape {out.shape} does not match card embedding_size {self.dim}")

    def embed_tensor(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 network input -> (N, D) float32 unit vectors."""
        if x.ndim != 4 or x.shape[1:] != (3, self.size[1], self.size[0]):
            raise ValueError(f"embedder input must be (N, 3, {self.size[1]}, {self.size[0]}), got {x.shape}")
        out = np.empty((len(x), self.dim), np.float32)
        b = self.config.batch_size
        for i in range(0, len(x), b):
            chunk = np.ascontiguousarray(x[i : i + b])
            emb = next(iter(self.session.run({self.input_name: chunk}).values()))
            if self.config.flip:
                flipped = np.ascontiguousarray(chunk[..., ::-1])
                mirrored = next(iter(self.session.run({self.input_name: flipped}).values()))
                emb = l2_normalize(emb) + l2_normalize(mirrored)
            out[i : i + b] = emb
        return l2_normalize(out)

    def transforms(self, keypoints: np.ndarray) -> np.ndarray:
        """(N, 5, 2) keypoints -> (N, 2, 3) image->crop similarity transforms."""
        return estimate_transforms(keypoints, self.template)

    def align(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """Fused warp + colour + normalisation straight into the (N, 3, h, w) input tensor."""
        return warp_to_tensor(image, self.transforms(keypoints), size=self.size, mean=self.mean,
                              std=self.std, rgb=self.rgb)

    def aligned_crops(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 BGR aligned crops (what a gallery stores)."""
        return warp_crops(image, self.transforms(keypoints), size=self.size)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 BGR aligned crops -> (N, D) embeddings (gallery re-embedding)."""
        return self.embed_tensor(self.preprocess_crops(crops))

    def preprocess_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 BGR aligned crops -> (N, 3, h, w) float32 network input.

        Bit-identical to what :meth:`align` writes for the same crop (the fused warp computes
        ``(pixel - mean) / std`` in float32 too; tested), so INT8 calibration from a folder of
        aligned crops sees exactly the pipeline's inputs."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.size[1], self.size[0], 3) or crops.dtype != np.uint8:
            raise ValueError(f"crops must be (N, {self.size[1]}, {self.size[0]}, 3) uint8, "
                             f"got {crops.dtype} {crops.shape}")
        return crops_to_tensor(crops, self.mean, self.std, self.rgb)

    def embed_faces(self, image: np.ndarray, faces: Faces) -> Faces:
        """Embed every face (needs keypoints); returns a new Faces with embeddings set."""
        if len(faces) == 0:
            return faces.replace(embeddings=np.zeros((0, self.dim), np.float32))
        if faces.keypoints is None or faces.keypoints.shape[1] != 5:
            raise ValueError("embedding needs 5 alignment keypoints per face")
        return faces.replace(embeddings=self.embed_tensor(self.align(image, faces.keypoints)))


@EMBEDDERS.register("sface")
def _create_sface(config: EmbedderConfig, runtime: RuntimeConfig) -> OnnxEmbedder:
    return OnnxEmbedder(find_card("sface", family="embedder"), config, runtime)


@EMBEDDERS.register("mobilefacenet_y1")
def _create_y1(config: EmbedderConfig, runtime: RuntimeConfig) -> OnnxEmbedder:
    """Opt-in: InsightFace's MobileFaceNet (non-commercial research only; the notice is logged)."""
    return OnnxEmbedder(find_card("mobilefacenet_y1", family="embedder"), config, runtime)


@EMBEDDERS.register("onnx")
def _create_from_card(config: EmbedderConfig, runtime: RuntimeConfig, card: str | Path | ModelCard) -> OnnxEmbedder:
    """Any embedder described by a card.json (e.g. one exported by the training toolkit)."""
    card = card if isinstance(card, ModelCard) else find_card(card, family="embedder")
    return OnnxEmbedder(card, config, runtime)
