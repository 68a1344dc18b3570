"""TensorRT backend: the same ``run({name: array}) -> {name: array}`` as ONNX Runtime.

``create_session(onnx, RuntimeConfig(backend="tensorrt"))`` finds the cached plan for this
ONNX file, GPU, TensorRT version, precision and profile, or builds it once
(:func:`trt_build.engines.ensure_engine`). Per session: one deserialised engine, one
execution context, one CUDA stream; tensors are bound by name (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``), host staging buffers are pinned
(``cudaMallocHost``) and, like the device buffers, grow to the largest shape seen, never
shrink. Batches larger than the profile's maximum are run in profile-sized chunks.

CUDA memory goes through cuda-python's runtime bindings (see ``trt_build.cuda_api`` for why
not torch). Nothing here runs without an NVIDIA GPU; the CPU-testable logic lives in small
functions (``split_batches``, ``check_shape``) and in ``engine.backends.trt_cache``.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from engine.backends.base import BACKENDS
from engine.config import RuntimeConfig
from engine.errors import ModelError


def split_batches(n: int, max_batch: int) -> list[slice]:
    """Slices of ``range(n)`` no longer than ``max_batch`` (one empty-free slice per chunk)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    return [slice(i, min(i + max_batch, n)) for i in range(0, n, max_batch)]


def check_shape(name: str, shape: tuple[int, ...], lo: tuple[int, ...], hi: tuple[int, ...]) -> None:
    """ValueError unless ``lo <= shape <= hi`` per dim (the engine's profile for ``name``)."""
    if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
        raise ValueError(f"input {name!r} shape {tuple(shape)} is outside the engine's profile {tuple(lo)}..{tuple(hi)}")


class _Buffer:
    """A pinned host array and a device allocation of the same byte size (grown on demand)."""

    def __init__(self, cudart, dtype: np.dtype) -> None:
        self.cudart, self.dtype, self.nbytes = cudart, np.dtype(dtype), 0
        self.host_ptr = self.device = None
        self.host = np.empty(0, self.dtype)

    def reserve(self, nbytes: int) -> None:
        from trt_build.cuda_api import cuda_call

        if nbytes <= self.nbytes:
            return
        self.free()
        self.host_ptr = cuda_call(self.cudart.cudaMallocHost(nbytes))
        self.device = cuda_call(self.cudart.cudaMalloc(nbytes))
        ctype = np.ctypeslib.as_ctypes_type(self.dtype)
        self.host = np.ctypeslib.as_array(ctypes.cast(self.host_ptr, ctypes.POINTER(ctype)), (nbytes // self.dtype.itemsize,))
        self.nbytes = nbytes

    def free(self) -> None:
        if self.device is not None:
            self.cudart.cudaFree(self.device)
            self.cudart.cudaFreeHost(self.host_ptr)
        self.host_ptr = self.device = None
        self.host, self.nbytes = np.empty(0, self.dtype), 0


class TensorRTSession:
    """A deserialised plan ready to run. ``plan``: path to a serialized engine."""

    backend = "tensorrt"

    def __init__(self, plan: Path) -> None:
        from trt_build.build import _Logger
        from trt_build.cuda_api import cuda_call, import_cudart, import_tensorrt

        self._trt, self._cudart, self._call = import_tensorrt(), import_cudart(), cuda_call
        trt = self._trt
        self.path = Path(plan)
        self._runtime = trt.Runtime(_Logger(trt))
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ModelError(f"TensorRT cannot deserialise {self.path} (built for another GPU or TensorRT "
                             "version? facescope trt clear, then it is rebuilt)")
        self._context = self._engine.create_execution_context()
        self._stream = cuda_call(self._cudart.cudaStreamCreate())
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = tuple(n for n in names if is_input[n])
        self.output_names = tuple(n for n in names if not is_input[n])
        self._dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in names}
        self._buffers = {n: _Buffer(self._cudart, self._dtypes[n]) for n in names}
        # profile 0 is the only one trt_build creates; (min, opt, max) per input
        self._profile = {n: tuple(tuple(s) for s in self._engine.get_tensor_profile_shape(n, 0))
                         for n in self.input_names if -1 in tuple(self._engine.get_tensor_shape(n))}
        self.max_batch = min((p[2][0] for p in self._profile.values()), default=None)

    def input_shape(self, name: str) -> tuple[int, ...]:
        """Static shape of an input, or the profile's opt shape for a dynamic one."""
        return self._profile[name][1] if name in self._profile else tuple(self._engine.get_tensor_shape(name))

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(inputs.values())))
        if self.max_batch is None or n <= self.max_batch:
            return self._run_once(inputs)
        parts = [self._run_once({k: v[s] for k, v in inputs.items()}) for s in split_batches(n, self.max_batch)]
        return {k: np.concatenate([p[k] for p in parts]) for k in self.output_names}

    def _run_once(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, call, ctx = self._cudart, self._call, self._context
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)}")
        for name in self.input_names:
            x = np.ascontiguousarray(inputs[name], self._dtypes[name])
            if name in self._profile:
                check_shape(name, x.shape, self._profile[name][0], self._profile[name][2])
            if not ctx.set_input_shape(name, x.shape):
                raise ValueError(f"TensorRT refused shape {x.shape} for input {name!r}")
            buf = self._buffers[name]
            buf.reserve(max(x.nbytes, 1))
            buf.host[:x.size] = x.ravel()
            call(cudart.cudaMemcpyAsync(buf.device, buf.host_ptr, x.nbytes, h2d, self._stream))
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
        if not ctx.execute_async_v3(int(self._stream)):
            raise ModelError(f"TensorRT execution failed for {self.path.name}")
        for name, shape in shapes.items():
            buf = self._buffers[name]
            call(cudart.cudaMemcpyAsync(buf.host_ptr, buf.device, int(np.prod(shape)) * buf.dtype.itemsize, d2h,
                                        self._stream))
        call(cudart.cudaStreamSynchronize(self._stream))
        # copies: the pinned buffers are reused by the next call
        return {name: self._buffers[name].host[:int(np.prod(s))].reshape(s).astype(np.float32) for name, s in shapes.items()}

    def close(self) -> None:
        for buf in getattr(self, "_buffers", {}).values():
            buf.free()
        if getattr(self, "_stream", None) is not None:
            self._cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the CUDA context may already be gone
            pass


@BACKENDS.register("tensorrt")
def _create(path: Path, runtime: RuntimeConfig) -> TensorRTSession:
    from trt_build.engines import EngineOptions, ensure_engine

    plan, _ = ensure_engine(path, EngineOptions(runtime.precision, runtime.max_batch, runtime.workspace_mb))
    return TensorRTSession(plan)
