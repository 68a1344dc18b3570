"""Classification criteria over head logits: ``(logits (N, C) float, labels (N,) int64) -> scalar``.

All three are the multi-class softmax cross-entropy family; they differ only in how the
per-sample terms -log p_t (p_t = softmax(logits)[label], in nats) are weighted and averaged.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class CrossEntropy(nn.Module):
    """Mean softmax cross-entropy: mean_i -log p_t(i)."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels.long())


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017, RetinaNet), multi-class softmax form.

    loss = mean_i -(1 - p_t)^gamma log p_t. gamma = 0 is plain cross-entropy; larger gamma
    down-weights samples the model already classifies confidently.
    """

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_pt = F.log_softmax(logits.float(), dim=1).gather(1, labels.long().view(-1, 1)).squeeze(1)
        # 1 - p_t via expm1 keeps precision as p_t -> 1; the floor keeps x^gamma's slope finite
        # there (gamma < 1), where it would otherwise give inf * 0 = NaN gradients
        weight = (-torch.expm1(log_pt)).clamp_min(1e-12).pow(self.gamma)
        return -(weight * log_pt).mean()


class OHEMLoss(nn.Module):
    """Online hard example mining: mean cross-entropy of the hardest samples of the batch.

    Per-sample CE (N,), keep the k = max(min_kept, ceil(keep_ratio * N)) largest (at most N),
    return their mean. The discarded easy samples get no gradient.
    """

    def __init__(self, keep_ratio: float = 0.7, min_kept: int = 1) -> None:
        super().__init__()
        if not 0 < keep_ratio <= 1:
            raise ValueError(f"OHEM keep_ratio must be in (0, 1], got {keep_ratio}")
        if not (isinstance(min_kept, int) and min_kept >= 1):
            raise ValueError(f"OHEM min_kept must be an int >= 1, got {min_kept!r}")
        self.keep_ratio, self.min_kept = float(keep_ratio), min_kept

    def num_kept(self, n: int) -> int:
        # the epsilon stops float noise (0.35 * 20 = 7.000000000000001) from keeping one extra sample
        return min(n, max(self.min_kept, math.ceil(self.keep_ratio * n - 1e-9)))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per_sample = F.cross_entropy(logits.float(), labels.long(), reduction="none")
        return per_sample.topk(self.num_kept(per_sample.numel())).values.mean()
