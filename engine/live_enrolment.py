"""Enrolment records of the live session (:mod:`engine.live`): a sample the pipeline made, an
enrolment request and its best-K selection, and enrolment from image files."""
from __future__ import annotations

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
