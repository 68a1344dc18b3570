"""Ground truth of synthetic clips: where the faces are, reading the truth, matching detections.

The face box of a sprite is YuNet's box on its LFW image (deep funnelling centres faces but lets
their scale vary), carried through the sprite's transform by ``clip.py``; ``frame_objects``
turns the drawn sprites' masks into per-frame truth. The truth file (``<clip>.json``, written by
:func:`engine.synth.make_clip`) holds ``fps``, ``size`` [w, h], ``num_frames``, ``identities``
(``id``, ``name``, ``enrolled``, ``sprite_image``, ``sprite_box``, ``enrol_images``), ``events``
(scripted ``occlude`` / ``cross`` / ``exit`` / ``swap`` / ``meet``, and ``cut``: ``start``, ``end`` frames,
``ids``), ``cuts`` (first frames after the shot cuts, when any) and ``frames``:
one list per frame of the faces whose face box touches the frame, each ``{id, name, enrolled,
box, box_full, visible_fraction, occluded_fraction, occluded}`` (meanings: see ``clip.py``).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from engine.boxes import iou_matrix

TRUTH_VERSION = 1
FACE_BOX = (79.0, 66.0, 174.0, 190.0)  # mean YuNet box on 300 LFW deep-funneled 250x250 images
OCCLUDED = 0.5  # occluded_fraction from which a face counts as occluded


def load_truth(path: str | Path) -> dict:
    """Read a ground-truth JSON written by ``make_clip``; ValueError if it is not one."""
    path = Path(path)
    try:
        truth = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable synthetic-clip truth file ({exc})") from exc
    missing = {"fps", "size", "frames", "identities"} - set(truth if isinstance(truth, dict) else ())
    if missing or truth.get("version") != TRUTH_VERSION:
        raise ValueError(f"{path}: not a synthetic-clip truth file (version {TRUTH_VERSION}); "
                         f"missing {sorted(missing)}")
    truth["size"] = tuple(truth["size"])
    return truth


@lru_cache(maxsize=1)
def _detector():
    """YuNet at native size: LFW faces vary in scale (George_HW_Bush_0002's is 1.3x the usual)."""
    from engine.config import DetectorConfig
    from engine.detectors import create_detector

    return create_detector("yunet", DetectorConfig(input_size=None))


def read_lfw(path: str) -> np.ndarray:
    """An LFW image as 250x250 BGR (ValueError if unreadable)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read LFW image {path}")
    return img if img.shape[:2] == (250, 250) else cv2.resize(img, (250, 250), interpolation=cv2.INTER_AREA)


def choose_sprite(folder: Path, files: tuple[str, ...], order: list[int]) -> tuple[int, list[float]]:
    """(index, face box) of the sprite image: the first in ``order`` whose face is detected where
    LFW puts faces (IoU >= 0.5 with FACE_BOX) and near-frontal (eye line within 10 degrees, nose
    within 0.2 eye distances of the eyes' middle); else the first detected; else order[0]."""
    found = {}
    for j in order:
        faces = _detector()(read_lfw(str(folder / files[j])))
        iou = iou_matrix(faces.boxes, np.array([FACE_BOX]))[:, 0] if len(faces) else np.zeros(1)
        if iou[k := int(np.argmax(iou))] < 0.5:
            continue
        kp = faces.keypoints[k]
        ex, ey = kp[1] - kp[0]
        found[j] = [float(v) for v in np.round(faces.boxes[k])]  # whole pixels: same truth on any CPU
        if abs(ey) < 0.18 * ex and abs(kp[2, 0] - (kp[0, 0] + kp[1, 0]) / 2) < 0.2 * np.hypot(ex, ey):
            return j, found[j]
    return next(iter(found.items()), (order[0], list(FACE_BOX)))


def frame_objects(people: list[dict], drawn: list, w: int, h: int) -> list[dict]:
    """Truth objects of one frame. ``drawn[i]`` = (face box xyxy, (x0, y0, opaque mask) or None) of
    sprite i, in draw order, or None when person i is not in the shot (after a cut): a face is
    covered where any later sprite's mask is set."""
    objs = []
    for i, (person, item) in enumerate(zip(people, drawn, strict=True)):
        if item is None:
            continue
        box = item[0]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        full = max(0, x1 - x0) * max(0, y1 - y0)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if full == 0 or cx1 <= cx0 or cy1 <= cy0:
            continue  # face box entirely outside the frame
        cover = np.zeros((cy1 - cy0, cx1 - cx0), bool)
        for later in drawn[i + 1:]:
            placed = None if later is None else later[1]
            if placed is None:
                continue
            rx, ry, mask = placed
            ix0, iy0 = max(cx0, rx), max(cy0, ry)
            ix1, iy1 = min(cx1, rx + mask.shape[1]), min(cy1, ry + mask.shape[0])
            if ix1 > ix0 and iy1 > iy0:
                cover[iy0 - cy0:iy1 - cy0, ix0 - cx0:ix1 - cx0] |= mask[iy0 - ry:iy1 - ry, ix0 - rx:ix1 - rx]
        covered = float(cover.sum()) / full
        objs.append({"id": i, "name": person["name"], "enrolled": person["enrolled"],
                     "box": [round(float(v), 2) for v in np.clip(box, 0, [w, h, w, h])],
                     "box_full": [round(float(v), 2) for v in box],
                     "visible_fraction": round(cover.size / full - covered, 4),
                     "occluded_fraction": round(covered, 4), "occluded": covered >= OCCLUDED})
    return objs


def match_truth(pred_boxes, truth_frame: list[dict], iou_threshold: float = 0.3,
                min_visible: float = 0.0) -> np.ndarray:
    """Truth id for each predicted box (N, 4) xyxy, or -1 when it matches none.

    ``truth_frame`` is ``truth["frames"][i]``. Matching is one-to-one and greedy by
    decreasing IoU (ties broken by order), against each truth face's in-frame ``box``; pairs
    below ``iou_threshold`` never match. Truth faces with ``visible_fraction <= min_visible``
    are not matchable (by default: fully hidden ones, which no detector can see).
    """
    pred = np.asarray(pred_boxes, np.float64).reshape(-1, 4)
    out = np.full(len(pred), -1, dtype=np.int64)
    objs = [o for o in truth_frame if o["visible_fraction"] > min_visible]
    if len(pred) == 0 or not objs:
        return out
    iou = iou_matrix(pred, np.array([o["box"] for o in objs]))
    order = np.argsort(-iou, axis=None, kind="stable")
    used_p, used_t = set(), set()
    for flat in order:
        p, t = divmod(int(flat), len(objs))
        if iou[p, t] < iou_threshold:
            break
        if p in used_p or t in used_t:
            continue
        used_p.add(p)
        used_t.add(t)
        out[p] = objs[t]["id"]
    return out
