"""``create_session``: the one factory for inference sessions, with the "auto" fallback chain.

"auto" is resolved once per session against the cached machine probe
(:func:`engine.backends.select.choose_backend`); when the chosen backend cannot open the model
(no TensorRT plan built yet, ONNX Runtime's CUDA provider failing to load) the next one in the
choice's fallback chain is tried, down to ONNX Runtime on the CPU. Every session carries a
:class:`~engine.backends.select.Selection` as ``session.selection`` (what ran, why, what was
tried first), which is logged here and shown by ``facescope doctor`` and the GUI status bar.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from engine.backends.base import BACKENDS, InferenceSession
from engine.backends.select import Probe, Selection, choose_backend
from engine.config import RuntimeConfig
from engine.errors import ModelError
from engine.models.card import ModelCard

log = logging.getLogger("engine.backends")


def create_session(path: str | Path, runtime: RuntimeConfig | str = "onnxruntime", *, card: ModelCard | None = None,
                   max_side: int | None = None, max_batch: int | None = None, machine: Probe | None = None,
                   **overrides) -> InferenceSession:
    """Open ``path`` (a prepared ONNX file) on the backend ``runtime`` names.

    ``create_session(model, RuntimeConfig(backend="auto", threads=2))`` or, for short,
    ``create_session(model, "onnxruntime", threads=2)``. ``card``, ``max_side`` (the longest
    spatial side the stage will feed) and ``max_batch`` (the largest batch it will feed; default
    ``runtime.max_batch``; detectors feed 1) tell TensorRT which plan the stage needs; ONNX
    Runtime ignores them. ``machine``: a probe to decide against (tests; default: this machine).
    """
    if isinstance(runtime, str):
        runtime = RuntimeConfig(backend=runtime, **overrides)
    elif overrides:
        raise TypeError("pass options inside the RuntimeConfig, not beside it")
    hints = {"path": Path(path), "card": card, "max_side": max_side, "max_batch": max_batch}
    if runtime.backend != "auto":
        session = BACKENDS.create(runtime.backend, runtime=runtime, **hints)
        session.selection = Selection(runtime.backend, runtime.backend, "asked for explicitly")
        return session
    choice = choose_backend("auto", machine)
    failed: list[tuple[str, str]] = []
    for backend in (choice.backend, *choice.fallbacks):
        try:
            session = BACKENDS.create(backend, runtime=dataclasses.replace(runtime, backend=backend), **hints)
        except ModelError as exc:
            failed.append((backend, str(exc)))
            log.warning("%s: %s could not open it, falling back: %s", Path(path).name, backend, exc)
            continue
        reason = choice.reason if backend == choice.backend else f"fallback after {', '.join(b for b, _ in failed)}"
        session.selection = Selection("auto", backend, reason, tuple(failed))
        log.info("%s runs on %s", Path(path).name, session.selection.summary())
        return session
    raise ModelError(f"no backend could open {Path(path).name}: " + "; ".join(f"{b}: {w}" for b, w in failed))
