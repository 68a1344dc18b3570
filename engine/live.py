"""A live recognition session without Qt: source, recognizer, gallery, pipeline and enrolment.

The model half of a model/view split (napari's ``ViewerModel`` / ``QtViewer``): the desktop
window only shows what a :class:`LiveSession` produces and turns clicks into its calls.

Threads. The *owner* thread (the GUI's, or a script's) opens the session, asks for
enrolments, and calls :meth:`LiveSession.poll`, which writes finished enrolments to the
gallery (SQLite connections stay on the thread that opened them). The *worker* thread iterates
:meth:`LiveSession.run`, which owns the pipeline: enrolment requests run there between two
frames and reuse the aligned crops and embeddings the pipeline just made
(``FrameResult.embedded_faces``), so enrolling a face never runs a model anywhere else.
When no source runs (a clip ended, the last frame frozen on screen) requests run at once on
the caller's thread, and :meth:`poll` relabels that frozen frame.

    session = LiveSession(gallery_path="people.db")
    session.open()
    for result in session.run(parse_source("clip.mp4")):   # on a worker thread
        ...
    session.enrol(track_id, "Ada", k=5, seconds=3.0)          # any time, owner thread
    for done in session.poll(): ...                           # owner thread, e.g. every 100 ms

Sightings. With a gallery open, every track that ends (or every ``max_span_s`` of a long one)
becomes a sighting (:mod:`engine.sightings`): the worker only updates small per-track records;
:meth:`poll` writes them on the owner thread (batched every ``flush_every_s``) and purges
by retention on :meth:`open` and every ``purge_every_s``.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.live_enrolment import (
    FIRST_SAMPLE_S,
    TRACK_LOST_S,
    Enrolment,
    EnrolMixin,
    Sample,
    enrol_image_files,
)
from engine.live_people import PeopleMixin
from engine.pipeline import FrameResult, Pipeline, PipelineConfig, realtime_config
from engine.sightings import Sighting, SightingCollector, SightingConfig

log = logging.getLogger(__name__)
DEFAULT_SIGHTINGS = SightingConfig()
__all__ = ["FIRST_SAMPLE_S", "TRACK_LOST_S", "Enrolment", "LiveSession", "Sample", "enrol_image_files",
           "realtime_recognizer"]


def realtime_recognizer():
    """The real-time recognizer (the real-time preset, :func:`engine.pipeline.realtime_config`)."""
    from engine.recognizer import Recognizer

    return Recognizer.from_config(realtime_config())


class LiveSession(PeopleMixin, EnrolMixin):
    """Source + recognizer + gallery + pipeline + enrolment, for one window or script.

    ``recognizer`` (built now) or ``recognizer_factory`` (built by :meth:`open`);
    ``gallery_path`` (opened, created if missing, by :meth:`open`) or an open ``gallery``.
    """

    def __init__(self, gallery_path: str | Path | None = None, recognizer=None,
                 recognizer_factory: Callable[[], object] = realtime_recognizer, capture_config=None,
                 pipeline_config: PipelineConfig | None = None, gallery=None,
                 sightings: SightingConfig | None = DEFAULT_SIGHTINGS) -> None:
        self.gallery_path = Path(gallery_path) if gallery_path else None
        self.recognizer = recognizer
        self.recognizer_factory = recognizer_factory
        self.capture_config = capture_config
        self.pipeline_config = pipeline_config
        self.gallery = gallery
        self.spec = None
        self.pipeline: Pipeline | None = None  # the worker's while a source runs
        self.latest: FrameResult | None = None  # newest processed result
        self._capture = None
        self._lock = threading.Lock()
        self._running = False
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._ready: queue.SimpleQueue[Enrolment] = queue.SimpleQueue()
        self._collecting: dict[int, Enrolment] = {}  # worker side
        self._samples: dict[int, Sample] = {}        # newest sample per live track
        self._enrolling: set[int] = set()            # owner side view: asked, not yet polled
        self._photos = None  # (recognizer, its photo recognizer), see photo_recognizer
        self.sighting_config = sightings                 # None: record no sightings
        self._sightings_done: queue.SimpleQueue[Sighting] = queue.SimpleQueue()  # worker -> owner
        self._pending: list[Sighting] = []               # owner side: taken, not yet written
        self._next_flush = self._next_purge = 0.0
        self.sightings_written = 0
        self.sightings_purged = 0

    # -- owner thread ----------------------------------------------------------------------------
    def open(self) -> None:
        """Build the recognizer and open the gallery (once each); raises on failure."""
        if self.recognizer is None:
            self.recognizer = self.recognizer_factory()
        if self.gallery is None and self.gallery_path is not None:
            from engine.gallery import Gallery

            self.gallery_path.parent.mkdir(parents=True, exist_ok=True)
            emb = self.recognizer.embedder
            self.gallery = Gallery.open(self.gallery_path, emb.id, emb.dim, create=True)
        self._watcher()  # the people as opened: later edits are compared with them (watch_gallery)
        self._purge_sightings(regroup=False)

    def configure(self, recognizer_factory: Callable[[], object], pipeline_config: PipelineConfig | None) -> None:
        """New settings: the recognizer is rebuilt with them on the next :meth:`open`."""
        self.recognizer_factory, self.pipeline_config, self.recognizer = recognizer_factory, pipeline_config, None

    def close(self) -> None:
        self.interrupt()
        self.flush_sightings(force=True)
        if self.gallery is not None:
            gallery, self.gallery = self.gallery, None
            gallery.close()

    @property
    def running(self) -> bool:
        return self._running

    def poll(self) -> list[Enrolment]:
        """Write the enrolments the worker finished to the gallery and give their tracks the
        new identity; returns them (status "done" or "failed", with a message)."""
        out = []
        self.flush_sightings()
        while True:
            try:
                job = self._ready.get_nowait()
            except queue.Empty:
                return out
            self._enrolling.discard(job.track_id)
            self._commit(job)
            out.append(job)

    def enrol_images(self, paths, name: str) -> tuple[int, list[str]]:
        """Enrol the largest face of each image file (see :func:`enrol_image_files`), here and now
        (scripts, tests). The window splits it: :meth:`prepare_images` on a pool thread, then
        :meth:`store_images` on the owner thread."""
        self.open()
        if self.gallery is None:
            return 0, ["no gallery is open (start the app with --gallery)"]
        return enrol_image_files(self.gallery, self.photo_recognizer(), paths, name)

    def photo_recognizer(self):
        """The recognizer for photo files (:meth:`engine.recognizer.Recognizer.for_photos`), built once."""
        self.open()
        if self._photos is None or self._photos[0] is not self.recognizer:
            self._photos = (self.recognizer, self.recognizer.for_photos())
        return self._photos[1]

    def prepare_images(self, paths, recognizer=None):
        """Any thread: read, detect, align and embed the largest face of each image file (the
        model work of a drop-to-enrol; ``recognizer`` from :meth:`photo_recognizer`, asked for on
        the owner thread). Returns an :class:`engine.enrolment.EnrolmentBatch`; nothing is written."""
        from engine.enrolment import prepare_enrolment

        return prepare_enrolment(recognizer or self.photo_recognizer(), paths)

    def store_images(self, batch, name: str) -> tuple[int, list[str]]:
        """Owner thread: write a prepared batch as ``name`` in one transaction; (faces enrolled, problems)."""
        from engine.errors import FacescopeError

        if self.gallery is None:
            return 0, [*batch.problems, "no gallery is open (start the app with --gallery)"]
        if not len(batch):
            return 0, batch.problems
        try:
            ids = batch.enroll_into(self.gallery, name)
        except (FacescopeError, ValueError) as exc:
            return 0, [*batch.problems, f"nothing enrolled: {exc}"]
        self.relabel_latest()
        return len(ids), batch.problems

    def relabel_latest(self) -> FrameResult | None:
        """The last frame labelled from the current gallery names, when no source runs."""
        if self.running or self.pipeline is None or self.latest is None:
            return None
        self.latest = self.pipeline.relabel(self.latest)
        return self.latest

    # -- worker thread ---------------------------------------------------------------------------
    def run(self, spec, on_state: Callable | None = None, max_frames: int | None = None) -> Iterator[FrameResult]:
        """Capture ``spec`` (a SourceSpec) and yield one result per frame until it ends (or
        :meth:`interrupt`); requests run between frames. Call :meth:`open` first."""
        from engine.capture import Capture, CaptureConfig

        if self.recognizer is None:
            raise RuntimeError("LiveSession.open() must build the recognizer before run()")
        capture = Capture(spec, self.capture_config or CaptureConfig(realtime=True), on_state=on_state)
        self.spec = spec
        self.pipeline = Pipeline(self.recognizer, self.gallery.index if self.gallery else None, self.pipeline_config)
        collector = None
        if self.gallery is not None and self.sighting_config is not None:
            # display: URL passwords masked; one queue for every source, so none of a run's sightings is lost
            collector = SightingCollector(spec.display, self.sighting_config, self._sightings_done)
        with self._lock:
            self._samples.clear()
            self._capture, self._running = capture, True
        try:
            capture.start()
            for r in self.pipeline.run(capture, max_frames):
                self._observe(r)
                if collector is not None:
                    collector.observe(r)
                if self.drain():  # requests posted during the last frame, e.g. an enrolment's
                    r = self.pipeline.relabel(r)  # identity: shown on this very frame
                self.latest = r
                yield r
        finally:
            with self._lock:
                self._running, self._capture = False, None
            self.drain()
            for job in list(self._collecting.values()):
                self._finish(job)  # the source ended: enrol what was collected
            if collector is not None:
                collector.end_all()  # the source ended: every visit on it ended
            capture.stop()

    def drain(self) -> int:
        """Run the pending requests (the worker calls this between frames, also while paused);
        returns how many ran."""
        n = 0
        while True:
            try:
                fn = self._requests.get_nowait()
            except queue.Empty:
                break
            fn()
            n += 1
        now = time.monotonic()  # paused: no frames, but a collection still ends on time
        for job in [j for j in self._collecting.values() if now >= j.deadline or now - j.last_seen > TRACK_LOST_S]:
            self._finish(job)
        return n

    def interrupt(self) -> None:
        """Any thread: wake a blocked capture read so that :meth:`run` ends."""
        cap = self._capture
        if cap is not None:
            cap.stop(timeout=0.0)

    def capture_stats(self):
        cap = self._capture
        return None if cap is None else cap.stats()

    # -- internals -------------------------------------------------------------------------------
    def _post(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._running:
                self._requests.put(fn)
                return
        fn()  # no worker: the pipeline is idle, run here
