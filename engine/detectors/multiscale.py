"""Still images: faces of every size, from ~16 px to one that fills the photo, in one detector.

Why: YuNet (like detectors trained on WIDER FACE at 640 px) localises faces up to about 300-400
px; a bigger face -- a phone portrait, a selfie, a tight crop of a large photo -- comes back with
boxes and keypoints in the wrong place (measured on LFW faces scaled up: box IoU with the
1x detection 0.87 at ~380 px, 0.61 at ~575 px, and keypoints off by a whole eye distance),
so it is aligned wrong and not recognised.

How: a small image pyramid around any registered detector (YuNet, YOLO) running at the
image's own size (``input_size=None``). Level 0 is that detector exactly as before (native
size, capped at ``max_side``); levels 1, 2, ... are copies halved each time, until the
shorter side is at most ``WHOLE_IMAGE_FACE`` px, where even a face that fills the photo is in
range. Each level keeps the faces its scale localises well -- at most ``MAX_FACE`` px (box's
shorter side, at that level's scale) except on the last level, and on levels 1+ at least
``MAX_FACE / 4`` px (smaller ones are seen sharper on the level before, which keeps them).
The survivors, in source pixels, are merged by NMS (the wrapped detector's IoU threshold);
the overlap band (MAX_FACE/4..MAX_FACE/2 on level k, found again on level k-1) keeps a face
whose size straddles a boundary. A box mostly inside a much bigger one is then dropped: a
part of a big face (eye and brow) that a finer level, too close to see the whole face, took
for one.

Cost: level k has 4^-k of level 0's pixels, so at most a third more network work than one
native pass, plus the resizes (exact halvings: see :func:`shrink`). Images whose shorter side
is at most ``WHOLE_IMAGE_FACE`` px (LFW's 250x250, for one) run level 0 only: identical
results, no cost. Real-time video does not come here: a fixed ``input_size`` is one scale by
definition, and :func:`detector_for` wraps only native-size detectors.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from engine.config import DetectorConfig, RuntimeConfig
from engine.detectors.base import Detector, create_detector, drop_small, nms
from engine.records import Faces

MAX_FACE = 256.0         # px at a level's scale: above this a level leaves the face to a coarser one
WHOLE_IMAGE_FACE = 320   # px: the last level's shorter side is at most this (a face filling it is in range)
CONTAINED, BIGGER = 0.6, 4.0  # a box with 60 % of its area inside one of 4x its area is a part of that face


def pyramid_scales(shape: tuple[int, ...], max_side: int) -> list[float]:
    """Source-to-level scale of each level: ``[base, base/2, base/4, ...]`` where ``base`` is
    the native pass's own scale (1, or ``max_side / longer side`` for bigger images)."""
    h, w = shape[:2]
    scales = [min(1.0, max_side / max(h, w))]
    while min(h, w) * scales[-1] > WHOLE_IMAGE_FACE:
        scales.append(scales[-1] / 2)
    return scales


