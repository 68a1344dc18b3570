"""Enrolment records of the live session (:mod:`engine.live`): a sample the pipeline made, an
enrolment request and its best-K selection, and enrolment from image files."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from engine.pipeline import FrameResult
from engine.records import NO_ID

TRACK_LOST_S = 1.0    # a collecting track unseen this long has ended
FIRST_SAMPLE_S = 2.0  # one-shot enrolment of a track not embedded yet: wait this long for one


@dataclass(frozen=True)
class Sample:
    """One face of a track as the pipeline embedded it: ``crop`` (h, w, 3) uint8 BGR aligned,
    ``embedding`` (D,) float32 unit vector, ``quality`` in [0, 1], ``source`` text for the gallery."""

    crop: np.ndarray
    embedding: np.ndarray
    quality: float
    source: str


@dataclass
class Enrolment:
    """One enrolment request: the best ``k`` samples of track ``track_id`` over ``seconds``
    (``k=1, seconds=0``: one shot, the track's latest sample). ``status``: "collecting" ->
    "ready" (worker side done) -> "done" | "failed" (after :meth:`LiveSession.poll`);
    ``message`` says what happened; ``person_id`` is set when done; ``result`` is the frozen
    last frame relabelled, when no source was running. Samples of a collection are at least
    ``seconds / (2 k)`` apart (diverse frames, bounded extra embeddings)."""

    track_id: int
    name: str
    k: int = 1
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    status: str = "collecting"
    message: str = ""
    person_id: int = NO_ID
    result: FrameResult | None = None
    deadline: float = 0.0
    last_seen: float = 0.0
    next_at: float = 0.0  # monotonic time from which the next sample may be embedded

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise ValueError("enrolment needs a name")
        if self.k < 1 or not np.isfinite(self.seconds) or self.seconds < 0:
            raise ValueError(f"enrolment needs k >= 1 and seconds >= 0, got k={self.k}, seconds={self.seconds}")

    def offer(self, sample: Sample) -> None:
        """Keep ``sample`` if it is among the ``k`` best so far (by quality)."""
        self.samples.append(sample)
        self.samples.sort(key=lambda s: -s.quality)
        del self.samples[self.k:]

    @property
    def floor(self) -> float:
        """Quality a new sample must beat to enter the top ``k``."""
        return self.samples[-1].quality if len(self.samples) >= self.k else -np.inf


def store_samples(gallery, name: str, embeddings: np.ndarray, crops, qualities, sources) -> tuple[int, float]:
    """Enrol ``embeddings`` (K, D) with their crops, qualities and source texts under ``name`` in
    one transaction (owner thread); returns (person id, similarity of the first sample to its
    person) for assigning the live track at once. The live session and the several-sources
    window both enrol a clicked face this way."""
    emb = np.asarray(embeddings, np.float32)
    gallery.enroll(name, emb, crops=list(crops), qualities=[float(np.clip(q, 0, 1)) for q in qualities],
                   sources=list(sources))
    pids, _, sims = gallery.index.search(emb[:1])
    return int(pids[0]), float(sims[0])


def enrol_image_files(gallery, recognizer, paths, name: str) -> tuple[int, list[str]]:
    """Enrol the largest face of each image file as ``name`` in one transaction.

    Returns (faces enrolled, problems): unreadable images and images without a face are
    reported and skipped; a gallery error (e.g. an invalid name) enrols nothing and is reported.
    """
    from engine.enrolment import prepare_enrolment
    from engine.errors import FacescopeError

    batch = prepare_enrolment(recognizer, paths)
    if not len(batch):
        return 0, batch.problems
    try:
        ids = batch.enroll_into(gallery, name)
    except (FacescopeError, ValueError) as exc:
        return 0, [*batch.problems, f"nothing enrolled: {exc}"]
    return len(ids), batch.problems


class EnrolMixin:
    """Enrolling a live track (:class:`engine.live.LiveSession`'s part): the owner asks
    (:meth:`enrol`), the worker collects samples between frames (``_observe``, ``_begin``,
    ``_finish``), the owner writes them (``_commit``, from ``LiveSession.poll``). Uses the session's
    ``_lock``, ``_samples``, ``_collecting``, ``_enrolling``, ``_ready``, ``pipeline``, ``_post``."""

    @property
    def enrolling(self) -> frozenset[int]:
        """Tracks with an enrolment asked for and not finished yet."""
        return frozenset(self._enrolling)

    def sample(self, track_id: int) -> Sample | None:
        """The newest sample of ``track_id`` (its crop shows in the enrol dialog)."""
        with self._lock:
            return self._samples.get(int(track_id))

    def enrol(self, track_id: int, name: str, k: int = 1, seconds: float = 0.0) -> Enrolment:
        """Enrol ``track_id`` as ``name``: one shot (``k=1, seconds=0``) or its best ``k``
        samples over ``seconds``. Runs on the worker between frames; :meth:`poll` finishes it."""
        job = Enrolment(int(track_id), str(name).strip(), max(1, int(k)), float(seconds))
        self._enrolling.add(job.track_id)
        self._post(lambda: self._begin(job))
        return job

    def _begin(self, job: Enrolment) -> None:
        now = time.monotonic()
        job.last_seen = now
        job.deadline = now + (job.seconds if job.seconds > 0 else FIRST_SAMPLE_S)
        first = self.sample(job.track_id)
        if first is not None:
            job.offer(first)
        if (job.seconds <= 0 and first is not None) or not self._running or self.pipeline is None:
            self._finish(job)  # one shot, or nothing runs to collect more
            return
        self._collecting[job.track_id] = job
        self.pipeline.want_embedding(job.track_id, job.floor)

    def _observe(self, r: FrameResult) -> None:
        e = r.embedded_faces
        new: dict[int, Sample] = {}
        if e is not None:
            where = f"{self.spec.display if self.spec else 'live'} frame {r.frame.index}"
            for i, tid in enumerate(e.faces.track_ids.tolist()):
                new[tid] = Sample(e.crops[i], e.faces.embeddings[i], float(e.qualities[i]), f"{where} track {tid}")
        with self._lock:
            self._samples.update(new)
            for tid in [t for t in self._samples if t not in r.alive]:
                del self._samples[tid]
        if not self._collecting:
            return
        now = time.monotonic()
        present = set(r.faces.track_ids.tolist())
        for tid, job in list(self._collecting.items()):
            if tid in new:
                job.offer(new[tid])
                # Next sample no sooner than seconds / (2k): consecutive frames are near-duplicates,
                # and an embedding on every frame of the window would load the machine for nothing.
                job.next_at = now + job.seconds / (2 * job.k)
                self.pipeline.cancel_embedding(tid)
            if job.next_at <= now:
                self.pipeline.want_embedding(tid, job.floor)
            if tid in present:
                job.last_seen = now
            if now >= job.deadline or now - job.last_seen > TRACK_LOST_S or (job.seconds <= 0 and job.samples):
                self._finish(job)

    def _finish(self, job: Enrolment) -> None:
        self._collecting.pop(job.track_id, None)
        if self.pipeline is not None:
            self.pipeline.cancel_embedding(job.track_id)
        job.status = "ready"
        self._ready.put(job)

    def _commit(self, job: Enrolment) -> None:
        tid = job.track_id
        if not job.samples:
            job.status, job.message = "failed", (f"face #{tid} left the view before any frame was collected: "
                                                 "nothing enrolled")
            return
        if self.gallery is None:
            job.status, job.message = "failed", "no gallery is open (start the app with --gallery)"
            return
        try:
            s = job.samples
            pid, sim = store_samples(self.gallery, job.name, np.stack([x.embedding for x in s]),
                                     [x.crop for x in s], [x.quality for x in s], [x.source for x in s])
        except Exception as exc:  # noqa: BLE001 - the caller shows it; the session stays usable
            job.status, job.message = "failed", f"enrolment failed: {type(exc).__name__}: {exc}"
            return
        job.person_id, job.status = pid, "done"
        n = f"{len(s)} frames of " if job.k > 1 else ""
        job.message = f"enrolled {n}face #{tid} as {job.name}"
        quality = s[0].quality

        def assign() -> None:
            if self.pipeline is not None:
                self.pipeline.assign_identity(tid, job.person_id, sim, quality)
            if not self._running:
                job.result = self.relabel_latest()

        self._post(assign)
