"""What this machine offers for inference, looked at once per process (no model loaded).

NVIDIA GPUs are found through the CUDA runtime of cuda-python (``cuda.bindings``), and a GPU
only counts as *working* when a tiny allocation, an async memset on a new stream and a stream
synchronize all succeed on device 0 (``Probe.cuda_works``): a driver that lists a device but
cannot run work on it (wrong driver for the CUDA build, a GPU in a bad state, no permission on
/dev/nvidia*) is caught here, not at the first inference. When the bindings are absent or fail,
``nvidia-smi`` still names the GPU for the report, but an unproven GPU is never handed to
TensorRT (``engine.backends.select``). Also: whether ``tensorrt`` 10 imports, and ONNX
Runtime's providers.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import shutil
import subprocess
from dataclasses import dataclass, field

PROOF_BYTES = 1024


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: str          # "8.9"
    memory_mb: int


@dataclass(frozen=True)
class Probe:
    """What this machine offers. Versions are None when the package is missing.

    ``cuda_works``: device 0 ran a real CUDA allocation + stream through cuda-python.
    ``gpu_source``: "cuda-python" or "nvidia-smi" (where ``gpus`` came from), "" when none."""

    gpus: tuple[Gpu, ...] = ()
    driver: str | None = None
    cuda_runtime: str | None = None
    tensorrt: str | None = None
    cuda_python: str | None = None
    ort: str | None = None
    ort_providers: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())   # why a probe step found nothing or failed
    cuda_works: bool = False
    gpu_source: str = ""

    def gpu_verdict(self) -> str:
        """One line: the GPU and whether CUDA work ran on it, with the probe's notes."""
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        if not self.gpus:
            return "no NVIDIA GPU found" + notes
        g = self.gpus[0]
        state = "CUDA allocation + stream OK" if self.cuda_works else "not proven usable by CUDA"
        return f"GPU {g.name} (sm {g.compute_capability}, via {self.gpu_source}): {state}" + notes


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _prove_device(cudart, notes: list[str]) -> bool:
    """Allocate, memset on a fresh stream, synchronize, free: True only if all of it ran."""
    ok = cudart.cudaError_t.cudaSuccess
    ptr = stream = None

    def step(name: str, result) -> bool:
        if result[0] != ok:
            notes.append(f"{name}: {result[0].name}")
            return False
        return True

    try:
        if not step("cudaSetDevice(0)", cudart.cudaSetDevice(0)):
            return False
        result = cudart.cudaStreamCreate()
        if not step("cudaStreamCreate", result):
            return False
        stream = result[1]
        result = cudart.cudaMalloc(PROOF_BYTES)
        if not step(f"cudaMalloc({PROOF_BYTES})", result):
            return False
        ptr = result[1]
        return (step("cudaMemsetAsync", cudart.cudaMemsetAsync(ptr, 0, PROOF_BYTES, stream))
                and step("cudaStreamSynchronize", cudart.cudaStreamSynchronize(stream)))
    finally:
        if ptr is not None:
            cudart.cudaFree(ptr)
        if stream is not None:
            cudart.cudaStreamDestroy(stream)


def _gpus_cuda_python(notes: list[str]) -> tuple[tuple[Gpu, ...], str | None, str | None, bool]:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        notes.append("cuda-python (cuda.bindings >= 12.6.1) not installed")
        return (), None, None, False
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess:
        notes.append(f"CUDA runtime: {err.name}")
        return (), None, None, False
    gpus = []
    for dev in range(count):
        err, prop = cudart.cudaGetDeviceProperties(dev)
        if err == cudart.cudaError_t.cudaSuccess:
            name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
            gpus.append(Gpu(name, f"{prop.major}.{prop.minor}", int(prop.totalGlobalMem) >> 20))
    _, drv = cudart.cudaDriverGetVersion()
    _, rt = cudart.cudaRuntimeGetVersion()
    fmt = lambda v: f"{v // 1000}.{v % 1000 // 10}" if v else None  # noqa: E731  (12040 -> "12.4")
    works = bool(gpus) and _prove_device(cudart, notes)
    return tuple(gpus), fmt(drv), fmt(rt), works


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
    except Exception as exc:  # noqa: BLE001 - ImportError, or OSError when libnvinfer is missing
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
    gpus, driver, cuda_rt, works = _gpus_cuda_python(notes)
    source = "cuda-python" if gpus else ""
    if not gpus:
        gpus, driver = _gpus_nvidia_smi(notes)
        source = "nvidia-smi" if gpus else ""
    try:
        import onnxruntime as ort
        providers = tuple(ort.get_available_providers())
    except ImportError:
        providers = ()
    return Probe(gpus=gpus, driver=driver, cuda_runtime=cuda_rt,
                 tensorrt=_tensorrt_version(notes) if gpus else None,
                 cuda_python=_version("cuda-python") or _version("cuda-bindings"),
                 ort=_version("onnxruntime") or _version("onnxruntime-gpu"), ort_providers=providers,
                 notes=tuple(notes), cuda_works=works, gpu_source=source)
