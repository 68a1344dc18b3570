"""Several sources, one engine: the runner behind ``facescope run --source A --source B``.

Threads: one capture thread per source (:class:`engine.capture.Capture`, which keeps only the
newest frame: a stale frame is replaced, never queued), ONE engine thread running
:meth:`MultiSource.rounds` (:mod:`engine.multi.rounds`: each round takes the newest frame of
every source that has one; detection and tracking of every other frame run on one helper
thread), and for live sources one embedder thread (:mod:`engine.multi.embedding`: the faces
chosen in a round go to ONE embedder call off the engine thread; their votes come back one call
later, so no frame waits for the embedder). Files read unpaced embed in-line, one call a round.
One :class:`~engine.recognizer.Recognizer` is shared: its landmark and embedding models are
loaded once; a source with its own ``det_size`` gets one more (small) detector, nothing else.
One gallery index is shared (read at every match).

Track ids are per source: each source's Pipeline has its own tracker and identity book, and ids
are NOT unique across sources. A face is named by ``(source name, track id)``: every
:class:`SourceResult` carries ``source``, and so do events (:class:`MultiEventLog`) and
sightings (their ``source`` is the name). Enrolling a clicked face therefore goes to that
source's pipeline: ``runner.pipeline(name).want_embedding(track_id)``.

API for a front end (the GUI grid builds on this; nothing here imports Qt)::

    runner = MultiSource(recognizer, [SourceSettings("door.mp4", name="door"), ...], gallery.index,
                         on_state=lambda name, state, reason: ...)   # capture/engine thread
    runner.start(on_result=lambda sr: ...)   # engine thread; or iterate runner.rounds() yourself
    runner.latest("door")      # newest SourceResult of a tile (any thread)
    runner.status()            # {name: SourceStatus}: state, reason, FPS, e2e, dropped (any thread)
    runner.set_roi("door", Roi.rect(0.2, 0, 0.8, 1))   # applies from the next frame
    runner.set_enabled("door", False)                  # stops / restarts its capture
    runner.stop()

Signals a GUI maps these to: ``result(SourceResult)`` per processed frame (from ``on_result``),
``state(name, state, reason)`` (``on_state``: ``connecting``/``live``/``reconnecting``/``ended``/
``failed`` from the capture, ``disabled`` and ``error`` from the runner), and a timer polling
:meth:`status` for the per-source and total FPS/latency panel.

A source whose capture fails (state ``failed``) or whose processing raises (state ``error``, the
traceback logged) leaves the round loop; the other sources go on.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from engine.capture import Capture, CaptureConfig, CaptureState
from engine.multi.detector_sizes import DetectorSizes
from engine.multi.embedding import DeferredEmbedder
from engine.multi.presets import (
    DECODE_THREADS,
    hold_single_threaded_opencv,
    multi_pipeline_config,
    release_opencv_threads,
)
from engine.multi.results import SourceResult, SourceStatus
from engine.multi.roi import Roi, face_filter
from engine.multi.rounds import RoundLoop, SourceState
from engine.multi.settings import SourceSettings, unique_names
from engine.pipeline import Pipeline, PipelineConfig
from engine.recognizer import Recognizer

log = logging.getLogger(__name__)


class MultiSource(RoundLoop):
    """Several sources through one recognizer, one gallery index and one engine thread.

    ``recognizer``: the shared models (built once, e.g. ``Recognizer.from_config(realtime_config())``);
    ``sources``: :class:`SourceSettings` (names made unique by :func:`unique_names`);
    ``gallery_index``: shared, may be None (everyone unknown); ``pipeline_config``: every source's
    tracking/identity settings (default :func:`multi_pipeline_config`); ``capture_config``: every
    source's capture settings (a source's ``webcam`` and ``decode_threads`` settings replace those
    parts; its decoder gets :data:`~engine.multi.presets.DECODE_THREADS` threads by default);
    ``frames_per_source``: stop a source after
    this many processed frames (None: until it ends); ``on_state(name, state, reason)``: called on
    the capture or engine thread at each state change (keep it short); ``defer_embedding``: run the
    embedder on its own thread while the engine goes on (:mod:`engine.multi.embedding`; a face's
    votes arrive one call later, no frame waits for the embedder), default on unless every source is
    a file read unpaced (``capture_config.realtime`` False: every frame then waits for its
    embeddings, so results are reproducible).
    """

    def __init__(self, recognizer: Recognizer, sources: list[SourceSettings], gallery_index=None,
                 pipeline_config: PipelineConfig | None = None, capture_config: CaptureConfig | None = None,
                 frames_per_source: int | None = None,
                 on_state: Callable[[str, str, str], None] | None = None,
                 defer_embedding: bool | None = None) -> None:
        if not sources:
            raise ValueError("MultiSource needs at least one source")
        if frames_per_source is not None and frames_per_source < 1:
            raise ValueError(f"frames_per_source must be >= 1 or None, got {frames_per_source}")
        self.recognizer = recognizer
        self.gallery_index = gallery_index
        self.pipeline_config = pipeline_config or multi_pipeline_config()
        self.capture_config = capture_config or CaptureConfig()
        self.frames_per_source = frames_per_source
        self._on_state = on_state
        self._detectors = DetectorSizes(recognizer)  # a source's own det_size: one more detector
        self._sources = [SourceState(s, n) for s, n in zip(sources, unique_names(sources), strict=True)]
        self._by_name = {s.name: s for s in self._sources}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # set by every capture's new frame or state change, stop() and post(): the engine sleeps on it
        self._wake = threading.Event()
        self._waited_ms = 0.0  # the engine's sleep for frames since its last round (the next frame's capture_wait)
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # what ended the engine thread, if anything did
        self.rounds_done = self.embed_calls = 0
        self._helper: ThreadPoolExecutor | None = None  # made by the first round with two frames
        self._cv_held = False  # OpenCV single-threaded while the captures run (start_captures .. stop)
        if defer_embedding is None:  # only files read as fast as processed wait for it: reproducible results
            defer_embedding = self.capture_config.realtime or any(s.spec.is_live for s in self._sources)
        self._deferred = DeferredEmbedder(recognizer.embedder.embed_tensor) if defer_embedding else None
        for s in self._sources:
            rec = self._detectors.for_size(s.settings.det_size, s.settings.label)
            s.pipeline = Pipeline(rec, gallery_index, self.pipeline_config)
            s.pipeline.face_filter = face_filter(s.settings.roi, s.settings.min_face)

    # ---- set-up and control (any thread)
    @property
    def names(self) -> list[str]:
        return [s.name for s in self._sources]

    @property
    def defers_embedding(self) -> bool:
        """Does the embedder run on its own thread (``defer_embedding``)?"""
        return self._deferred is not None

    def spec(self, name: str):
        """The named source's parsed :class:`~engine.capture.SourceSpec` (``display`` is safe to show)."""
        return self._get(name).spec

    def pipeline(self, name: str) -> Pipeline:
        """The named source's pipeline (enrolment: ``want_embedding`` / ``assign_identity``)."""
        return self._get(name).pipeline

    def start_captures(self) -> None:
        """Open every enabled source's capture (each on its own thread). From here until
        :meth:`stop`, OpenCV runs single-threaded (:func:`~engine.multi.presets.hold_single_threaded_opencv`)."""
        if not self._cv_held:
            hold_single_threaded_opencv()
            self._cv_held = True
        for s in self._sources:
            if s.settings.enabled and s.capture is None:
                self._open(s)

    def wait_started(self, timeout: float = 10.0) -> bool:
        """Open the captures and wait until each enabled source has captured a frame or is over
        (so that a benchmark's sources start together). True if all did within ``timeout`` s."""
        self.start_captures()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(s.capture is None or s.capture.finished or s.capture.stats().captured > 0 for s in self._sources):
                return True
            time.sleep(0.005)
        return False

    def start(self, on_result: Callable[[SourceResult], None] | None = None) -> MultiSource:
        """Start the captures and the engine thread, which calls ``on_result`` for every result."""
        if self._thread is not None:
            raise RuntimeError("MultiSource already started")
        self.start_captures()

        def loop() -> None:
            try:
                for rnd in self.rounds():
                    if on_result is not None:
                        for sr in rnd.results:
                            on_result(sr)
            except BaseException as e:  # kept for the owner: join() re-raises it
                log.exception("engine thread failed")
                self.error = e

        self._thread = threading.Thread(target=loop, name="facescope-engine", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the engine thread (all sources over, or stopped); re-raise its error. True if it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        if self.error is not None:
            raise self.error
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the engine thread and every capture; idempotent."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        for s in self._sources:
            if s.capture is not None:
                s.capture.stop()
        if self._helper is not None:
            self._helper.shutdown(wait=False)
        if self._deferred is not None:
            self._deferred.close()
        if self._cv_held:
            self._cv_held = False
            release_opencv_threads()

    def __enter__(self) -> MultiSource:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_roi(self, name: str, roi: Roi | None, min_face: float | None = None) -> None:
        """New region of interest (and minimum face size) for a source, from its next frame."""
        s = self._get(name)
        settings = dataclasses.replace(s.settings, roi=roi,
                                       min_face=s.settings.min_face if min_face is None else float(min_face))
        self._requests.put(lambda: self._apply_filter(s, settings))
        if self._thread is None:  # not running: nothing races with us
            self._run_requests()

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Stop a source's capture (``disabled``) or open it again (a new scene for its tracker)."""
        s = self._get(name)
        self._requests.put(lambda: self._enable(s, bool(enabled)))
        if self._thread is None:
            self._run_requests()

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the engine thread before its next round (the pipelines belong to it:
        enrolment's ``want_embedding`` / ``assign_identity``); at once when it is not running."""
        self._requests.put(fn)
        self._wake.set()
        if self._thread is None:
            self._run_requests()

    def latest(self, name: str) -> SourceResult | None:
        with self._lock:
            return self._get(name).latest

    def status(self) -> dict[str, SourceStatus]:
        out = {}
        with self._lock:
            for s in self._sources:
                cs = s.capture.stats() if s.capture is not None else None
                out[s.name] = SourceStatus(
                    s.name, s.spec.display, s.state, s.reason, s.frames, s.rate.rate(),
                    cs.fps if cs else 0.0, cs.dropped if cs else s.dropped_at_end, s.e2e_ms, s.embedded,
                    s.engine_s, s.capture.negotiated if s.capture is not None else None)
        return out

    # ---- helpers
    def _get(self, name: str) -> SourceState:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no source named {name!r}; sources: {', '.join(self._by_name)}") from None

    def _open(self, s: SourceState) -> None:
        cfg = self.capture_config
        if s.settings.webcam is not None:
            cfg = dataclasses.replace(cfg, webcam=s.settings.webcam)
        threads = DECODE_THREADS if s.settings.decode_threads is None else s.settings.decode_threads
        cfg = dataclasses.replace(cfg, decode_threads=threads)
        s.capture = Capture(s.spec, cfg, on_state=lambda state, reason, s=s: self._capture_state(s, state, reason),
                            on_frame=self._wake.set)
        s.done = False
        s.capture.start()

    def _capture_state(self, s: SourceState, state: CaptureState, reason: str) -> None:
        self._wake.set()  # an ended source is noticed at once
        with self._lock:
            if s.state in ("error", "disabled"):
                return  # the runner's own verdict stands
            s.state, s.reason = state.value, reason
        self._notify(s)

    def _end(self, s: SourceState, state: str | None = None, reason: str | None = None) -> None:
        with self._lock:
            s.done = True
            if state is not None:
                s.state, s.reason = state, reason or ""
            elif s.capture is not None:
                s.state, s.reason = s.capture.state.value, s.capture.reason
            if s.capture is not None:
                s.dropped_at_end = s.capture.stats().dropped
        if state is not None:
            self._notify(s)

    def _fail(self, s: SourceState, e: Exception) -> None:
        log.exception("source %s: processing failed; the other sources go on", s.name)
        if s.capture is not None:
            s.capture.stop()
        self._end(s, "error", f"{type(e).__name__}: {e}")

    def _notify(self, s: SourceState) -> None:
        if self._on_state is not None:
            try:
                self._on_state(s.name, s.state, s.reason)
            except Exception:  # a front end's callback must not kill a capture or the engine
                log.exception("on_state callback raised")

    def _apply_filter(self, s: SourceState, settings: SourceSettings) -> None:
        s.settings = settings
        s.pipeline.face_filter = face_filter(settings.roi, settings.min_face)

    def _enable(self, s: SourceState, enabled: bool) -> None:
        if enabled == (s.capture is not None and not s.done):
            return
        s.settings = dataclasses.replace(s.settings, enabled=enabled)
        if s.capture is not None:
            s.capture.stop()
            self._end(s)
            s.capture = None
        if enabled:
            s.pipeline.reset()
            s.ready.clear()  # embeddings of the old scene's tracks
            with self._lock:
                s.state, s.reason = CaptureState.CONNECTING.value, ""
            self._open(s)
        else:
            self._end(s, "disabled", "")

    def _run_requests(self) -> None:
        while True:
            try:
                self._requests.get_nowait()()
            except queue.Empty:
                return
