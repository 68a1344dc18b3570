"""Recall / precision of a detector against YuNet's detections (no box ground truth offline).

A reference face is a YuNet detection with score >= ``ref_threshold``; a detection matches
one at IoU >= ``iou`` (greedy by score, one-to-one). Recall = matched / reference faces,
precision = matched / detections. Held-out LFW: the identities ``engine.train.yolo_data``
never trains on (same name hash); AFW: never used for detector training.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from engine.boxes import iou_matrix
from engine.config import DetectorConfig
from engine.detectors import create_detector
from engine.imageio import read_image
from engine.util.imagefiles import is_image_path


def match_count(dets: np.ndarray, ref: np.ndarray, iou: float) -> int:
    """Greedy one-to-one matches (dets assumed sorted by score)."""
    used = np.zeros(len(ref), bool)
    n = 0
    for d in dets:
        if not len(ref):
            break
        o = iou_matrix(ref, d)[:, 0]
        o[used] = -1
        j = int(np.argmax(o))
        if o[j] >= iou:
            used[j] = True
            n += 1
    return n


def lfw_holdout(lfw: str | Path, images: int, val_fraction: float = 0.1, seed: int = 0) -> list[Path]:
    from engine.metrics.lfw import identity_root
    from engine.train.yolo_data import held_out

    root = identity_root(lfw)
    people = sorted(p for p in root.iterdir() if p.is_dir() and held_out(p.name, val_fraction))
    firsts = [sorted(p.glob("*.jpg"))[0] for p in people if any(p.glob("*.jpg"))]
    pick = np.random.default_rng(seed).permutation(len(firsts))[:images]
    return [firsts[i] for i in sorted(pick)]


def compare_detectors(name: str, weights: str | None, lfw: str | None = None, afw: str | None = None,
                      images: int = 500, ref_threshold: float = 0.6, iou: float = 0.5) -> dict:
    kwargs = {"weights": weights} if weights else {}
    det = create_detector(name, DetectorConfig(name=name), **kwargs)
    ref = create_detector("yunet", DetectorConfig(input_size=None, score_threshold=ref_threshold))
    sets = {}
    if lfw:
        sets["lfw_heldout"] = lfw_holdout(lfw, images)
    if afw:
        sets["afw"] = sorted(p for p in Path(afw).rglob("*") if is_image_path(p))
    out = {"detector": name, "weights": weights, "reference": f"yunet >= {ref_threshold}", "iou": iou, "sets": {}}
    for key, paths in sets.items():
        n_ref = n_det = n_match = 0
        t_det, t_ref = [], []
        for p in paths:
            img = read_image(p)
            t = time.perf_counter()
            d = det(img)
            t_det.append(time.perf_counter() - t)
            t = time.perf_counter()
            r = ref(img)
            t_ref.append(time.perf_counter() - t)
            n_ref, n_det = n_ref + len(r), n_det + len(d)
            n_match += match_count(d.boxes, r.boxes, iou)
        out["sets"][key] = {"images": len(paths), "reference_faces": n_ref, "detections": n_det, "matched": n_match,
                            "recall": n_match / max(n_ref, 1), "precision": n_match / max(n_det, 1),
                            "ms_p50": float(np.median(t_det) * 1e3) if t_det else 0.0,
                            "reference_ms_p50": float(np.median(t_ref) * 1e3) if t_ref else 0.0}
    return out
