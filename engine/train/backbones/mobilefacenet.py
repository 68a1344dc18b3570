"""MobileFaceNet (Chen et al., 2018): a ~1M-parameter face embedder for 112x112 aligned faces.

Layout (paper Table 1): 3x3/2 conv 64 -> 3x3 depthwise 64 -> inverted-residual bottlenecks
(t=2 c=64 n=5 s=2; t=4 c=128 n=1 s=2; t=2 c=128 n=6 s=1; t=4 c=128 n=1 s=2; t=2 c=128 n=2 s=1)
-> 1x1 conv 512 -> linear 7x7 global depthwise conv (GDC) -> linear 1x1 conv to the embedding
-> BN. Every conv is followed by BN; PReLU after all but the linear ones. The GDC replaces global
average pooling because the centre and the corners of an aligned face are not equally important.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.train.backbones.init import init_weights

# (expansion t, out channels c, repeats n, first stride s), as in the paper
SETTINGS: tuple[tuple[int, int, int, int], ...] = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2),
                                                   (2, 128, 2, 1))
INPUT_NORMALISATION = {"mean": (127.5, 127.5, 127.5), "std": (127.5, 127.5, 127.5), "color_order": "BGR"}


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True,
            padding: int | None = None) -> nn.Sequential:
    """Conv ("same" padding unless given; no bias: BN follows) -> BN -> PReLU (not for linear layers)."""
    padding = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride) -> linear 1x1 project, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.body = nn.Sequential(conv_bn(cin, mid), conv_bn(mid, mid, 3, stride, groups=mid),
                                  conv_bn(mid, cout, act=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    """(N, 3, 112, 112) float32 ``(BGR pixel - 127.5) / 127.5`` -> (N, embedding_size), not L2-normalised.

    The final BatchNorm1d needs N >= 2 in training mode (as in every ArcFace-style head).
    """

    def __init__(self, embedding_size: int = 128) -> None:
        super().__init__()
        if embedding_size <= 0:
            raise ValueError(f"embedding_size must be a positive integer, got {embedding_size}")
        self.embedding_size = embedding_size
        self.stem = nn.Sequential(conv_bn(3, 64, 3, 2), conv_bn(64, 64, 3, groups=64))
        blocks: list[nn.Module] = []
        cin = 64
        for t, c, n, s in SETTINGS:
            for i in range(n):
                blocks.append(Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.conv_sep = conv_bn(cin, 512)
        self.gdc = conv_bn(512, 512, 7, groups=512, act=False, padding=0)  # 7x7 map -> 1x1, one weight per position
        self.linear = nn.Conv2d(512, embedding_size, 1, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gdc(self.conv_sep(self.blocks(self.stem(x))))
        return self.bn(torch.flatten(self.linear(x), 1))


def _init(model: nn.Module) -> None:
    init_weights(model)
