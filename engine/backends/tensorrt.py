"""TensorRT backend: the same ``run({name: array}) -> {name: array}`` as ONNX Runtime.

``create_session(onnx, RuntimeConfig(backend="tensorrt"), card=..., max_side=...)`` *loads* the
cached plan for this ONNX file, GPU, TensorRT build, precision and profile
(:mod:`engine.backends.trt_plan`). It never builds one: a missing plan raises
:class:`PlanMissingError` and is remembered (``missing_plans()``), so "auto" falls back to ONNX
Runtime at once and a front end builds the plan in the background
(``trt_build.background.EngineBuilder``), then reopens the stages.

Per session: one deserialised engine, one execution context, one CUDA stream; tensors bound
by name (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``); pinned host staging
buffers (``cudaMallocHost``) that, like the device buffers, grow to the largest shape seen.
Batches larger than the profile's maximum run in profile-sized chunks.

Thread safety: an ``IExecutionContext`` must not be used by two threads at once (TensorRT
allows concurrency only with one context per thread), and ``execute_async_v3`` releases the
GIL. ``run`` and ``close`` therefore hold one lock per session for the whole call (copies in,
execute, copies out, synchronize). Cost: a second thread calling the same session (the GUI
enrolling while the worker runs) waits for at most one inference, a few milliseconds on a
GPU; a context per thread would avoid the wait but double the activation memory and the
buffers, for a case the app makes rare by running enrolment on the worker thread.

CUDA memory goes through cuda-python's runtime bindings (``engine.backends.cuda_api``). Nothing
here runs without an NVIDIA GPU; the CPU-testable logic lives in ``split_batches``,
``check_shape``, :mod:`engine.backends.trt_dtypes` and :mod:`engine.backends.trt_plan`.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np

from engine.backends.base import BACKENDS
from engine.backends.cuda_api import cuda_call, import_cudart, import_tensorrt, native_handle, trt_logger
from engine.backends.trt_dtypes import from_engine, host_view, numpy_dtype, to_engine
from engine.backends.trt_plan import PlanRequest, find_plan, note_missing
from engine.config import RuntimeConfig
from engine.errors import ModelError


class PlanMissingError(ModelError):
    """No cached TensorRT plan for a request yet (``request``: what to build)."""

    def __init__(self, request: PlanRequest) -> None:
        self.request = request
        super().__init__(f"no TensorRT plan for {request.describe()} on this GPU yet; it is built in the "
                         f"background by the app, or now by: facescope trt build --model {request.model} "
                         f"--precision {request.precision}")


def split_batches(n: int, max_batch: int) -> list[slice]:
    """Slices of ``range(n)`` no longer than ``max_batch`` (one empty-free slice per chunk)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    return [slice(i, min(i + max_batch, n)) for i in range(0, n, max_batch)]


def check_shape(name: str, shape: tuple[int, ...], lo: tuple[int, ...], hi: tuple[int, ...]) -> None:
    """ValueError unless ``lo <= shape <= hi`` per dim (the engine's profile for ``name``)."""
    if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
        raise ValueError(f"input {name!r} shape {tuple(shape)} is outside the engine's profile "
                         f"{tuple(lo)}..{tuple(hi)}")


class _Buffer:
    """A pinned host array and a device allocation of the same byte size (grown on demand)."""

    def __init__(self, cudart, dtype: np.dtype) -> None:
        self.cudart, self.dtype, self.nbytes = cudart, np.dtype(dtype), 0
        self.host_ptr = self.device = None
        self.host = np.empty(0, self.dtype)

    def reserve(self, nbytes: int) -> None:
        if nbytes <= self.nbytes:
            return
        self.free()
        host = cuda_call(self.cudart.cudaMallocHost(nbytes))
        try:
            device = cuda_call(self.cudart.cudaMalloc(nbytes))
        except ModelError:                      # do not leak the pinned block when the device one fails
            self.cudart.cudaFreeHost(host)
            raise
        self.host_ptr, self.device, self.nbytes = host, device, nbytes
        self.host = host_view(int(host), nbytes, self.dtype)

    def free(self) -> None:
        if self.device is not None:
            self.cudart.cudaFree(self.device)
        if self.host_ptr is not None:
            self.cudart.cudaFreeHost(self.host_ptr)
        self.host_ptr = self.device = None
        self.host, self.nbytes = np.empty(0, self.dtype), 0


