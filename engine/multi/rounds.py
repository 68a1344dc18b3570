"""The engine loop of :class:`engine.multi.MultiSource`: rounds over the sources' newest frames.

A *round* takes the newest unread frame of every source that has one (round-robin: the source
polled first rotates each round, so no source always waits behind the others), runs each frame's
:meth:`Pipeline.begin` (detect, ROI/min-size filter, track, choose faces, landmarks, align; every
other frame of the round on one helper thread), then either

* in-line: embeds the faces of ALL those frames in ONE embedder call (per-call overhead paid once
  a round, and a batch of 8 costs far less than 8 batches of 1), then each
  :meth:`Pipeline.finish` (match, vote, label); or
* deferred (live sources, :mod:`engine.multi.embedding`): each frame's result at once
  (:meth:`Pipeline.finish_deferred`), its chosen faces queued for the embedder's own thread; a
  finished call's votes are absorbed at the start of the next round.

:class:`RoundLoop` is a mix-in: :class:`~engine.multi.runner.MultiSource` owns the state it reads
(``_sources``, ``_deferred``, ``_stop``, ``_lock``, ...) and the helpers it calls (``_fail``,
``_end``, ``_run_requests``).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.capture import Capture, CaptureState, parse_source
from engine.multi.results import Round, SourceResult
from engine.multi.settings import SourceSettings
from engine.pipeline import Pipeline
from engine.pipeline_records import FrameResult, PendingFrame
from engine.util.rate import RateMeter

# Every other frame of a round runs its first half (detect, track, landmarks, align) on ONE helper
# thread: ONNX Runtime, OpenCV and NumPy release the GIL, so two sources' detectors can use both
# cores. Four 720p sources, three alternating runs each, quiet 2-core VM: 19.3-20.4 FPS a source and
# e2e p95 114-149 ms with it, 17.2-19.3 FPS and 126-176 ms without (0 = all on the engine thread).
BEGIN_HELPERS = 1
# While a deferred call holds a face's FIRST embedding (a face with no name yet) the engine takes no
# new frames: the call gets the CPU (the frames in between are dropped as a busy camera's are, so no
# result waits longer) and first names come about as fast as with in-line embedding. Four 720p
# sources starting together, 7 faces each: with this hold, calls of 4 faces took 80-110 ms, every
# 0.15 s; without it every source went on detecting beside the embedder, calls of 8 took 240-380 ms
# (35-45 ms a face against ~20 alone) and the first names came later. Re-embeddings (the steady
# state) never hold the engine. stop() and posted requests are served every URGENT_WAIT_S.
URGENT_WAIT_S = 0.05
# No source has a new frame: the engine sleeps until a capture publishes one (or changes state, or
# stop()/post() is called), at most this long. It used to block 5 ms on ONE source's capture and
# poll all again: ~8 wake-ups a frame for one 25 fps source, 0.03 of a core (measured, thread CPU).
IDLE_WAIT_S = 0.25


def _finish_deferred(pipeline: Pipeline, pending: PendingFrame) -> tuple[bool, FrameResult]:
    """(does ``pending`` hold a face's first embedding, its result now): read before finishing."""
    return pipeline.first_embedding(pending), pipeline.finish_deferred(pending)


class SourceState:
    """Runner-private state of one source (engine thread writes, ``_lock`` guards reads)."""

    def __init__(self, settings: SourceSettings, name: str) -> None:
        self.settings, self.name = settings, name
        self.spec = parse_source(settings.source)  # bad text fails before anything opens
        self.pipeline: Pipeline | None = None
        self.capture: Capture | None = None
        self.state = "disabled" if not settings.enabled else CaptureState.CONNECTING.value
        self.reason = ""
        self.done = not settings.enabled
        self.frames = self.embedded = self.dropped_at_end = 0
        self.engine_s = 0.0
        self.e2e_ms = float("nan")
        self.rate = RateMeter(2.0)
        self.latest: SourceResult | None = None
        self.ready: list[tuple[object, float]] = []  # (EmbeddedFaces, call ms) absorbed, for the next result


class RoundLoop:
    """The engine loop (one thread; see the module docstring)."""

    def rounds(self, max_rounds: int | None = None) -> Iterator[Round]:
        """The engine loop: yields one :class:`Round` at a time until every source is over,
        :meth:`stop`, or ``max_rounds``. Run it on one thread (it owns the pipelines)."""
        self.start_captures()
        self.recognizer.warm_up()  # while the sources connect, not at the first face (Recognizer.warm_up)
        for rec in {id(s.pipeline.recognizer): s.pipeline.recognizer for s in self._sources}.values():
            if rec is not self.recognizer:  # a source's own detector input size: the rest is shared, warm
                rec.warm_up_detector()
        n = 0
        while not self._stop.is_set() and (max_rounds is None or n < max_rounds):
            self._run_requests()
            d = self._deferred
            if d is not None and d.urgent and not d.wait(URGENT_WAIT_S):
                continue  # (stop checked between short waits)
            active = [s for s in self._sources if not s.done and s.capture is not None]
            if not active:
                return
            k = n % len(active)
            order = active[k:] + active[:k]
            picked = self._poll(order)
            if not picked:
                continue
            rnd = self._round(n, picked)
            n += 1
            yield rnd

    def _poll(self, order: list[SourceState]) -> list[tuple[SourceState, object, float]]:
        """The newest frame of every source that has one; none: sleep until a capture wakes the
        engine (``_wake``) and return nothing (the loop serves stop and requests, then polls again).
        The first frame picked carries the time slept since the last round (its ``capture_wait``)."""
        self._wake.clear()  # before reading: a frame published from here on sets it again
        picked = []
        for s in order:
            frame = s.capture.read(timeout=0)
            if frame is not None:
                picked.append((s, frame, 0.0))
            elif s.capture.finished:
                self._end(s)
        if picked:
            s, frame, _ = picked[0]
            picked[0], self._waited_ms = (s, frame, self._waited_ms), 0.0
            return picked
        if any(not s.done for s in order):
            t = time.perf_counter()
            self._wake.wait(IDLE_WAIT_S)
            self._waited_ms += 1000.0 * (time.perf_counter() - t)
        return picked

    @staticmethod
    def _begin(item) -> tuple:
        s, frame, wait_ms = item
        t = time.perf_counter()
        try:
            return s, s.pipeline.begin(frame, wait_ms), None, time.perf_counter() - t
        except Exception as e:  # noqa: BLE001 - one source's failure must not stop the others
            return s, None, e, 0.0

    def _round(self, n: int, picked) -> Round:
        absorbed = self._absorb()  # before begin: this round's frames already see those votes
        if len(picked) > 1 and BEGIN_HELPERS:  # every other frame on the helper (sources are independent)
            if self._helper is None:
                self._helper = ThreadPoolExecutor(BEGIN_HELPERS, thread_name_prefix="facescope-engine-helper")
            futures = {i: self._helper.submit(self._begin, item) for i, item in enumerate(picked) if i % 2}
            here = {i: self._begin(item) for i, item in enumerate(picked) if not i % 2}
            begun = [here[i] if i in here else futures[i].result() for i in range(len(picked))]
        else:
            begun = [self._begin(item) for item in picked]
        pending = []
        for s, p, error, took in begun:
            if error is not None:
                self._fail(s, error)
                continue
            s.engine_s += took
            pending.append((s, p))
        if self._deferred is not None:
            return self._round_deferred(n, pending, absorbed)
        tensors = [p.tensor for _, p in pending if p.tensor is not None]
        total = sum(len(x) for x in tensors)
        emb_all, embed_s = None, 0.0
        if tensors:
            t = time.perf_counter()
            x = tensors[0] if len(tensors) == 1 else np.concatenate(tensors)
            emb_all = self.recognizer.embedder.embed_tensor(x)  # ONE call for every source of this round
            embed_s = time.perf_counter() - t
            self.embed_calls += 1
        results, off = [], 0
        for s, p in pending:
            k = p.to_embed
            emb = emb_all[off:off + k] if k else None
            off += k
            if k:  # this frame waited for the whole batched call
                p.timer.ms["embed"] = p.timer.ms.get("embed", 0.0) + 1000.0 * embed_s
            t = time.perf_counter()
            ok, r = self._guarded(s, s.pipeline.finish, p, emb)
            if not ok:
                continue
            results.append(self._emit(s, r, n, time.perf_counter() - t + (embed_s * k / total if k else 0.0), k))
        self.rounds_done += 1
        return Round(n, tuple(results), total, 1 if tensors else 0, 1000.0 * embed_s)

    def _round_deferred(self, n: int, pending, absorbed) -> Round:
        """Second half of a round with the embedder off the engine thread (:mod:`engine.multi.embedding`):
        each frame's result now; its chosen faces join the next embedder call."""
        results = []
        for s, p in pending:
            t = time.perf_counter()
            ok, out = self._guarded(s, _finish_deferred, s.pipeline, p)
            if not ok:
                continue
            first, r = out
            if p.to_embed:
                self._deferred.add(s, p, first)
            k = 0
            if s.ready:  # embeddings absorbed since this source's last result travel with this one
                ef, ms = s.ready.pop(0)
                k = len(ef.crops)
                r = dataclasses.replace(r, embedded=k, embedded_faces=ef,
                                        timings_ms={**r.timings_ms, "embed": r.timings_ms.get("embed", 0.0) + ms})
            results.append(self._emit(s, r, n, time.perf_counter() - t, k))
        self._deferred.submit()
        self.rounds_done += 1
        faces, calls, ms = absorbed
        return Round(n, tuple(results), faces, calls, ms)

    def _absorb(self) -> tuple[int, int, float]:
        """Votes of the finished deferred embedder call, if any: (faces, calls (0 or 1), call ms)."""
        if self._deferred is None:
            return 0, 0, 0.0
        done = self._deferred.collect()
        if done is None:
            return 0, 0, 0.0
        self.embed_calls += 1
        self._deferred.submit()  # faces that waited meanwhile: the worker starts on them while this round runs
        for s, p, emb in done.items:
            if s.done:
                continue
            t = time.perf_counter()
            ok, ef = self._guarded(s, s.pipeline.absorb, p, emb)
            if not ok:
                continue
            s.engine_s += time.perf_counter() - t + done.ms / 1000.0 * p.to_embed / done.faces
            if ef is not None:
                s.ready.append((ef, done.ms))
        return done.faces, 1, done.ms

    def _guarded(self, s: SourceState, fn, *args) -> tuple[bool, object]:
        """``(True, fn(*args))``, or ``(False, None)`` once ``fn`` raised and ``s`` was failed
        (:meth:`_fail`): one source's failure must not stop the others. A flag, not a sentinel
        value: ``absorb`` may return None."""
        try:
            return True, fn(*args)
        except Exception as e:  # noqa: BLE001 - as in _begin
            self._fail(s, e)
            return False, None

    def _emit(self, s: SourceState, r, n: int, engine_s: float, embedded: int) -> SourceResult:
        """Book a finished result of ``s`` (status, rate, latest) and end ``s`` at ``frames_per_source``."""
        sr = SourceResult(s.name, r, n)
        with self._lock:
            s.engine_s += engine_s
            s.frames += 1
            s.embedded += embedded
            s.e2e_ms = r.e2e_ms
            s.rate.tick()
            s.latest = sr
        if self.frames_per_source is not None and s.frames >= self.frames_per_source:
            s.capture.stop()
            self._end(s, CaptureState.ENDED.value, f"frames_per_source={self.frames_per_source} reached")
        return sr
