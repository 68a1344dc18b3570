"""The landmark-model interface: what the recognizer and the pipeline call."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from engine.config import LandmarkConfig
from engine.records import Faces


class Landmarker(Protocol):
    """Adds 68 landmarks, head poses and sharpness to faces, and (by
    ``config.uses_landmark_points``) the 5 alignment points the embedder aligns with.

    ``__call__(image (H, W, 3) uint8 BGR, faces) -> faces`` with ``landmarks`` (N, 68, 2) px,
    ``poses`` (N, 3) degrees, ``sharpness`` (N,) in [0, 1] and maybe new ``keypoints`` (N, 5, 2).
    """

    config: LandmarkConfig

    def __call__(self, image: np.ndarray, faces: Faces) -> Faces: ...
