"""Training toolkit for the P4 models: losses, smoke runs of both training commands through the CLI."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from engine.cli.main import main
from tests.conftest import shared_path

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch)")


def test_landmark_loss_is_the_nme_of_the_decoded_points_and_has_gradients():
    from engine.train.hourglass import LandmarkLoss, StackedHourglass, soft_argmax

    net = StackedHourglass(68, stacks=2, depth=2, channels=16)
    x = torch.randn(2, 3, 64, 64)
    outs = net(x)
    assert [o.shape for o in outs] == [(2, 68, 16, 16)] * 2
    target = torch.rand(2, 68, 2) * 60
    iod = torch.tensor([20.0, 30.0])
    loss = LandmarkLoss(4, reg_weight=0.0)(outs[-1:], target, iod)
    xy, _ = soft_argmax(outs[-1], 4)
    expected = ((xy - target).abs().sum(-1) / iod[:, None]).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    LandmarkLoss(4)(outs, target, iod).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_warmup_cosine_schedule():
    from engine.train.schedule import warmup_cosine

    f = warmup_cosine(100, 10, min_ratio=0.01)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(99) == pytest.approx(0.01, abs=2e-3)
    assert all(f(i) >= f(i + 1) for i in range(10, 99))
    with pytest.raises(ValueError):
        warmup_cosine(10, 11)


def test_train_landmarks_smoke_run_resumes_and_exports(tmp_path, capsys):
    data = shared_path("data", "300w")
    teacher = shared_path("models", "mediapipe", "face_landmark.onnx")
    lfw = shared_path("data", "lfw")
    out = tmp_path / "lm"
    args = ["train", "landmarks", "--data", str(data), "--out", str(out), "--epochs", "1", "--finetune-epochs", "1",
            "--limit", "32", "--batch-size", "8", "--teacher", str(teacher), "--extra-faces", str(lfw),
            "--extra-max", "16", "--ema", "0.9", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_faces"] == 32 and 0 < summary["teacher_faces"] <= 16
    assert 0 < summary["teacher_val_nme"] < 0.1 and summary["parity_max_px"] < 0.01
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    from engine.config import LandmarkConfig
    from engine.landmarks import create_landmarker

    lm = create_landmarker("onnx", LandmarkConfig(model=str(out)), card=str(out))
    pts, _ = lm.predict(np.zeros((200, 200, 3), np.uint8), np.array([[50, 50, 150, 150]]))
    assert pts.shape == (1, 68, 2) and np.isfinite(pts).all()
    # resume adds epochs after the last checkpoint
    assert main(args[:-1] + ["--finetune-epochs", "2", "--resume", str(out / "last.pt"), "--no-progress"]) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    # a second stage starts from those weights, without mirror augmentation
    stage2 = tmp_path / "stage2"
    assert main(["train", "landmarks", "--data", str(data), "--out", str(stage2), "--init", str(out / "best.pt"),
                 "--no-teacher", "--no-flip", "--epochs", "1", "--finetune-epochs", "0", "--warmup-epochs", "0",
                 "--limit", "16", "--batch-size", "8", "--no-progress"]) == 0
    assert json.loads((stage2 / "card.json").read_text())["extra"]["box_relation"]["size"] > 1.0


def test_train_detector_smoke_run_exports_a_loadable_onnx(tmp_path, monkeypatch):
    pytest.importorskip("ultralytics")
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ucfg"))
    lfw = shared_path("data", "lfw")
    out = tmp_path / "det"
    assert main(["train", "detector", "--lfw", str(lfw), "--landmarks-data", "", "--out", str(out), "--epochs", "1",
                 "--imgsz", "64", "--batch", "8", "--max-train", "24", "--val-images", "8", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["images"] == {"train": 24, "val": 8}
    from engine.config import DetectorConfig
    from engine.detectors import create_detector

    det = create_detector("yolo", DetectorConfig(name="yolo"), weights=str(out))
    faces = det(np.full((240, 320, 3), 127, np.uint8))
    assert faces.keypoints is None and faces.boxes.shape[1] == 4
