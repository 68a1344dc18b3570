"""Evaluating an embedder under training: LFW pairs on chosen folds, open-set identification.

Both work on aligned crops (``facescope prepare`` output) and a ``embed(crops) -> (N, D)``
callable, so the trainer, the loss experiment and the tests share one definition.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.imageio import read_image
from engine.metrics.identification import identification_rates
from engine.metrics.lfw import Pair, read_pairs
from engine.metrics.verification import kfold_accuracy

Embed = Callable[[np.ndarray], np.ndarray]


def aligned_path(aligned_root: Path, original: Path) -> Path:
    """Where ``facescope prepare`` put the crop of an LFW image (``<Name>/<stem>.png``)."""
    return aligned_root / original.parent.name / f"{original.stem}.png"


@dataclass
class LfwPairs:
    """LFW pairs restricted to ``folds`` (0-based), with their aligned crop paths."""

    pairs: list[Pair]
    paths: list[Path]                 # unique aligned crops used by the pairs
    index: dict[Path, int]

    @classmethod
    def load(cls, pairs_txt: str | Path, aligned_root: str | Path, folds: Sequence[int] = range(10)) -> LfwPairs:
        root = Path(aligned_root)
        keep = set(folds)
        pairs = [p for p in read_pairs(pairs_txt, root) if p.fold in keep]
        if not pairs:
            raise ValueError(f"no pairs in folds {sorted(keep)} of {pairs_txt}")
        paths = sorted({aligned_path(root, q) for p in pairs for q in (p.path1, p.path2)})
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} aligned LFW crops missing (first: {missing[0]}); "
                                    f"run facescope prepare on LFW first")
        return cls(pairs, paths, {p: i for i, p in enumerate(paths)})

    def identities(self) -> set[str]:
        return {q.parent.name for p in self.pairs for q in (p.path1, p.path2)}

    def scores(self, embed: Embed, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """(cosine per pair, same-person flag per pair)."""
        emb = embed_crops(embed, self.paths, batch)
        root = self.paths[0].parents[1]
        i1 = np.array([self.index[aligned_path(root, p.path1)] for p in self.pairs])
        i2 = np.array([self.index[aligned_path(root, p.path2)] for p in self.pairs])
        return (emb[i1] * emb[i2]).sum(1), np.array([p.same for p in self.pairs])

    def evaluate(self, embed: Embed, batch: int = 128) -> dict:
        """Cross-validated accuracy over the chosen folds (threshold chosen on the others)."""
        scores, same = self.scores(embed, batch)
        res = kfold_accuracy(scores, same, np.array([p.fold for p in self.pairs]))
        return {"lfw_accuracy": res.accuracy, "lfw_std": res.accuracy_std, "lfw_threshold": res.mean_threshold}


def embed_crops(embed: Embed, paths: Sequence[Path], batch: int = 128) -> np.ndarray:
    """(N, D) unit embeddings of crop files, ``batch`` at a time. When ``embed`` carries a
    ``cache`` dict (path -> embedding), crops already embedded are not run again."""
    cache = getattr(embed, "cache", None)
    todo = [p for p in dict.fromkeys(paths) if cache is None or p not in cache]
    done = {}
    for i in range(0, len(todo), batch):
        e = embed(np.stack([read_image(p) for p in todo[i:i + batch]]))
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        done.update(zip(todo[i:i + batch], e, strict=True))
    if cache is not None:
        cache.update(done)
        done = cache
    return np.stack([done[p] for p in paths])


def open_set_split(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out identities -> (gallery, genuine probes, impostor probes) index arrays: half of
    the identities with 2+ images are enrolled (one gallery image, the rest probes), the other
    half and all single-image identities are impostors (people the gallery does not know)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    ids, counts = np.unique(labels, return_counts=True)
    multi = rng.permutation(ids[counts >= 2])
    enrolled = set(multi[: max(1, len(multi) // 2)].tolist())
    gallery, probes, impostors = [], [], []
    for c in ids:
        ix = np.flatnonzero(labels == c)
        if c in enrolled:
            gallery.append(ix[0])
            probes.extend(ix[1:])
        else:
            impostors.extend(ix)
    if not impostors:
        raise ValueError("open-set identification needs at least 2 identities with 2+ images or a single-image one")
    return np.array(gallery), np.array(probes), np.array(impostors)


def identification(embed: Embed, paths: Sequence[Path], labels: np.ndarray, fprs=(0.1, 0.05), seed: int = 0) -> dict:
    """Open-set DIR (TPR at FPR) and rank-1 on held-out identities."""
    g, p, imp = open_set_split(labels, seed)
    emb = embed_crops(embed, paths)
    probes = np.concatenate([p, imp])
    r = identification_rates(emb[g], labels[g], emb[probes], labels[probes], fprs=fprs)
    return {**{f"dir@fpr{f:g}": float(r.tpr_at_fpr[f]) for f in fprs}, "rank1": float(r.rank1)}
