"""Backend selection, the fallback chain, TensorRT dtype mapping and profile limits, on a CPU.

The machine probe is replaced by hand-written :class:`Probe` records (a GPU this machine does
not have); everything else is real: the factories of every backend run and fail the way they
fail here (no TensorRT, no CUDA provider), and the chain ends on ONNX Runtime's CPU session.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from engine.backends import PlanRequest, create_session, missing_plans
from engine.backends.probe import Gpu, Probe, _prove_device
from engine.backends.select import Selection, choose_backend
from engine.backends.trt_dtypes import from_engine, host_view, numpy_dtype, to_engine
from engine.backends.trt_plan import SPATIAL_MAX, forget_missing, note_missing, profile_for
from engine.config import DetectorConfig, RuntimeConfig
from engine.detectors.base import letterbox, max_net_side
from engine.detectors.yolo import effective_size, yolo_letterbox
from engine.errors import ModelError
from engine.models import find_card, prepared_model_path

H100 = Gpu("NVIDIA H100 80GB HBM3", "9.0", 81559)
CPU_EP = ("CPUExecutionProvider",)
CUDA_EP = ("CUDAExecutionProvider", "CPUExecutionProvider")


def _gpu(**kw) -> Probe:
    base = dict(gpus=(H100,), tensorrt="10.16.0.72", cuda_python="12.9.4", ort_providers=CUDA_EP,
                cuda_works=True, gpu_source="cuda-python")
    return Probe(**{**base, **kw})


# ---------------------------------------------------------------- choice (pure)

@pytest.mark.parametrize("machine, backend, fallbacks, words", [
    (_gpu(), "tensorrt", ("onnxruntime-cuda", "onnxruntime"), "proven by a CUDA allocation + stream"),
    (_gpu(ort_providers=CPU_EP), "tensorrt", ("onnxruntime",), "TensorRT 10.16.0.72"),
    # nvidia-smi sees the GPU but cuda-python's proof failed: never TensorRT
    (_gpu(cuda_works=False, notes=("cudaMalloc(1024): cudaErrorMemoryAllocation",)), "onnxruntime-cuda",
     ("onnxruntime",), "not proven usable by CUDA (cudaMalloc(1024): cudaErrorMemoryAllocation)"),
    (_gpu(cuda_works=False, cuda_python=None, gpu_source="nvidia-smi"), "onnxruntime-cuda", ("onnxruntime",),
     "cuda-python is needed to prove the GPU works"),
    (_gpu(tensorrt=None), "onnxruntime-cuda", ("onnxruntime",),
     "tensorrt 10 not installed (pip install 'facescope[trt-cu12]'"),
    (_gpu(tensorrt=None, ort_providers=CPU_EP), "onnxruntime", (), "ONNX Runtime has no CUDAExecutionProvider"),
    (Probe(ort_providers=CUDA_EP, notes=("CUDA runtime: cudaErrorInsufficientDriver", "nvidia-smi not found")),
     "onnxruntime", (), "CPU: no NVIDIA GPU found (CUDA runtime: cudaErrorInsufficientDriver; nvidia-smi not found)"),
])
def test_choice_and_fallback_chain(machine, backend, fallbacks, words):
    choice = choose_backend("auto", machine)
    assert (choice.backend, choice.fallbacks) == (backend, fallbacks)
    assert words in choice.reason
    assert choose_backend("onnxruntime", machine) == choose_backend("onnxruntime", Probe())   # explicit: as asked


# ---------------------------------------------------------------- the chain, run for real

@pytest.fixture()
def sface() -> Path:
    return prepared_model_path(find_card("sface"))


def test_auto_falls_back_tensorrt_then_cuda_then_cpu_with_each_reason(sface):
    """A probe that promises a working H100 with TensorRT and ORT-CUDA; on this machine both GPU
    factories fail for real, and the session that runs says why, step by step."""
    session = create_session(sface, RuntimeConfig(backend="auto"), card=find_card("sface"), machine=_gpu())
    sel = session.selection
    assert session.backend == "onnxruntime" and isinstance(sel, Selection)
    assert [b for b, _ in sel.fallbacks] == ["tensorrt", "onnxruntime-cuda"]
    assert "TensorRT is not available" in sel.fallbacks[0][1] and "trt-cu12" in sel.fallbacks[0][1]
    assert "CUDAExecutionProvider" in sel.fallbacks[1][1]
    assert sel.reason == "fallback after tensorrt, onnxruntime-cuda"
    assert sel.summary().startswith("onnxruntime (tensorrt failed: TensorRT is not available")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    ref = create_session(sface, "onnxruntime")
    assert np.array_equal(session.run({"data": x})["fc1"], ref.run({"data": x})["fc1"])


def test_the_chain_is_logged(sface, caplog):
    with caplog.at_level("INFO", logger="engine.backends"):
        create_session(sface, RuntimeConfig(backend="auto"), machine=_gpu(ort_providers=CPU_EP))
    text = caplog.text
    assert "tensorrt could not open it, falling back" in text and "runs on onnxruntime" in text


def test_explicit_backend_gets_no_fallback(sface):
    session = create_session(sface, "onnxruntime", threads=1)
    assert session.selection == Selection("onnxruntime", "onnxruntime", "asked for explicitly")
    with pytest.raises(ModelError, match="TensorRT is not available|needs a working NVIDIA GPU"):
        create_session(sface, RuntimeConfig(backend="tensorrt"), machine=_gpu())
    with pytest.raises(ModelError, match="providers not available"):
        create_session(sface, "onnxruntime-cuda")


def test_cpu_machine_auto_picks_cpu_without_trying_gpu_backends(sface):
    cpu_only = Probe(ort_providers=CPU_EP, notes=("nvidia-smi not found",))
    session = create_session(sface, RuntimeConfig(), machine=cpu_only)
    assert session.selection.fallbacks == () and session.selection.reason.startswith("CPU: no NVIDIA GPU found")


# ---------------------------------------------------------------- the GPU proof

class _FakeCudart:
    """cuda.bindings.runtime's calling convention ((err, value) tuples) for a GPU that is not
    here: every step succeeds except ``fail_at``. Records what was allocated and freed."""

    class cudaError_t:                       # noqa: N801 - the binding's name
        class _E:
            def __init__(self, name):
                self.name = name

        cudaSuccess = _E("cudaSuccess")                              # noqa: N815 - the binding's names
        cudaErrorMemoryAllocation = _E("cudaErrorMemoryAllocation")  # noqa: N815

    def __init__(self, fail_at: str | None) -> None:
        self.fail_at, self.calls, self.freed = fail_at, [], []

    def _ret(self, name, value=None):
        self.calls.append(name)
        ok = self.cudaError_t.cudaSuccess if name != self.fail_at else self.cudaError_t.cudaErrorMemoryAllocation
        return (ok, value) if value is not None else (ok,)

    def cudaSetDevice(self, dev): return self._ret("cudaSetDevice")                         # noqa: N802
    def cudaStreamCreate(self): return self._ret("cudaStreamCreate", "stream")              # noqa: N802
    def cudaMalloc(self, n): return self._ret("cudaMalloc", 0xDEAD)                         # noqa: N802
    def cudaMemsetAsync(self, p, v, n, s): return self._ret("cudaMemsetAsync")              # noqa: N802
    def cudaStreamSynchronize(self, s): return self._ret("cudaStreamSynchronize")           # noqa: N802
    def cudaFree(self, p): self.freed.append("ptr")                                         # noqa: N802
    def cudaStreamDestroy(self, s): self.freed.append("stream")                             # noqa: N802


@pytest.mark.parametrize("fail_at, works, freed", [
    (None, True, ["ptr", "stream"]),
    ("cudaMalloc", False, ["stream"]),
    ("cudaStreamSynchronize", False, ["ptr", "stream"]),
    ("cudaSetDevice", False, []),
])
def test_gpu_proof_needs_allocation_stream_and_sync_and_frees_what_it_made(fail_at, works, freed):
    cudart, notes = _FakeCudart(fail_at), []
    assert _prove_device(cudart, notes) is works
    assert cudart.freed == freed
    assert notes == ([] if works else [next(n for n in notes if n.startswith(fail_at))])


# ---------------------------------------------------------------- TensorRT dtypes (finding 7)

def test_numpy_has_no_ctypes_type_for_float16_which_is_why_views_go_through_bytes():
    with pytest.raises(NotImplementedError):
        np.ctypeslib.as_ctypes_type(np.dtype(np.float16))


@pytest.mark.parametrize("name, dtype", [("FLOAT", "float32"), ("HALF", "float16"), ("BF16", "bfloat16"),
                                         ("FP8", "float8_e4m3fn"), ("INT8", "int8"), ("UINT8", "uint8"),
                                         ("INT32", "int32"), ("INT64", "int64"), ("BOOL", "bool"),
                                         ("DataType.HALF", "float16")])
def test_tensorrt_types_map_to_numpy(name, dtype):
    assert numpy_dtype(name).name == dtype


def test_packed_types_are_refused_by_name():
    with pytest.raises(ValueError, match="INT4 has no numpy equivalent"):
        numpy_dtype("INT4")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "int64"])
def test_host_view_over_raw_memory_round_trips(dtype):
    dt = numpy_dtype({"float16": "HALF", "bfloat16": "BF16", "float32": "FLOAT", "int64": "INT64"}[dtype])
    memory = ctypes.create_string_buffer(64)            # stands in for cudaMallocHost's pinned block
    view = host_view(ctypes.addressof(memory), 64, dt)
    assert view.dtype == dt and view.size == 64 // dt.itemsize
    x = np.arange(view.size, dtype=np.float32) - 3.5
    view[:] = to_engine(x, dt)
    again = host_view(ctypes.addressof(memory), 64, dt)   # the bytes really are in that memory
    assert np.array_equal(from_engine(again), to_engine(x, dt).astype(np.float32))
    assert from_engine(again).dtype == (np.float32 if dtype != "int64" else np.int64)


def test_host_view_refuses_a_partial_element():
    with pytest.raises(ValueError, match="whole number"):
        host_view(ctypes.addressof(ctypes.create_string_buffer(6)), 6, np.dtype(np.float32))


# ---------------------------------------------------------------- profiles vs configs (finding 4)

@pytest.mark.parametrize("config, frame", [
    (DetectorConfig(input_size=(4096, 4096)), (3000, 4000)),
    (DetectorConfig(input_size=(640, 480)), (1080, 1920)),
    (DetectorConfig(input_size=None, max_side=5000), (4000, 6000)),
    (DetectorConfig(input_size=None, max_side=1920), (700, 1000)),
    (DetectorConfig(input_size=None), (2160, 3840)),
])
def test_detector_profiles_cover_every_input_the_config_produces(config, frame):
    """The profile the stage asks for (max_net_side) covers the letterboxed frame, for YuNet and YOLO."""
    image = np.zeros((*frame, 3), np.uint8)
    yunet = prepared_model_path(find_card("yunet"))
    padded, _ = letterbox(image, config.input_size, 32, config.max_side)
    prof = profile_for(yunet, 1, max_net_side(config))
    assert prof.covers("input", (1, 3, *padded.shape[:2])), (prof, padded.shape)
    yolo = prepared_model_path(find_card("yolo11p-face"))
    padded, _, _ = yolo_letterbox(image, effective_size(image.shape, config))
    prof = profile_for(yolo, 1, max_net_side(config))
    assert prof.covers("images", (1, 3, *padded.shape[:2])), (prof, padded.shape)


def test_profile_defaults_to_the_largest_config_input_and_keeps_static_dims():
    prof = profile_for(prepared_model_path(find_card("yunet")), 1)
    assert prof.shapes[0][3] == (1, 3, SPATIAL_MAX, SPATIAL_MAX) and SPATIAL_MAX == 4096
    with pytest.raises(ValueError, match="4096"):      # the config's own limit the default covers
        DetectorConfig(input_size=(4097, 640))
    prof = profile_for(prepared_model_path(find_card("sface")), 16)
    assert prof.shapes == (("data", (1, 3, 112, 112), (8, 3, 112, 112), (16, 3, 112, 112)),)


def test_stages_ask_for_the_plan_their_config_needs():
    from engine.cli.trt_cmd import stage_request

    det = stage_request(find_card("yunet"), RuntimeConfig(), DetectorConfig(input_size=None, max_side=2500))
    assert (det.max_batch, det.max_side) == (1, 2528) and det.profile().covers("input", (1, 3, 1408, 2528))
    emb = stage_request(find_card("sface"), RuntimeConfig(max_batch=32))
    assert (emb.max_batch, emb.max_side) == (32, None)


def test_missing_plans_registry_dedupes_and_forgets():
    forget_missing()
    a = PlanRequest(Path("a.onnx"), card=find_card("sface"))
    same = PlanRequest(Path("a.onnx"))                  # the card does not change which plan it is
    b = PlanRequest(Path("a.onnx"), precision="fp32")
    for r in (a, same, b):
        note_missing(r)
    assert missing_plans() == [a, b]
    forget_missing(a)
    assert missing_plans() == [b]
    forget_missing()
    assert missing_plans() == []
    with pytest.raises(ValueError, match="precision"):
        PlanRequest(Path("a.onnx"), precision="int4")


def test_max_net_side_rounds_up_to_the_stride():
    assert max_net_side(DetectorConfig(input_size=(641, 480))) == 672
    assert max_net_side(DetectorConfig(input_size=None, max_side=1000), 64) == 1024


def test_doctor_shows_the_choice_its_fallbacks_and_the_plan_state_for_a_gpu_machine():
    import argparse

    from engine.cli.doctor_cmd import report

    args = argparse.Namespace(backend="auto", detector="yunet", detector_weights=None, landmarks="hourglass68",
                              embedder="sface")
    r = report(args, _gpu())
    emb = r["stages"]["embedder"]
    assert emb["backend"] == "tensorrt" and emb["fallbacks"] == ["onnxruntime-cuda", "onnxruntime"]
    # this machine has no TensorRT: the plan cannot be looked up, and doctor says why instead of failing
    assert emb["plan"].startswith("plan not checked: TensorRT is not available")
    assert r["cuda_works"] and "CUDA allocation + stream OK" in r["gpu_verdict"]
