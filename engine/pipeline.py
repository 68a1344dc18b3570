"""The real-time pipeline: frames in, tracked and identified faces out, one result per frame.

Per frame: detect -> track -> quality -> choose which tracks need an embedding (new, better
quality, stale or still undecided) -> landmarks of those faces (68 points: alignment points,
pose, sharpness) -> align + embed them in ONE batch -> match them against the gallery index
(one matrix product) -> vote per track -> label every tracked face.
Cost per frame therefore grows with new faces, not with all faces: a face that stays in view is
embedded again only every few seconds. ``Pipeline.run(capture)`` is a generator; the desktop
app wraps it in a worker thread. Nothing here imports Qt.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from engine.capture import Capture, Frame
from engine.records import Faces
from engine.recognizer import Recognizer
from engine.track import EmbedPolicy, IdentityBook, IdentityConfig, PolicyConfig, Tracker, TrackerConfig, face_quality

STAGES = ("capture_wait", "detect", "track", "landmarks", "align", "embed", "match", "total")


@dataclass(frozen=True)
class PipelineConfig:
    """Tracking, identity and re-embedding settings (detector/embedder live in the Recognizer)."""

    # Tracks start on their first confident detection (score >= new_track_thresh), so a face
    # is boxed and named on the frame it appears; weaker detections only extend tracks.
    tracker: TrackerConfig = field(default_factory=lambda: TrackerConfig(min_hits=1))
    # A name may attach on a track's first confident match; switching it later still needs
    # dominant evidence, which is what keeps names from flickering.
    identity: IdentityConfig = field(default_factory=lambda: IdentityConfig(min_votes=1))
    # One embedding per frame (~12 ms on 2 CPU cores): a burst of new faces is spread over a
    # few frames (7 new faces are all named within ~0.3 s at 25 fps) instead of stalling one
    # frame past the latency budget.
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(max_per_frame=1))
    # The landmark model runs on the faces being embedded (it gives their alignment points,
    # pose and sharpness, ~2 ms a face); True runs it on every face of every frame, for
    # drawing landmarks (--draw-landmarks) at that cost.
    landmarks_every_frame: bool = False


@dataclass(frozen=True)
class FrameResult:
    """One processed frame.

    ``faces``: tracked faces with track ids, identities, names and similarities.
    ``timings_ms``: per-stage wall time in ms (keys ``STAGES``); ``e2e_ms``: from the frame's
    capture timestamp to this result. ``embedded``: embeddings computed for this frame.
    ``alive``: ids of all tracks the tracker keeps, including faces hidden this frame.
    """

    frame: Frame
    faces: Faces
    timings_ms: dict[str, float]
    e2e_ms: float
    embedded: int
    alive: frozenset[int] = frozenset()


class Pipeline:
    """Stateful per-source processor. ``gallery_index`` may be None (everyone is unknown) and
    may change under it (enrolment from the GUI): it is read at every match."""

    def __init__(self, recognizer: Recognizer, gallery_index=None, config: PipelineConfig | None = None) -> None:
        self.recognizer = recognizer
        self.gallery_index = gallery_index
        self.config = config or PipelineConfig()
        self.tracker = Tracker(self.config.tracker)
        self.book = IdentityBook(self.config.identity)
        self.policy = EmbedPolicy(self.config.policy)
        self._alive: set[int] = set()
        self._last_clock: float | None = None

    def reset(self) -> None:
        self.tracker.reset()
        self.book = IdentityBook(self.config.identity)
        self.policy = EmbedPolicy(self.config.policy)
        self._alive = set()
        self._last_clock = None

    def process(self, frame: Frame, capture_wait_ms: float = 0.0) -> FrameResult:
        t0 = time.perf_counter()
        image = frame.image
        rec = self.recognizer
        faces = rec.detect(image)
        t1 = time.perf_counter()
        # Motion and vote clocks run on media time for files (tracking must not depend on how
        # fast this machine processes them), on capture time for live sources.
        clock = frame.pts_s if frame.pts_s is not None else frame.timestamp
        if self._last_clock is not None and clock < self._last_clock:
            self.reset()  # a looping file restarted: a new pass is a new scene for the tracker
        self._last_clock = clock
        faces = self.tracker.update(faces, clock)
        self._forget_dead_tracks()
        t2 = time.perf_counter()
        t_lm = 0.0
        if self.config.landmarks_every_frame and rec.landmarker is not None and len(faces):
            faces = rec.locate(image, faces)
            t_lm = time.perf_counter() - t2
        quality = face_quality(faces, image.shape)
        if len(faces):
            need = self.policy.select(faces, quality, clock, self.book.decided(faces.track_ids))
        else:
            need = np.zeros(0, bool)
        idx = np.flatnonzero(need)
        t3 = time.perf_counter()
        t_track = (t3 - t1) - t_lm  # tracking + quality + policy
        t_align = t_embed = t_match = 0.0
        if idx.size:
            sub = faces.select(idx)
            if sub.landmarks is None:
                sub = rec.locate(image, sub)  # alignment points, pose and sharpness of these faces
                q = face_quality(sub, image.shape)
            else:
                q = quality[idx]
            t4 = time.perf_counter()
            x = rec.embedder.align(image, sub.keypoints)
            t5 = time.perf_counter()
            emb = rec.embedder.embed_tensor(x)
            t6 = time.perf_counter()
            self._vote(sub.track_ids, emb, q, clock)
            # the policy compares qualities computed the same way at selection time
            self.policy.mark_embedded(sub.track_ids, quality[idx], clock)
            t7 = time.perf_counter()
            t_lm, t_align, t_embed, t_match = t_lm + t4 - t3, t5 - t4, t6 - t5, t7 - t6
        faces = self.book.apply(faces)
        t_end = time.perf_counter()
        ms = lambda s: 1000.0 * s  # noqa: E731
        timings = {"capture_wait": capture_wait_ms, "detect": ms(t1 - t0), "track": ms(t_track),
                   "landmarks": ms(t_lm), "align": ms(t_align), "embed": ms(t_embed), "match": ms(t_match),
                   "total": ms(t_end - t0)}
        return FrameResult(frame, faces, timings, ms(t_end - frame.timestamp), int(idx.size), frozenset(self._alive))

    def _vote(self, track_ids: np.ndarray, emb: np.ndarray, quality: np.ndarray, timestamp: float) -> None:
        index = self.gallery_index
        if index is None or len(emb) == 0:
            pids, names, sims = np.full(len(emb), -1), [None] * len(emb), np.full(len(emb), np.nan, np.float32)
        else:
            pids, names, sims = index.search(emb)
        threshold = self.recognizer.threshold
        for tid, pid, name, sim, q in zip(track_ids, pids, names, sims, quality):
            known = pid >= 0 and np.isfinite(sim) and sim >= threshold
            self.book.vote(int(tid), int(pid) if known else -1, name if known else None,
                           float(sim) if np.isfinite(sim) else float("nan"), float(q), timestamp)

    def _forget_dead_tracks(self) -> None:
        alive = {int(t) for t in self.tracker.track_ids()}
        dead = self._alive - alive
        if dead:
            self.book.forget(dead)
            self.policy.forget(dead)
        self._alive = alive

    def run(self, capture: Capture, max_frames: int | None = None) -> Iterator[FrameResult]:
        """Yield one result per processed frame until the source ends or ``max_frames``."""
        n = 0
        while max_frames is None or n < max_frames:
            t = time.perf_counter()
            frame = capture.read(timeout=0.5)
            wait = 1000.0 * (time.perf_counter() - t)
            if frame is None:
                if capture.finished:
                    return
                continue
            yield self.process(frame, wait)
            n += 1
