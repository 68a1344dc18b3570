"""YOLO ``.pt`` -> ONNX (dynamic H, W) + model card, with a parity check against ultralytics."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from engine.errors import ModelError
from engine.models.card import load_card, sha256_file
from engine.util.fsio import atomic_write_json


def export_yolo(weights: str | Path, out: str | Path, name: str = "yolo11p-face", export_size: int = 640,
                training: dict | None = None, score_threshold: float = 0.5, nms_threshold: float = 0.45) -> dict:
    """Export with ultralytics' own exporter (opset 17, dynamic axes, onnxslim) and write a card.

    The card records what the ONNX graph does not: output layout (``(1, 4 + classes [+ 3K],
    anchors)``, boxes as cx, cy, w, h in input pixels, sigmoid scores), letterbox padding value
    (114, centred), RGB order and 0-1 scaling.
    """
    import tempfile

    from ultralytics import YOLO

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # ultralytics writes the export beside the weights: work on a copy, never beside a shipped file
    scratch = Path(tempfile.mkdtemp(prefix="yolo-export-", dir=out))
    weights = Path(shutil.copy2(weights, scratch / Path(weights).name))
    model = YOLO(str(weights))
    task = model.task
    kpt_shape = list(model.model.yaml.get("kpt_shape", [0, 0])) if task == "pose" else [0, 0]
    onnx_tmp = Path(model.export(format="onnx", imgsz=export_size, dynamic=True, simplify=True, opset=17,
                                 device="cpu", batch=1))
    target = out / f"{name}.onnx"
    shutil.move(str(onnx_tmp), target)
    shutil.rmtree(scratch, ignore_errors=True)
    card = {
        "name": name, "family": "detector", "architecture": "yolo", "file": target.name,
        "sha256": sha256_file(target), "quantization": "fp32", "input_size": [export_size, export_size],
        "size_divisor": 32, "color_order": "RGB", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0],
        "keypoints": int(kpt_shape[0]), "score_threshold": score_threshold, "nms_threshold": nms_threshold,
        "extra": {"layout": "anchors", "classes": len(model.names), "kpt_dims": int(kpt_shape[1] or 0),
                  "letterbox": "centred, pad 114", "task": task, "training": training or {}},
        "licence": "AGPL-3.0 (trained with Ultralytics YOLO; Ultralytics licenses models trained with it "
                   "under AGPL-3.0)",
        "licence_file": "LICENSE", "commercial_use": False,
        "normalization_note": "RGB, pixel / 255, letterboxed (centred, grey 114)",
        "source": "facescope train detector (engine/train/detector.py), weights: " + Path(weights).name,
    }
    atomic_write_json(out / "card.json", card)  # never seen half-written by a loader
    load_card(out / "card.json")
    return {"onnx": str(target), "card": str(out / "card.json"), "task": task}


def parity(weights: str | Path, card_path: str | Path, images: list[np.ndarray], iou_min: float = 0.99) -> float:
    """Smallest box IoU between ultralytics' predictor on ``weights`` and our ONNX path on the
    same images (matched greedily, same count required). ModelError when below ``iou_min``."""
    from engine.boxes import iou_matrix
    from engine.config import DetectorConfig
    from engine.detectors import create_detector

    card = load_card(card_path)
    pt = create_detector("yolo", DetectorConfig(name="yolo"), weights=str(weights))
    ox = create_detector("yolo", DetectorConfig(name="yolo"), weights=str(card.directory))
    worst = 1.0
    for img in images:
        a, b = pt(img), ox(img)
        if len(a) != len(b):
            raise ModelError(f"parity: ultralytics found {len(a)} faces, ONNX {len(b)}")
        for box in a.boxes:
            worst = min(worst, float(iou_matrix(b.boxes, box).max()) if len(b) else 0.0)
    if worst < iou_min:
        raise ModelError(f"parity: box IoU {worst:.4f} < {iou_min}")
    return worst
