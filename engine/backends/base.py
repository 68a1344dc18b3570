"""The backend interface every runtime implements (ONNX Runtime, TensorRT).

A session is created from a prepared ONNX file and runs named host arrays to named host
arrays. Pre- and post-processing live in the stages, not here, so the same decoding code
serves every backend. Backends register a factory ``(path, runtime: RuntimeConfig, card,
max_side)``; :func:`engine.backends.session.create_session` is the one way to call them.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from engine.registry import Registry


@runtime_checkable
class InferenceSession(Protocol):
    """``run({name: array}) -> {name: array}``; arrays are host numpy arrays.

    ``selection`` (set by ``create_session``): an ``engine.backends.select.Selection`` saying
    which backend runs and why (the fallback chain included)."""

    backend: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


BACKENDS: Registry[InferenceSession] = Registry("backend")
