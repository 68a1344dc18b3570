"""From image files to what a gallery enrols: the largest face of each image, embedded.

Shared by ``facescope enroll``, the gallery panel's drag-and-drop and the benchmarks, so every
entry point refuses the same bad inputs with the same messages.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import FacescopeError, ImageError
from engine.imageio import read_image


@dataclass
class EnrolmentBatch:
    """Parallel lists for ``Gallery.enroll``; ``problems`` names each skipped image and why."""

    embeddings: list[np.ndarray] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.embeddings)

    def enroll_into(self, gallery, name: str) -> list[int]:
        """One transaction: all faces of the batch or none."""
        return gallery.enroll(name, np.stack(self.embeddings), crops=self.crops,
                              qualities=np.asarray(self.qualities, np.float32), sources=self.sources)


def prepare_enrolment(recognizer, paths: Iterable[str | Path]) -> EnrolmentBatch:
    """Read, detect, align and embed the largest face of each image; bad images become problems."""
    batch = EnrolmentBatch()
    for path in paths:
        try:
            image = read_image(path)
            faces = recognizer.largest(image)
        except ImageError as exc:
            batch.problems.append(str(exc))
            continue
        except (FacescopeError, ValueError) as exc:
            batch.problems.append(f"{path}: {exc}")
            continue
        if len(faces) == 0 or faces.embeddings is None:
            batch.problems.append(f"{path}: no face found")
            continue
        batch.embeddings.append(faces.embeddings[0])
        batch.crops.append(recognizer.embedder.aligned_crops(image, faces.keypoints)[0])
        batch.qualities.append(float(faces.scores[0]))
        batch.sources.append(str(Path(path).resolve()))
    return batch
