"""Export a trained hourglass to ONNX + model card, with a parity check against PyTorch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.errors import ModelError
from engine.landmarks.heatmap import soft_argmax
from engine.models.card import load_card, sha256_file
from engine.util.fsio import atomic_write_json


def export_landmarks(net: torch.nn.Module, cfg, out: str | Path, name: str = "hourglass68",
                     parity_inputs: np.ndarray | None = None, tolerance_px: float = 0.01,
                     box_relation: dict | None = None) -> dict:
    """Write ``out/<name>.onnx`` (input ``input`` (N,3,S,S), output ``heatmaps`` (N,68,S/4,S/4),
    dynamic batch) and ``out/card.json``; returns {"onnx", "card", "parity_max_px"}.

    Parity: ONNX Runtime vs PyTorch on ``parity_inputs`` (default: 8 seeded random inputs),
    decoded landmarks must agree within ``tolerance_px`` crop pixels, else ModelError.
    """
    from engine.train.hourglass import FinalHeatmaps
    from trt_build.export import export_onnx

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = cfg.input_size
    wrapper = FinalHeatmaps(net).eval()
    onnx_path = out / f"{name}.onnx"
    export_onnx(wrapper, np.zeros((1, 3, size, size), np.float32), onnx_path, output_names=("heatmaps",),
                atol=1e-3, min_cosine=0.9999)
    # the check that matters for landmarks: decoded points, in crop pixels
    import onnxruntime as ort

    x = parity_inputs if parity_inputs is not None else np.random.default_rng(0).standard_normal(
        (8, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        ref = wrapper(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    err = float(np.abs(soft_argmax(ref, cfg.stride)[0] - soft_argmax(got, cfg.stride)[0]).max())
    if not err <= tolerance_px:
        raise ModelError(f"ONNX export of {name} disagrees with PyTorch by {err:.4f} px (> {tolerance_px})")
    card = {
        "name": name, "family": "landmarks", "architecture": "stacked_hourglass", "file": onnx_path.name,
        "sha256": sha256_file(onnx_path), "quantization": "fp32", "input_size": [size, size],
        "color_order": "BGR", "mean": [127.5] * 3, "std": [127.5] * 3, "keypoints": 68,
        "keypoint_order": ["ibug68"],
        "extra": {"stride": cfg.stride, "crop_scale": cfg.crop_scale, "shift_y": cfg.shift_y,
                  "decoder": "soft-argmax over the spatial softmax of each heatmap",
                  "stacks": cfg.stacks, "depth": cfg.depth, "channels": cfg.channels,
                  "box_relation": box_relation or {},
                  "annotation_dx": float(getattr(cfg, "annotation_dx", 0.0)),
                  "crop": "square of side crop_scale*max(w,h) centred on the detector box centre + shift_y*h"},
        "licence": "research use only (trained on 300-W images; facescope code Apache-2.0)",
        "licence_file": "LICENSE", "commercial_use": False,
        "normalization_note": "(pixel - 127.5) / 127.5 per channel; BGR as decoded by OpenCV",
        "source": "facescope train landmarks (engine/train/landmarks.py)",
    }
    atomic_write_json(out / "card.json", card)  # never seen half-written by a loader
    load_card(out / "card.json")  # validates
    return {"onnx": str(onnx_path), "card": str(out / "card.json"), "parity_max_px": err}
