"""InsightFace MobileFaceNet "y1" rebuilt as a PyTorch module, weights copied from its OpenVINO IR.

The IR (converted from MXNet by Model Optimizer 2020.2 with ``--reverse_input_channels``) holds:
input scaling ``x * 0.0078125 - 0.99609375`` (= ``(x - 127.5) / 128``), a 3x3/2 stem and a 3x3
depthwise conv, 15 bottlenecks (1x1 expand + PReLU, 3x3 depthwise + PReLU, linear 1x1 project,
residual add when the stride is 1), 1x1 conv to 512 + PReLU, a 7x7 global depthwise conv (GDC,
linear), and a fully connected layer to 128. Every BatchNorm (including the one on the embedding)
is folded into the preceding conv/FC as ``weight * scale`` and a bias ``Add``, so this module has
biased convs and no BN layers. It fine-tunes as is (all weights and biases are trainable, it
behaves like a network with frozen BN statistics); for training from scratch use the BN-ful
``mobilefacenet`` backbone instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.train.openvino_ir import ChainWalker, IRGraph, load_ir

EMBEDDING_SIZE = 128
# raw pixels: the (x - 127.5) / 128 scaling is part of the module, exactly as in the IR; the IR's
# first conv already has its input channels swapped to BGR (--reverse_input_channels)
INPUT_NORMALISATION = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "color_order": "BGR"}

# (in, expanded, out, stride, residual) per bottleneck, in IR order: dconv_23, res_3 x4, dconv_34,
# res_4 x6, dconv_45, res_5 x2 (Chen et al. 2018, Table 1)
BOTTLENECKS: tuple[tuple[int, int, int, int, bool], ...] = (
    (64, 128, 64, 2, False), *[(64, 128, 64, 1, True)] * 4,
    (64, 256, 128, 2, False), *[(128, 256, 128, 1, True)] * 6,
    (128, 512, 128, 2, False), *[(128, 256, 128, 1, True)] * 2,
)


class ConvAct(nn.Module):
    """Conv2d with bias (the folded BN) and an optional per-channel PReLU; ``groups=cin`` = depthwise."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=True)
        self.act = nn.PReLU(cout) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class Bottleneck(nn.Module):
    """1x1 expand + PReLU -> 3x3 depthwise (stride) + PReLU -> linear 1x1 project (+ input)."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, residual: bool) -> None:
        super().__init__()
        if residual and (stride != 1 or cin != cout):
            raise ValueError(f"a residual bottleneck needs stride 1 and cin == cout, got {stride}, {cin}->{cout}")
        self.expand = ConvAct(cin, mid, 1)
        self.depthwise = ConvAct(mid, mid, 3, stride, 1, groups=mid)
        self.project = ConvAct(mid, cout, 1, act=False)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileFaceNetY1(nn.Module):
    """(N, 3, 112, 112) float32 raw BGR pixels 0-255 -> (N, 128) embedding (not L2-normalised).

    Random init unless built by :func:`from_ir`. ``input_scale``/``input_shift`` are buffers (not
    trained) so that ``from_ir`` can copy the IR's exact constants.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("input_scale", torch.tensor(1.0 / 128.0))
        self.register_buffer("input_shift", torch.tensor(-127.5 / 128.0))
        self.stem = ConvAct(3, 64, 3, 2, 1)
        self.stem_dw = ConvAct(64, 64, 3, 1, 1, groups=64)
        self.blocks = nn.Sequential(*(Bottleneck(*spec) for spec in BOTTLENECKS))
        self.conv_sep = ConvAct(128, 512, 1)
        self.gdc = ConvAct(512, 512, 7, groups=512, act=False)  # global depthwise conv: 7x7 map -> 1x1
        self.fc = nn.Linear(512, EMBEDDING_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.input_scale + self.input_shift
        x = self.gdc(self.conv_sep(self.blocks(self.stem_dw(self.stem(x)))))
        return self.fc(torch.flatten(x, 1))


def _copy(dst: torch.Tensor, value: np.ndarray, what: str, where: str) -> None:
    if value.size != dst.numel():
        raise ValueError(f"{where}: {what} has {value.size} values {value.shape}, "
                         f"the module expects {tuple(dst.shape)}")
    with torch.no_grad():
        dst.copy_(torch.from_numpy(np.array(value, np.float32)).reshape(dst.shape))  # a copy: IR arrays are read-only


def _one_const(consts: list[np.ndarray], what: str, where: str) -> np.ndarray:
    if len(consts) != 1:
        raise ValueError(f"{where}: {what} should have exactly one constant input, has {len(consts)}")
    return consts[0]


def _load_conv_act(walker: ChainWalker, block: ConvAct, where: str) -> None:
    """Conv/GroupConvolution -> bias Add -> PReLU (if the module has one), checking geometry."""
    conv = block.conv
    depthwise = conv.groups > 1
    op, consts = walker.step("GroupConvolution" if depthwise else "Convolution")
    where = f"{where} ({op.type} {op.name!r})"
    weight = _one_const(consts, "the convolution", where)
    expected = (conv.groups, conv.out_channels // conv.groups, conv.in_channels // conv.groups, *conv.kernel_size) \
        if depthwise else tuple(conv.weight.shape)
    if weight.shape != expected:
        raise ValueError(f"{where}: weights are {weight.shape}, expected {expected}")
    geometry = {"strides": conv.stride, "pads_begin": conv.padding, "pads_end": conv.padding,
                "dilations": conv.dilation}
    for key, want in geometry.items():
        got = tuple(int(v) for v in op.data.get(key, "").split(",") if v)
        if got != tuple(want):
            raise ValueError(f"{where}: {key} is {got}, the module uses {tuple(want)}")
    if op.data.get("auto_pad", "explicit") not in ("explicit", "notset"):
        raise ValueError(f"{where}: auto_pad {op.data['auto_pad']!r} is not supported (explicit pads only)")
    _copy(conv.weight, weight, "conv weights", where)
    _, consts = walker.step("Add")
    _copy(conv.bias, _one_const(consts, "the bias Add", where), "bias (folded BatchNorm)", where)
    if isinstance(block.act, nn.PReLU):
        _, consts = walker.step("PReLU")
        _copy(block.act.weight, _one_const(consts, "PReLU", where), "PReLU slopes", where)


def _load_scalar_op(walker: ChainWalker, layer_type: str, dst: torch.Tensor) -> None:
    op, consts = walker.step(layer_type)
    value = _one_const(consts, f"input {layer_type}", f"{walker.graph.path}: {op.name!r}")
    if value.size != 1:
        raise ValueError(f"{walker.graph.path}: input {layer_type} {op.name!r} is per-channel {value.shape}; "
                         "this module expects one scalar")
    _copy(dst, value, f"input {layer_type}", str(walker.graph.path))


def from_ir(xml_path: str | Path | IRGraph) -> MobileFaceNetY1:
    """Build :class:`MobileFaceNetY1` with the weights of ``model-y1-0000.xml`` (+ ``.bin``).

    Walks the IR from its input op by op, checking each op's type, weight shape, stride and
    padding against the module, and refuses (ValueError) any IR that differs or has ops left over.
    Colour order cannot be read from the weights: an IR whose Model Optimizer metadata says it was
    converted without ``--reverse_input_channels`` (so it takes RGB) is refused; one without that
    metadata is assumed BGR like the InsightFace release.
    """
    graph = xml_path if isinstance(xml_path, IRGraph) else load_ir(xml_path)
    where = str(graph.path)
    if graph.cli_parameters.get("reverse_input_channels", "True") != "True":
        raise ValueError(f"{where}: converted without --reverse_input_channels, so it takes RGB; "
                         "MobileFaceNetY1 is documented as BGR (convert the MXNet model with the flag)")
    model = MobileFaceNetY1()
    walker = ChainWalker(graph)
    shape = walker.current.outputs[0].shape if walker.current.outputs else ()
    if len(shape) != 4 or tuple(shape[1:]) != (3, 112, 112):
        raise ValueError(f"{where}: input is {shape}, expected (N, 3, 112, 112)")
    _load_scalar_op(walker, "Multiply", model.input_scale)
    _load_scalar_op(walker, "Add", model.input_shift)
    _load_conv_act(walker, model.stem, f"{where} stem")
    _load_conv_act(walker, model.stem_dw, f"{where} stem_dw")
    for i, block in enumerate(model.blocks):
        block_input = walker.current.id
        for name in ("expand", "depthwise", "project"):
            _load_conv_act(walker, getattr(block, name), f"{where} blocks.{i}.{name}")
        if block.residual:
            project_output = walker.current.id
            op, consts = walker.step("Add")
            if consts or sorted(walker.dynamic_inputs(op)) != sorted([block_input, project_output]):
                raise ValueError(f"{where} blocks.{i}: Add {op.name!r} is not the residual (block input + project)")
    _load_conv_act(walker, model.conv_sep, f"{where} conv_sep")
    _load_conv_act(walker, model.gdc, f"{where} gdc")
    op, _ = walker.step("Reshape")
    if tuple(op.outputs[0].shape[1:]) != (512,):
        raise ValueError(f"{where}: Reshape {op.name!r} gives {op.outputs[0].shape}, expected (N, 512)")
    op, consts = walker.step("MatMul")
    weight = _one_const(consts, "the embedding MatMul", where)
    if op.data.get("transpose_a", "false").lower() == "true":
        raise ValueError(f"{where}: MatMul {op.name!r} transposes its input; not supported")
    if op.data.get("transpose_b", "false").lower() != "true":
        weight = weight.T  # the module's Linear wants (out, in)
    if weight.shape != (EMBEDDING_SIZE, 512):
        raise ValueError(f"{where}: embedding weights are {weight.shape}, expected ({EMBEDDING_SIZE}, 512)")
    _copy(model.fc.weight, weight, "embedding weights", where)
    _, consts = walker.step("Add")
    _copy(model.fc.bias, _one_const(consts, "the embedding bias Add", where), "embedding bias", where)
    walker.step("Result")
    walker.finish()
    return model
