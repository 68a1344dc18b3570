"""Which files count as images: one suffix list for folder sources, datasets, drops and evaluation.

The list is what OpenCV's ``imread`` decodes in the ``opencv-python-headless`` wheels (JPEG,
PNG, BMP, WebP, TIFF, JPEG 2000, the Netpbm family). Matching is by suffix, case-insensitively;
the content is only checked when the file is decoded (:mod:`engine.imageio`).
"""
from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm", ".pnm")


def is_image_path(path: str | Path) -> bool:
    """True for a name with an image suffix (any case) that is not hidden.

    Hidden names (``.x.jpg``, macOS ``._x.jpg`` resource forks) are not images a user put
    there. Only the name is looked at; whether the path exists is the caller's question.
    """
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
