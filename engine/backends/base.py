"""The backend interface every runtime implements (ONNX Runtime now, TensorRT later).

A session is created from a prepared model file and runs named float32 inputs to named
outputs. Pre- and post-processing live in the stages, not here, so the same decoding code
serves every backend.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from engine.registry import Registry


@runtime_checkable
class InferenceSession(Protocol):
    """``run({name: array}) -> {name: array}``; arrays are host numpy arrays."""

    backend: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


BACKENDS: Registry[InferenceSession] = Registry("backend")


def create_session(path: str | Path, backend: str = "onnxruntime", **options) -> InferenceSession:
    """The one factory for inference sessions: ``create_session(model, "onnxruntime", threads=2)``."""
    return BACKENDS.create(backend, path=Path(path), **options)
