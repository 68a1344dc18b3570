"""TensorRT on a real NVIDIA GPU: engines for every stage, compared with ONNX Runtime.

Marked ``gpu``; skipped (with the reason) where there is no GPU or no TensorRT 10 /
cuda-python, which is every machine this project's CI runs on. Run on a GPU box with
``pip install -e '.[test,trt]' && python -m pytest -m gpu``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.backends.select import probe

SHARED = Path(__file__).resolve().parents[2] / "shared"
LFW = SHARED / "data" / "lfw"
DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "megamind.avi"


def _why_not() -> str | None:
    m = probe()
    if not m.gpus:
        return "no NVIDIA GPU: " + ("; ".join(m.notes) or "none found")
    if not m.tensorrt or not m.cuda_python:
        return "TensorRT 10 and cuda-python are needed: pip install 'facescope[trt]'"
    if not LFW.is_dir():
        return "needs ../shared/data/lfw for real faces"
    return None


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    import os

    old = os.environ.get("FACESCOPE_CACHE_DIR")
    os.environ["FACESCOPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("FACESCOPE_CACHE_DIR")
    else:
        os.environ["FACESCOPE_CACHE_DIR"] = old


def _images(n=12):
    from engine.imageio import read_image

    return [read_image(p) for p in sorted((LFW / "lfw-deepfunneled").glob("*/*.jpg"))[:n]]


def _calib_folder(tmp_path, n=64) -> Path:
    folder = tmp_path / "calib"
    folder.mkdir(exist_ok=True)
    for i, p in enumerate(sorted((LFW / "lfw-deepfunneled").glob("*/*.jpg"))[100:100 + n]):
        (folder / f"{i}.jpg").write_bytes(p.read_bytes())
    return folder


def _int8_calibration(card_name: str, tmp_path) -> None:
    from engine.models import find_card, prepared_model_path
    from trt_build.calibrate import calibration_batches
    from trt_build.engines import EngineOptions, ensure_engine

    card = find_card(card_name)
    size = 1 if card.family == "detector" else 8
    batches = list(calibration_batches(card, _calib_folder(tmp_path), size))
    ensure_engine(prepared_model_path(card), EngineOptions("int8"), calibration=batches)


@pytest.mark.parametrize("precision, min_cos", [("fp16", 0.999), ("int8", 0.98)])
def test_embedder_engine_matches_onnxruntime(cache, tmp_path, precision, min_cos):
    from engine.config import RuntimeConfig
    from engine.detectors import create_detector
    from engine.embedders import create_embedder

    if precision == "int8":
        _int8_calibration("sface", tmp_path)
    det = create_detector("yunet")
    ref = create_embedder("sface", runtime=RuntimeConfig(backend="onnxruntime"))
    trt = create_embedder("sface", runtime=RuntimeConfig(backend="tensorrt", precision=precision))
    assert trt.session.backend == "tensorrt"
    cos = []
    for img in _images():
        faces = det(img)
        if len(faces):
            a, b = ref.embed_faces(img, faces).embeddings, trt.embed_faces(img, faces).embeddings
            cos.extend((a * b).sum(1))
    assert len(cos) >= 10 and min(cos) >= min_cos, f"{precision}: min cosine {min(cos):.5f}"


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_detector_engine_matches_onnxruntime(cache, tmp_path, precision):
    from engine.config import DetectorConfig, RuntimeConfig
    from engine.detectors import create_detector
    from engine.track.bytetrack import iou_matrix

    if precision == "int8":
        _int8_calibration("yunet", tmp_path)
    cfg = DetectorConfig(input_size=(640, 640))
    ref = create_detector("yunet", cfg, RuntimeConfig(backend="onnxruntime"))
    trt = create_detector("yunet", cfg, RuntimeConfig(backend="tensorrt", precision=precision))
    worst = 1.0
    for img in _images():
        a, b = ref(img), trt(img)
        for box in a.boxes:
            worst = min(worst, float(iou_matrix(b.boxes, box).max()) if len(b) else 0.0)
    assert worst >= 0.95, f"{precision}: worst box IoU {worst:.3f}"


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_landmark_engine_matches_onnxruntime(cache, tmp_path, precision):
    from engine.config import LandmarkConfig, RuntimeConfig
    from engine.detectors import create_detector
    from engine.landmarks import create_landmarker
    from engine.landmarks.ibug import interocular

    if precision == "int8":
        _int8_calibration("hourglass68", tmp_path)
    det = create_detector("yunet")
    ref = create_landmarker("hourglass68", LandmarkConfig(), RuntimeConfig(backend="onnxruntime"))
    trt = create_landmarker("hourglass68", LandmarkConfig(), RuntimeConfig(backend="tensorrt", precision=precision))
    errs = []
    for img in _images():
        faces = det(img)
        if len(faces):
            a, b = ref.predict(img, faces.boxes)[0], trt.predict(img, faces.boxes)[0]
            errs.extend(np.linalg.norm(a - b, axis=2).mean(1) / np.array([interocular(p) for p in a]))
    assert max(errs) <= (0.005 if precision == "fp16" else 0.02)


def test_engines_are_cached_and_batch_beyond_the_profile(cache):
    from engine.backends import create_session
    from engine.config import RuntimeConfig
    from engine.models import find_card, prepared_model_path
    from trt_build.engines import EngineOptions, ensure_engine

    onnx = prepared_model_path(find_card("sface"))
    _, first = ensure_engine(onnx, EngineOptions("fp16", max_batch=4))
    _, again = ensure_engine(onnx, EngineOptions("fp16", max_batch=4))
    assert again["cached"] and (first["cached"] or first["parity"]["min_cosine"] >= 0.99)
    sess = create_session(onnx, RuntimeConfig(backend="tensorrt", max_batch=4))
    x = np.random.default_rng(0).uniform(-1, 1, (10, 3, 112, 112)).astype(np.float32)
    out = next(iter(sess.run({sess.input_names[0]: x}).values()))
    single = next(iter(sess.run({sess.input_names[0]: x[9:10]}).values()))
    assert out.shape[0] == 10 and np.allclose(out[9], single[0], atol=1e-2)


def test_bench_with_tensorrt_backend(cache, tmp_path):
    from engine.cli.main import main

    js = tmp_path / "bench.json"
    assert main(["bench", "--source", str(DEMO), "--frames", "120", "--backend", "tensorrt", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["fps"] > 0
