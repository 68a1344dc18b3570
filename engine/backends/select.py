"""Which backend runs the models on this machine, and why.

``probe()`` looks at the machine once (cheap, no model loaded, nothing compiled): NVIDIA GPUs
through the CUDA runtime of cuda-python (``cuda.bindings``), falling back to ``nvidia-smi``
when the bindings are absent; whether ``tensorrt`` imports; ONNX Runtime's providers.
``choose_backend`` is a pure function of that :class:`Probe`:

1. TensorRT, when a GPU, ``tensorrt`` (10.x) and cuda-python are all there;
2. else ONNX Runtime with its CUDA execution provider, when a GPU and onnxruntime-gpu are there;
3. else ONNX Runtime on the CPU.

An explicit backend is honoured as asked (its own factory fails with a clear message when it
cannot run); "auto" never picks something that is not there.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import shutil
import subprocess
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: str          # "8.9"
    memory_mb: int


@dataclass(frozen=True)
class Probe:
    """What this machine offers. Versions are None when the package is missing."""

    gpus: tuple[Gpu, ...] = ()
    driver: str | None = None
    cuda_runtime: str | None = None
    tensorrt: str | None = None
    cuda_python: str | None = None
    ort: str | None = None
    ort_providers: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())   # why a probe step found nothing


@dataclass(frozen=True)
class Choice:
    backend: str
    reason: str


def choose_backend(requested: str = "auto", machine: Probe | None = None) -> Choice:
    """Resolve ``requested`` ("auto" or a backend name) against ``machine`` (default: this one)."""
    if requested != "auto":
        return Choice(requested, "asked for explicitly")
    m = machine if machine is not None else probe()
    gpu = f"{m.gpus[0].name} (sm {m.gpus[0].compute_capability})" if m.gpus else None
    if gpu and m.tensorrt and m.cuda_python:
        return Choice("tensorrt", f"GPU {gpu}, TensorRT {m.tensorrt} and cuda-python {m.cuda_python} found")
    missing = [] if gpu else ["no NVIDIA GPU found" + (f" ({'; '.join(m.notes)})" if m.notes else "")]
    if gpu:
        missing += [f"{p} not installed (pip install 'facescope[trt]')"
                    for p, v in (("tensorrt", m.tensorrt), ("cuda-python", m.cuda_python)) if not v]
    if gpu and "CUDAExecutionProvider" in m.ort_providers:
        return Choice("onnxruntime-cuda", f"GPU {gpu} and ONNX Runtime's CUDA provider; not TensorRT: "
                      + ", ".join(missing))
    if gpu:
        missing.append("ONNX Runtime has no CUDAExecutionProvider (that needs onnxruntime-gpu)")
    return Choice("onnxruntime", "CPU: " + ", ".join(missing))


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpus_cuda_python(notes: list[str]) -> tuple[tuple[Gpu, ...], str | None, str | None]:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        notes.append("cuda-python not installed")
        return (), None, None
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess:
        notes.append(f"CUDA runtime: {err.name}")
        return (), None, None
    gpus = []
    for dev in range(count):
        err, prop = cudart.cudaGetDeviceProperties(dev)
        if err == cudart.cudaError_t.cudaSuccess:
            name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
            gpus.append(Gpu(name, f"{prop.major}.{prop.minor}", int(prop.totalGlobalMem) >> 20))
    _, drv = cudart.cudaDriverGetVersion()
    _, rt = cudart.cudaRuntimeGetVersion()
    fmt = lambda v: f"{v // 1000}.{v % 1000 // 10}" if v else None  # noqa: E731  (12040 -> "12.4")
    return tuple(gpus), fmt(drv), fmt(rt)


def _gpus_nvidia_smi(notes: list[str]) -> tuple[tuple[Gpu, ...], str | None]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        notes.append("nvidia-smi not found")
        return (), None
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap,memory.total,driver_version",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        notes.append(f"nvidia-smi failed: {exc}")
        return (), None
    if out.returncode != 0:
        notes.append(f"nvidia-smi: {out.stderr.strip() or out.stdout.strip()}")
        return (), None
    gpus, driver = [], None
    for line in out.stdout.strip().splitlines():
        name, cap, mem, driver = (v.strip() for v in line.split(","))
        gpus.append(Gpu(name, cap, int(float(mem))))
    return tuple(gpus), driver


def _tensorrt_version(notes: list[str]) -> str | None:
    try:
        trt = importlib.import_module("tensorrt")
    except Exception as exc:  # ImportError, or OSError when libnvinfer is missing
        notes.append(f"tensorrt does not import ({type(exc).__name__})")
        return None
    version = str(getattr(trt, "__version__", "?"))
    if not version.startswith("10."):
        notes.append(f"tensorrt {version} found; this build targets the TensorRT 10 API")
        return None
    return version


@functools.lru_cache(maxsize=1)
def probe() -> Probe:
    """Probe this machine (cached for the process: hardware does not change under us)."""
    notes: list[str] = []
    gpus, driver, cuda_rt = _gpus_cuda_python(notes)
    if not gpus:
        gpus, driver = _gpus_nvidia_smi(notes)
    try:
        import onnxruntime as ort
        providers = tuple(ort.get_available_providers())
    except ImportError:
        providers = ()
    return Probe(gpus=gpus, driver=driver, cuda_runtime=cuda_rt,
                 tensorrt=_tensorrt_version(notes) if gpus else None,
                 cuda_python=_version("cuda-python") or _version("cuda-bindings"),
                 ort=_version("onnxruntime") or _version("onnxruntime-gpu"), ort_providers=providers,
                 notes=tuple(notes))