class TensorRTSession:
    """A deserialised plan ready to run. ``plan``: path to a serialized engine."""

    backend = "tensorrt"

    def __init__(self, plan: Path) -> None:
        trt, self._cudart = import_tensorrt(), import_cudart()
        self._lock = threading.Lock()
        self._buffers: dict[str, _Buffer] = {}
        self._stream = None
        self.path = Path(plan)
        self._runtime = trt.Runtime(trt_logger(trt))
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ModelError(f"TensorRT cannot deserialise {self.path} (corrupt, or built for another GPU or "
                             "TensorRT version? facescope trt clear, then it is rebuilt)")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise ModelError(f"TensorRT could not create an execution context for {self.path.name} "
                             "(out of GPU memory? see the TensorRT messages logged above)")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = tuple(n for n in names if is_input[n])
        self.output_names = tuple(n for n in names if not is_input[n])
        try:
            self._dtypes = {n: numpy_dtype(self._engine.get_tensor_dtype(n)) for n in names}
        except ValueError as exc:
            raise ModelError(f"{self.path.name}: {exc}") from None
        self._stream = cuda_call(self._cudart.cudaStreamCreate())
        self._buffers = {n: _Buffer(self._cudart, self._dtypes[n]) for n in names}
        # profile 0 is the only one trt_build creates; (min, opt, max) per dynamic input
        self._profile = {n: tuple(tuple(s) for s in self._engine.get_tensor_profile_shape(n, 0))
                         for n in self.input_names if -1 in tuple(self._engine.get_tensor_shape(n))}
        self.max_batch = min((p[2][0] for p in self._profile.values()), default=None)

    def input_shape(self, name: str) -> tuple[int, ...]:
        """Static shape of an input, or the profile's opt shape for a dynamic one."""
        return self._profile[name][1] if name in self._profile else tuple(self._engine.get_tensor_shape(name))

    def profile(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
        """(min, opt, max) of a dynamic input, None for a static one."""
        return self._profile.get(name)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:                        # one context, one set of buffers: one caller at a time
            if self._stream is None:
                raise ModelError(f"TensorRT session for {self.path.name} is closed")
            n = len(next(iter(inputs.values())))
            if self.max_batch is None or n <= self.max_batch:
                return self._run_once(inputs)
            parts = [self._run_once({k: v[s] for k, v in inputs.items()}) for s in split_batches(n, self.max_batch)]
            return {k: np.concatenate([p[k] for p in parts]) for k in self.output_names}

    def _run_once(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, ctx = self._cudart, self._context
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)}")
        for name in self.input_names:
            x = to_engine(inputs[name], self._dtypes[name])
            if name in self._profile:
                check_shape(name, x.shape, self._profile[name][0], self._profile[name][2])
            if not ctx.set_input_shape(name, x.shape):
                raise ValueError(f"TensorRT refused shape {x.shape} for input {name!r}")
            buf = self._buffers[name]
            buf.reserve(max(x.nbytes, 1))
            buf.host[:x.size] = x.ravel()
            cuda_call(cudart.cudaMemcpyAsync(buf.device, buf.host_ptr, x.nbytes, h2d, self._stream))
            ctx.set_tensor_address(name, int(buf.device))
        shapes = {}
        for name in self.output_names:
            shape = tuple(ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ModelError(f"output {name!r} has a data-dependent shape {shape}; not supported")
            shapes[name] = shape
            buf = self._buffers[name]
            buf.reserve(max(int(np.prod(shape)) * buf.dtype.itemsize, 1))
            ctx.set_tensor_address(name, int(buf.device))
        if not ctx.execute_async_v3(native_handle(self._stream)):
            raise ModelError(f"TensorRT execution failed for {self.path.name}")
        for name, shape in shapes.items():
            buf = self._buffers[name]
            cuda_call(cudart.cudaMemcpyAsync(buf.host_ptr, buf.device, int(np.prod(shape)) * buf.dtype.itemsize, d2h,
                                             self._stream))
        cuda_call(cudart.cudaStreamSynchronize(self._stream))
        # copies: the pinned buffers are reused by the next call
        return {name: from_engine(self._buffers[name].host[:int(np.prod(s))].reshape(s)) for name, s in shapes.items()}

    def close(self) -> None:
        """Free buffers and the stream (waits for a run in progress); a later ``run`` raises."""
        with self._lock:
            for buf in self._buffers.values():
                buf.free()
            if self._stream is not None:
                self._cudart.cudaStreamDestroy(self._stream)
                self._stream = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the CUDA context may already be gone
            self.close()


@BACKENDS.register("tensorrt")
def _create(path: Path, runtime: RuntimeConfig, card=None, max_side: int | None = None,
            max_batch: int | None = None) -> TensorRTSession:
    """Load the cached plan for this stage; :class:`PlanMissingError` (remembered for the builder) if none."""
    request = PlanRequest(Path(path), runtime.precision, max_batch or runtime.max_batch, runtime.workspace_mb,
                          max_side, card)
    plan = find_plan(request)
    if plan is None:
        note_missing(request)
        raise PlanMissingError(request)
    return TensorRTSession(plan)
