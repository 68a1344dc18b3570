"""From tracked frames to sightings: per track, first/last seen, frames and the best sample.

Runs on the pipeline's (worker) thread and stays cheap: per frame it touches one small record
per visible track and keeps a reference to the best embedded crop (no copies, no encoding, no
SQLite). Finished sightings wait in a thread-safe queue until the owner thread writes them
(:func:`engine.sightings.store.record`), since a SQLite connection stays on its own thread.
"""
from __future__ import annotations

import queue
import time
from dataclasses import dataclass

import numpy as np

from engine.records import NO_ID

from .config import SightingConfig


@dataclass(frozen=True)
class Sighting:
    """One visit of one face: ``person_id`` (``NO_ID`` = unknown), ``source`` display text (URL
    passwords masked), ``first_seen``/``last_seen`` UTC epoch seconds, ``frames`` seen, the best
    frame's ``crop`` (112, 112, 3) uint8 BGR aligned, ``embedding`` (D,) float32 unit vector and
    ``quality`` in [0, 1], and ``similarity`` (the identity's gallery score, NaN if unknown).
    ``name``: the person's name when the identity was decided. The id alone can mean someone else
    by the time the sighting is written (a person deleted and the id reused by the next enrolment,
    or a gallery replaced by an import): :func:`engine.sightings.store.record` keeps the id only
    while it still carries that name (None: the id is trusted as it is)."""

    person_id: int
    source: str
    first_seen: float
    last_seen: float
    frames: int
    crop: np.ndarray
    embedding: np.ndarray
    quality: float
    similarity: float = float("nan")
    track_id: int = -1  # the pipeline's track (per source run; not stored): lets a benchmark score sightings
    name: str | None = None  # checked against the gallery when written, not stored (names live in persons)


def drain(q: queue.SimpleQueue) -> list:
    """Everything in ``q`` now, without blocking."""
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


class _Open:
    __slots__ = ("best", "first", "frames", "last", "name", "person", "sim")

    def __init__(self, t: float) -> None:
        self.first = self.last = t
        self.frames = 0
        self.person, self.sim, self.name = NO_ID, float("nan"), None
        self.best: tuple[np.ndarray, np.ndarray, float] | None = None  # crop, embedding, quality


class SightingCollector:
    """Feed :meth:`observe` every FrameResult (worker thread); :meth:`take` (any thread) returns
    the sightings finished since. A track ends when it leaves ``FrameResult.alive``; tracks
    without any embedded frame (no crop to show) or seen on fewer than ``min_frames`` frames
    are dropped. :meth:`end_all` closes every open track (the source ended). ``sink``: the queue
    finished sightings go to (one queue may outlive several collectors, e.g. one per source)."""

    def __init__(self, source: str, config: SightingConfig | None = None,
                 sink: queue.SimpleQueue | None = None) -> None:
        self.source = str(source)
        self.config = config or SightingConfig()
        self._open: dict[int, _Open] = {}
        self._done: queue.SimpleQueue[Sighting] = queue.SimpleQueue() if sink is None else sink
        # Frame timestamps are perf_counter seconds; one offset turns them into epoch seconds.
        self._epoch = time.time() - time.perf_counter()

    def observe(self, result) -> None:
        t = self._epoch + float(result.frame.timestamp)
        faces = result.faces
        for tid, pid, sim, name in zip(faces.track_ids.tolist(), faces.identities.tolist(),
                                       faces.similarities.tolist(), faces.names, strict=True):
            if tid < 0:
                continue
            o = self._open.get(tid)
            if o is None:
                o = self._open[tid] = _Open(t)
            o.last, o.frames = t, o.frames + 1
            o.person, o.sim, o.name = int(pid), float(sim), name  # the identity as decided so far (latest wins)
        e = result.embedded_faces
        if e is not None:
            for i, tid in enumerate(e.faces.track_ids.tolist()):
                o = self._open.get(tid)
                q = float(e.qualities[i])
                if o is not None and (o.best is None or q > o.best[2]):
                    o.best = (e.crops[i], e.faces.embeddings[i], q)
        for tid in [t_ for t_ in self._open if t_ not in result.alive]:
            self._close(tid)
        span = self.config.max_span_s
        for tid, o in list(self._open.items()):
            if o.last - o.first >= span:  # a long visit: write it now, go on with a new one
                self._close(tid, keep=True)

    def end_all(self) -> None:
        for tid in list(self._open):
            self._close(tid)

    def take(self) -> list[Sighting]:
        return drain(self._done)

    @property
    def open_tracks(self) -> int:
        return len(self._open)

    def _close(self, tid: int, keep: bool = False) -> None:
        o = self._open.pop(tid)
        if o.best is not None and o.frames >= self.config.min_frames:
            crop, emb, q = o.best
            self._done.put(Sighting(o.person, self.source, o.first, o.last, o.frames, crop,
                                    np.asarray(emb, np.float32), q, o.sim, tid, o.name))
        if keep:  # the next segment starts where this one ended, with the same best sample as seed
            n = self._open[tid] = _Open(o.last)
            n.person, n.sim, n.name, n.best = o.person, o.sim, o.name, o.best
