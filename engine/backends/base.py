"""The backend interface every runtime implements (ONNX Runtime, TensorRT).

A session is created from a prepared ONNX file and runs named host arrays to named host
arrays. Pre- and post-processing live in the stages, not here, so the same decoding code
serves every backend. Backends register a factory ``(path, runtime: RuntimeConfig)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from engine.config import RuntimeConfig
from engine.registry import Registry


@runtime_checkable
class InferenceSession(Protocol):
    """``run({name: array}) -> {name: array}``; arrays are host numpy arrays."""

    backend: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


BACKENDS: Registry[InferenceSession] = Registry("backend")


def create_session(path: str | Path, runtime: RuntimeConfig | str = "onnxruntime", **overrides) -> InferenceSession:
    """The one factory for inference sessions.

    ``create_session(model, RuntimeConfig(backend="auto", threads=2))`` or, for short,
    ``create_session(model, "onnxruntime", threads=2)``. "auto" is resolved here, once per
    session, by :func:`engine.backends.select.choose_backend` (cached probe of the machine).
    """
    if isinstance(runtime, str):
        runtime = RuntimeConfig(backend=runtime, **overrides)
    elif overrides:
        raise TypeError("pass options inside the RuntimeConfig, not beside it")
    if runtime.backend == "auto":
        from engine.backends.select import choose_backend

        runtime = RuntimeConfig(**{**runtime.__dict__, "backend": choose_backend("auto").backend})
    return BACKENDS.create(runtime.backend, path=Path(path), runtime=runtime)
