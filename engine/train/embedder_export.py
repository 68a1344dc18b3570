"""``facescope export embedder CHECKPOINT``: a trained embedder -> ONNX + model card for the app.

The card states what the app needs and the graph cannot say: input size, colour order and
mean/std (the backbone's convention, stored in the checkpoint), the ArcFace 112x112 alignment
template the training crops were made with, the embedding size and a cosine threshold (the
mean LFW 10-fold threshold of the checkpoint's evaluation when it has one, else ``threshold``).
``create_embedder("onnx", card=...)`` / ``--embedder out/card.json`` then load it through the
same registry as the shipped SFace.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.errors import ModelError
from engine.models.card import load_card, sha256_file
from engine.util.fsio import atomic_write_json

NON_COMMERCIAL = ("mobilefacenet_y1",)


def export_embedder(checkpoint: str | Path, out: str | Path, name: str | None = None,
                    threshold: float | None = None) -> dict:
    """Write ``out/<name>.onnx`` (input (N, 3, 112, 112), output (N, D), dynamic batch) and
    ``out/card.json``; returns {"onnx", "card", "parity_min_cosine", "threshold"}."""
    from engine.train.backbones import create_backbone

    ck = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    if "config" not in ck or "normalisation" not in ck or "model" not in ck:
        raise ModelError(f"{checkpoint}: not a facescope train embedder checkpoint")
    cfg, norm = ck["config"], ck["normalisation"]
    backbone = create_backbone(cfg["backbone"], cfg["embedding_size"], **cfg.get("backbone_kwargs", {}))
    state = {k.removeprefix("backbone."): v for k, v in ck["model"].items() if k.startswith("backbone.")}
    backbone.load_state_dict(state)
    last = (ck.get("history") or [{}])[-1]
    thr = threshold if threshold is not None else last.get("lfw_threshold")
    if thr is None:
        raise ModelError("the checkpoint has no LFW evaluation to take a threshold from: pass --threshold")
    source = (f"facescope train embedder (backbone {cfg['backbone']}, loss {cfg['loss']}, "
              f"{ck.get('epoch', -1) + 1} epochs on {cfg['data']})")
    extra = {"loss": cfg["loss"], "training": {k: v for k, v in last.items() if isinstance(v, (int, float))},
             "threshold_source": "argument" if threshold is not None else "mean LFW 10-fold threshold"}
    return write_embedder(backbone, cfg["backbone"], int(cfg["embedding_size"]), norm, out,
                          name or f"{cfg['backbone']}-{cfg['loss']}", thr, source, extra)


def write_embedder(backbone: torch.nn.Module, architecture: str, embedding_size: int, norm: dict, out: str | Path,
                   name: str, threshold: float, source: str, extra: dict) -> dict:
    """Export ``backbone`` (eval mode) through :func:`trt_build.export.export_onnx` and write its card."""
    from trt_build.export import export_onnx

    if not -1.0 <= threshold <= 1.0:
        raise ModelError(f"threshold {threshold} is not a cosine (a barely trained model?): pass --threshold")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    report = export_onnx(backbone.eval(), np.zeros((1, 3, 112, 112), np.float32), onnx_path,
                         output_names=("embedding",), min_cosine=0.9999)
    restricted = architecture in NON_COMMERCIAL
    if restricted:
        extra = {**extra, "notice": "MobileFaceNet y1 weights from InsightFace: non-commercial research use only"}
    card = {
        "name": name, "family": "embedder", "architecture": architecture, "file": onnx_path.name,
        "sha256": sha256_file(onnx_path), "quantization": "fp32", "input_size": [112, 112],
        "color_order": norm["color_order"], "mean": [norm["mean"]] * 3, "std": [norm["std"]] * 3,
        "alignment_template": "arcface_112", "embedding_size": embedding_size, "threshold": float(threshold),
        "licence": ("InsightFace MobileFaceNet weights: non-commercial research only" if restricted else
                    "trained with facescope on your data: the data's terms apply"),
        "commercial_use": False,
        "normalization_note": f"(pixel - {norm['mean']}) / {norm['std']}, {norm['color_order']}, "
                              "ArcFace-aligned 112x112",
        "source": source, "extra": extra,
    }
    atomic_write_json(out / "card.json", card)  # never seen half-written by a loader
    load_card(out / "card.json")
    return {"onnx": str(onnx_path), "card": str(out / "card.json"), "parity_min_cosine": report.min_cosine,
            "threshold": float(threshold), "non_commercial": restricted}
