"""Aligned face crops for embedder training: identity-folder dataset, P x K sampler, augmentation.

Layout: ``root/<identity>/<image>`` of 112x112 aligned crops (``facescope prepare`` writes it;
CASIA-WebFace and LFW unpack to it). Crops are decoded once into memory (uint8: 37.6 kB each,
so 100k faces need ~3.8 GB; pass ``cache=False`` for bigger sets). Augmentations are a
function of (seed, epoch, index): reproducible runs, new draws each epoch.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from engine.align import crops_to_tensor
from engine.imageio import read_image
from engine.metrics.lfw import list_identity_folder


@dataclass(frozen=True)
class FaceAugment:
    """Strengths; ``FaceAugment.none()`` is evaluation. ``affine``: max rotation (degrees) and
    shift/scale (fraction) of a small similarity jitter — alignment already did the big work."""

    flip: float = 0.5
    color: float = 0.2
    grayscale: float = 0.1
    affine_deg: float = 5.0
    affine_shift: float = 0.03
    erase: float = 0.2

    @classmethod
    def none(cls) -> FaceAugment:
        return cls(0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Normalisation:
    """Network input: ``(pixel - mean) / std`` in ``color_order`` (the backbone's convention)."""

    mean: float = 127.5
    std: float = 127.5
    color_order: str = "BGR"

    def __post_init__(self) -> None:
        if self.std <= 0 or self.color_order not in ("BGR", "RGB"):
            raise ValueError(f"invalid normalisation {self}")

    def tensor(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 BGR -> (N, 3, H, W) float32."""
        return crops_to_tensor(crops, self.mean, self.std, self.color_order == "RGB")


def augment(crop: np.ndarray, a: FaceAugment, rng: np.random.Generator) -> np.ndarray:
    """One (H, W, 3) uint8 crop -> augmented copy: flip, small similarity, colour, grey, erasing."""
    h, w = crop.shape[:2]
    img = crop
    if rng.random() < a.flip:
        img = img[:, ::-1]
    if a.affine_deg or a.affine_shift:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-a.affine_deg, a.affine_deg),
                                    1 + rng.uniform(-a.affine_shift, a.affine_shift))
        m[:, 2] += rng.uniform(-a.affine_shift, a.affine_shift, 2) * (w, h)
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    if a.color:
        f = img.astype(np.float32) * rng.uniform(1 - a.color, 1 + a.color) + rng.uniform(-a.color, a.color) * 64
        grey = f.mean(2, keepdims=True)
        img = np.clip(grey + (f - grey) * rng.uniform(1 - a.color, 1 + a.color), 0, 255).astype(np.uint8)
    if rng.random() < a.grayscale:
        img = np.repeat(img.mean(2, keepdims=True).astype(np.uint8), 3, axis=2)
    if rng.random() < a.erase:     # random erasing (Zhong et al. 2020), noise fill
        eh, ew = (rng.uniform(0.1, 0.4, 2) * (h, w)).astype(int)
        y, x = rng.integers(0, h - eh), rng.integers(0, w - ew)
        img = np.array(img)
        img[y:y + eh, x:x + ew] = rng.integers(0, 256, (eh, ew, 3), dtype=np.uint8)
    return np.ascontiguousarray(img)


class FaceFolder(Dataset):
    """``(image (3, H, W) float32, label int64)`` for every crop of ``paths``/``labels``.

    Build with :meth:`from_root` (every identity folder) or from an explicit subset (identity
    splits). ``labels`` are re-indexed 0..C-1 in order of appearance; ``names[c]`` keeps the
    folder name."""

    def __init__(self, paths: Sequence[Path], labels: np.ndarray, names: Sequence[str],
                 norm: Normalisation = Normalisation(), aug: FaceAugment = FaceAugment(), seed: int = 0,
                 cache: bool = True) -> None:
        labels = np.asarray(labels, np.int64)
        if len(paths) != len(labels) or len(paths) == 0:
            raise ValueError(f"{len(paths)} paths and {len(labels)} labels (need the same, > 0)")
        uniq, self.labels = np.unique(labels, return_inverse=True)
        self.names = [names[u] for u in uniq]
        self.paths, self.norm, self.aug, self.seed, self.epoch = list(paths), norm, aug, seed, 0
        self._crops = np.stack([read_image(p) for p in self.paths]) if cache else None

    @classmethod
    def from_root(cls, root: str | Path, **kwargs) -> FaceFolder:
        paths, labels, names = list_identity_folder(root)
        return cls(paths, labels, names, **kwargs)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def crop(self, i: int) -> np.ndarray:
        return self._crops[i] if self._crops is not None else read_image(self.paths[i])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = augment(self.crop(i), self.aug, np.random.default_rng((self.seed, self.epoch, i)))
        return torch.from_numpy(self.norm.tensor(img[None])[0]), int(self.labels[i])


class PKSampler(Sampler[list[int]]):
    """Batches of ``p`` identities x ``k`` images each (metric losses need positives in every
    batch). Identities with fewer than ``k`` images are sampled with replacement; each epoch
    visits every identity with >= 2 images about once. Deterministic per (seed, epoch); under
    DDP each of ``world`` ranks takes its own share of the batches."""

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        if p < 2 or k < 2:
            raise ValueError(f"P x K sampling needs p >= 2 and k >= 2, got p={p}, k={k}")
        labels = np.asarray(labels)
        self.by_id = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        self.by_id = [ix for ix in self.by_id if len(ix) >= 2]
        if len(self.by_id) < p:
            raise ValueError(f"only {len(self.by_id)} identities have 2+ images; P x K needs p={p}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world size {world}")
        self.p, self.k, self.seed, self.epoch, self.rank, self.world = p, k, seed, 0, rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.by_id) // self.p // self.world

    def __iter__(self) -> Iterator[list[int]]:
        """Every rank draws the same epoch plan (same seed) and keeps every world-th batch."""
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.by_id))
        for b in range(len(self) * self.world):
            batch = []
            for c in order[b * self.p:(b + 1) * self.p]:
                ix = self.by_id[c]
                batch.extend(rng.choice(ix, self.k, replace=len(ix) < self.k).tolist())
            if b % self.world == self.rank:
                yield batch
