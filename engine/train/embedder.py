"""``facescope train embedder``: a backbone + a face-recognition loss on aligned identity folders.

One loop for every loss: classification heads (softmax ... ArcFace, focal, OHEM) see shuffled
batches, metric losses (contrastive, triplet) P x K batches. Each epoch: train, evaluate
(LFW on the chosen folds when given; open-set identification on held-out identities),
log (``log.csv``, ``log.json``, ``curves.png``), checkpoint (``last.pt``, resumable;
``best.pt`` by LFW accuracy, else by DIR@FPR=0.1). Multi-GPU: run under ``torchrun``; the
loop then uses PyTorch's DDP (one process per GPU, gradients all-reduced), rank 0 evaluates
and writes.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from engine.train.embedder_choices import OPTIMIZERS, SCHEDULES  # torch-free: the CLI parser lists them
from engine.train.embedder_eval import LfwPairs, identification
from engine.train.embedder_setup import (
    backbone_normalisation,
    build_backbone,
    build_scheduler,
    identity_split,
    imprint_head,
    set_frozen,
)
from engine.train.face_data import FaceAugment, FaceFolder, PKSampler
from engine.util.check import check
from engine.util.fsio import atomic_path


@dataclass(frozen=True)
class EmbedderTrainConfig:
    """Hyper-parameters (defaults: a small CPU-friendly run)."""

    data: str = ""
    out: str = "runs/embedder"
    backbone: str = "mobilefacenet"
    loss: str = "arcface"
    embedding_size: int = 128
    epochs: int = 10
    batch_size: int = 64
    pk: tuple[int, int] = (16, 4)           # metric losses: P identities x K images per batch
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: str = "warmup_cosine"
    warmup_epochs: int = 1
    milestones: tuple[int, ...] = (6, 9)    # step schedule: epochs where lr *= gamma
    gamma: float = 0.1
    restart_epochs: int = 3                 # cosine_restarts: first period
    freeze: tuple[str, ...] = ()            # parameter-name prefixes frozen at the start ("backbone", "head")
    unfreeze_epoch: int = 0                 # epoch (0-based) from which they train; 0 with freeze = never
    head_init: str = "random"               # or "imprint": class means of the initial embeddings
    init: str | None = None                 # backbone weights: a checkpoint, or the IR .xml for mobilefacenet_y1
    amp: bool = False                       # bf16/fp16 autocast on CUDA only
    seed: int = 0
    val_identities: float = 0.1             # fraction of identities held out for identification
    lfw_pairs: str | None = None            # pairs.txt
    lfw_aligned: str | None = None          # aligned LFW (facescope prepare)
    lfw_folds: tuple[int, ...] = tuple(range(10))
    exclude_identities: tuple[str, ...] = ()   # never train on these (e.g. LFW test-fold people)
    eval_identities: tuple[str, ...] = ()      # identification is measured on these (default: the hash split)
    min_images: int = 1                     # identities with fewer images are left out of training
    threads: int = 0
    limit_batches: int = 0                  # stop each epoch after this many batches (smoke runs, budgets)
    eval_start: bool = False                # also evaluate before training (logged as epoch 0: fine-tuning)
    eval_every: int = 1                     # evaluate every N epochs (and always after the last)
    loss_kwargs: dict = field(default_factory=dict)
    backbone_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(bool(self.data), "data (an aligned identity-folder dataset) is required")
        check(self.epochs >= 1 and self.batch_size >= 2, "epochs >= 1 and batch_size >= 2")
        check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}")
        check(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}")
        check(self.lr > 0 and self.weight_decay >= 0, "lr > 0 and weight_decay >= 0")
        check(0 <= self.warmup_epochs < self.epochs or self.epochs == 1, "warmup_epochs must be < epochs")
        check(0.0 <= self.val_identities < 0.9, "val_identities must be in [0, 0.9)")
        check(self.head_init in ("random", "imprint"), "head_init must be random or imprint")
        check((self.lfw_pairs is None) == (self.lfw_aligned is None), "lfw_pairs and lfw_aligned go together")
        check(len(self.pk) == 2 and min(self.pk) >= 2, "pk must be (P, K) with both >= 2")
        check(self.unfreeze_epoch >= 0 and self.restart_epochs >= 1 and 0 < self.gamma <= 1, "bad schedule values")
        check(self.eval_every >= 1, "eval_every must be >= 1")
        check(not self.amp or torch.cuda.is_available(), "amp needs a CUDA GPU (mixed precision on CPU is not used)")


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def train_embedder(cfg: EmbedderTrainConfig, resume: str | None = None, progress: bool = True) -> dict:
    """Train; returns the summary also written to ``out/summary.json`` (rank 0)."""
    from engine.train.losses import create_loss

    t_start = time.perf_counter()
    rank, world = _rank()
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    norm = backbone_normalisation(cfg.backbone)
    train_ix, val_ix, all_paths, all_labels, names = identity_split(cfg)
    train_ds = FaceFolder([all_paths[i] for i in train_ix], all_labels[train_ix], names, norm, FaceAugment(), cfg.seed)
    backbone = build_backbone(cfg)
    loss = create_loss(cfg.loss, cfg.embedding_size, train_ds.num_classes, **cfg.loss_kwargs)
    model = FaceModel(backbone, loss).to(device)
    if cfg.head_init == "imprint" and getattr(loss, "head", None) is not None:
        imprint_head(loss.head, backbone, train_ds, device)
    if loss.metric:
        sampler = PKSampler(train_ds.labels, *cfg.pk, seed=cfg.seed, rank=rank, world=world)
        loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=0)
    else:
        sampler = None
        gen = torch.Generator().manual_seed(cfg.seed)
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=world == 1, drop_last=True, generator=gen,
                            sampler=torch.utils.data.DistributedSampler(train_ds, seed=cfg.seed) if world > 1 else None)
    steps = len(loader) if not cfg.limit_batches else min(cfg.limit_batches, len(loader))
    if steps == 0:
        raise ValueError(f"no full batch: {len(train_ds)} training images, batch {cfg.batch_size} / P x K {cfg.pk}")
    params = [p for p in model.parameters()]
    opt = (torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.optimizer == "adamw" else
           torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay))
    sched = build_scheduler(opt, cfg, steps)
    trained = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    start, best, history = 0, -1.0, []
    if resume:
        ck = torch.load(resume, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, best, history = ck["epoch"] + 1, ck["best"], ck["history"]
    lfw = LfwPairs.load(cfg.lfw_pairs, cfg.lfw_aligned, cfg.lfw_folds) if cfg.lfw_pairs and rank == 0 else None
    val_paths, val_labels = [all_paths[i] for i in val_ix], all_labels[val_ix]
    scaler = torch.amp.GradScaler("cuda") if cfg.amp else None
    if cfg.eval_start and start == 0 and rank == 0:
        history.append({"epoch": 0, **evaluate(backbone, norm, device, lfw, val_paths, val_labels, cfg.seed)})
        if progress:
            tqdm.write(f"before training: {history[-1]}")
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        frozen = bool(cfg.freeze) and (cfg.unfreeze_epoch == 0 or epoch < cfg.unfreeze_epoch)
        set_frozen(model, cfg.freeze, frozen=frozen)
        train_ds.set_epoch(epoch)
        for s in (sampler, getattr(loader, "sampler", None)):
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)
        trained.train()
        losses = []
        bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress or rank,
                   leave=False, unit="batch")
        for b, (x, y) in enumerate(bar):
            if b >= steps:
                break
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, enabled=cfg.amp):
                value = trained(x, y)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(value).backward()
                scaler.step(opt)
                scaler.update()
            else:
                value.backward()
                opt.step()
            sched.step()
            losses.append(float(value.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        if rank:
            continue
        due = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": float(np.mean(losses)),
               **(evaluate(backbone, norm, device, lfw, val_paths, val_labels, cfg.seed) if due else {}),
               "seconds": round(time.perf_counter() - t0, 1)}
        history.append(row)
        score = row.get("lfw_accuracy", row.get("dir@fpr0.1", -1.0))
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "epoch": epoch, "best": max(best, score), "history": history, "config": asdict(cfg),
                 "normalisation": asdict(norm), "classes": train_ds.names}
        with atomic_path(out / "last.pt") as tmp:
            torch.save(state, tmp)
        if score > best:
            best = score
            with atomic_path(out / "best.pt") as tmp:
                torch.save({k: v for k, v in state.items() if k not in ("optimizer", "scheduler")}, tmp)
        _write_logs(out, history)
        if progress:
            tqdm.write(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    if world > 1:
        torch.distributed.destroy_process_group()
    summary = {"best": best, "epochs": cfg.epochs, "train_images": len(train_ds), "classes": train_ds.num_classes,
               "val_images": len(val_ix), "seconds": round(time.perf_counter() - t_start, 1),
               "last": history[-1] if history else {}}
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


class FaceModel(torch.nn.Module):
    """Backbone + loss as one module, ``forward(images, labels) -> loss``: what DDP wraps (its
    gradient all-reduce is armed by calling the wrapper's forward, not the parts')."""

    def __init__(self, backbone: torch.nn.Module, loss: torch.nn.Module) -> None:
        super().__init__()
        self.backbone, self.loss = backbone, loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss(self.backbone(x), y)


@torch.no_grad()
def evaluate(backbone, norm, device, lfw: LfwPairs | None, val_paths, val_labels, seed: int) -> dict:
    backbone.eval()

    def embed(crops: np.ndarray) -> np.ndarray:
        return backbone(torch.from_numpy(norm.tensor(crops)).to(device)).float().cpu().numpy()

    embed.cache = {}    # path -> unit embedding, shared by the LFW and identification passes

    row = {}
    if lfw is not None:
        row.update(lfw.evaluate(embed))
    labels = np.asarray(val_labels)
    if len(val_paths) and (np.bincount(labels) >= 2).sum() >= 2:   # enrolled and impostor identities both needed
        row.update(identification(embed, val_paths, labels, seed=seed))
    return row


def _write_logs(out: Path, history: list[dict]) -> None:
    from engine.train.embedder_setup import plot_curves

    keys = list(dict.fromkeys(k for row in history for k in row))
    lines = [",".join(keys)] + [",".join(str(row.get(k, "")) for k in keys) for row in history]
    (out / "log.csv").write_text("\n".join(lines) + "\n")
    (out / "log.json").write_text(json.dumps(history, indent=1) + "\n")
    plot_curves(history, out / "curves.png")