def shrink(image: np.ndarray, covered: tuple[float, float], scale: float) -> tuple[np.ndarray, tuple[float, float]]:
    """``image`` (showing the top-left ``covered`` (w, h) source pixels) shrunk to ``scale`` x
    source size; returns the level and the source pixels it covers.

    Area averaging, by exact halvings first (OpenCV's fast integer path: a 4000x3000 photo to
    960x720 in a third of the time of one ``INTER_AREA`` resize), then one resize of less than
    2x. An odd last row/column is dropped before a halving, so ``covered`` shrinks by that much.
    """
    cw, ch = covered
    target = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    while image.shape[1] >= 2 * target[0] and image.shape[0] >= 2 * target[1]:
        hh, ww = image.shape[:2]
        cw, ch = cw * (ww - ww % 2) / ww, ch * (hh - hh % 2) / hh
        image = cv2.resize(image[: hh - hh % 2, : ww - ww % 2], (ww // 2, hh // 2), interpolation=cv2.INTER_AREA)
    target = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    if (image.shape[1], image.shape[0]) != target:
        image = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
    return image, (cw, ch)


class PyramidDetector:
    """``PyramidDetector(native_detector, config)(image (H,W,3) uint8 BGR) -> Faces`` in source
    pixels, sorted by score. ``config`` is the user's (its ``min_face_size`` is applied here,
    in source pixels); the wrapped detector must run at native size with no minimum size
    (:func:`detector_for` builds it so)."""

    def __init__(self, detector: Detector, config: DetectorConfig) -> None:
        if detector.config.input_size is not None:
            raise ValueError(f"the pyramid wraps a native-size detector (input_size None), got input_size "
                             f"{detector.config.input_size}")
        if detector.config.min_face_size:
            raise ValueError("the pyramid applies min_face_size in source pixels itself: build the wrapped "
                             "detector with min_face_size=0")
        self.detector = detector
        self.config = config
        self.name = detector.name
        self.card = getattr(detector, "card", None)
        self.score_threshold = detector.score_threshold
        self.nms_threshold = detector.nms_threshold

    def __call__(self, image: np.ndarray) -> Faces:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"detector expects an (H, W, 3) uint8 BGR image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        scales = pyramid_scales(image.shape, self.config.max_side)
        parts: list[Faces] = []
        level, covered = image, (float(w), float(h))
        for k, s in enumerate(scales):
            if k == 0:
                faces = self.detector(image)  # the native pass, resized (max_side) by the detector itself
            else:
                level, covered = shrink(level, covered, s)
                faces = self.detector(level)
                sx, sy = level.shape[1] / covered[0], level.shape[0] / covered[1]
                faces = Faces(faces.boxes / np.array([sx, sy, sx, sy], np.float32), faces.scores,
                              None if faces.keypoints is None else faces.keypoints / np.array([sx, sy], np.float32))
            side = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1]) * s
            keep = np.ones(len(faces), bool)
            if k < len(scales) - 1:
                keep &= side <= MAX_FACE
            if k > 0:
                keep &= side >= MAX_FACE / 4
            parts.append(faces.select(keep))
        return drop_small(self._merge(parts), self.config.min_face_size)

    def _merge(self, parts: list[Faces]) -> Faces:
        if len(parts) == 1:
            return parts[0]
        kps = [p.keypoints for p in parts]
        boxes = np.concatenate([p.boxes for p in parts])
        scores = np.concatenate([p.scores for p in parts])
        keypoints = None if any(k is None for k in kps) else np.concatenate(kps)
        order = nms(boxes, scores, 0.0, self.nms_threshold, self.config.top_k)
        order = order[~inside_bigger(boxes[order])]
        return Faces(boxes[order], scores[order], None if keypoints is None else keypoints[order])


def inside_bigger(boxes: np.ndarray, share: float = CONTAINED, ratio: float = BIGGER) -> np.ndarray:
    """(N,) bool: box mostly (``share`` of its area) inside a box ``ratio`` times its area or more.

    Such a box is a part of a big face (an eye and brow, a nose and mouth) that a finer level
    took for a face while the whole face was too big for it -- NMS keeps both, their IoU is
    small. Faces of similar size overlapping in a crowd are left to NMS.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)        # (N, N): inter[i, j] = box i with box j
    contained = inter >= share * np.maximum(area[:, None], 1e-9)
    bigger = area[None, :] >= ratio * area[:, None]
    return np.any(contained & bigger, axis=1)


def detector_for(config: DetectorConfig, runtime: RuntimeConfig | None = None, **kwargs) -> Detector:
    """The detector a config asks for: with ``pyramid`` and a native input size (still images)
    the registered detector inside a :class:`PyramidDetector`, otherwise the registered one
    as it is (a fixed ``input_size``: the real-time path)."""
    if not (config.pyramid and config.input_size is None):
        return create_detector(config.name, config, runtime, **kwargs)
    return PyramidDetector(create_detector(config.name, replace(config, min_face_size=0.0), runtime, **kwargs), config)
