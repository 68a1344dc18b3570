"""Build missing TensorRT plans on a background thread while the app runs on ONNX Runtime.

The runtime never builds: with ``--backend auto`` a stage whose plan is missing opens on ONNX
Runtime (CUDA, else CPU) at once and its request is remembered
(``engine.backends.missing_plans()``). A front end then starts::

    builder = EngineBuilder(progress=on_progress, done=on_done).start()   # the missing requests

``progress(BuildProgress)`` and ``done(list[BuildResult])`` are called **on the builder's
thread** (a Qt front end forwards them through a signal). When ``done`` reports plans built,
the front end reopens its stages (a new recognizer with the same config): they now find the
plans and run on TensorRT. ``cancel()`` stops between plans and, through TensorRT's
``IProgressMonitor``, inside a build. One plan at a time: a build already uses the whole GPU
for kernel timing, and the builder's memory on top of the running app is the limit that bites.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.backends.trt_plan import PlanRequest, forget_missing, missing_plans
from engine.errors import FacescopeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildProgress:
    index: int           # 0-based position of the plan being built
    total: int
    model: str
    step: str            # "prepare", a TensorRT build phase, "parity", "stored"
    fraction: float      # of that step, in [0, 1]

    def text(self) -> str:
        return f"TensorRT engine {self.index + 1}/{self.total} ({self.model}): {self.step} {self.fraction:.0%}"


@dataclass(frozen=True)
class BuildResult:
    request: PlanRequest
    plan: Path | None
    error: str | None = None
    cached: bool = False


class EngineBuilder:
    """Builds ``requests`` (default: every plan the runtime found missing) one after another.

    ``build``: the function that turns one request into a plan, ``(request, progress=, cancel=)
    -> (path, summary)``; default :func:`trt_build.engines.ensure_engine`."""

    def __init__(self, requests: list[PlanRequest] | None = None,
                 progress: Callable[[BuildProgress], None] | None = None,
                 done: Callable[[list[BuildResult]], None] | None = None,
                 build: Callable | None = None) -> None:
        self.requests = list(requests if requests is not None else missing_plans())
        self._progress, self._done = progress, done
        self._build = build
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.results: list[BuildResult] = []
        self.last: BuildProgress | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EngineBuilder:
        if self._thread is not None:
            raise RuntimeError("this EngineBuilder was already started")
        self._thread = threading.Thread(target=self._run, name="trt-engine-builder", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True when the builder has finished (or was never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _report(self, p: BuildProgress) -> None:
        self.last = p
        log.info("%s", p.text())
        if self._progress is not None:
            try:
                self._progress(p)
            except Exception:
                log.exception("EngineBuilder progress callback failed")

    def _run(self) -> None:
        build = self._build
        if build is None:
            from trt_build.engines import ensure_engine as build
        total = len(self.requests)
        for i, request in enumerate(self.requests):
            if self._cancel.is_set():
                self.results.append(BuildResult(request, None, "cancelled"))
                continue

            def step(name: str, fraction: float, i=i, request=request) -> None:
                self._report(BuildProgress(i, total, request.model, name, fraction))

            try:
                plan, summary = build(request, progress=step, cancel=self._cancel)
            except FacescopeError as exc:   # ModelError included: a clear reason, the app stays on ORT
                log.warning("TensorRT plan for %s not built: %s", request.describe(), exc)
                self.results.append(BuildResult(request, None, str(exc)))
                continue
            except Exception as exc:
                log.exception("building the TensorRT plan for %s failed", request.describe())
                self.results.append(BuildResult(request, None, f"{type(exc).__name__}: {exc}"))
                continue
            forget_missing(request)
            self.results.append(BuildResult(request, Path(plan), None, bool(summary.get("cached"))))
        if self._done is not None:
            try:
                self._done(list(self.results))
            except Exception:
                log.exception("EngineBuilder done callback failed")
