"""Weight initialisation shared by the trainable backbones."""
from __future__ import annotations

from torch import nn


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan-out) convolutions, unit/zero batch norms: the usual start for
    PReLU/ReLU conv nets (He et al. 2015), as in insightface's arcface_torch."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
