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
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.embeddings)

    def enroll_into(self, gallery, name: str) -> list[int]:
        """One transaction: all faces of the batch or none."""
        return gallery.enroll(name, np.stack(self.embeddings), crops=self.crops,
                              qualities=np.asarray(self.qualities, np.float32), sources=self.sources)


@dataclass(frozen=True)
class EnrolmentCheck:
    """What counts as a poor enrolment face (needs the landmark stage for pose and sharpness).

    A profile or blurred gallery face drags every later match down, so by default such an
    image is refused (a *problem*); ``strict=False`` enrols it with a *warning* instead.
    """

    max_yaw: float = 40.0
    max_pitch: float = 30.0
    min_sharpness: float = 0.15
    strict: bool = True

    def issues(self, faces) -> list[str]:
        out = []
        if faces.poses is not None and np.all(np.isfinite(faces.poses[0])):
            yaw, pitch, _ = (float(v) for v in faces.poses[0])
            if abs(yaw) > self.max_yaw:
                out.append(f"face turned sideways (yaw {yaw:+.0f} deg, limit {self.max_yaw:.0f})")
            if abs(pitch) > self.max_pitch:
                out.append(f"face tilted up/down (pitch {pitch:+.0f} deg, limit {self.max_pitch:.0f})")
        if faces.sharpness is not None and float(faces.sharpness[0]) < self.min_sharpness:
            out.append(f"face blurred (sharpness {float(faces.sharpness[0]):.2f} < {self.min_sharpness})")
        return out


def prepare_enrolment(recognizer, paths: Iterable[str | Path], check: EnrolmentCheck | None = None) -> EnrolmentBatch:
    """Read, detect, align and embed the largest face of each image; bad images become problems,
    poor faces (profile, blurred: see :class:`EnrolmentCheck`) problems or warnings."""
    from engine.track.policy import face_quality

    check = check or EnrolmentCheck()
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
        issues = check.issues(faces)
        if issues and check.strict:
            batch.problems.append(f"{path}: " + "; ".join(issues))
            continue
        batch.warnings += [f"{path}: {i}" for i in issues]
        batch.embeddings.append(faces.embeddings[0])
        batch.crops.append(recognizer.embedder.aligned_crops(image, faces.keypoints)[0])
        batch.qualities.append(float(face_quality(faces, image.shape)[0]))
        batch.sources.append(str(Path(path).resolve()))
    return batch
