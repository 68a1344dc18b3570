"""``facescope train detector``: a YOLO face detector trained with ultralytics on CPU or GPU.

Steps: pseudo-labelled dataset (:mod:`engine.train.yolo_data`) -> ultralytics training from
the compact ``configs/yolo11p-face.yaml`` (no pretrained weights exist offline; the model is
trained from scratch, with ultralytics' mosaic and scale augmentation) -> ONNX export with a
dynamic input size -> model card. The ONNX file runs in the app through ONNX Runtime
(``create_detector("yolo", weights=...)``); the ``.pt`` runs through ultralytics itself.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.train.yolo_data import YoloDataConfig
from engine.util.check import check

CONFIGS = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class DetectorTrainConfig:
    out: str = "runs/detector"
    model: str = str(CONFIGS / "yolo11p-face.yaml")
    epochs: int = 8
    imgsz: int = 256
    batch: int = 16
    seed: int = 0
    mosaic: float = 1.0
    scale: float = 0.5
    close_mosaic: int = 2
    export_size: int = 640
    data: YoloDataConfig = field(default_factory=YoloDataConfig)

    def __post_init__(self) -> None:
        check(self.epochs >= 1 and self.batch >= 2, "epochs >= 1 and batch >= 2")
        check(self.imgsz % 32 == 0 and self.export_size % 32 == 0, "imgsz and export_size must be multiples of 32")


def _offline_ultralytics(workdir: Path) -> None:
    # ultralytics would try to reach its hub/GitHub (fonts, weights, update checks); nothing
    # can be downloaded here, and its settings file belongs in our run folder, not ~/.config.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(workdir / "ultralytics_config"))


def train_detector(cfg: DetectorTrainConfig, detect=None, progress: bool = True) -> dict:
    """Build data, train, export ONNX + card into ``cfg.out``; returns the summary."""
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _offline_ultralytics(out)
    from ultralytics import YOLO

    from engine.train.detector_export import export_yolo

    t0 = time.perf_counter()
    data_cfg = cfg.data if Path(cfg.data.out).is_absolute() else YoloDataConfig(**{**asdict(cfg.data),
                                                                                  "out": str(out / "data")})
    if detect is None:
        from engine.config import DetectorConfig
        from engine.detectors import create_detector

        yunet = create_detector("yunet", DetectorConfig(input_size=None))
        detect = lambda im: (lambda f: (f.boxes, f.scores))(yunet(im))  # noqa: E731
    from engine.train.yolo_data import build_yolo_dataset

    manifest = build_yolo_dataset(data_cfg, detect, progress=progress)
    model = YOLO(cfg.model)
    model.train(data=str(Path(data_cfg.out) / "data.yaml"), epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch,
                device="cpu" if not _cuda() else 0, seed=cfg.seed, deterministic=True, mosaic=cfg.mosaic,
                scale=cfg.scale, close_mosaic=min(cfg.close_mosaic, cfg.epochs), plots=False, project=str(out),
                name="ultralytics", exist_ok=True, verbose=progress, amp=_cuda(), workers=2)
    best = out / "ultralytics" / "weights" / "best.pt"
    weights = out / "yolo11p-face.pt"
    shutil.copyfile(best, weights)
    exported = export_yolo(weights, out, export_size=cfg.export_size,
                           training={"epochs": cfg.epochs, "imgsz": cfg.imgsz, "data": manifest["images"]})
    summary = {"weights": str(weights), **exported, "dataset": manifest, "seconds": round(time.perf_counter() - t0, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
