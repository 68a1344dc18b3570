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
from engine.backends.select import choose_backend, probe
from engine.backends.tensorrt import check_shape, split_batches
from engine.backends.trt_cache import EngineKey, Profile, clear, entries, lookup, plan_path, store
from engine.cli.main import main
from engine.config import DetectorConfig, LandmarkConfig, RuntimeConfig
from engine.errors import ModelError
from engine.models import find_card, prepared_model_path

torch = pytest.importorskip("torch")

from trt_build.export import export_onnx
from trt_build.prepare import input_shapes, prepare_onnx

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
    base = EngineKey(model="sface", onnx_sha256="a" * 64, tensorrt="10.13.3.9/prepare-v2", gpu="NVIDIA H100",
                     compute_capability="9.0", precision="fp16",
                     profile=Profile((("input", (1, 3, 112, 112), (8, 3, 112, 112), (16, 3, 112, 112)),)),
                     tensorrt_build="cu12", onnxslim="0.1.98")
    return replace(base, **changes)


def test_engine_key_is_stable_across_processes_and_sensitive_to_every_field():
    k = _key()
    code = ("from tests.test_trt_build import _key; print(_key().digest)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert k.digest == _key().digest == other
    variants = dict(model="hourglass68", onnx_sha256="b" * 64, tensorrt="10.14.1.48/prepare-v2", gpu="NVIDIA L4",
                    compute_capability="8.9", precision="fp32",
                    profile=Profile((("input", (1, 3, 112, 112), (8, 3, 112, 112), (32, 3, 112, 112)),)),
                    tensorrt_build="cu13", onnxslim="0.1.99")
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
    assert lookup(_key(gpu="NVIDIA L4")) is None and lookup(_key(tensorrt="10.14.1.48/prepare-v2")) is None
    assert lookup(_key(tensorrt_build="cu13")) is None and lookup(_key(onnxslim="0.2.0")) is None
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
    err = capsys.readouterr().err
    assert "TensorRT is not available" in err or probe().cuda_works
    assert "trt-cu12" in err or probe().cuda_works          # the install hint names the pinned extras


# ---------------------------------------------------------------- backend and selection

def test_session_chunks_and_profile_checks():
    assert split_batches(0, 4) == []
    assert [(s.start, s.stop) for s in split_batches(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    check_shape("input", (3, 3, 112, 112), (1, 3, 112, 112), (16, 3, 112, 112))
    with pytest.raises(ValueError, match="outside the engine's profile"):
        check_shape("input", (3, 3, 96, 112), (1, 3, 112, 112), (16, 3, 112, 112))


def test_this_machine_runs_onnxruntime_cpu_and_doctor_says_why(tmp_path, capsys):
    machine = probe()
    if machine.gpus:
        pytest.skip("this machine has a GPU; the CPU fallback is covered by test_backend_choice")
    choice = choose_backend("auto")
    assert choice.backend == "onnxruntime" and "no NVIDIA GPU" in choice.reason
    session = create_session(prepared_model_path(find_card("sface")), RuntimeConfig())   # "auto"
    assert session.backend == "onnxruntime" and session.selection.reason == choice.reason
    assert main(["doctor", "--json", str(tmp_path / "doctor.json")]) == 0
    out = capsys.readouterr().out
    assert "embedder     sface" in out and "-> onnxruntime" in out and "no NVIDIA GPU" in out
    report = json.loads((tmp_path / "doctor.json").read_text())
    assert report["gpus"] == [] and {s["backend"] for s in report["stages"].values()} == {"onnxruntime"}
    assert "CPUExecutionProvider" in report["onnxruntime_providers"] and report["packages"]["numpy"]
    assert main(["doctor", "--detector", "yolo", "--detector-weights", "w.pt"]) == 0
    assert "ultralytics (PyTorch)" in capsys.readouterr().out


def test_tensorrt_backend_without_tensorrt_is_a_clear_error(cache):
    if probe().cuda_works:
        pytest.skip("GPU machine: covered by tests/test_trt_gpu.py")
    with pytest.raises(ModelError, match="TensorRT is not available|needs a working NVIDIA GPU"):
        create_session(prepared_model_path(find_card("sface")), RuntimeConfig(backend="tensorrt"))
    with pytest.raises(ValueError, match="precision"):
        RuntimeConfig(precision="int4")


# ---------------------------------------------------------------- calibration batch validation

def test_check_batch_wants_the_calibration_shape_float32_and_one_array_per_input():
    from trt_build.calibrate import check_batch

    x = np.zeros((8, 3, 112, 112), np.float32)
    (got,) = check_batch(x, ["data"], {"data": (8, 3, 112, 112)})
    assert got.shape == (8, 3, 112, 112) and got.flags.c_contiguous
    with pytest.raises(ValueError, match=r"shape \(4, 3, 112, 112\).*wants \(8, 3, 112, 112\)"):
        check_batch(x[:4], ["data"], {"data": (8, 3, 112, 112)})
    with pytest.raises(ValueError, match="float32"):
        check_batch(x.astype(np.float16), ["data"], {"data": (8, 3, 112, 112)})
    # two inputs: a dict, one array per name in TensorRT's order; a bare array is refused
    a, b = np.zeros((1, 3, 8, 8), np.float32), np.ones((1, 4), np.float32)
    out = check_batch({"b": b, "a": a}, ["a", "b"], {"a": (1, 3, 8, 8), "b": (1, 4)})
    assert [o.shape for o in out] == [(1, 3, 8, 8), (1, 4)] and out[1].sum() == 4
    with pytest.raises(ValueError, match="2 inputs"):
        check_batch(a, ["a", "b"], {"a": (1, 3, 8, 8), "b": (1, 4)})
    with pytest.raises(ValueError, match="inputs \\['a'\\], the network wants \\['a', 'b'\\]"):
        check_batch({"a": a}, ["a", "b"], {"a": (1, 3, 8, 8), "b": (1, 4)})


def test_calibration_profile_is_the_first_batch_shape_inside_the_engine_profile():
    from trt_build.engines import calibration_profile

    prof = Profile((("images", (1, 3, 32, 32), (1, 3, 640, 640), (1, 3, 640, 640)),))
    cp = calibration_profile(prof, [np.zeros((1, 3, 384, 640), np.float32)])
    assert cp.shapes == (("images", (1, 3, 384, 640), (1, 3, 384, 640), (1, 3, 384, 640)),)
    with pytest.raises(ModelError, match="outside the engine's profile"):
        calibration_profile(prof, [np.zeros((1, 3, 704, 640), np.float32)])


@pytest.mark.skipif(not LFW.is_dir(), reason="needs ../shared/data/lfw")
def test_yolo_calibration_batches_all_have_one_shape(tmp_path):
    import cv2

    from trt_build.calibrate import calibration_batches

    folder = tmp_path / "calib"
    folder.mkdir()
    src = sorted((LFW / "lfw-deepfunneled").glob("*/*.jpg"))[:6]
    for i, f in enumerate(src):               # real photos, cut to different aspect ratios
        img = cv2.imread(str(f))
        cv2.imwrite(str(folder / f"{i}.png"), img if i % 2 else img[:125])
    batches = list(calibration_batches(find_card("yolo11p-face"), folder, batch_size=1))
    assert len(batches) == 3 and len({b.shape for b in batches}) == 1   # the other aspect ratio skipped


# ---------------------------------------------------------------- parity on real inputs

def test_agreement_scores_a_zero_output_against_a_real_one_as_zero():
    from trt_build.parity import agreement

    a = np.array([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
    b = np.array([[2.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    assert np.allclose(agreement(a, b), [1.0, 1.0, 0.0])


@pytest.mark.parametrize("name", ["yunet", "hourglass68", "sface"])
def test_parity_feeds_are_real_preprocessed_inputs_at_every_profile_corner(name):
    from engine.cli.trt_cmd import stage_request
    from trt_build.parity import corner_shapes, demo_frames, real_feeds

    card = find_card(name)
    request = stage_request(card, RuntimeConfig(backend="tensorrt", max_batch=4))
    profile = request.profile()
    input_name = profile.shapes[0][0]
    shapes = corner_shapes(profile, input_name, ())
    feeds = real_feeds(card, input_name, shapes, demo_frames(4))
    assert set(feeds) == {"min", "opt", "max"}
    for corner, x in feeds.items():
        assert x.shape == shapes[corner] and x.dtype == np.float32
        assert x.std() > 0.05 * (np.abs(x).max() or 1)         # image content, not a constant
    if name == "yunet":                                          # YuNet takes 0-255 BGR pixels
        assert feeds["max"].max() > 100 and feeds["min"].shape == (1, 3, 32, 32)
    else:                                                        # faces, batch 1 .. max_batch
        assert feeds["min"].shape[0] == 1 and feeds["max"].shape[0] == 4


def test_parity_gate_rejects_a_broken_network_that_uniform_noise_would_pass(tmp_path):
    """The gate compares outputs on real aligned faces; a network whose first convolution lost
    its weights' sign (a layer gone wrong, as with bad INT8 scales) fails every threshold, the intact
    one passes the strictest. OrtSession stands in for TensorRT (no GPU here); the comparison,
    the inputs and the thresholds are the ones ensure_engine applies to a built plan."""
    import onnx
    from onnx import numpy_helper

    from engine.backends.onnxruntime import OrtSession
    from trt_build.parity import MIN_AGREEMENT, check, compare, demo_frames, real_feeds

    card = find_card("sface")
    onnx_path = prepared_model_path(card)
    model = onnx.load(str(onnx_path))
    init = next(i for i in model.graph.initializer if len(i.dims) >= 3 and i.data_type == onnx.TensorProto.FLOAT)
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    ref, bad = OrtSession(onnx_path), OrtSession(broken)
    feeds = real_feeds(card, ref.input_names[0], {"min": (1, 3, 112, 112), "max": (8, 3, 112, 112)}, demo_frames(4))
    feeds = {c: {ref.input_names[0]: x} for c, x in feeds.items()}
    good = compare(OrtSession(onnx_path), ref, feeds)
    assert good["min_agreement"] > 0.99999
    check(good, "fp32", "intact")
    report = compare(bad, ref, feeds)
    for precision in MIN_AGREEMENT:
        with pytest.raises(ModelError, match="disagrees with ONNX Runtime on real inputs"):
            check(report, precision, "broken")


# ---------------------------------------------------------------- background builder

def test_engine_builder_reports_progress_and_results_and_forgets_built_requests():
    """A stand-in build function replaces TensorRT (no GPU): the builder's thread, progress,
    results, error reporting and the runtime's missing-plan registry are real."""
    import threading

    from engine.backends.trt_plan import PlanRequest, forget_missing, missing_plans, note_missing
    from trt_build.background import EngineBuilder

    forget_missing()
    ok = PlanRequest(Path("sface.onnx"), card=find_card("sface"))
    broken = PlanRequest(Path("yunet.onnx"), max_batch=1, max_side=640, card=find_card("yunet"))
    note_missing(ok), note_missing(broken), note_missing(ok)
    assert missing_plans() == [ok, broken]
    seen, finished, threads = [], threading.Event(), set()

    def build(request, progress, cancel):
        threads.add(threading.current_thread().name)
        for f in (0.0, 0.5, 1.0):
            progress("build", f)
        if request is broken:
            raise ModelError("TensorRT could not build an engine from yunet.onnx")
        return Path("/plans/sface.plan"), {"cached": False}

    builder = EngineBuilder(progress=seen.append, done=lambda r: finished.set(), build=build).start()
    assert builder.wait(30) and finished.is_set()
    assert threads == {"trt-engine-builder"}
    first = [(p.index, p.model, p.fraction) for p in seen][:3]
    assert first == [(0, "sface", 0.0), (0, "sface", 0.5), (0, "sface", 1.0)]
    assert seen[-1].text() == "TensorRT engine 2/2 (yunet): build 100%"
    assert [(r.plan, r.error) for r in builder.results] == [
        (Path("/plans/sface.plan"), None), (None, "TensorRT could not build an engine from yunet.onnx")]
    assert missing_plans() == [broken]          # built ones are forgotten, failed ones stay
    forget_missing()


def test_engine_builder_cancel_stops_before_the_next_plan():
    import threading

    from engine.backends.trt_plan import PlanRequest
    from trt_build.background import EngineBuilder

    started, release = threading.Event(), threading.Event()
    requests = [PlanRequest(Path(f"m{i}.onnx")) for i in range(3)]

    def build(request, progress, cancel):
        started.set()
        release.wait(10)
        return Path("x.plan"), {}

    builder = EngineBuilder(requests, build=build).start()
    assert started.wait(10)
    builder.cancel()
    release.set()
    assert builder.wait(10)
    assert [r.error for r in builder.results] == [None, "cancelled", "cancelled"]
