"""Pieces of the embedder trainer: identity split, schedules, freezing, head imprinting, curves."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch

from engine.metrics.lfw import list_identity_folder
from engine.train.face_data import Normalisation
from engine.train.schedule import warmup_cosine


def backbone_normalisation(name: str) -> Normalisation:
    """The input convention of a registered backbone (stated by its module, never guessed)."""
    from engine.train.backbones import input_normalisation

    n = input_normalisation(name)
    mean, std = set(map(float, n["mean"])), set(map(float, n["std"]))
    if len(mean) != 1 or len(std) != 1:
        raise ValueError(f"backbone {name!r}: per-channel normalisation {n} is not supported by the trainer")
    return Normalisation(mean.pop(), std.pop(), n["color_order"])


def build_backbone(cfg) -> torch.nn.Module:
    """The configured backbone; ``cfg.init`` loads weights: the OpenVINO IR (.xml) for
    mobilefacenet_y1, else a facescope checkpoint (its ``backbone.*`` tensors) or a plain
    state_dict. Shapes must match exactly (load_state_dict is strict)."""
    from engine.train.backbones import create_backbone

    kwargs = dict(cfg.backbone_kwargs)
    if cfg.init and str(cfg.init).endswith(".xml"):
        kwargs["weights"] = cfg.init
    backbone = create_backbone(cfg.backbone, cfg.embedding_size, **kwargs)
    if cfg.init and not str(cfg.init).endswith(".xml"):
        ck = torch.load(cfg.init, map_location="cpu", weights_only=False)
        state = ck.get("model", ck) if isinstance(ck, dict) else ck
        if any(k.startswith("backbone.") for k in state):
            state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
        backbone.load_state_dict(state)
    return backbone


def identity_split(cfg) -> tuple[np.ndarray, np.ndarray, list[Path], np.ndarray, list[str]]:
    """(train indices, held-out indices, paths, labels, names) of ``cfg.data``.

    Held-out identities are chosen by a hash of the folder name (stable when folders are added);
    ``cfg.exclude_identities`` are dropped entirely; training keeps identities with at least
    ``cfg.min_images`` images."""
    paths, labels, names = list_identity_folder(cfg.data)
    excluded = set(cfg.exclude_identities)
    counts = np.bincount(labels, minlength=len(names))
    held = np.array([int.from_bytes(hashlib.sha1(n.encode()).digest()[:4], "little") / 2 ** 32 < cfg.val_identities
                     for n in names])
    keep = np.array([n not in excluded for n in names])
    train_id = keep & ~held & (counts >= cfg.min_images)
    train_ix = np.flatnonzero(train_id[labels])
    if cfg.eval_identities:
        wanted = set(cfg.eval_identities)
        evaluated = np.array([n in wanted for n in names])
        if evaluated.any() and (evaluated & train_id).any():
            raise ValueError("eval_identities overlap the training identities: exclude them from training")
        val_ix = np.flatnonzero(evaluated[labels])
    else:
        val_ix = np.flatnonzero((keep & held)[labels])
    if len(train_ix) == 0:
        raise ValueError(f"no training images left in {cfg.data} after the split/exclusions")
    return train_ix, val_ix, paths, labels, names


def build_scheduler(opt: torch.optim.Optimizer, cfg, steps_per_epoch: int):
    """Per-iteration schedule: warmup_cosine | step (x gamma at each milestone epoch) |
    cosine_restarts (SGDR: periods of restart_epochs, doubling)."""
    total, warm = cfg.epochs * steps_per_epoch, min(cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "warmup_cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(max(total, 1), warm))
    if cfg.schedule == "step":
        def f(step: int) -> float:
            epoch = step / max(steps_per_epoch, 1)
            ramp = (step + 1) / warm if step < warm else 1.0
            return ramp * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        return torch.optim.lr_scheduler.LambdaLR(opt, f)
    return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=max(1, cfg.restart_epochs * steps_per_epoch),
                                                                T_mult=2)


def set_frozen(model: torch.nn.Module, prefixes: tuple[str, ...], frozen: bool) -> int:
    """Freeze (or unfreeze) parameters whose name starts with a prefix; BN layers inside a
    frozen part also stop updating their running statistics. Returns how many tensors."""
    n = 0
    for name, p in model.named_parameters():
        if any(name.startswith(pre) for pre in prefixes):
            p.requires_grad_(not frozen)
            n += 1
    for name, m in model.named_modules():
        if any(name.startswith(pre) for pre in prefixes) and isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0 if frozen else 0.1
    return n


@torch.no_grad()
def imprint_head(head: torch.nn.Module, backbone: torch.nn.Module, dataset, device, batch: int = 128) -> None:
    """Set each class's weight row to the mean unit embedding of its images (weight
    imprinting, Qi et al. 2018): a pretrained backbone fine-tuned with a new margin head then
    starts from sensible logits instead of random ones, so the first steps do not wreck it."""
    weight = getattr(head, "weight", None)
    if weight is None or weight.shape[0] != dataset.num_classes:
        raise ValueError("imprinting needs a head with a (classes, embedding) 'weight'")
    backbone.eval()
    sums = torch.zeros_like(weight)
    for i in range(0, len(dataset), batch):
        ix = range(i, min(i + batch, len(dataset)))
        x = torch.from_numpy(dataset.norm.tensor(np.stack([dataset.crop(j) for j in ix]))).to(device)
        e = torch.nn.functional.normalize(backbone(x).float(), dim=1)
        sums.index_add_(0, torch.as_tensor(dataset.labels[list(ix)], device=device), e)
    weight.copy_(torch.nn.functional.normalize(sums, dim=1))


def plot_curves(history: list[dict], path: Path) -> Path:
    """Training loss and every evaluation metric per epoch, one panel each (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [k for k in dict.fromkeys(k for row in history for k in row) if k not in ("epoch", "lr", "seconds")]
    cols = min(3, max(1, len(keys)))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(4 * cols, 3 * rows), dpi=90)
    FigureCanvasAgg(fig)
    for i, k in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot([r["epoch"] for r in history if k in r], [r[k] for r in history if k in r], marker="o")
        ax.set_title(k)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
