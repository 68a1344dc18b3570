"""trt_build and the TensorRT backend: every part a CPU can run, for real.

No GPU here: TensorRT engines are built and compared only in tests/test_trt_gpu.py (marked
``gpu``, skipped with the reason). Nothing below mocks TensorRT or CUDA.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from engine.backends import create_session
from engine.backends.select import Gpu, Probe, choose_backend, probe
from engine.backends.tensorrt import check_shape, split_batches
from engine.backends.trt_cache import EngineKey, Profile, clear, entries, lookup, plan_path, store
from engine.cli.main import main
from engine.config import DetectorConfig, LandmarkConfig, RuntimeConfig
from engine.errors import ModelError
from engine.models import find_card, prepared_model_path

torch = pytest.importorskip("torch")

from trt_build.export import export_onnx  # noqa: E402
from trt_build.prepare import input_shapes, prepare_onnx  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
LFW = SHARED / "data" / "lfw"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---------------------------------------------------------------- export and preparation

def _tiny_embedder():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8), torch.nn.PReLU(8),
        torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.BatchNorm2d(16), torch.nn.PReLU(16),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 32), torch.nn.BatchNorm1d(32)).eval()


def test_export_onnx_parity_at_batch_1_and_8(tmp_path):
    from engine.train.hourglass import FinalHeatmaps, StackedHourglass

    torch.manual_seed(0)
    hg = FinalHeatmaps(StackedHourglass(68, stacks=1, depth=2, channels=16)).eval()
    rep = export_onnx(hg, np.zeros((1, 3, 64, 64), np.float32), tmp_path / "hg.onnx", output_names=("heatmaps",))
    assert rep.batch_sizes == (1, 8) and rep.max_abs_diff < 1e-3 and rep.min_cosine > 0.99999
    rep = export_onnx(_tiny_embedder(), np.zeros((1, 3, 112, 112), np.float32), tmp_path / "emb.onnx",
                      output_names=("embedding",))
    sess = ort.InferenceSession(str(rep.onnx), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((8, 3, 112, 112)).astype(np.float32)
    batched = sess.run(None, {"input": x})[0]
    single = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(8)])
    assert batched.shape == (8, 32) and np.allclose(batched, single, atol=1e-4)


def test_export_onnx_catches_a_graph_that_only_works_at_the_traced_batch(tmp_path):
    class ShapeDependent(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.shape[0] == 1 else x * 3  # traced as a constant branch

    with pytest.warns(Warning), pytest.raises(ModelError, match="disagrees with PyTorch"):
        export_onnx(ShapeDependent(), np.zeros((1, 3, 8, 8), np.float32), tmp_path / "bad.onnx")


@pytest.mark.parametrize("name", ["sface", "hourglass68", "yunet"])
def test_prepare_onnx_on_shipped_models_keeps_outputs_and_dynamic_batch(tmp_path, cache, name):
    card = find_card(name)
    src = prepared_model_path(card)
    rep = prepare_onnx(src, tmp_path / f"{name}.onnx")
    assert rep.slimmed and rep.nodes_after <= rep.nodes_before and rep.min_cosine > 0.9999
    dims = next(iter(input_shapes(__import__("onnx").load(str(rep.onnx))).values()))
    sess = ort.InferenceSession(str(rep.onnx), providers=["CPUExecutionProvider"])
    name_in = sess.get_inputs()[0].name
    if card.family == "detector":         # one frame at any size
        assert isinstance(dims[2], str) and isinstance(dims[3], str)
        out = sess.run(None, {name_in: np.zeros((1, 3, 320, 480), np.float32)})
        assert all(o.shape[0] == 1 for o in out)
        return
    assert isinstance(dims[0], str)       # batch axis stays dynamic
    w, h = card.input_size
    x = np.random.default_rng(0).uniform(-1, 1, (8, 3, h, w)).astype(np.float32)
    batched = sess.run(None, {name_in: x})[0]
    single = np.concatenate([sess.run(None, {name_in: x[i:i + 1]})[0] for i in range(8)])
    assert batched.shape[0] == 8 and np.allclose(batched, single, atol=1e-4)


def test_prepare_onnx_dequantizes_block_quantized_source(tmp_path):
    card = find_card("sface")
    assert card.quantization == "int8-block"
    rep = prepare_onnx(card.verify(), tmp_path / "sface.onnx", dims={0: "batch"})
    assert rep.dequantized > 0 and rep.max_abs_diff < 1e-3
    ops = {n.op_type for n in __import__("onnx").load(str(rep.onnx)).graph.node}
    assert "DequantizeLinear" not in ops


def test_prepare_onnx_refuses_junk(tmp_path):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"not a model" * 10)
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        prepare_onnx(bad, tmp_path / "out.onnx")


# ---------------------------------------------------------------- calibration inputs

def _capture(session):
    seen = []
    real = session.run

    def run(inputs):
        seen.append({k: v.copy() for k, v in inputs.items()})
        return real(inputs)
    session.run = run
    return seen


@pytest.mark.skipif(not LFW.is_dir(), reason="needs ../shared/data/lfw")
@pytest.mark.parametrize("family", ["detector", "landmarks", "embedder"])
def test_calibration_batches_are_the_pipelines_own_inputs_bit_for_bit(tmp_path, family):
    from engine.detectors import create_detector
    from engine.embedders import create_embedder
    from engine.imageio import read_image
    from engine.landmarks import create_landmarker
    from trt_build.calibrate import CPU, calibration_batches

    src = sorted((LFW / "lfw-deepfunneled").glob("*/*.jpg"))[:3]
    folder = tmp_path / "calib"
    folder.mkdir()
    for i, f in enumerate(src):
        (folder / f"{i}.jpg").write_bytes(f.read_bytes())
    card = find_card({"detector": "yunet", "landmarks": "hourglass68", "embedder": "sface"}[family])
    batches = list(calibration_batches(card, folder, batch_size=1))
    # what the stages hand their sessions when the app runs them (defaults: YuNet at 640x640,
    # hourglass alignment points)
    det = create_detector("yunet", DetectorConfig(), CPU)
    lm = create_landmarker("hourglass68", LandmarkConfig(), CPU)
    emb = create_embedder("sface", runtime=CPU)
    stage = {"detector": det, "landmarks": lm, "embedder": emb}[family]
    seen = _capture(stage.session)
    for i in range(len(src)):
        image = read_image(folder / f"{i}.jpg")
        faces = det(image) if family != "detector" else None
        if family == "detector":
            det(image)
        elif family == "landmarks":
            lm(image, faces)
        else:
            emb.embed_faces(image, lm(image, faces))
    fed = np.concatenate([next(iter(s.values())) for s in seen])
    got = np.concatenate(batches)
    assert got.dtype == np.float32 and got.shape == fed.shape and len(got) >= len(src)
    assert np.array_equal(got, fed)


@pytest.mark.skipif(not LFW.is_dir(), reason="needs ../shared/data/lfw")
def test_calibration_accepts_aligned_crops_and_drops_ragged_batches(tmp_path):
    from engine.embedders import create_embedder
    from trt_build.calibrate import calibration_batches

    emb = create_embedder("sface")
    folder = tmp_path / "crops"
    folder.mkdir()
    import cv2
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    for i, c in enumerate(crops):
        cv2.imwrite(str(folder / f"{i}.png"), c)
    (folder / "broken.png").write_bytes(b"not an image")
    batches = list(calibration_batches(find_card("sface"), folder, batch_size=2))
    assert [b.shape for b in batches] == [(2, 3, 112, 112)] * 2
    assert np.array_equal(batches[0], emb.preprocess_crops(crops[:2]))


# ---------------------------------------------------------------- engine cache

def _key(**changes) -> EngineKey:
    base = EngineKey(model="sface", onnx_sha256="a" * 64, tensorrt="10.13.3.9/prepare-v1", gpu="NVIDIA H100",
                     compute_capability="9.0", precision="fp16",
                     profile=Profile((("input", (1, 3, 112, 112), (8, 3, 112, 112), (16, 3, 112, 112)),)))
    return replace(base, **changes)


def test_engine_key_is_stable_across_processes_and_sensitive_to_every_field():
    k = _key()
    code = ("from tests.test_trt_build import _key; print(_key().digest)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert k.digest == _key().digest == other
    variants = dict(model="hourglass68", onnx_sha256="b" * 64, tensorrt="10.14.1.48/prepare-v1", gpu="NVIDIA L4",
                    compute_capability="8.9", precision="fp32",
                    profile=Profile((("input", (1, 3, 112, 112), (8, 3, 112, 112), (32, 3, 112, 112)),)))
    digests = {k.digest}
    for field, value in variants.items():
        digests.add(_key(**{field: value}).digest)
    digests.add(_key(precision="int8", calibration_sha256="c" * 64).digest)
    digests.add(_key(precision="int8", calibration_sha256="d" * 64).digest)
    assert len(digests) == len(variants) + 3
    with pytest.raises(ValueError, match="calibration"):
        _key(precision="int8")
    with pytest.raises(ValueError, match="min <= opt <= max"):
        Profile((("input", (1, 3), (8, 3), (4, 3)),))


def test_cache_reuses_only_matching_plans(cache):
    k = _key()
    assert lookup(k) is None
    path = store(k, b"plan-bytes", build_seconds=1.5)
    assert path == plan_path(k) and lookup(k) == path and path.read_bytes() == b"plan-bytes"
    assert lookup(_key(gpu="NVIDIA L4")) is None and lookup(_key(tensorrt="10.14.1.48/prepare-v1")) is None
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["key"]["compute_capability"] = "8.0"            # a plan built elsewhere under this name
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert lookup(k) is None
    path.with_suffix(".json").unlink()                    # half-written: never trusted
    assert lookup(k) is None
    assert [e["key"] for e in entries()] == [None]
    assert clear() == 1 and entries() == []


def test_trt_cli_list_clear_and_build_without_gpu(cache, capsys):
    store(_key(), b"x" * 10)
    assert main(["trt", "list"]) == 0
    assert "sface fp16" in capsys.readouterr().out
    assert main(["trt", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["key"]["gpu"] == "NVIDIA H100"
    assert main(["trt", "clear"]) == 0
    assert "removed 2 files" in capsys.readouterr().out
    assert main(["trt", "build", "--model", "sface"]) == 2
    assert "TensorRT is not available" in capsys.readouterr().err or probe().gpus


# ---------------------------------------------------------------- backend and selection

def test_session_chunks_and_profile_checks():
    assert split_batches(0, 4) == []
    assert [(s.start, s.stop) for s in split_batches(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    check_shape("input", (3, 3, 112, 112), (1, 3, 112, 112), (16, 3, 112, 112))
    with pytest.raises(ValueError, match="outside the engine's profile"):
        check_shape("input", (3, 3, 96, 112), (1, 3, 112, 112), (16, 3, 112, 112))


H100 = Gpu("NVIDIA H100 80GB HBM3", "9.0", 81559)


@pytest.mark.parametrize("machine, backend, words", [
    (Probe(gpus=(H100,), tensorrt="10.13.3.9", cuda_python="12.9.4", ort_providers=("CPUExecutionProvider",)),
     "tensorrt", "TensorRT 10.13.3.9"),
    (Probe(gpus=(H100,), cuda_python="12.9.4", ort_providers=("CUDAExecutionProvider", "CPUExecutionProvider")),
     "onnxruntime-cuda", "tensorrt not installed"),
    (Probe(gpus=(H100,), tensorrt="10.13.3.9", ort_providers=("CPUExecutionProvider",)),
     "onnxruntime", "cuda-python not installed"),
    (Probe(ort_providers=("CUDAExecutionProvider", "CPUExecutionProvider"), notes=("nvidia-smi not found",)),
     "onnxruntime", "no NVIDIA GPU found (nvidia-smi not found)"),
])
def test_backend_choice(machine, backend, words):
    choice = choose_backend("auto", machine)
    assert choice.backend == backend and words in choice.reason
    assert choose_backend("onnxruntime", machine).backend == "onnxruntime"


def test_this_machine_runs_onnxruntime_cpu_and_doctor_says_why(tmp_path, capsys):
    machine = probe()
    if machine.gpus:
        pytest.skip("this machine has a GPU; the CPU fallback is covered by test_backend_choice")
    choice = choose_backend("auto")
    assert choice.backend == "onnxruntime" and "no NVIDIA GPU" in choice.reason
    session = create_session(prepared_model_path(find_card("sface")), RuntimeConfig())   # "auto"
    assert session.backend == "onnxruntime"
    assert main(["doctor", "--json", str(tmp_path / "doctor.json")]) == 0
    out = capsys.readouterr().out
    assert "embedder     sface" in out and "-> onnxruntime" in out and "no NVIDIA GPU" in out
    report = json.loads((tmp_path / "doctor.json").read_text())
    assert report["gpus"] == [] and {s["backend"] for s in report["stages"].values()} == {"onnxruntime"}
    assert "CPUExecutionProvider" in report["onnxruntime_providers"] and report["packages"]["numpy"]
    assert main(["doctor", "--detector", "yolo", "--detector-weights", "w.pt"]) == 0
    assert "ultralytics (PyTorch)" in capsys.readouterr().out


def test_tensorrt_backend_without_tensorrt_is_a_clear_error(cache):
    if probe().gpus:
        pytest.skip("GPU machine: covered by tests/test_trt_gpu.py")
    with pytest.raises(ModelError, match="TensorRT is not available|needs an NVIDIA GPU"):
        create_session(prepared_model_path(find_card("sface")), RuntimeConfig(backend="tensorrt"))
    with pytest.raises(ValueError, match="precision"):
        RuntimeConfig(precision="int4")
