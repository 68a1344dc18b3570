"""PyTorch -> ONNX, each export followed by a parity check against PyTorch.

``export_onnx`` is the one exporter (the hourglass and trained embedders go through it);
YOLO weights go through ultralytics' own exporter (:func:`export_yolo`), whose graph our
detector decodes (``engine.detectors.yolo``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ModelError
from trt_build.compare import cosines

OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    onnx: Path
    max_abs_diff: float       # largest |PyTorch - ONNX Runtime| over every output element
    min_cosine: float         # smallest per-sample cosine between flattened outputs
    batch_sizes: tuple[int, ...]


def export_onnx(module, example: np.ndarray, out: str | Path, input_name: str = "input",
                output_names: tuple[str, ...] = ("output",), dynamic_batch: bool = True,
                parity_batches: tuple[int, ...] = (1, 8), atol: float = 1e-3, min_cosine: float = 0.99999,
                seed: int = 0) -> ExportReport:
    """Export ``module`` (eval mode, one input) to ``out`` and check it.

    ``example``: one input of the right shape (its batch size is irrelevant with
    ``dynamic_batch``, which makes dim 0 of the input and every output a "batch" axis).
    Parity: seeded inputs at each batch size in ``parity_batches`` (dynamic axes exercised)
    through PyTorch and ONNX Runtime; ModelError if an element differs by more than ``atol``
    or a sample's cosine falls below ``min_cosine``. Written atomically.
    """
    import onnxruntime as ort
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    tmp = out.with_suffix(".onnx.tmp")
    axes = {n: {0: "batch"} for n in (input_name, *output_names)} if dynamic_batch else None
    with torch.no_grad():
        torch.onnx.export(module, torch.from_numpy(np.ascontiguousarray(example, np.float32)), str(tmp),
                          input_names=[input_name], output_names=list(output_names), dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    tmp.replace(out)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst_diff, worst_cos = 0.0, 1.0
    batches = parity_batches if dynamic_batch else (example.shape[0],)
    for n in batches:
        x = rng.standard_normal((n, *example.shape[1:])).astype(np.float32)
        with torch.no_grad():
            ref = module(torch.from_numpy(x))
        refs = [r.numpy() for r in (ref if isinstance(ref, (tuple, list)) else (ref,))]
        got = sess.run(list(output_names), {input_name: x})
        for r, g in zip(refs, got, strict=True):
            if r.shape != g.shape:
                raise ModelError(f"{out.name}: ONNX output shape {g.shape} != PyTorch {r.shape} at batch {n}")
            worst_diff = max(worst_diff, float(np.abs(r - g).max()))
            worst_cos = min(worst_cos, float(cosines(r, g).min()))
    if worst_diff > atol or worst_cos < min_cosine:
        raise ModelError(f"{out.name}: ONNX export disagrees with PyTorch (max |diff| {worst_diff:.2e} > {atol} "
                         f"or cosine {worst_cos:.6f} < {min_cosine})")
    return ExportReport(out, worst_diff, worst_cos, tuple(batches))


def export_yolo(weights: str | Path, out_dir: str | Path, parity_images: list[np.ndarray],
                name: str = "yolo-face", iou_min: float = 0.99) -> dict:
    """YOLO ``.pt`` -> ONNX + model card through ultralytics' exporter, then parity: ultralytics'
    predictor vs our ONNX Runtime path on ``parity_images`` (same face count, box IoU >=
    ``iou_min``). Returns the exporter's summary plus ``parity_min_iou``."""
    from engine.train.detector_export import export_yolo as _export
    from engine.train.detector_export import parity

    summary = _export(weights, out_dir, name=name)
    return {**summary, "parity_min_iou": parity(weights, summary["card"], parity_images, iou_min)}
