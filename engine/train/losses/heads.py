"""Classification heads for face-recognition training: class centres W (C, D) -> logits (N, C).

Every head owns ``weight`` W (num_classes, embedding_size), xavier-normal initialised from
torch's global RNG, and maps ``(embeddings (N, D) float, labels (N,) int64 | None) -> logits
(N, C) float32``. The margin touches the target logit only in training mode with labels given;
in eval mode or with ``labels=None`` a head returns its plain (scaled) cosine logits, so the
same module predicts. theta_j is the angle (radians) between an embedding and centre j; ``s``
is a dimensionless scale, additive-angle margins are radians, additive-cosine margins cosines.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# acos has an infinite slope at +-1: stay this far inside so gradients stay finite
_ACOS_EPS = 1e-7
# sqrt has an infinite slope at 0: floor sin^2 here (sin error <= 1e-6, below float32 logit noise)
_SIN2_EPS = 1e-12


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


class _Head(nn.Module):
    """Owns the class-centre matrix ``weight`` (C, D)."""

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        _require(embedding_size >= 1, f"embedding_size must be >= 1, got {embedding_size}")
        _require(num_classes >= 1, f"num_classes must be >= 1, got {num_classes}")
        self.embedding_size, self.num_classes = int(embedding_size), int(num_classes)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.embedding_size))
        nn.init.xavier_normal_(self.weight)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """cos(theta_j) (N, C) between L2-normalised embeddings and L2-normalised centres."""
        cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))
        # margins live near cos = +-1, where half precision (autocast) is too coarse
        return cos.float().clamp(-1.0, 1.0)


class SoftmaxHead(_Head):
    """Plain linear classifier: logits = x W^T + b (N, C); no normalisation, no margin."""

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__(embedding_size, num_classes)
        self.bias = nn.Parameter(torch.zeros(self.num_classes))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(embeddings, self.weight, self.bias).float()


class NormFaceHead(_Head):
    """NormFace (Wang et al. 2017): logits = s * cos(theta_j), x and W both L2-normalised.

    Subclasses add a margin by overriding ``margin(cos_target (N, 1)) -> (N, 1)``.
    """

    def __init__(self, embedding_size: int, num_classes: int, s: float = 16.0) -> None:
        super().__init__(embedding_size, num_classes)
        _require(s > 0, f"scale s must be > 0, got {s}")
        self.s = float(s)

    def margin(self, cos: torch.Tensor) -> torch.Tensor:
        return cos

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cos = self.cosine(embeddings)
        if self.training and labels is not None:
            index = labels.long().view(-1, 1)
            cos = cos.scatter(1, index, self.margin(cos.gather(1, index)))
        return self.s * cos


class CosFaceHead(NormFaceHead):
    """CosFace / LMCL (Wang et al. 2018): target logit s * (cos(theta_y) - m), m in cosine units."""

    def __init__(self, embedding_size: int, num_classes: int, s: float = 64.0, m: float = 0.35) -> None:
        super().__init__(embedding_size, num_classes, s)
        _require(m >= 0, f"margin m must be >= 0, got {m}")
        self.m = float(m)

    def margin(self, cos: torch.Tensor) -> torch.Tensor:
        return cos - self.m


class ArcFaceHead(NormFaceHead):
    """ArcFace (Deng et al. 2019): target logit s * cos(theta_y + m), m in radians.

    cos(theta + m) = cos * cos(m) - sin * sin(m), sin = sqrt(1 - cos^2). Past theta + m > pi the
    curve would rise again, so (as in insightface / the original ArcFace code) where
    cos(theta) <= cos(pi - m) the target becomes cos(theta) - m * sin(pi - m) instead.
    ``easy_margin`` keeps cos(theta) wherever cos(theta) <= 0.
    """

    def __init__(self, embedding_size: int, num_classes: int, s: float = 64.0, m: float = 0.5,
                 easy_margin: bool = False) -> None:
        super().__init__(embedding_size, num_classes, s)
        _require(0 <= m < math.pi, f"margin m must be in [0, pi) radians, got {m}")
        self.m, self.easy_margin = float(m), bool(easy_margin)
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.th, self.mm = math.cos(math.pi - m), math.sin(math.pi - m) * m

    def margin(self, cos: torch.Tensor) -> torch.Tensor:
        sin = torch.sqrt((1.0 - cos * cos).clamp(_SIN2_EPS, 1.0))
        phi = cos * self.cos_m - sin * self.sin_m
        if self.easy_margin:
            return torch.where(cos > 0, phi, cos)
        return torch.where(cos > self.th, phi, cos - self.mm)


class CombinedMarginHead(NormFaceHead):
    """insightface combined margin: target logit s * (cos(m1 * theta_y + m2) - m3).

    m1 = multiplicative angle (SphereFace-like), m2 = additive angle in radians (ArcFace),
    m3 = additive cosine (CosFace). Taken literally, without ArcFace's theta + m > pi fallback.
    """

    def __init__(self, embedding_size: int, num_classes: int, s: float = 64.0, m1: float = 1.0, m2: float = 0.5,
                 m3: float = 0.0) -> None:
        super().__init__(embedding_size, num_classes, s)
        _require(m1 > 0, f"margin m1 must be > 0, got {m1}")
        _require(m2 >= 0, f"margin m2 must be >= 0, got {m2}")
        _require(m3 >= 0, f"margin m3 must be >= 0, got {m3}")
        self.m1, self.m2, self.m3 = float(m1), float(m2), float(m3)

    def margin(self, cos: torch.Tensor) -> torch.Tensor:
        theta = torch.acos(cos.clamp(-1.0 + _ACOS_EPS, 1.0 - _ACOS_EPS))
        return torch.cos(self.m1 * theta + self.m2) - self.m3


def chebyshev(x: torch.Tensor, n: int) -> torch.Tensor:
    """T_n(x) = cos(n * acos(x)) for an int n >= 0, by T_{k+1} = 2x T_k - T_{k-1}.

    A polynomial, so unlike acos its gradient stays finite at x = +-1.
    """
    prev, cur = torch.ones_like(x), x
    if n == 0:
        return prev
    for _ in range(n - 1):
        prev, cur = cur, 2 * x * cur - prev
    return cur


class SphereFaceHead(_Head):
    """A-Softmax (Liu et al. 2017, SphereFace) as in the original Caffe layer.

    W is L2-normalised, x is not: non-target logits |x| cos(theta_j), target logit
    (lambda |x| cos(theta_y) + |x| psi(theta_y)) / (1 + lambda), where
    psi(theta) = (-1)^k cos(m theta) - 2k, k = floor(m theta / pi). lambda is annealed:
    lambda = max(lambda_min, base * (1 + gamma * it)^(-power)), with ``it`` (a buffer, so it
    is checkpointed) counting the margin-applying forward calls; like the Caffe layer, call
    number k (k = 1, 2, ...) uses lambda at it = k. Eval logits are |x| cos(theta_j).
    """

    def __init__(self, embedding_size: int, num_classes: int, m: int = 4, base: float = 1000.0, gamma: float = 0.12,
                 power: float = 1.0, lambda_min: float = 5.0) -> None:
        super().__init__(embedding_size, num_classes)
        _require(isinstance(m, int) and m >= 1, f"margin m must be an int >= 1, got {m!r}")
        _require(base > 0, f"base must be > 0, got {base}")
        _require(gamma >= 0, f"gamma must be >= 0, got {gamma}")
        _require(power >= 0, f"power must be >= 0, got {power}")
        _require(lambda_min >= 0, f"lambda_min must be >= 0, got {lambda_min}")
        self.m, self.base, self.gamma = m, float(base), float(gamma)
        self.power, self.lambda_min = float(power), float(lambda_min)
        self.register_buffer("it", torch.zeros((), dtype=torch.long))

    def lambda_at(self, it: int) -> float:
        return max(self.lambda_min, self.base * (1.0 + self.gamma * it) ** -self.power)

    @property
    def lamb(self) -> float:
        """Lambda used by the latest margin-applying call (base before any)."""
        return self.lambda_at(int(self.it))

    def psi(self, cos: torch.Tensor) -> torch.Tensor:
        """SphereFace's ψ(θ) from cos θ (any shape): monotonically decreasing on [0, π], ψ(0) = 1."""
        with torch.no_grad():  # k is piecewise constant: no gradient to lose
            k = torch.floor(self.m * torch.acos(cos.clamp(-1.0, 1.0)) / math.pi)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
        return sign * chebyshev(cos, self.m) - 2.0 * k

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        norm = embeddings.float().norm(dim=1, keepdim=True)
        cos = self.cosine(embeddings)
        if self.training and labels is not None:
            self.it += 1
            lamb = self.lamb
            index = labels.long().view(-1, 1)
            target = cos.gather(1, index)
            cos = cos.scatter(1, index, (lamb * target + self.psi(target)) / (1.0 + lamb))
        return norm * cos
