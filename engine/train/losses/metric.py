"""Metric-learning losses over a labelled batch: ``(embeddings (N, D) float, labels (N,) int64) -> scalar``.

No weight matrix: the loss compares the batch's embeddings with each other, so batches need
several samples per identity (a P x K sampler). Embeddings are L2-normalised first and
compared by plain (not squared) Euclidean distance d in [0, 2] (chord length on the unit
sphere), so margins are in those units.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MINING = ("batch_hard", "semi_hard", "random")


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N, N) between the L2-normalised rows of ``embeddings`` (N, D).

    Uses ||a - b||^2 = 2 - 2 a.b on the unit sphere (no (N, N, D) difference tensor). The
    diagonal and coincident points are exactly 0 with a zero (not NaN) gradient.
    """
    x = F.normalize(embeddings.float(), dim=1)
    d2 = (2.0 - 2.0 * x @ x.t()).clamp_min(0.0)
    zero = (d2 <= 0) | torch.eye(len(x), dtype=torch.bool, device=x.device)
    # sqrt'(0) is infinite: take the root only where it is well defined (double-where trick)
    return torch.where(zero, torch.zeros_like(d2), torch.sqrt(torch.where(zero, torch.ones_like(d2), d2)))


class ContrastiveLoss(nn.Module):
    """Contrastive loss (Hadsell, Chopra & LeCun 2006) over all pairs i < j of the batch.

    Positive pair (same label): d^2; negative pair: max(0, margin - d)^2; mean over the
    N(N-1)/2 pairs (no 1/2 factor). Fewer than 2 samples: a zero that still has a gradient.
    """

    def __init__(self, margin: float = 0.5) -> None:
        super().__init__()
        if not margin > 0:
            raise ValueError(f"contrastive margin must be > 0, got {margin}")
        self.margin = float(margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.view(-1).to(embeddings.device)
        n = labels.numel()
        if n < 2:
            return embeddings.sum() * 0.0
        d = pairwise_distances(embeddings)
        i, j = torch.triu_indices(n, n, offset=1, device=d.device)
        d = d[i, j]
        per_pair = torch.where(labels[i] == labels[j], d.pow(2), F.relu(self.margin - d).pow(2))
        return per_pair.mean()


class TripletLoss(nn.Module):
    """Triplet loss (Schroff et al. 2015, FaceNet) with in-batch mining.

    loss = mean over mined triplets (a, p, n) of max(0, d(a, p) - d(a, n) + margin), zero
    terms included. Only anchors with at least one positive (same label, not itself) and one
    negative take part; with none, a zero that still has a gradient. Mining:

    - ``random``: per anchor one random positive and one random negative (from a
      ``torch.Generator`` seeded with ``seed``, else torch's global RNG);
    - ``batch_hard`` (Hermans et al. 2017): per anchor the farthest positive, nearest negative;
    - ``semi_hard`` (FaceNet): per anchor-positive pair the nearest negative with
      d(a, n) > d(a, p), falling back to the nearest negative when there is none.
    """

    def __init__(self, margin: float = 0.2, mining: str = "batch_hard", seed: int | None = None) -> None:
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"triplet margin must be >= 0, got {margin}")
        if mining not in MINING:
            raise ValueError(f"unknown triplet mining {mining!r}; available: {', '.join(MINING)}")
        self.margin, self.mining = float(margin), mining
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    def select(self, distances: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mined triplets as index tensors (anchors, positives, negatives), each (T,) int64."""
        labels = labels.view(-1).to(distances.device)
        same = labels[:, None] == labels[None, :]
        pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        neg = ~same
        has_neg = neg.any(1)
        if self.mining == "semi_hard":
            a, p = (pos & has_neg[:, None]).nonzero(as_tuple=True)
            d_an, neg_a = distances[a], neg[a]
            semi = neg_a & (d_an > distances[a, p][:, None])
            nearest_semi = d_an.masked_fill(~semi, float("inf")).argmin(1)
            nearest = d_an.masked_fill(~neg_a, float("inf")).argmin(1)
            return a, p, torch.where(semi.any(1), nearest_semi, nearest)
        if self.mining == "batch_hard":
            score_p, score_n = distances, -distances
        else:  # random: the argmax of uniform noise over the allowed entries is a uniform pick
            noise = torch.rand((2, *distances.shape), generator=self.generator).to(distances.device)
            score_p, score_n = noise[0], noise[1]
        a = (pos.any(1) & has_neg).nonzero().squeeze(1)
        p = score_p.masked_fill(~pos, -float("inf")).argmax(1)
        n = score_n.masked_fill(~neg, -float("inf")).argmax(1)
        return a, p[a], n[a]

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = pairwise_distances(embeddings)
        a, p, n = self.select(d.detach(), labels)
        if a.numel() == 0:
            return embeddings.sum() * 0.0
        return F.relu(d[a, p] - d[a, n] + self.margin).mean()
