"""ONNX -> ONNX that TensorRT's parser takes well, checked against the source with ONNX Runtime.

Steps, each optional: fold block-quantized ``DequantizeLinear`` initializers to FP32 (TensorRT
10 rejects the OpenCV-Zoo int8 block layout: it is weight-only, not Q/DQ on activations);
set input dims (fixed numbers, or names for dynamic axes that an optimisation profile then
bounds); simplify and fold constants with onnxslim (a maintained simplifier, also what
ultralytics uses). The result must compute the same outputs as the source.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from engine.backends.trt_plan import input_shapes
from engine.errors import ModelError
from engine.models.dequant import dequantize_model, set_dynamic_dims
from engine.models.prepare import load_onnx
from trt_build.compare import cosines

__all__ = ["PrepareReport", "compare_onnx", "input_shapes", "prepare_onnx"]


@dataclass(frozen=True)
class PrepareReport:
    onnx: Path
    dequantized: int          # DequantizeLinear nodes folded
    nodes_before: int
    nodes_after: int
    slimmed: bool
    max_abs_diff: float
    min_cosine: float


def _fix_dims(model: onnx.ModelProto, dims: dict[int, int | str]) -> onnx.ModelProto:
    names = {k: v for k, v in dims.items() if isinstance(v, str)}
    model = set_dynamic_dims(model, names) if names else model
    inits = {t.name for t in model.graph.initializer}
    for i in model.graph.input:
        if i.name in inits:
            continue
        for axis, v in dims.items():
            if isinstance(v, int):
                i.type.tensor_type.shape.dim[axis].ClearField("dim_param")
                i.type.tensor_type.shape.dim[axis].dim_value = v
    return model


def _sample_inputs(model: onnx.ModelProto, concrete: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, dims in input_shapes(model).items():
        shape = tuple(d if isinstance(d, int) and d > 0 else concrete.get(str(d), 1) for d in dims)
        feeds[name] = rng.uniform(0, 1, shape).astype(np.float32)
    return feeds


def compare_onnx(a: Path, b: Path, feeds: dict[str, np.ndarray]) -> tuple[float, float]:
    """Max |diff| and min per-sample cosine of every output of two ONNX files on ``feeds``."""
    import onnxruntime as ort

    sa = ort.InferenceSession(str(a), providers=["CPUExecutionProvider"])
    sb = ort.InferenceSession(str(b), providers=["CPUExecutionProvider"])
    names = [o.name for o in sa.get_outputs()]
    ra, rb = sa.run(names, feeds), sb.run(names, feeds)
    diff = max(float(np.abs(x - y).max()) if x.size else 0.0 for x, y in zip(ra, rb, strict=True))
    cos = min(float(cosines(x, y).min()) if x.size else 1.0 for x, y in zip(ra, rb, strict=True))
    return diff, cos


def prepare_onnx(src: str | Path, dst: str | Path, dims: dict[int, int | str] | None = None, slim: bool = True,
                 parity_sizes: dict[str, int] | None = None, atol: float = 1e-3,
                 min_cosine: float = 0.9999) -> PrepareReport:
    """Write the prepared graph to ``dst`` (atomically) and check it against ``src``.

    ``dims``: per input axis, an int to fix it or a name to make it dynamic (e.g. ``{0:
    "batch"}``); applied to every graph input. ``parity_sizes`` gives concrete values for named
    dynamic axes in the parity run (default 1, and 320 for "height"/"width").
    ModelError when the check fails or a step breaks the graph.
    """
    src, dst = Path(src), Path(dst)
    model = load_onnx(src)
    before = len(model.graph.node)
    model, folded = dequantize_model(model)
    if dims:
        model = _fix_dims(model, dims)
    slimmed = False
    if slim:
        try:
            import onnxslim
        except ImportError:
            raise ModelError("prepare_onnx(slim=True) needs onnxslim: pip install 'facescope[trt]'") from None
        model = onnxslim.slim(model)
        slimmed = True
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"prepared {src.name} fails the ONNX checker: {exc}") from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dst)
    sizes = {"height": 320, "width": 320, **(parity_sizes or {})}
    feeds = _sample_inputs(model, sizes, seed=0)
    if folded:
        # ONNX Runtime cannot run block-quantized sources; the exact FP32 fold is the reference
        ref = dst.with_suffix(".reference.onnx")
        onnx.save(_fix_dims(dequantize_model(load_onnx(src))[0], dims or {}), str(ref))
        try:
            diff, cos = compare_onnx(ref, dst, feeds)
        finally:
            ref.unlink(missing_ok=True)
    else:
        diff, cos = compare_onnx(src, dst, feeds)
    if diff > atol or cos < min_cosine:
        raise ModelError(f"prepared {dst.name} disagrees with {src.name}: max |diff| {diff:.2e} (> {atol}?) "
                         f"cosine {cos:.6f} (< {min_cosine}?)")
    return PrepareReport(dst, folded, before, len(model.graph.node), slimmed, diff, cos)
