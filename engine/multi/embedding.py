"""The embedder off the engine thread: several sources' faces in one call on one worker thread.

Why: on a 2-core machine the embedder (~20-30 ms a face) is the one stage that is both slow and
rare. Run in-line, every round that embeds a face makes all sources wait for it: four 720p
sources showed e2e p50 5 ms in rounds without embeddings and 100-240 ms in rounds with them.
Here the engine thread hands the chosen faces (:meth:`engine.pipeline.Pipeline.finish_deferred`)
to ONE worker thread and goes on with the next frames; when the call is back, the engine thread
gives each source its embeddings (:meth:`~engine.pipeline.Pipeline.absorb`) before its next
frame. ONNX Runtime releases the GIL, so the call uses the other core while the engine detects.

One call at a time: faces chosen while a call runs wait for the next one and go together (a
batch of 8 costs far less than 8 batches of 1), at most ``max_faces`` a call, first come first
served, so that when many faces appear at once (every camera starting) the first names come
after one short call, not after one long one. The queue is bounded by the tracks themselves:
a face in flight counts as embedded for the re-embedding policy, so it is not chosen again.
"""
from __future__ import annotations

import time
from collections.abc import Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass

import numpy as np

from engine.pipeline import PendingFrame


@dataclass(frozen=True)
class Embedded:
    """One finished call: ``items`` ((key, pending frame, its (K, D) embeddings) in the order they
    were added), ``faces`` (sum of K) and the call's wall time ``ms`` on the worker thread."""

    items: tuple[tuple[Hashable, PendingFrame, np.ndarray], ...]
    faces: int
    ms: float


class DeferredEmbedder:
    """Batches pending frames' face tensors into one ``embed_tensor`` call on a worker thread.

    Engine thread only: :meth:`add` the frames whose faces wait, :meth:`submit` (starts a call
    with everything waiting unless one runs), :meth:`collect` (the finished call, or None; an
    embedder error is raised here, on the engine thread). :meth:`close` drops what is left.
    """

    def __init__(self, embed_tensor, max_faces: int = 8) -> None:
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        self._embed = embed_tensor
        self.max_faces = max_faces
        self._pool: ThreadPoolExecutor | None = None
        self._waiting: list[tuple[Hashable, PendingFrame, bool]] = []  # (key, frame, holds a first embedding)
        self._running: list[tuple[Hashable, PendingFrame, bool]] = []
        self._job: Future | None = None
        self.urgent = False  # the running call holds a face's first embedding

    @property
    def busy(self) -> bool:
        """A call is running or faces are waiting for one."""
        return self._job is not None or bool(self._waiting)

    def add(self, key: Hashable, pending: PendingFrame, first: bool = False) -> None:
        """Queue a frame's faces; ``first``: one of them was never embedded (no name yet)."""
        if pending.tensor is None or pending.to_embed == 0:
            raise ValueError("add: the frame has no faces to embed")
        self._waiting.append((key, pending, bool(first)))

    def submit(self) -> bool:
        """Start a call unless one is running, with the waiting frames' faces in the order they
        came, whole frames up to ``max_faces`` (at least one frame); True if started."""
        if self._job is not None or not self._waiting:
            return False
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="facescope-embedder")
        n, faces = 1, self._waiting[0][1].to_embed
        while n < len(self._waiting) and faces + self._waiting[n][1].to_embed <= self.max_faces:
            faces += self._waiting[n][1].to_embed
            n += 1
        self._running, self._waiting = self._waiting[:n], self._waiting[n:]
        self.urgent = any(first for _, _, first in self._running)
        tensors = [p.tensor for _, p, _ in self._running]
        x = tensors[0] if len(tensors) == 1 else np.concatenate(tensors)
        self._job = self._pool.submit(self._timed, x)
        return True

    def _timed(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        emb = self._embed(x)
        return emb, 1000.0 * (time.perf_counter() - t)

    def collect(self, wait: bool = False) -> Embedded | None:
        """The finished call's embeddings split per frame, or None (none ran, or it is still
        running and ``wait`` is False)."""
        job = self._job
        if job is None or (not wait and not job.done()):
            return None
        self._job, running, self._running, self.urgent = None, self._running, [], False
        emb, ms = job.result()  # an embedder error surfaces here, on the caller's thread
        items, off = [], 0
        for key, p, _ in running:
            k = p.to_embed
            items.append((key, p, emb[off:off + k]))
            off += k
        if off != len(emb):
            raise ValueError(f"the embedder returned {len(emb)} embeddings for {off} faces")
        return Embedded(tuple(items), off, ms)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the running call; True when none runs (any more)."""
        job = self._job
        if job is None:
            return True
        futures_wait([job], timeout)
        return job.done()

    def close(self) -> None:
        """Drop waiting frames; a running call finishes on its own (never waited for here)."""
        self._waiting, self._running, self._job, self.urgent = [], [], None, False
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
