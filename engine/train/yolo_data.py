"""Build a YOLO face dataset (ultralytics layout) from LFW and 300-W with YuNet pseudo-labels.

No face-box annotations exist offline, so boxes come from the shipped YuNet detector run on
each image (every face it finds at ``min_score``; on 300-W images the annotated face is
always kept, its box taken from YuNet when it overlaps the 68 landmarks, else derived
from them). Identity-disjoint split: LFW people whose name hashes below ``val_fraction``
are held out (the detector's held-out LFW set); AFW is never used for training, so its
multi-face images stay a held-out check. Mosaic and scale augmentation happen in
ultralytics' own loader at training time.

Layout written: ``out/images/{train,val}/*.jpg``, ``out/labels/{train,val}/*.txt`` (one
``0 cx cy w h`` line per face, normalised), ``out/data.yaml``, ``out/manifest.json``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.boxes import iou_matrix
from engine.imageio import read_image
from engine.landmarks.dataset import BoxRelation, landmark_box, load_samples
from engine.metrics.lfw import identity_root

# YuNet's box around a face, relative to its 68-point box (what engine.landmarks.dataset
# measures on 300-W: dx -0.004, dy -0.156, size 1.25), for annotated faces YuNet missed
MISSED_FACE_BOX = BoxRelation(dx=0.0, dy=-0.15, size=1.24)


def held_out(name: str, fraction: float) -> bool:
    """Deterministic identity split by a hash of the person's name."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "little") / 2 ** 32 < fraction


@dataclass(frozen=True)
class YoloDataConfig:
    lfw: str | None = "../shared/data/lfw"
    landmarks: str | None = "../shared/data/300w"
    out: str = "runs/yolo_data"
    lfw_per_person: int = 1          # images per LFW training identity (diversity over repetition)
    val_fraction: float = 0.1
    val_images: int = 500            # held-out LFW images written to images/val (one per person)
    min_score: float = 0.6
    seed: int = 0
    max_train: int = 0               # training images at most (0 = all), a seeded sample


def _label_lines(boxes: np.ndarray, w: int, h: int) -> list[str]:
    lines = []
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64):
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if x2 - x1 < 4 or y2 - y1 < 4:
            continue
        lines.append(f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    return lines


def build_yolo_dataset(cfg: YoloDataConfig, detect: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                       progress: bool = True) -> dict:
    """Write the dataset; ``detect(image) -> (boxes (M,4) xyxy, scores (M,))``. Returns the manifest."""
    out = Path(cfg.out)
    if out.exists():
        shutil.rmtree(out)
    items: list[tuple[str, Path, np.ndarray | None]] = []   # (split, image, annotated points)
    rng = np.random.default_rng(cfg.seed)
    if cfg.lfw:
        root = identity_root(cfg.lfw)
        people = sorted(p for p in root.iterdir() if p.is_dir())
        if not people:
            raise FileNotFoundError(f"no LFW person folders under {root}")
        val = []
        for p in people:
            imgs = sorted(p.glob("*.jpg"))
            if held_out(p.name, cfg.val_fraction):
                val.append(imgs[0])
            else:
                items += [("train", f, None) for f in imgs[:cfg.lfw_per_person]]
        pick = rng.permutation(len(val))[:cfg.val_images]
        items += [("val", val[i], None) for i in sorted(pick)]
    if cfg.landmarks:
        for s in load_samples(cfg.landmarks):
            if s.subset.lower() != "afw":
                items.append(("train", s.image, s.points))
    if cfg.max_train:
        train_idx = [i for i, it in enumerate(items) if it[0] == "train"]
        drop = set(train_idx) - {train_idx[i] for i in rng.permutation(len(train_idx))[:cfg.max_train]}
        items = [it for i, it in enumerate(items) if i not in drop]
    counts = {"train": 0, "val": 0}
    faces = {"train": 0, "val": 0}
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
    for k, (split, path, pts) in enumerate(tqdm(items, desc="pseudo-labels", disable=not progress, unit="img")):
        image = read_image(path)
        h, w = image.shape[:2]
        boxes, scores = detect(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[np.asarray(scores) >= cfg.min_score]
        if pts is not None:
            lb = landmark_box(pts)
            if len(boxes) == 0 or iou_matrix(boxes, lb).max() < 0.3:
                # annotated face YuNet missed: the landmark box grown like YuNet's boxes are
                boxes = np.vstack([boxes, MISSED_FACE_BOX.apply(lb)])
        stem = f"{k:06d}_{path.stem}"
        shutil.copyfile(path, out / "images" / split / f"{stem}{path.suffix.lower()}")
        lines = _label_lines(boxes, w, h)
        (out / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        counts[split] += 1
        faces[split] += len(lines)
    (out / "data.yaml").write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n  0: face\n")
    manifest = {"config": cfg.__dict__, "images": counts, "faces": faces,
                "sources": {"lfw": cfg.lfw, "landmarks": cfg.landmarks, "labels": "YuNet pseudo-labels"}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
