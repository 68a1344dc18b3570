"""Face-recognition training losses: one registry (``LOSSES``), one factory (``create_loss``).

``create_loss(name, embedding_size, num_classes)`` returns a :class:`FaceLoss`,
``forward(embeddings (N, D) float, labels (N,) int64) -> scalar``:

- head losses ("softmax", "normface", "sphereface", "cosface", "arcface", "combined", "focal",
  "ohem") own a classification head (``loss.head``, with its W (C, D)) that the trainer must
  optimise with the backbone; ``loss.logits(embeddings)`` gives margin-free logits (N, C);
- metric losses ("contrastive", "triplet", "triplet-semihard", "triplet-batchhard") have no
  parameters (``loss.head is None``), ``loss.metric`` is True: they need P x K batches.

Extra keyword arguments go to the head / criterion constructors, e.g.
``create_loss("arcface", 128, 10, s=30, m=0.4)`` or ``create_loss("focal", 128, 10, head="cosface", gamma=1)``.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.registry import Registry
from engine.train.losses.criteria import CrossEntropy, FocalLoss, OHEMLoss
from engine.train.losses.heads import (
    ArcFaceHead,
    CombinedMarginHead,
    CosFaceHead,
    NormFaceHead,
    SoftmaxHead,
    SphereFaceHead,
)
from engine.train.losses.metric import ContrastiveLoss, TripletLoss

__all__ = ["HEADS", "LOSSES", "FaceLoss", "HeadLoss", "MetricLoss", "create_loss"]

HEADS: Registry[nn.Module] = Registry("loss head")
for _name, _cls in (("softmax", SoftmaxHead), ("normface", NormFaceHead), ("sphereface", SphereFaceHead),
                    ("cosface", CosFaceHead), ("arcface", ArcFaceHead), ("combined", CombinedMarginHead)):
    HEADS.register(_name)(_cls)


class FaceLoss(nn.Module):
    """``forward(embeddings (N, D), labels (N,)) -> scalar``; ``metric`` says which sampler it needs."""

    metric: bool = False


class HeadLoss(FaceLoss):
    """A classification head (logits with margin) followed by a criterion over those logits."""

    metric = False

    def __init__(self, head: nn.Module, criterion: nn.Module) -> None:
        super().__init__()
        self.head, self.criterion = head, criterion

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.head(embeddings, labels), labels)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Margin-free logits (N, C) for prediction (no labels, so no margin in any mode)."""
        return self.head(embeddings)


class MetricLoss(FaceLoss):
    """An embedding loss over the batch itself; no parameters, no head."""

    metric = True

    def __init__(self, criterion: nn.Module) -> None:
        super().__init__()
        self.criterion = criterion
        self.head = None

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.criterion(embeddings, labels)


LOSSES: Registry[FaceLoss] = Registry("loss")


def _head_loss(loss: str, head: str, criterion: nn.Module, embedding_size: int, num_classes: int | None,
               kwargs: dict) -> HeadLoss:
    if num_classes is None:
        raise ValueError(f"loss {loss!r} trains a classification head and needs num_classes "
                         "(only contrastive / triplet losses work without)")
    return HeadLoss(HEADS.create(head, embedding_size=embedding_size, num_classes=num_classes, **kwargs), criterion)


def _register_ce(name: str) -> None:
    @LOSSES.register(name)
    def factory(embedding_size: int, num_classes: int | None = None, **kwargs) -> HeadLoss:
        return _head_loss(name, name, CrossEntropy(), embedding_size, num_classes, kwargs)


for _name in HEADS.names():
    _register_ce(_name)


@LOSSES.register("focal")
def _focal(embedding_size: int, num_classes: int | None = None, head: str = "arcface", gamma: float = 2.0,
           **kwargs) -> HeadLoss:
    return _head_loss("focal", head, FocalLoss(gamma), embedding_size, num_classes, kwargs)


@LOSSES.register("ohem")
def _ohem(embedding_size: int, num_classes: int | None = None, head: str = "arcface", keep_ratio: float = 0.7,
          min_kept: int = 1, **kwargs) -> HeadLoss:
    return _head_loss("ohem", head, OHEMLoss(keep_ratio, min_kept), embedding_size, num_classes, kwargs)


def _metric_loss(embedding_size: int, criterion: nn.Module) -> MetricLoss:
    # the size is unused, but a bad one means a misconfigured run: say so now
    if not embedding_size >= 1:
        raise ValueError(f"embedding_size must be >= 1, got {embedding_size}")
    return MetricLoss(criterion)


# num_classes is accepted (and ignored) by the metric losses so a trainer can pass it uniformly
@LOSSES.register("contrastive")
def _contrastive(embedding_size: int, num_classes: int | None = None, margin: float = 0.5) -> MetricLoss:
    return _metric_loss(embedding_size, ContrastiveLoss(margin))


@LOSSES.register("triplet")
def _triplet(embedding_size: int, num_classes: int | None = None, margin: float = 0.2, mining: str = "random",
             seed: int | None = None) -> MetricLoss:
    return _metric_loss(embedding_size, TripletLoss(margin, mining, seed))


@LOSSES.register("triplet-semihard")
def _triplet_semihard(embedding_size: int, num_classes: int | None = None, margin: float = 0.2,
                      seed: int | None = None) -> MetricLoss:
    return _metric_loss(embedding_size, TripletLoss(margin, "semi_hard", seed))


@LOSSES.register("triplet-batchhard")
def _triplet_batchhard(embedding_size: int, num_classes: int | None = None, margin: float = 0.2,
                       seed: int | None = None) -> MetricLoss:
    return _metric_loss(embedding_size, TripletLoss(margin, "batch_hard", seed))


def create_loss(name: str, embedding_size: int, num_classes: int | None = None, **kwargs) -> FaceLoss:
    """The one factory: ``LOSSES.create(name, ...)``; unknown name or invalid value -> ValueError."""
    return LOSSES.create(name, embedding_size=embedding_size, num_classes=num_classes, **kwargs)
