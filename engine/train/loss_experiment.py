"""``facescope experiment losses``: every loss, one backbone, one budget, one table.

The seed projects' study at CPU scale: the same backbone is trained from scratch with each
loss for the same number of batches on LFW identities that appear in no pair of folds 6-10,
then measured on folds 6-10 (5-fold cross-validated accuracy over those folds) and by
open-set identification on the folds' own people (half enrolled with one image, the rest and
the single-image people as impostors): DIR at FPR 0.1 and 0.05. The same command scales to
CASIA-WebFace on a GPU (``--data CASIA_ALIGNED``, ``--epochs``, ``--batches-per-epoch 0``): the test
people are excluded from whatever is trained on, and measured on the same LFW folds.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from engine.metrics.lfw import find_lfw_root
from engine.train.embedder import EmbedderTrainConfig, train_embedder
from engine.train.embedder_eval import LfwPairs

LOSSES = ("softmax", "normface", "sphereface", "cosface", "arcface", "combined", "focal", "ohem",
          "contrastive", "triplet", "triplet-semihard", "triplet-batchhard")
TEST_FOLDS = (5, 6, 7, 8, 9)     # folds 6-10, 0-based


@dataclass(frozen=True)
class ExperimentConfig:
    lfw: str = "../shared/data/lfw"
    aligned: str = "runs/lfw112"             # facescope prepare output of LFW
    data: str | None = None                  # training crops (default: LFW itself, minus the test people)
    out: str = "runs/loss_experiment"
    backbone: str = "mobilefacenet"
    embedding_size: int = 128
    epochs: int = 2
    batches_per_epoch: int = 30
    batch_size: int = 64
    pk: tuple[int, int] = (16, 4)            # metric losses: P identities x K images (same batch size)
    lr: float = 2e-3
    losses: tuple[str, ...] = LOSSES
    seed: int = 0
    threads: int = 0


def run_experiment(cfg: ExperimentConfig, progress: bool = True) -> list[dict]:
    """Train and measure every loss; writes ``out/results.json`` and ``out/results.md``."""
    pairs_txt, _ = find_lfw_root(cfg.lfw)
    test = LfwPairs.load(pairs_txt, cfg.aligned, TEST_FOLDS)
    test_people = tuple(sorted(test.identities()))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for loss in cfg.losses:
        t0 = time.perf_counter()
        tc = EmbedderTrainConfig(
            data=cfg.data or cfg.aligned, out=str(out / loss), backbone=cfg.backbone, loss=loss,
            embedding_size=cfg.embedding_size, epochs=cfg.epochs, batch_size=cfg.batch_size, pk=cfg.pk, lr=cfg.lr,
            warmup_epochs=1 if cfg.epochs > 1 else 0, seed=cfg.seed, val_identities=0.0, min_images=2,
            lfw_pairs=str(pairs_txt), lfw_aligned=cfg.aligned, lfw_folds=TEST_FOLDS, exclude_identities=test_people,
            eval_identities=test_people, limit_batches=cfg.batches_per_epoch, threads=cfg.threads,
            eval_every=cfg.epochs)    # the budget goes to training: measured once, at the end
        summary = train_embedder(tc, progress=progress)
        last = summary["last"]
        rows.append({"loss": loss, "lfw_folds_6_10": last.get("lfw_accuracy"), "lfw_std": last.get("lfw_std"),
                     "dir@fpr0.1": last.get("dir@fpr0.1"), "dir@fpr0.05": last.get("dir@fpr0.05"),
                     "rank1": last.get("rank1"), "train_images": summary["train_images"],
                     "classes": summary["classes"], "seconds": round(time.perf_counter() - t0, 1)})
        (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "results.md").write_text(table(rows, cfg) + "\n")
    plot_roc_curves(cfg, test)
    return rows


def plot_roc_curves(cfg: ExperimentConfig, pairs: LfwPairs | None = None) -> Path:
    """ROC on LFW folds 6-10 of every trained loss's final weights -> ``out/roc.png``."""
    import numpy as np
    import torch

    from engine.metrics.plots import plot_roc
    from engine.metrics.verification import roc
    from engine.train.embedder_setup import backbone_normalisation, build_backbone

    if pairs is None:
        pairs = LfwPairs.load(find_lfw_root(cfg.lfw)[0], cfg.aligned, TEST_FOLDS)
    norm = backbone_normalisation(cfg.backbone)
    curves = {}
    for loss in cfg.losses:
        ck = Path(cfg.out) / loss / "last.pt"
        if not ck.is_file():
            continue
        tc = EmbedderTrainConfig(data=cfg.aligned, backbone=cfg.backbone, embedding_size=cfg.embedding_size,
                                 init=str(ck))
        net = build_backbone(tc).eval()

        def embed(crops: np.ndarray, net=net) -> np.ndarray:
            with torch.no_grad():
                return net(torch.from_numpy(norm.tensor(crops))).numpy()

        fpr, tpr, _ = roc(*pairs.scores(embed))
        curves[loss] = (fpr, tpr)
    return plot_roc(curves, Path(cfg.out) / "roc.png", title="LFW folds 6-10, loss experiment")


def table(rows: list[dict], cfg: ExperimentConfig) -> str:
    """Markdown table: loss x LFW accuracy (folds 6-10) x DIR at FPR 0.1 / 0.05."""
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    lines = [f"Backbone `{cfg.backbone}` ({cfg.embedding_size}-d), from scratch, {cfg.epochs} epochs x "
             f"{cfg.batches_per_epoch} batches of {cfg.batch_size} per loss; LFW identities outside folds 6-10.", "",
             "| loss | LFW folds 6-10 (%) | DIR@FPR=0.1 (%) | DIR@FPR=0.05 (%) | rank-1 (%) | time (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['loss']} | {pct(r['lfw_folds_6_10'])} ± {pct(r['lfw_std'])} | {pct(r['dir@fpr0.1'])} | "
                     f"{pct(r['dir@fpr0.05'])} | {pct(r['rank1'])} | {r['seconds']:.0f} |")
    return "\n".join(lines)
