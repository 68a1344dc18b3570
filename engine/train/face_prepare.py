"""``facescope prepare``: identity folders of raw photos -> 112x112 aligned crops, the app's way.

Every image goes through the app's own detector, landmark model and alignment
(:class:`engine.recognizer.Recognizer`, ArcFace 112x112 template), so a model trained on the
crops sees faces exactly as the app will hand them to it. One face per image: the central one
(:func:`engine.dataset_embed.central_face`, the convention of identity datasets, whose photos
are centred on their subject); images with several faces are kept (central face) and listed,
images with none or unreadable ones are listed and skipped. Resumable: an existing output crop
is not redone, and the report counts it. Crops are PNG (lossless: training should not learn
JPEG artefacts twice).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine.align.similarity import estimate_transforms
from engine.align.template import scaled_template
from engine.align.warp import warp_crops
from engine.dataset_embed import central_face
from engine.errors import ImageError
from engine.imageio import read_image
from engine.metrics.lfw import list_identity_folder
from engine.util.fsio import atomic_path, atomic_write_json

SIZE = (112, 112)


@dataclass
class PrepareReport:
    written: int = 0
    skipped_existing: int = 0
    no_face: list[str] = field(default_factory=list)
    several_faces: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"written": self.written, "skipped_existing": self.skipped_existing, "no_face": self.no_face,
                "several_faces": self.several_faces, "unreadable": self.unreadable}


def aligned_crop(recognizer, image: np.ndarray) -> tuple[np.ndarray | None, int]:
    """(112, 112, 3) uint8 BGR crop of the central face (None without a face), faces found."""
    faces = recognizer.detect(image)
    k = central_face(faces, image.shape[1], image.shape[0])
    if k is None:
        return None, 0
    face = recognizer.ensure_keypoints(image, faces.select([k]))
    m = estimate_transforms(face.keypoints, scaled_template(SIZE))
    return warp_crops(image, m, SIZE)[0], len(faces)


def prepare_folder(src: str | Path, out: str | Path, recognizer=None, progress: bool = True) -> PrepareReport:
    """Align every image of ``src/<identity>/<image>`` into ``out/<identity>/<stem>.png``;
    writes ``out/prepare_report.json`` and returns the report."""
    from engine.config import RecognizerConfig
    from engine.recognizer import Recognizer

    recognizer = recognizer or Recognizer.from_config(RecognizerConfig.still())
    src, out = Path(src), Path(out)
    paths, labels, names = list_identity_folder(src)
    report = PrepareReport()
    for path, label in tqdm(list(zip(paths, labels, strict=True)), desc="aligning", unit="img", disable=not progress):
        rel = f"{names[label]}/{path.name}"
        target = out / names[label] / f"{path.stem}.png"
        if target.is_file():
            report.skipped_existing += 1
            continue
        try:
            image = read_image(path)
        except ImageError:
            report.unreadable.append(rel)
            continue
        crop, found = aligned_crop(recognizer, image)
        if crop is None:
            report.no_face.append(rel)
            continue
        if found > 1:
            report.several_faces.append(rel)
        with atomic_path(target) as tmp:  # an interrupted run never leaves a torn crop to resume from
            if not cv2.imwrite(str(tmp), crop):
                raise OSError(f"cannot write {target} (disk full or no permission?)")
        report.written += 1
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "prepare_report.json", report.as_dict(), indent=1)
    return report
