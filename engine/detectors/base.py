"""Detector interface, registry and the geometry shared by detectors (letterbox, NMS)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from engine.config import DetectorConfig, RuntimeConfig
from engine.records import Faces
from engine.registry import Registry


class Detector(Protocol):
    """``detector(image (H,W,3) uint8 BGR) -> Faces`` with boxes, scores and keypoints."""

    name: str
    config: DetectorConfig

    def __call__(self, image: np.ndarray) -> Faces: ...


DETECTORS: Registry[Detector] = Registry("detector")


def create_detector(name: str = "yunet", config: DetectorConfig | None = None,
                    runtime: RuntimeConfig | None = None, **kwargs) -> Detector:
    """The one factory for detectors."""
    config = config or DetectorConfig(name=name)
    return DETECTORS.create(name, config=config, runtime=runtime or RuntimeConfig(), **kwargs)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed in the network input: ``net = src * scale`` (top-left anchored)."""

    scale: float
    net_width: int
    net_height: int


def letterbox(image: np.ndarray, size: tuple[int, int] | None, divisor: int,
              max_side: int | None = None) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio into ``size`` (w, h) and pad right/bottom with zeros.

    ``size=None`` keeps the image's own scale and pads up to a multiple of ``divisor``
    (what OpenCV's FaceDetectorYN does), first shrinking images whose longer side exceeds
    ``max_side``. Returns the padded image (h, w, 3) uint8 and the
    transform needed to map detections back.
    """
    h, w = image.shape[:2]
    if size is None and (max_side is None or max(w, h) <= max_side):
        scale, new_w, new_h = 1.0, w, h
        net_w, net_h = -(-w // divisor) * divisor, -(-h // divisor) * divisor
    else:
        if size is None:
            size = (round(w * max_side / max(w, h)), round(h * max_side / max(w, h)))
        net_w, net_h = size
        net_w, net_h = -(-net_w // divisor) * divisor, -(-net_h // divisor) * divisor
        scale = min(net_w / w, net_h / h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    # resized straight into the padded frame, only the padding zeroed: 0.28 against 0.67 ms for
    # 1280x720 -> 640x384 with a resize, a zeroed frame and a copy (one OpenCV thread, here)
    out = np.empty((net_h, net_w, 3), np.uint8)
    out[new_h:] = 0
    out[:new_h, new_w:] = 0
    if (new_w, new_h) == (w, h):
        out[:h, :w] = image
    else:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        cv2.resize(image, (new_w, new_h), dst=out[:new_h, :new_w], interpolation=interp)
    return out, Letterbox(scale, net_w, net_h)


def planar_float(image: np.ndarray, rgb: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 network input, channels in BGR order (RGB with
    ``rgb``). ``cv2.split`` into contiguous planes, each cast once into the output: 0.31 ms for
    640x384 here, against 0.50 ms stacking the planes and casting the stack and 1.8 ms for
    numpy's strided ``transpose(2, 0, 1)`` cast; same values."""
    planes = cv2.split(image)
    out = np.empty((1, len(planes)) + image.shape[:2], np.float32)
    for c, plane in enumerate(planes[::-1] if rgb else planes):
        out[0, c] = plane
    return out


def max_net_side(config, divisor: int = 32) -> int:
    """The longest network-input side ``config`` (a DetectorConfig) can produce: ``max(input_size)``
    or, at native size, ``max_side``, rounded up to ``divisor``. TensorRT profiles are built to it."""
    side = max(config.input_size) if config.input_size is not None else config.max_side
    return -(-int(side) // divisor) * divisor


def drop_small(faces: Faces, min_size: float) -> Faces:
    """Faces whose box's shorter side is at least ``min_size`` source pixels (0 keeps all)."""
    if min_size <= 0 or len(faces) == 0:
        return faces
    side = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
    return faces.select(side >= min_size)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float,
        top_k: int) -> np.ndarray:
    """Greedy NMS via OpenCV's ``cv2.dnn.NMSBoxes`` (the same routine FaceDetectorYN uses).

    Returns kept indices sorted by descending score.
    """
    if len(boxes_xyxy) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), score_threshold, iou_threshold, top_k=top_k)
    return np.asarray(keep, dtype=np.int64).reshape(-1)
