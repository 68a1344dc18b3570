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

import dataclasses
import time
from collections.abc import Callable, Iterator

import numpy as np

from engine.capture import Capture, Frame
from engine.gallery.index import classify
from engine.pipeline_config import PipelineConfig
from engine.pipeline_config import realtime_config as realtime_config  # re-exported: callers import it from here
from engine.pipeline_records import EmbeddedFaces, FrameResult, PendingFrame
from engine.recognizer import Recognizer
from engine.records import NO_ID, STATUS_CONFIRMED, STATUS_PROBABLE, STATUS_UNKNOWN, Faces
from engine.track import EmbedPolicy, IdentityBook, Tracker, face_quality
from engine.track.bytetrack import TrackState
from engine.track.gating import DetectorGate
from engine.track.identity import renumber
from engine.track.refine import TemplateRefiner
from engine.util.stages import StageTimer

STAGES = ("capture_wait", "detect", "track", "landmarks", "align", "embed", "match", "total")


class Pipeline:
    """Stateful per-source processor. ``gallery_index`` may be None (everyone is unknown) and
    may change under it (enrolment from the GUI): it is read at every match.

    ``face_filter(faces, (height, width)) -> faces``: applied to each frame's detections before
    tracking (a source's region of interest and minimum face size, :mod:`engine.multi`); None
    keeps every detection."""

    def __init__(self, recognizer: Recognizer, gallery_index=None, config: PipelineConfig | None = None) -> None:
        self.recognizer = recognizer
        self.gallery_index = gallery_index
        self.config = config or PipelineConfig()
        self.tracker = Tracker(self.config.tracker)
        self.book = IdentityBook(self.config.identity)
        self.policy = EmbedPolicy(self.config.policy)
        self._alive: set[int] = set()
        self._last_clock: float | None = None
        self._wanted: dict[int, float] = {}
        self._epoch = 0
        self._in_flight: set[int] = set()  # tracks whose deferred embedding is not back yet
        self.face_filter: Callable[[Faces, tuple[int, int]], Faces] | None = None
        self.gate = DetectorGate(self.config.gate)
        self.refiner = TemplateRefiner() if self.config.gate.gated and self.config.gate.follow else None

    def want_embedding(self, track_id: int, above_quality: float = -np.inf) -> None:
        """Embed ``track_id`` on every frame where its quality exceeds ``above_quality`` (on
        top of the re-embedding policy) until :meth:`cancel_embedding` (best-K enrolment)."""
        self._wanted[int(track_id)] = float(above_quality)

    def cancel_embedding(self, track_id: int) -> None:
        self._wanted.pop(int(track_id), None)

    def assign_identity(self, track_id: int, person_id: int, similarity: float = 1.0, quality: float = 1.0,
                        timestamp: float | None = None) -> None:
        """The track is ``person_id`` from now on (it was just enrolled): replaces its votes."""
        clock = self._last_clock if timestamp is None else timestamp
        self.book.assign(track_id, person_id, similarity, float(np.clip(quality, 0.0, 1.0)),
                         0.0 if clock is None else clock)

    def forget_people(self, person_ids) -> list[int]:
        """Tracks labelled as one of ``person_ids`` (deleted, merged or renumbered in the gallery:
        ``engine.gallery.watch``) start their identity over: re-embedded on the next detected
        frame, as new. Returns their ids."""
        gone = {int(p) for p in person_ids}
        tids = [t for t in self._alive if self.book.label(t)[0] in gone]
        self.book.forget(tids)
        self.policy.forget(tids)
        return tids

    def label(self, faces: Faces) -> Faces:
        """Identities, similarities, the gallery's current names and the status (confirmed /
        probable: ``IdentityBook.confirmed``) of every tracked face."""
        index = self.gallery_index
        faces = self.book.apply(faces, index.names_of if index is not None else None)
        sure = self.book.confirmed(faces.track_ids) | ((faces.track_ids < 0) & (faces.states == STATUS_CONFIRMED))
        named = faces.identities >= 0
        return faces.replace(status=np.where(named, np.where(sure, STATUS_CONFIRMED, STATUS_PROBABLE), STATUS_UNKNOWN))

    def relabel(self, result: FrameResult) -> FrameResult:
        """``result`` labelled again from the current votes and names (a frozen last frame
        after an enrolment, a rename or a delete)."""
        return dataclasses.replace(result, faces=self.label(result.faces))

    def reset(self) -> None:
        self.tracker.reset()
        if self.refiner is not None:
            self.refiner.reset()
        self.book = IdentityBook(self.config.identity)
        self.policy = EmbedPolicy(self.config.policy)
        self._alive = set()
        self._last_clock = None
        self._wanted = {}
        self._epoch += 1
        self._in_flight = set()

    def process(self, frame: Frame, capture_wait_ms: float = 0.0) -> FrameResult:
        """One frame, start to end: :meth:`begin`, the embedder on its faces, :meth:`finish`."""
        pending = self.begin(frame, capture_wait_ms)
        emb = None
        if pending.tensor is not None:
            with pending.timer("embed"):
                emb = self.recognizer.embedder.embed_tensor(pending.tensor)
        return self.finish(pending, emb)

    def begin(self, frame: Frame, capture_wait_ms: float = 0.0) -> PendingFrame:
        """Everything before the embedder: detect, (face filter), track, quality, the choice of
        faces to embed, their landmarks and the aligned network input. Several sources' tensors
        can then go through ONE embedder call (:mod:`engine.multi`) before each :meth:`finish`.
        Calls on one Pipeline must alternate begin/finish (it holds one source's tracker state)."""
        timer = StageTimer(STAGES[1:-1])  # capture_wait is measured by the caller, total here
        shape = frame.shape  # frame.image is read only where pixels are needed: an MJPEG packet
        rec = self.recognizer  # is then decoded (engine.capture.jpeg_packets), inside that stage's time
        # Motion and vote clocks run on media time for files (tracking must not depend on how
        # fast this machine processes them), on capture time for live sources.
        clock = frame.pts_s if frame.pts_s is not None else frame.timestamp
        with timer("detect"):  # skipped when nothing changed: the tracker predicts (engine.track.gating)
            detected = self.gate.decide(frame, clock, self.tracker, self._waiting())
            faces = rec.detect(frame.image) if detected else None
        if self.face_filter is not None and detected:  # per-source region of interest / minimum size, before tracking
            faces = self.face_filter(faces, shape)
        with timer("track"):  # tracking, quality and the re-embedding policy
            if self._last_clock is not None and clock < self._last_clock:
                self.reset()  # a looping file restarted: a new pass is a new scene for the tracker
            self._last_clock = clock
            if detected:
                faces = self.tracker.update(faces, clock, frame.image)
                if self.refiner is not None:  # the detected faces' templates, for the frames skipped next
                    self.refiner.remember(self.gate.grey, shape, self.tracker)
            else:
                self.tracker.advance(clock)
                if self.refiner is not None:  # followed by template matching: predictions corrected
                    self.gate.followed(*self.refiner.correct(self.gate.grey, shape, self.tracker))
                faces = self.tracker.shown()
            self._forget_dead_tracks()
        if self.config.landmarks_every_frame and rec.landmarker is not None and len(faces):
            with timer("landmarks"):
                faces = rec.locate(frame.image, faces)
        with timer("track"):
            quality = face_quality(faces, shape)
            if len(faces) and detected:  # a predicted box is not embedded: it waits for a detection
                tids = faces.track_ids
                need = self.policy.select(faces, quality, clock, self.book.decided(tids), self.book.named(tids))
                if self._wanted:
                    floor = np.array([self._wanted.get(int(t), np.inf) for t in faces.track_ids])
                    need |= quality > floor
                if self._in_flight:  # its embedding is on its way (finish_deferred): not chosen twice
                    need &= ~np.isin(tids, list(self._in_flight))
            else:
                need = np.zeros(0, bool)
        idx = np.flatnonzero(need)
        sub = x = crops = q = None
        if idx.size:
            sub = faces.select(idx)
            with timer("landmarks"):
                if sub.landmarks is None:
                    sub = rec.locate(frame.image, sub)  # alignment points, pose and sharpness of these faces
                    q = face_quality(sub, shape)
                else:
                    q = quality[idx]
            with timer("align"):
                x = rec.embedder.align(frame.image, sub.keypoints)
                crops = rec.embedder.aligned_crops(frame.image, sub.keypoints)  # ~0.05 ms a face: kept for enrolment
        return PendingFrame(frame, capture_wait_ms, timer, clock, faces, quality, idx, sub, q, x, crops, self._epoch)

    def finish(self, pending: PendingFrame, embeddings: np.ndarray | None) -> FrameResult:
        """The frame's result from ``embeddings`` ((K, D) unit vectors of ``pending.tensor``'s K
        faces, in order; None when K = 0): gallery match, votes, labels."""
        embedded = None
        if pending.idx.size:
            with pending.timer("match"):
                embedded, splits = self._take(pending, embeddings)
                if splits:  # this very frame shows the new track: never the old name on the new face
                    pending = dataclasses.replace(pending, faces=pending.faces.replace(
                        track_ids=renumber(pending.faces.track_ids, splits)))
        return self._result(pending, embedded)

    def finish_deferred(self, pending: PendingFrame) -> FrameResult:
        """The frame's result NOW, labelled from the votes so far, while its K chosen faces are
        embedded elsewhere (:mod:`engine.multi` runs the embedder off the engine thread): those
        faces count as embedded for the re-embedding policy from here on (not chosen again
        while in flight); :meth:`absorb` adds their votes when the embeddings come back. The
        trade-off: a face's name arrives one embedder call later (~20-70 ms), and no frame
        waits for an embedder call."""
        if pending.idx.size:
            self.policy.mark_embedded(pending.sub.track_ids, pending.quality[pending.idx], pending.clock)
            self._in_flight.update(pending.sub.track_ids.tolist())
        return self._result(pending, None)

    def first_embedding(self, pending: PendingFrame) -> bool:
        """Is one of the faces ``pending`` embeds embedded for the first time (a face with no name yet)?"""
        return pending.idx.size > 0 and any(self.policy.embedded(int(t)) is None for t in pending.sub.track_ids)

    def absorb(self, pending: PendingFrame, embeddings: np.ndarray) -> EmbeddedFaces | None:
        """Votes from ``embeddings`` of a :meth:`finish_deferred` frame's faces; faces whose
        track ended since (or all, after a :meth:`reset`) are dropped. Returns the faces that
        voted, with their crops (sightings and enrolment read them), or None when none did."""
        if pending.epoch != self._epoch:
            return None
        self._in_flight.difference_update(pending.sub.track_ids.tolist())
        keep = np.isin(pending.sub.track_ids, list(self._alive))
        if not keep.any():
            return None
        if not keep.all():
            idx = pending.idx[keep]
            pending = dataclasses.replace(pending, idx=idx, sub=pending.sub.select(np.flatnonzero(keep)),
                                          q=pending.q[keep], crops=pending.crops[keep])
            embeddings = np.asarray(embeddings)[keep]
        embedded, _ = self._take(pending, embeddings, sent=True)
        return embedded

    def _take(self, pending: PendingFrame, embeddings: np.ndarray | None,
              sent: bool = False) -> tuple[EmbeddedFaces, dict[int, int]]:
        """Match, vote and mark embedded the K faces of ``pending`` (``sent``: they were marked when
        :meth:`finish_deferred` sent them; only tracks split off now are); (those faces with their
        embeddings and crops, {old track id: new id} for tracks split by their new embedding)."""
        idx = pending.idx
        if embeddings is None or len(embeddings) != idx.size:
            got = None if embeddings is None else len(embeddings)
            raise ValueError(f"{idx.size} faces were to be embedded, got {got} embeddings")
        sub, emb = pending.sub, np.asarray(embeddings, np.float32)
        splits = self._vote(sub.track_ids, emb, pending.q, pending.clock)
        if splits:
            sub = sub.replace(track_ids=renumber(sub.track_ids, splits))
        # the policy compares qualities computed the same way at selection time
        mark = np.isin(sub.track_ids, list(splits.values())) if sent else np.ones(idx.size, bool)
        self.policy.mark_embedded(sub.track_ids[mark], pending.quality[idx][mark], pending.clock)
        return EmbeddedFaces(sub.replace(embeddings=emb), pending.crops, np.asarray(pending.q, np.float32)), splits

    def _result(self, pending: PendingFrame, embedded: EmbeddedFaces | None) -> FrameResult:
        faces = self.label(pending.faces)
        timings = {"capture_wait": pending.capture_wait_ms, **pending.timer.ms, "total": pending.timer.total_ms()}
        frame = pending.frame
        return FrameResult(frame, faces, timings, 1000.0 * (time.perf_counter() - frame.timestamp),
                           0 if embedded is None else len(embedded.crops), frozenset(self._alive), embedded)

    def _vote(self, track_ids: np.ndarray, emb: np.ndarray, quality: np.ndarray,
              timestamp: float) -> dict[int, int]:
        """Match and vote; a track whose new embedding is someone else is split first (issue #15:
        a track is one person; ``IdentityBook.contradicts``). Returns {old id: new id}."""
        index = self.gallery_index
        if index is None or len(emb) == 0:
            pids, sims, negative = np.full(len(emb), NO_ID), np.full(len(emb), np.nan, np.float32), None
            second = None
        else:
            found = index.search(emb)
            pids, _, sims = found
            negative = getattr(found, "negative", None)  # "not this person" examples (schema v3)
            second = getattr(found, "second", None)  # the second-best person, for the margin rule
        rule = self.recognizer.decision
        pids, status = classify(pids, sims, rule, negative, second)
        with np.errstate(invalid="ignore"):  # NaN (empty gallery): not near anyone
            near = (pids == NO_ID) & (np.asarray(sims, np.float32) >= rule.unknown - self.config.identity.near_miss)
        splits = {}
        for tid, e, pid, sim, q, st, nr in zip(track_ids.tolist(), emb, pids.tolist(), sims, quality,
                                               status.tolist(), near.tolist(), strict=True):
            # someone else now (a "probable" match is no evidence of another person): a new track, a new sighting
            if self.book.contradicts(tid, e, pid if st == STATUS_CONFIRMED else NO_ID):
                splits[tid] = tid = self._split_track(tid)
            self.book.vote(tid, pid, float(sim) if np.isfinite(sim) else float("nan"), float(q), timestamp,
                           embedding=e, confirmed=st == STATUS_CONFIRMED, near=nr)
        return splits

    def _split_track(self, old: int) -> int:
        new = self.tracker.split(old)
        self.book.forget([old])
        self.policy.forget([old])
        self._wanted.pop(old, None)
        self._alive = (self._alive - {old}) | {new}
        return new

    def _waiting(self) -> bool:
        """Does a tracked face wait for its first embedding (the detector gate then detects)?"""
        return any(t.state is TrackState.TRACKED and self.policy.embedded(t.track_id) is None
                   for t in self.tracker.tracks)

    def _forget_dead_tracks(self) -> None:
        alive = {int(t) for t in self.tracker.track_ids()}
        dead = self._alive - alive
        if dead:
            self.book.forget(dead)
            self.policy.forget(dead)
            self._in_flight.difference_update(dead)
            for t in dead:
                self._wanted.pop(t, None)
        self._alive = alive

    def run(self, capture: Capture, max_frames: int | None = None) -> Iterator[FrameResult]:
        """Yield one result per processed frame until the source ends or ``max_frames``. The
        recognizer is warmed up first (:meth:`Recognizer.warm_up`: while the source connects, not
        at the first face)."""
        self.recognizer.warm_up()
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
