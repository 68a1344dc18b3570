"""Torch dataset of 300-W crops with the augmentations the issue asks for.

Each item is the crop the app would take from the detector box (``engine.landmarks.crop``),
after jittering that box (shift, scale: detectors disagree by this much), rotating it,
mirroring it (with the iBUG re-indexing ``MIRROR`` and the annotations' own x convention, see
``annotation_dx``), and photometric noise: colour jitter,
grayscale, Gaussian blur and a random occluding rectangle. Returns
``(image (3, S, S) float32 normalised, points (68, 2) float32 crop px, iod float32 crop px)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from engine.align import crops_to_tensor
from engine.landmarks.crop import apply, crop_matrix, warp
from engine.landmarks.ibug import MIRROR, interocular


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths (all off = the evaluation crop)."""

    shift: float = 0.06          # box centre jitter, fraction of the box side (uniform +-)
    scale: float = 0.10          # box size jitter (uniform 1 +- scale)
    rotate_deg: float = 30.0     # uniform +-
    flip: float = 0.5
    color: float = 0.3           # brightness/contrast/saturation jitter (uniform 1 +- color)
    grayscale: float = 0.1
    blur: float = 0.2
    occlude: float = 0.3

    @classmethod
    def none(cls) -> Augment:
        return cls(0, 0, 0, 0, 0, 0, 0, 0)


def normalise(crop: np.ndarray, mean: float = 127.5, std: float = 127.5) -> np.ndarray:
    """(S, S, 3) uint8 BGR -> (3, S, S) float32, ``(x - mean) / std`` (the model card's)."""
    return crops_to_tensor(crop[None], mean, std)[0]


class LandmarkCrops(Dataset):
    """Crops of annotated faces. ``images``: BGR arrays; ``points``: (N, 68, 2); ``boxes``: (N, 4).

    ``annotation_dx`` (image px): where the annotations put a point, relative to the pixel-centre
    position, along x. Mirroring must keep that convention (the flipped target is shifted by
    ``2 * annotation_dx``), or a mirror-trained model learns the average of two conventions and
    sits ``annotation_dx`` off. 300-W's is about +1.3 px (measured on the training split as half
    the x gap between a model's predictions on a face and on its mirror image, mapped back).
    """

    def __init__(self, images: Sequence[np.ndarray], points: np.ndarray, boxes: np.ndarray, size: int,
                 crop_scale: float, shift_y: float, augment: Augment, seed: int = 0,
                 annotation_dx: float = 0.0) -> None:
        if not (len(images) == len(points) == len(boxes)):
            raise ValueError(f"{len(images)} images, {len(points)} point sets, {len(boxes)} boxes")
        self.images, self.points, self.boxes = list(images), np.asarray(points, np.float64), np.asarray(boxes)
        self.size, self.crop_scale, self.shift_y, self.augment = size, crop_scale, shift_y, augment
        self.seed, self.epoch, self.annotation_dx = seed, 0, annotation_dx

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Augmentations are a function of (seed, epoch, index): reproducible, yet new each epoch."""
        self.epoch = epoch

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = self.augment
        rng = np.random.default_rng((self.seed, self.epoch, i))
        box = self.boxes[i].astype(np.float64).copy()
        side = max(box[2] - box[0], box[3] - box[1])
        box += np.tile(rng.uniform(-a.shift, a.shift, 2) * side, 2)
        c, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * rng.uniform(1 - a.scale, 1 + a.scale)
        box = np.concatenate([c - half, c + half])
        m = crop_matrix(box, self.size, self.crop_scale, self.shift_y, rng.uniform(-a.rotate_deg, a.rotate_deg))
        pts, convention = self.points[i], np.zeros(2)
        if rng.random() < a.flip:
            m = np.array([[-1.0, 0.0, self.size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
            pts = pts[MIRROR]
            # true position = annotation - dx (image x); in the mirrored image the convention
            # points the other way in original-image terms: target = M(pts) - 2 * L @ (dx, 0)
            convention = -2.0 * m[:, :2] @ np.array([self.annotation_dx, 0.0])
        crop = warp(self.images[i], m, self.size)
        crop = self._photometric(crop, rng)
        xy = (apply(m, pts) + convention).astype(np.float32)
        iod = np.float32(interocular(xy))
        return torch.from_numpy(normalise(crop)), torch.from_numpy(xy), torch.tensor(iod)

    def _photometric(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = self.augment
        img = crop.astype(np.float32)
        if a.color > 0:
            # contrast, brightness
            img = img * rng.uniform(1 - a.color, 1 + a.color) + rng.uniform(-a.color, a.color) * 64
            gray = img.mean(2, keepdims=True)
            img = gray + (img - gray) * rng.uniform(1 - a.color, 1 + a.color)  # saturation
        if rng.random() < a.grayscale:
            img = np.repeat(img.mean(2, keepdims=True), 3, axis=2)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if rng.random() < a.blur:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
        if rng.random() < a.occlude:
            s = self.size
            w, h = (rng.uniform(0.15, 0.45, 2) * s).astype(int)
            x, y = rng.integers(0, s - w), rng.integers(0, s - h)
            img = img.copy()
            img[y:y + h, x:x + w] = rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)
        return img
