"""``facescope train landmarks``: train the stacked hourglass on 300-W style data.

Reproducible: every random choice derives from ``seed`` (torch, numpy, augmentation per
(seed, epoch, index)); the split is a hash of the file names. Each epoch writes
``last.pt`` (everything needed to resume) and, when validation NME improves, ``best.pt``;
``log.csv`` gets one row per epoch. At the end the best weights are exported to ONNX with a
model card (:mod:`engine.train.landmark_export`), parity-checked against PyTorch.
"""
from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader
from tqdm import tqdm

from engine.config import DetectorConfig
from engine.imageio import read_image
from engine.landmarks.crop import apply, crop_matrix, invert, warp
from engine.landmarks.dataset import detector_boxes, load_samples, split_samples
from engine.landmarks.heatmap import soft_argmax as np_soft_argmax
from engine.metrics.landmarks import nme
from engine.train.hourglass import LandmarkLoss, StackedHourglass
from engine.train.landmark_data import Augment, LandmarkCrops, normalise
from engine.train.schedule import warmup_cosine
from engine.util.check import check
from engine.util.fsio import atomic_path


@dataclass(frozen=True)
class LandmarkTrainConfig:
    """Hyper-parameters; the defaults are the shipped model's recipe."""

    data: str = "../shared/data/300w"
    out: str = "runs/landmarks"
    epochs: int = 8
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    seed: int = 0
    val_fraction: float = 0.15
    input_size: int = 128
    crop_scale: float = 1.3
    shift_y: float = 0.1
    stacks: int = 2
    depth: int = 3
    channels: int = 64
    threads: int = 0
    limit: int = 0                      # use only the first N training samples (smoke runs)
    augment: Augment = field(default_factory=Augment)
    # teacher pseudo-labels (engine.train.teacher): extra unannotated faces labelled by a mapped
    # FaceMesh; the real annotations are repeated gt_repeat times in the same epochs, then
    # finetune_epochs on the real annotations alone at lr * finetune_lr_ratio.
    teacher: str | None = None
    extra_faces: str | None = None
    extra_per_person: int = 2
    extra_max: int = 5000
    gt_repeat: int = 2
    finetune_epochs: int = 16
    finetune_lr_ratio: float = 0.2
    init: str | None = None             # start from these weights (a checkpoint's "model"), e.g. a second stage
    ema: float = 0.0                    # EMA decay of the weights for validation and export (0 = off)
    # the annotations' x convention (image px) kept by mirror augmentation (LandmarkCrops);
    # 0 for data annotated at pixel centres
    annotation_dx: float = 1.3

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 2, f"batch_size must be >= 2 (batch norm), got {self.batch_size}")
        check(self.lr > 0 and self.weight_decay >= 0, "lr must be > 0 and weight_decay >= 0")
        check(0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be in [0, epochs]")
        check(self.input_size % 32 == 0 and self.input_size >= 64, "input_size must be a multiple of 32, >= 64")
        check(self.crop_scale > 0.5 and self.stacks >= 1 and self.depth >= 1 and self.channels >= 16,
               "crop_scale > 0.5, stacks >= 1, depth >= 1, channels >= 16")
        check(self.limit >= 0, "limit must be >= 0")
        check((self.teacher is None) == (self.extra_faces is None), "teacher and extra_faces go together")
        check(self.extra_per_person >= 1 and self.extra_max >= 0 and self.gt_repeat >= 1, "bad extra-face settings")
        check(self.finetune_epochs >= 0 and 0 < self.finetune_lr_ratio <= 1, "bad finetune settings")
        check(0.0 <= self.ema < 1.0, f"ema must be in [0, 1), got {self.ema}")
        check(abs(self.annotation_dx) <= 8.0, f"annotation_dx is a few pixels at most, got {self.annotation_dx}")

    @property
    def stride(self) -> int:
        return 4


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def predict_crops(net: torch.nn.Module, crops: np.ndarray, stride: int, batch: int = 64) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR crops -> (N, 68, 2) crop px through the final stack (eval mode)."""
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(np.stack([normalise(c) for c in crops[i:i + batch]]))
            out.append(np_soft_argmax(net(x)[-1].numpy(), stride)[0])
    return np.concatenate(out) if out else np.zeros((0, 68, 2), np.float32)


def evaluate(net: torch.nn.Module, images, points: np.ndarray, boxes: np.ndarray,
             cfg: LandmarkTrainConfig) -> np.ndarray:
    """Per-face NME on un-augmented crops, errors measured in image pixels."""
    ms = [crop_matrix(b, cfg.input_size, cfg.crop_scale, cfg.shift_y) for b in boxes]
    crops = np.stack([warp(img, m, cfg.input_size) for img, m in zip(images, ms, strict=True)])
    pred = predict_crops(net, crops, cfg.stride)
    pred_img = np.stack([apply(invert(m), p) for m, p in zip(ms, pred, strict=True)])
    return nme(pred_img, points)


def train_landmarks(cfg: LandmarkTrainConfig, resume: str | None = None, progress: bool = True) -> dict:
    """Train, checkpoint, export; returns the summary also written to ``out/summary.json``."""
    from engine.detectors import create_detector
    from engine.train.landmark_export import export_landmarks

    t_start = time.perf_counter()
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_samples(cfg.data)
    train_s, val_s = split_samples(samples, cfg.val_fraction)
    if cfg.limit:
        train_s, val_s = train_s[:cfg.limit], val_s[:max(2, cfg.limit // 4)]
    detector = create_detector("yunet", DetectorConfig(input_size=None))
    read = read_image
    all_s = train_s + val_s
    boxes, found, rel = detector_boxes(all_s, lambda im: detector(im).boxes, read, progress=progress)
    images = [read(s.image) for s in all_s]
    points = np.stack([s.points for s in all_s])
    nt = len(train_s)
    extra: dict = {}
    train_ds = LandmarkCrops(images[:nt], points[:nt], boxes[:nt], cfg.input_size, cfg.crop_scale, cfg.shift_y,
                             cfg.augment, cfg.seed, cfg.annotation_dx)
    parts = [train_ds] * cfg.gt_repeat if cfg.teacher else [train_ds]
    if cfg.teacher:
        extra_ds, extra = _teacher_faces(cfg, detector, images[:nt], boxes[:nt], points[:nt], images[nt:],
                                         boxes[nt:], points[nt:], progress)
        parts.append(extra_ds)
    gen = torch.Generator().manual_seed(cfg.seed)
    mixed = ConcatDataset(parts)
    loader = DataLoader(mixed, batch_size=cfg.batch_size, shuffle=True, drop_last=len(mixed) > cfg.batch_size,
                        generator=gen, num_workers=0)
    gt_loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True,
                           drop_last=len(train_ds) > cfg.batch_size, generator=gen, num_workers=0)
    net = StackedHourglass(68, cfg.stacks, cfg.depth, cfg.channels)
    # validation, checkpoints and the export use the EMA weights (with their own BN statistics)
    ema = torch.optim.swa_utils.AveragedModel(
        net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    shown = lambda: ema.module if ema is not None else net  # noqa: E731
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    s1, s2 = cfg.epochs * len(loader), cfg.finetune_epochs * len(gt_loader)
    phase1 = warmup_cosine(s1, cfg.warmup_epochs * len(loader))
    phase2 = warmup_cosine(max(s2, 1), 0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: phase1(step) if step < s1 else cfg.finetune_lr_ratio * phase2(step - s1))
    loss_fn = LandmarkLoss(cfg.stride)
    start, best = 0, float("inf")
    if cfg.init:
        init = torch.load(cfg.init, map_location="cpu", weights_only=False)
        net.load_state_dict(init["model"])
        if ema is not None:
            ema.module.load_state_dict(init["model"])
    if resume:
        ck = torch.load(resume, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["train_model"] if "train_model" in ck else ck["model"])
        if ema is not None and "ema" in ck:
            ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        start, best = ck["epoch"] + 1, ck["best_nme"]
    log_path = out / "log.csv"
    if start == 0:
        log_path.write_text("epoch,lr,train_loss,val_nme,seconds\n")
    total_epochs = cfg.epochs + cfg.finetune_epochs
    for epoch in range(start, total_epochs):
        t0 = time.perf_counter()
        net.train()
        for part in parts:
            part.set_epoch(epoch)
        losses = []
        bar = tqdm(loader if epoch < cfg.epochs else gt_loader, desc=f"epoch {epoch + 1}/{total_epochs}",
                   disable=not progress, leave=False, unit="batch")
        for x, y, iod in bar:
            loss = loss_fn(net(x), y, iod)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(net)
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        val = evaluate(shown(), images[nt:], points[nt:], boxes[nt:], cfg)
        val_nme = float(val.mean())
        state = {"model": shown().state_dict(), "train_model": net.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), **({"ema": ema.state_dict()} if ema is not None else {}),
                 "generator": gen.get_state(), "epoch": epoch, "best_nme": min(best, val_nme),
                 "config": asdict(cfg)}
        with atomic_path(out / "last.pt") as tmp:
            torch.save(state, tmp)
        if val_nme < best:
            best = val_nme
            with atomic_path(out / "best.pt") as tmp:
                torch.save({"model": shown().state_dict(), "epoch": epoch, "val_nme": val_nme, "config": asdict(cfg)},
                           tmp)
        secs = time.perf_counter() - t0
        with log_path.open("a", newline="") as f:
            csv.writer(f).writerow([epoch + 1, f"{sched.get_last_lr()[0]:.6g}", f"{np.mean(losses):.5f}",
                                    f"{val_nme:.5f}", f"{secs:.1f}"])
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{total_epochs}: loss {np.mean(losses):.4f}  val NME {val_nme * 100:.2f}%"
                       f"  (best {best * 100:.2f}%)  {secs:.0f}s")
    best_ck = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    net.load_state_dict(best_ck["model"])
    exported = export_landmarks(net, cfg, out, box_relation=asdict(rel))
    summary = {"best_val_nme": best, "best_epoch": best_ck["epoch"] + 1, "train_faces": nt,
               "val_faces": len(val_s), "detector_boxes": int(found.sum()), "box_relation": asdict(rel), **extra,
               "seconds": round(time.perf_counter() - t_start, 1), **exported}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _teacher_faces(cfg: LandmarkTrainConfig, detector, tr_images, tr_boxes, tr_points, va_images, va_boxes,
                   va_points, progress: bool):
    """Fit the teacher's 468->68 map on the training split, report it on the held-out split,
    and label up to ``extra_max`` LFW-style faces (``extra_per_person`` per identity folder)."""
    from engine.dataset_embed import central_face
    from engine.metrics.lfw import identity_root
    from engine.train.teacher import MeshTeacher

    teacher = MeshTeacher(cfg.teacher)
    teacher.fit_on(tr_images, tr_boxes, tr_points)
    val_pred = np.stack([teacher.label(img, b)[0] for img, b in zip(va_images, va_boxes, strict=True)])
    teacher_nme = float(nme(val_pred, va_points).mean()) if len(va_points) else float("nan")
    if progress:
        tqdm.write(f"teacher (FaceMesh mapped to 68 points) held-out NME {teacher_nme * 100:.2f} %")
    root = identity_root(cfg.extra_faces)
    files = [f for p in sorted(d for d in root.iterdir() if d.is_dir())
             for f in sorted(p.glob("*.jpg"))[:cfg.extra_per_person]]
    if not files:
        raise FileNotFoundError(f"no identity folders with .jpg images under {root}")
    rng = np.random.default_rng(cfg.seed)
    files = [files[i] for i in sorted(rng.permutation(len(files))[:cfg.extra_max])]
    images, boxes, points = [], [], []
    for f in tqdm(files, desc="teacher labels", disable=not progress, unit="img"):
        img = read_image(f)
        faces = detector(img)
        k = central_face(faces, img.shape[1], img.shape[0])
        if k is None:
            continue
        pts, flag = teacher.label(img, faces.boxes[k])
        if flag < 0:        # FaceMesh's own "no face here" signal
            continue
        images.append(img)
        boxes.append(faces.boxes[k])
        points.append(pts)
    ds = LandmarkCrops(images, np.array(points), np.array(boxes), cfg.input_size, cfg.crop_scale, cfg.shift_y,
                       cfg.augment, cfg.seed + 1, cfg.annotation_dx)
    return ds, {"teacher_val_nme": teacher_nme, "teacher_faces": len(images)}
