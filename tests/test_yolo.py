"""YOLO face detectors: ultralytics .pt vs our ONNX path, the shipped model, bad files."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.config import DetectorConfig
from engine.detectors import create_detector
from engine.detectors.yolo import yolo_letterbox
from engine.errors import ModelError
from engine.imageio import read_image
from engine.models import find_card
from tests.conftest import REPO, shared_path

SHIPPED = REPO / "resources" / "models" / "yolo11p-face"


@pytest.fixture(autouse=True)
def _offline_ultralytics(tmp_path_factory, monkeypatch):
    # ultralytics must never try the network here, nor write settings into the user's home
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.getbasetemp() / "ultralytics"))


def _lfw_images(n: int) -> list[np.ndarray]:
    root = shared_path("data", "lfw", "lfw-deepfunneled")
    people = sorted(p for p in root.iterdir() if p.is_dir())[::400][:n]
    return [read_image(sorted(p.glob("*.jpg"))[0]) for p in people]


def _afw_images(n: int) -> list[np.ndarray]:
    return [read_image(p) for p in sorted(shared_path("data", "300w", "afw").glob("*.jpg"))[:n]]


def test_letterbox_matches_ultralytics():
    pytest.importorskip("ultralytics")
    from ultralytics.data.augment import LetterBox

    img = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    ours, r, (left, top) = yolo_letterbox(img, 640)
    ref = LetterBox((640, 640), auto=True, stride=32)(image=img)
    assert ours.shape == ref.shape == (384, 640, 3)
    assert np.array_equal(ours, ref)
    assert r == pytest.approx(0.5) and (left, top) == (0, 12)


def test_shipped_yolo_finds_the_lfw_face_and_is_box_only():
    card = find_card("yolo11p-face", family="detector")
    assert card.keypoints == 0 and card.architecture == "yolo" and not card.commercial_use
    det = create_detector("yolo")
    ref = create_detector("yunet", DetectorConfig(input_size=None))
    from engine.track.bytetrack import iou_matrix

    hits = 0
    imgs = _lfw_images(10)
    for img in imgs:
        faces, want = det(img), ref(img)
        assert faces.keypoints is None
        if len(faces) and len(want) and iou_matrix(faces.boxes, want.boxes[0]).max() >= 0.5:
            hits += 1
    assert hits >= 9


def test_pt_and_onnx_give_the_same_faces_on_real_images():
    pytest.importorskip("ultralytics")
    from engine.train.detector_export import parity

    pt = SHIPPED / "yolo11p-face.pt"
    worst = parity(pt, SHIPPED / "card.json", _afw_images(6) + _lfw_images(4))
    assert worst >= 0.99


def test_pose_weights_load_in_both_paths_with_five_keypoints(tmp_path):
    pytest.importorskip("ultralytics")
    import torch
    from ultralytics import YOLO

    from engine.train.detector_export import export_yolo

    yaml = Path(__import__("ultralytics").__file__).parent / "cfg" / "models" / "11" / "yolo11-pose.yaml"
    cfg = yaml.read_text().replace("kpt_shape: [17, 3]", "kpt_shape: [5, 3]").replace("nc: 1 ", "nc: 1 ")
    (tmp_path / "yolo11n-facepose.yaml").write_text(cfg)
    torch.manual_seed(0)
    model = YOLO(str(tmp_path / "yolo11n-facepose.yaml"), task="pose")
    model.save(str(tmp_path / "pose.pt"))
    out = export_yolo(tmp_path / "pose.pt", tmp_path / "card", name="facepose", export_size=320,
                      score_threshold=0.01)
    card = find_card(out["card"], family="detector")
    assert card.keypoints == 5 and card.extra["kpt_dims"] == 3
    img = _afw_images(1)[0]
    cfg = DetectorConfig(name="yolo", input_size=(320, 320), score_threshold=0.01, top_k=50)
    a = create_detector("yolo", cfg, weights=tmp_path / "pose.pt")(img)
    b = create_detector("yolo", cfg, weights=out["card"])(img)
    assert len(a) == len(b)
    if len(a):  # an untrained net still has to decode identically
        assert a.keypoints.shape == b.keypoints.shape == (len(a), 5, 2)
        assert np.allclose(np.sort(a.scores), np.sort(b.scores), atol=1e-3)


def test_bad_yolo_files_fail_clearly(tmp_path):
    bare = tmp_path / "model.onnx"
    bare.write_bytes(b"\x08\x01")
    with pytest.raises(ModelError, match="needs a model card"):
        create_detector("yolo", weights=bare)
    with pytest.raises(ModelError, match="not found"):
        create_detector("yolo", weights=tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    if os.environ.get("FACESCOPE_NO_ULTRALYTICS"):
        return
    pytest.importorskip("ultralytics")
    with pytest.raises(ModelError, match="not a loadable YOLO"):
        create_detector("yolo", weights=junk)
    with pytest.raises(ModelError, match="not a YOLO detector"):
        create_detector("yolo", weights=find_card("yunet"))


def test_trt_build_export_yolo_writes_a_dynamic_onnx_that_matches_ultralytics(tmp_path):
    """trt_build's YOLO export (ultralytics' exporter + card) is parity-checked before it returns."""
    pytest.importorskip("ultralytics")
    import onnx

    from trt_build.export import export_yolo
    from trt_build.prepare import input_shapes

    out = export_yolo(SHIPPED / "yolo11p-face.pt", tmp_path / "yolo", parity_images=_afw_images(3), name="yolo-test")
    assert out["parity_min_iou"] >= 0.99
    dims = next(iter(input_shapes(onnx.load(out["onnx"])).values()))
    assert all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))       # batch, height, width dynamic
    assert find_card(tmp_path / "yolo" / "card.json", family="detector").name == "yolo-test"
    find_card("yolo11p-face").verify()        # ultralytics exports beside the weights: the shipped ONNX stays intact
