"""Stacked hourglass network (Newell et al., 2016) sized for real time on a CPU.

Input (N, 3, S, S) normalised crop (S = 128 by default) -> a stem at stride 4 -> ``stacks``
hourglasses of ``depth`` down/up levels over ``channels`` features -> per stack (N, K, S/4,
S/4) heatmap logits; intermediate supervision on every stack, and each stack's heatmaps are
fed back into the next (the paper's re-injection). Residual blocks are post-activation
(conv-BN-ReLU) so that ONNX Runtime / TensorRT fold every BN into its convolution.
At 128 px, 2 stacks, 64 channels: ~0.12 GMAC, a few ms per face on two CPU cores.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """Bottleneck 1x1 -> 3x3 -> 1x1 with a projection when channels change."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = max(cout // 2, 8)
        self.body = nn.Sequential(conv_bn(cin, mid), conv_bn(mid, mid, 3), conv_bn(mid, cout, relu=False))
        self.skip = nn.Identity() if cin == cout else conv_bn(cin, cout, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class Hourglass(nn.Module):
    """One hourglass: skip branch at this scale + (pool -> recurse -> upsample)."""

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.up = Residual(channels, channels)
        self.low1 = Residual(channels, channels)
        self.low2 = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class StackedHourglass(nn.Module):
    """``forward(x) -> list of (N, K, S/4, S/4) heatmap logits`` (one per stack, last = final)."""

    def __init__(self, points: int = 68, stacks: int = 2, depth: int = 3, channels: int = 64) -> None:
        super().__init__()
        self.points, self.stacks, self.depth, self.channels = points, stacks, depth, channels
        self.stem = nn.Sequential(conv_bn(3, 32, 3, stride=2), Residual(32, channels // 2), nn.MaxPool2d(2),
                                  Residual(channels // 2, channels))
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels) for _ in range(stacks))
        self.features = nn.ModuleList(nn.Sequential(Residual(channels, channels), conv_bn(channels, channels))
                                      for _ in range(stacks))
        self.heads = nn.ModuleList(nn.Conv2d(channels, points, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1))
        self.merge_heatmaps = nn.ModuleList(nn.Conv2d(points, channels, 1) for _ in range(stacks - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i in range(self.stacks):
            feat = self.features[i](self.hourglasses[i](x))
            hm = self.heads[i](feat)
            outs.append(hm)
            if i < self.stacks - 1:
                x = x + self.merge_features[i](feat) + self.merge_heatmaps[i](hm)
        return outs


class FinalHeatmaps(nn.Module):
    """Export wrapper: only the last stack's heatmaps (what the app decodes)."""

    def __init__(self, net: StackedHourglass) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[-1]


def soft_argmax(heatmaps: torch.Tensor, stride: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch twin of :func:`engine.landmarks.heatmap.soft_argmax`: (N,K,H,W) logits ->
    ((N,K,2) crop px, (N,K,H*W) log-probabilities). Tested equal to the numpy decoder."""
    n, k, h, w = heatmaps.shape
    logp = F.log_softmax(heatmaps.reshape(n, k, h * w).float(), dim=-1)
    p = logp.exp().reshape(n, k, h, w)
    xs = torch.arange(w, dtype=p.dtype, device=p.device)
    ys = torch.arange(h, dtype=p.dtype, device=p.device)
    ex = (p.sum(2) * xs).sum(-1)
    ey = (p.sum(3) * ys).sum(-1)
    off = (stride - 1) / 2.0
    return torch.stack([ex * stride + off, ey * stride + off], -1), logp


def gaussian_targets(points: torch.Tensor, h: int, w: int, stride: float, sigma: float) -> torch.Tensor:
    """(N,K,2) crop px -> (N,K,H*W) normalised Gaussian distributions (sigma in cells)."""
    off = (stride - 1) / 2.0
    cells = (points - off) / stride
    ys, xs = torch.meshgrid(torch.arange(h, dtype=points.dtype), torch.arange(w, dtype=points.dtype), indexing="ij")
    d2 = (xs.reshape(1, 1, -1) - cells[..., :1]) ** 2 + (ys.reshape(1, 1, -1) - cells[..., 1:]) ** 2
    g = torch.exp(-d2 / (2 * sigma ** 2))
    return g / g.sum(-1, keepdim=True).clamp_min(1e-12)


class LandmarkLoss(nn.Module):
    """Integral regression + distribution regularisation (DSNT-style), summed over stacks.

    ``coord``: L1 between soft-argmax points and the truth, divided by each face's outer-eye
    distance (so it *is* the NME being optimised); ``reg``: cross-entropy of the heatmap
    distribution against a Gaussian at the truth, which keeps heatmaps unimodal and peaked.
    """

    def __init__(self, stride: float, sigma: float = 1.0, reg_weight: float = 0.02) -> None:
        super().__init__()
        self.stride, self.sigma, self.reg_weight = stride, sigma, reg_weight

    def forward(self, outputs: list[torch.Tensor], target: torch.Tensor, iod: torch.Tensor) -> torch.Tensor:
        h, w = outputs[-1].shape[-2:]
        tgt = gaussian_targets(target, h, w, self.stride, self.sigma)
        total = outputs[-1].new_zeros(())
        for hm in outputs:
            xy, logp = soft_argmax(hm, self.stride)
            coord = ((xy - target).abs().sum(-1) / iod[:, None]).mean()
            reg = -(tgt * logp).sum(-1).mean()
            total = total + coord + self.reg_weight * reg
        return total
