"""Face ResNets for 112x112 aligned faces ("IResNet", as in InsightFace's arcface_torch).

Differences from ImageNet ResNets, all for small aligned faces: a 3x3 stride-1 stem (no 7x7
conv, no max-pool) so the four stride-2 stages end on a 7x7 map; pre-activation style blocks
BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN (+ shortcut, no activation after the add);
and the head BN -> Dropout -> Flatten -> FC -> BN(embedding), which keeps the spatial layout of
the 7x7 map (an aligned face's eyes are always at the same place) instead of pooling it away.
``se_*`` adds squeeze-excitation (Hu et al., 2018) to every block. ``width`` scales the channel
counts 64/128/256/512 for quick CPU experiments (1.0 = the published networks).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.train.backbones.init import init_weights

INPUT_NORMALISATION = {"mean": (127.5, 127.5, 127.5), "std": (127.5, 127.5, 127.5), "color_order": "BGR"}
LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
BASE_CHANNELS = (64, 128, 256, 512)
INPUT_SIZE = 112
MIN_CHANNELS = 8


class SqueezeExcite(nn.Module):
    """Per-channel gates from the globally pooled features: (N, C, H, W) -> same shape."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)  # narrow widths would otherwise leave no hidden units
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class BasicBlock(nn.Module):
    """BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN [-> SE] + shortcut (1x1 conv + BN if shapes differ)."""

    def __init__(self, cin: int, cout: int, stride: int, se: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
            *([SqueezeExcite(cout)] if se else []),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class FaceResNet(nn.Module):
    """(N, 3, 112, 112) float32 ``(BGR pixel - 127.5) / 127.5`` -> (N, embedding_size), not L2-normalised.

    The embedding BatchNorm1d has its scale fixed at 1 (only its shift trains), as in arcface_torch,
    and needs N >= 2 in training mode.
    """

    def __init__(self, depth: int = 18, embedding_size: int = 512, dropout: float = 0.0, width: float = 1.0,
                 se: bool = False) -> None:
        super().__init__()
        if depth not in LAYERS:
            raise ValueError(f"depth must be one of {sorted(LAYERS)}, got {depth}")
        if embedding_size <= 0:
            raise ValueError(f"embedding_size must be a positive integer, got {embedding_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0.0 < width <= 4.0:
            raise ValueError(f"width must be in (0, 4], got {width}")
        self.embedding_size = embedding_size
        channels = [max(MIN_CHANNELS, round(c * width)) for c in BASE_CHANNELS]
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]),
                                  nn.PReLU(channels[0]))
        stages: list[nn.Module] = []
        cin = channels[0]
        for cout, blocks in zip(channels, LAYERS[depth], strict=True):
            stages.append(nn.Sequential(*(BasicBlock(cin if i == 0 else cout, cout, 2 if i == 0 else 1, se)
                                          for i in range(blocks))))
            cin = cout
        self.stages = nn.Sequential(*stages)
        side = INPUT_SIZE // 16  # four stride-2 stages: 112 -> 7
        self.head = nn.Sequential(nn.BatchNorm2d(cin), nn.Dropout(dropout), nn.Flatten(),
                                  nn.Linear(cin * side * side, embedding_size), nn.BatchNorm1d(embedding_size))
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def _init(model: FaceResNet) -> None:
    init_weights(model)
    # a fixed unit scale on the embedding BN: the loss's own scale s sets the logit magnitude
    model.head[-1].weight.requires_grad_(False)


def resnet18(embedding_size: int = 512, dropout: float = 0.0, width: float = 1.0) -> FaceResNet:
    return FaceResNet(18, embedding_size, dropout, width)


def resnet34(embedding_size: int = 512, dropout: float = 0.0, width: float = 1.0) -> FaceResNet:
    return FaceResNet(34, embedding_size, dropout, width)


def se_resnet18(embedding_size: int = 512, dropout: float = 0.0, width: float = 1.0) -> FaceResNet:
    return FaceResNet(18, embedding_size, dropout, width, se=True)


def se_resnet34(embedding_size: int = 512, dropout: float = 0.0, width: float = 1.0) -> FaceResNet:
    return FaceResNet(34, embedding_size, dropout, width, se=True)
