"""YuNet: anchor-free detector with 5 keypoints, decoded here from its raw heads.

The network outputs, per stride s in (8, 16, 32) and per grid cell (row r, col c), a class
score, an objectness score, a box ``(dx, dy, log w, log h)`` and 5 keypoint offsets, all in
units of s. Decoding follows OpenCV's ``FaceDetectorYN`` exactly (score = sqrt(cls*obj),
centre = (c + dx, r + dy) * s, size = exp(.) * s), so the same code serves ONNX Runtime
and TensorRT, which only differ in how the raw heads are computed.
"""
from __future__ import annotations

import numpy as np

from engine.backends import create_session
from engine.config import DetectorConfig, RuntimeConfig
from engine.detectors.base import DETECTORS, drop_small, letterbox, max_net_side, nms, planar_float
from engine.errors import ModelError
from engine.models import ModelCard, find_card, prepared_model_path
from engine.records import Faces


def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    r, c = np.divmod(np.arange(rows * cols, dtype=np.float32), np.float32(cols))
    return c, r


class YuNetDetector:
    """``YuNetDetector(card, config, runtime)(image BGR uint8) -> Faces`` (xyxy boxes, 5 keypoints).

    Keypoint order (image left to right): eye, eye, nose tip, mouth corner, mouth corner —
    the ArcFace template's order.
    """

    name = "yunet"

    def __init__(self, card: ModelCard, config: DetectorConfig, runtime: RuntimeConfig) -> None:
        if card.family != "detector" or card.architecture != "yunet":
            raise ModelError(f"model {card.name!r} is a {card.family}/{card.architecture}, not a YuNet detector")
        self.card = card
        self.config = config
        self.score_threshold = config.score_threshold if config.score_threshold is not None else card.score_threshold
        self.nms_threshold = config.nms_threshold if config.nms_threshold is not None else card.nms_threshold
        self.strides = tuple(card.extra.get("strides", (8, 16, 32)))
        self.divisor = max(card.size_divisor, max(self.strides))
        self.session = create_session(prepared_model_path(card), runtime, card=card, max_batch=1,
                                      max_side=max_net_side(config, self.divisor))
        self.input_name = self.session.input_names[0]
        expected = {f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in self.strides}
        if not expected <= set(self.session.output_names):
            raise ModelError(f"{card.path} lacks YuNet outputs {sorted(expected - set(self.session.output_names))}")
        self._grids: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        """BGR uint8 frame -> ((1, 3, H, W) float32 input, letterbox scale, net size (w, h));
        also what INT8 calibration feeds TensorRT."""
        padded, box = letterbox(image, self.config.input_size, self.divisor, self.config.max_side)
        blob = planar_float(padded)
        return blob, box.scale, (box.net_width, box.net_height)

    def raw(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], float, tuple[int, int]]:
        """Run the network; returns raw heads, the letterbox scale and the net size (w, h)."""
        blob, scale, size = self.preprocess(image)
        return self.session.run({self.input_name: blob}), scale, size

    def decode(self, heads: dict[str, np.ndarray], net_size: tuple[int, int], scale: float) -> Faces:
        """Raw heads -> Faces in source pixels (threshold, NMS, minimum size applied)."""
        net_w, net_h = net_size
        boxes, kps, scores = [], [], []
        for s in self.strides:
            rows, cols = net_h // s, net_w // s
            key = (s, rows, cols)
            if key not in self._grids:
                self._grids[key] = _grid(rows, cols)
            gx, gy = self._grids[key]
            cls = np.clip(heads[f"cls_{s}"].reshape(-1), 0, 1)
            obj = np.clip(heads[f"obj_{s}"].reshape(-1), 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.flatnonzero(score >= self.score_threshold)
            if keep.size == 0:
                continue
            bb = heads[f"bbox_{s}"].reshape(-1, 4)[keep]
            kp = heads[f"kps_{s}"].reshape(-1, 5, 2)[keep]
            cx, cy = (gx[keep] + bb[:, 0]) * s, (gy[keep] + bb[:, 1]) * s
            w, h = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
            boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
            kps.append((kp + np.stack([gx[keep], gy[keep]], axis=1)[:, None, :]) * s)
            scores.append(score[keep])
        if not boxes:
            return Faces.empty(keypoints=5)
        boxes_a, kps_a, scores_a = np.concatenate(boxes), np.concatenate(kps), np.concatenate(scores)
        order = nms(boxes_a, scores_a, self.score_threshold, self.nms_threshold, self.config.top_k)
        boxes_a, kps_a, scores_a = boxes_a[order] / scale, kps_a[order] / scale, scores_a[order]
        return drop_small(Faces(boxes_a, scores_a, kps_a), self.config.min_face_size)

    def __call__(self, image: np.ndarray) -> Faces:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"detector expects an (H, W, 3) uint8 BGR image, got {image.dtype} {image.shape}")
        heads, scale, net_size = self.raw(image)
        return self.decode(heads, net_size, scale)


@DETECTORS.register("yunet")
def _create(config: DetectorConfig, runtime: RuntimeConfig, card: ModelCard | str = "yunet") -> YuNetDetector:
    card = card if isinstance(card, ModelCard) else find_card(card, family="detector")
    return YuNetDetector(card, config, runtime)
