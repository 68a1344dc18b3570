"""Photos as people take them: is a face still recognised when it is big?

Protocol (``facescope bench photos``): the first ``people`` LFW people, in sorted folder
order, with at least two images -- no choice tuned to a split -- are enrolled from their
first image; their second image is identified as-is and upscaled by each factor of
``scales`` (``cv2.INTER_CUBIC``; 8x makes a ~100 px LFW face ~800 px, a phone photo of
someone close). A probe is *right* when its largest face gets the person's name, the decision
``facescope identify`` makes (gallery search + the embedder's threshold).

Each probe runs twice on the same pixels: through the recognizer's own detector and, when
that is the still-image pyramid (:mod:`engine.detectors.multiscale`), through the single
native-size pass it wraps, so one run gives the accuracy of both and the pyramid's cost
(detector milliseconds per image, same machine, same images, interleaved).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine.detectors.multiscale import PyramidDetector
from engine.errors import FacescopeError
from engine.gallery.index import GalleryIndex
from engine.imageio import read_image
from engine.metrics.lfw import identity_root, list_identity_folder
from engine.recognizer import Recognizer, match_faces


def first_people(lfw: str | Path, n: int) -> list[tuple[str, Path, Path]]:
    """(name, first image, second image) of the first ``n`` people (sorted) with >= 2 images."""
    paths, labels, names = list_identity_folder(identity_root(lfw))
    by_person: dict[int, list[Path]] = {}
    for path, label in zip(paths, labels.tolist(), strict=True):
        by_person.setdefault(label, []).append(path)
    chosen = [(names[k], v[0], v[1]) for k, v in sorted(by_person.items()) if len(v) >= 2][:n]
    if len(chosen) < n:
        raise FacescopeError(f"{lfw}: only {len(chosen)} people have two or more images, {n} asked for")
    return chosen


def upscale(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` scaled by ``factor`` (bicubic), or itself for 1."""
    if factor == 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


@dataclass
class _Tally:
    right: int = 0
    no_face: int = 0
    faces: int = 0
    detect_ms: list[float] | None = None

    def as_dict(self, total: int) -> dict:
        ms = np.asarray(self.detect_ms or [np.nan])
        return {"right": self.right, "right_rate": self.right / total, "no_face": self.no_face,
                "faces_per_image": self.faces / total,
                "detect_ms_median": float(np.median(ms)), "detect_ms_mean": float(ms.mean())}


def _name_of_largest(rec: Recognizer, image: np.ndarray, index: GalleryIndex, tally: _Tally) -> str | None:
    t0 = time.perf_counter()
    faces = rec.detect(image)
    tally.detect_ms.append(1000 * (time.perf_counter() - t0))
    tally.faces += len(faces)
    if len(faces) == 0:
        tally.no_face += 1
        return None
    faces = match_faces(rec.embed(image, faces), index, rec.threshold)
    return faces.names[faces.largest()]


def bench_photos(rec: Recognizer, lfw: str | Path, people: int = 60, scales: tuple[float, ...] = (1, 8, 16),
                 progress: bool = True) -> dict:
    """Right-name rate and detector time per scale, for ``rec`` and (if it is the pyramid) its
    single-scale detector. Returns a JSON-ready dict; see the module docstring."""
    if people < 1 or not scales or any(s <= 0 for s in scales):
        raise ValueError("people must be >= 1 and every scale > 0")
    chosen = first_people(lfw, people)
    variants = {"recognizer": rec}
    if isinstance(rec.detector, PyramidDetector):
        variants = {"pyramid": rec, "single_scale": Recognizer(rec.detector.detector, rec.embedder, rec.match,
                                                               rec.landmarker)}
    index = GalleryIndex(rec.embedder.dim)
    enrolled = 0
    for pid, (name, first, _) in enumerate(chosen):
        faces = rec.largest(read_image(first))
        index.set_name(pid, name)
        if len(faces):
            index.add(np.array([pid]), np.array([pid]), faces.embeddings)
            enrolled += 1
    result: dict = {"people": people, "enrolled": enrolled, "threshold": rec.threshold,
                    "rule": f"first {people} LFW people (sorted) with >= 2 images: enrolled from the first, "
                            "the second identified (largest face) as-is and upscaled bicubic",
                    "detector": rec.detector.name, "scales": {}}
    probes = [(name, read_image(second)) for name, _, second in chosen]
    for s in scales:
        tallies = {v: _Tally(detect_ms=[]) for v in variants}
        warm = upscale(probes[0][1], s)
        for r in variants.values():  # first run at a new input shape pays ONNX Runtime's set-up
            r.detect(warm)
        shape = warm.shape
        for name, probe in tqdm(probes, desc=f"{s:g}x", unit="img", disable=not progress):
            image = upscale(probe, s)
            for v, r in variants.items():
                tallies[v].right += _name_of_largest(r, image, index, tallies[v]) == name
        result["scales"][f"{s:g}"] = {"image": f"{shape[1]}x{shape[0]}",
                                      **{v: t.as_dict(len(probes)) for v, t in tallies.items()}}
    return result


def format_photos(result: dict) -> str:
    """A plain-text table of :func:`bench_photos`'s result."""
    variants = [k for k in next(iter(result["scales"].values())) if k != "image"]
    lines = [f"{result['rule']}; {result['enrolled']}/{result['people']} enrolled, threshold "
             f"{result['threshold']:.3f}",
             f"{'scale':>6} {'image':>10} " + " ".join(f"{v + ' right':>20} {'detect ms':>10}" for v in variants)]
    for s, row in result["scales"].items():
        cells = " ".join(f"{100 * row[v]['right_rate']:>19.1f}% {row[v]['detect_ms_median']:>10.1f}" for v in variants)
        lines.append(f"{s + 'x':>6} {row['image']:>10} {cells}")
    return "\n".join(lines)
