"""ByteTrack-style multi-face tracker (Zhang et al., "ByteTrack: Multi-Object Tracking by
Associating Every Detection Box", ECCV 2022), as a plain stage on :class:`Faces`.

Per frame (``Tracker.update``):

1. every track's Kalman state is predicted to the frame's timestamp (constant velocity on
   ``cx, cy, a, h``; lost tracks keep moving but stop growing/shrinking, as in ByteTrack);
2. high-score detections (``score >= high_thresh``) are matched by IoU to confirmed tracks,
   tracked *and* lost, so a face that reappears after an occlusion near its predicted box
   gets its old id back; then lost tracks left over are matched to leftover high-score
   detections with *buffered* IoU (both boxes grown by ``lost_buffer`` x their size per side,
   as in C-BIoU, Yang et al. 2023): a face that sped up or turned while hidden reappears off
   its constant-velocity prediction, and this cascade catches it without loosening the
   first association;
3. low-score detections (``low_thresh <= score < high_thresh``) are matched to the tracks that
   were tracked on the previous frame and are still unmatched (stricter IoU): a face that
   blurs or turns away keeps its track instead of being dropped -- ByteTrack's key idea;
4. tentative tracks (born on the previous frame) are matched to the remaining high-score
   detections; a tentative track that misses a frame is removed;
5. remaining high-score detections with ``score >= new_track_thresh`` start tentative tracks;
   a track is confirmed after ``min_hits`` matched frames, or at once on the tracker's very
   first frame (as in ByteTrack, so that a scene is tracked from frame 1);
6. confirmed tracks that missed become *lost*, are predicted through the misses and removed
   ``max_age_s`` seconds after they were last seen. Time comes from frame timestamps, not frame
   counts, so a real-time source that drops frames neither ages tracks too slowly nor breaks
   the motion model.

Assignment uses ``scipy.optimize.linear_sum_assignment`` rather than ByteTrack's ``lap.lapjv``
or the ``supervision`` package: ``supervision`` depends on the GUI ``opencv-python`` build,
which conflicts with the ``opencv-python-headless`` we ship, ``lap`` is one more compiled
dependency, and scipy is a plain wheel on every platform we ship (it must be listed in
``pyproject.toml``'s dependencies). Costs above the gate are capped at the gate before
solving, which makes the rectangular problem equivalent to
``lapjv(..., extend_cost=True, cost_limit=gate)``: a pair above the gate is never better than
leaving both unmatched. IoU matrices are computed with broadcasting (no Python loop per pair).

Track ids are positive, increasing and never reused by one ``Tracker`` (not even across
:meth:`Tracker.reset`); a tentative track has id -1 until it is confirmed, so false detections
do not consume ids. The settings, a track's state and the assignment step live in
:mod:`engine.track.tracks`.
"""
from __future__ import annotations

import math

import numpy as np

from engine.boxes import iou_matrix
from engine.records import Faces
from engine.track.appearance import frame_signature, thumbnails
from engine.track.kalman import KalmanFilter, xyah_to_xyxy, xyxy_to_xyah
from engine.track.tracks import (
    UNTRACKED,
    Track,
    TrackerConfig,
    TrackState,
    _enlarge,
    linear_assignment,
)
from engine.util.check import check


class Tracker:
    """ByteTrack over :class:`Faces`: ``update(faces, timestamp) -> faces with track_ids``."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.kf = KalmanFilter()
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new source). Ids keep increasing: a reused id could pick up
        the identity votes of a track from before the reset."""
        self._tracks: list[Track] = []
        self._frame_sig: np.ndarray | None = None  # the previous image's signature, for shot cuts
        self._last_ts: float | None = None
        self._frames = 0

    @property
    def tracks(self) -> tuple[Track, ...]:
        """All live tracks: tentative, tracked and lost."""
        return tuple(self._tracks)

    def track_ids(self) -> np.ndarray:
        """Sorted ids of the confirmed tracks kept (tracked and lost), int64."""
        return np.array(sorted(t.track_id for t in self._tracks if t.is_confirmed), np.int64)

    def update(self, faces: Faces, timestamp: float, image: np.ndarray | None = None) -> Faces:
        """Associate one frame's detections; returns them with ``track_ids`` set.

        Returned: detections matched to a confirmed track (their id), in input order, all other
        fields (keypoints, meta arrays of length N) selected along. Low-score detections that
        extend no track are dropped; so are high-score detections that belong to no confirmed
        track unless ``keep_unconfirmed`` (then with id -1). ``timestamp`` is in seconds and
        must not decrease. ``meta["track_jump"]``: (N,) bool, the detection jumped off its track
        (``jump_iou``; ``jump_ncc`` when ``image``, the frame the boxes are in, is given).
        """
        cfg = self.config
        ts = float(timestamp)
        check(math.isfinite(ts), f"tracker timestamp must be finite, got {timestamp}")
        if self._last_ts is not None:
            check(ts >= self._last_ts, f"tracker timestamps must not decrease ({ts} after {self._last_ts})")
        dt = 1.0 if self._last_ts is None else (ts - self._last_ts) / cfg.frame_dt
        self._last_ts = ts
        self._frames += 1

        boxes = faces.boxes
        scores = faces.scores
        n = len(faces)
        det_track: list[Track | None] = [None] * n
        self._pred_iou = np.ones(n)  # IoU of each matched detection with its track's prediction
        self._ncc = np.ones(n)       # appearance correlation with its track's previous detection
        self._thumbs = None if image is None or cfg.jump_ncc <= -1 else thumbnails(image, boxes)
        cut = False
        if image is not None and cfg.cut_ncc > -1:
            sig = frame_signature(image)
            prev, self._frame_sig = self._frame_sig, sig
            cut = prev is not None and sig.any() and prev.any() and float(sig @ prev) < cfg.cut_ncc

        self._predict(dt)
        pool = [t for t in self._tracks if t.is_confirmed]
        tentative = [t for t in self._tracks if not t.is_confirmed]
        high = np.flatnonzero(scores >= cfg.high_thresh)
        low = np.flatnonzero((scores >= cfg.low_thresh) & (scores < cfg.high_thresh))

        # 1. confirmed tracks (tracked + lost) <-> high-score detections
        matches, u_pool, u_high = self._associate(pool, boxes[high], scores[high] if cfg.fuse_score else None,
                                                  cfg.match_iou)
        self._hit([pool[i] for i in matches[:, 0]], high[matches[:, 1]], faces, ts, det_track)
        # 1b. lost tracks <-> leftover high-score detections, both boxes enlarged (buffered IoU)
        if cfg.lost_buffer > 0:
            lost = [i for i in u_pool if pool[i].state is TrackState.LOST]
            matches, _, u_left = self._associate([pool[i] for i in lost], boxes[high[u_high]], None,
                                                 cfg.match_iou, cfg.lost_buffer)
            self._hit([pool[lost[i]] for i in matches[:, 0]], high[u_high[matches[:, 1]]], faces, ts, det_track)
            taken = {lost[i] for i in matches[:, 0]}
            u_pool = np.array([i for i in u_pool if i not in taken], np.int64)
            u_high = u_high[u_left]
        # 2. still-unmatched tracks that were tracked on the previous frame <-> low-score detections
        remaining = [pool[i] for i in u_pool if pool[i].state is TrackState.TRACKED]
        matches, u_rem, _ = self._associate(remaining, boxes[low], None, cfg.low_match_iou)
        self._hit([remaining[i] for i in matches[:, 0]], low[matches[:, 1]], faces, ts, det_track)
        for i in u_rem:
            remaining[i].state = TrackState.LOST
        # 3. tentative tracks <-> remaining high-score detections; a tentative track that misses dies
        rest = high[u_high]
        matches, u_tent, u_rest = self._associate(tentative, boxes[rest], scores[rest] if cfg.fuse_score else None,
                                                  cfg.tentative_match_iou)
        self._hit([tentative[i] for i in matches[:, 0]], rest[matches[:, 1]], faces, ts, det_track)
        dead = {id(tentative[i]) for i in u_tent}
        # 4. new tracks from confident leftovers
        new = rest[u_rest]
        new = new[scores[new] >= cfg.new_track_thresh]
        if new.size:
            means, covs = self.kf.initiate(xyxy_to_xyah(boxes[new]))
            for k, d in enumerate(new):
                kps = None if faces.keypoints is None else faces.keypoints[d].copy()
                track = Track(means[k], covs[k], boxes[d].copy(), float(scores[d]), kps, ts)
                track.thumb = None if self._thumbs is None else self._thumbs[d]
                if cfg.min_hits <= 1 or self._frames == 1:
                    self._confirm(track)
                self._tracks.append(track)
                det_track[d] = track
        # 5. drop dead tentative tracks and lost tracks past max_age_s
        self._tracks = [t for t in self._tracks if id(t) not in dead
                        and not (t.state is TrackState.LOST and ts - t.last_seen > cfg.max_age_s)]

        ids = np.array([t.track_id if t is not None and t.is_confirmed else UNTRACKED for t in det_track], np.int64)
        keep = ids >= 0
        if cfg.keep_unconfirmed:
            keep |= scores >= cfg.high_thresh
        keep = np.flatnonzero(keep)
        out = faces.select(keep)
        meta = {k: (v[keep] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == n else v)
                for k, v in out.meta.items()}
        meta["track_jump"] = (self._pred_iou[keep] < cfg.jump_iou) | (self._ncc[keep] < cfg.jump_ncc) | cut
        return out.replace(track_ids=ids[keep], meta=meta)

    def split(self, track_id: int) -> int:
        """End confirmed track ``track_id`` and start a new confirmed track, with a new id, on its
        latest detection: the face is someone else now (a shot cut, a swap; the identity layer
        decides, :meth:`engine.track.IdentityBook.contradicts`). The motion model restarts from
        that box (the old face's velocity says nothing about the new one); the state (tracked /
        lost) and ``last_seen`` carry over. Returns the new id; KeyError for an unknown id."""
        i = next((k for k, t in enumerate(self._tracks) if t.is_confirmed and t.track_id == int(track_id)), None)
        if i is None:
            raise KeyError(f"tracker has no confirmed track {track_id}")
        old = self._tracks[i]
        mean, cov = self.kf.initiate(xyxy_to_xyah(old.det_box[None].astype(np.float64)))
        kps = None if old.keypoints is None else old.keypoints.copy()
        new = Track(mean[0], cov[0], old.det_box.copy(), old.score, kps, old.last_seen)
        new.thumb = old.thumb
        self._confirm(new)
        new.state = old.state
        self._tracks[i] = new
        return new.track_id

    def predict_only(self, timestamp: float) -> Faces:
        """A frame without detections (the detector was skipped, ``engine.track.gating``):
        :meth:`advance` to ``timestamp``, then :meth:`shown`."""
        self.advance(timestamp)
        return self.shown()

    def advance(self, timestamp: float) -> None:
        """Predict every track to ``timestamp`` without detections. States, hits and
        ``last_seen`` do not change (lost tracks past ``max_age_s`` are dropped as in
        :meth:`update`); ``timestamp`` must not decrease."""
        cfg = self.config
        ts = float(timestamp)
        check(math.isfinite(ts), f"tracker timestamp must be finite, got {timestamp}")
        if self._last_ts is not None:
            check(ts >= self._last_ts, f"tracker timestamps must not decrease ({ts} after {self._last_ts})")
        self._predict(1.0 if self._last_ts is None else (ts - self._last_ts) / cfg.frame_dt)
        self._last_ts = ts
        self._tracks = [t for t in self._tracks
                        if not (t.state is TrackState.LOST and ts - t.last_seen > cfg.max_age_s)]

    def correct_positions(self, track_ids, centres: np.ndarray) -> None:
        """Move the Kalman states of ``track_ids`` (tracked, confirmed) towards measured box
        centres ((N, 2) px: a face followed between detections, ``engine.track.refine``). Not a
        detection: hits, ``last_seen``, states and the last detected box stay."""
        by_id = {t.track_id: t for t in self._tracks if t.is_confirmed}
        tracks = [by_id[int(i)] for i in track_ids]
        if not tracks:
            return
        means, covs = self.kf.update_position(np.stack([t.mean for t in tracks]),
                                              np.stack([t.covariance for t in tracks]), centres)
        for t, m, c in zip(tracks, means, covs, strict=True):
            t.mean, t.covariance = m, c

    def shown(self) -> Faces:
        """The TRACKED tracks at their Kalman boxes now, with their ids, last detection scores and
        last keypoints moved with the box (what a skipped frame shows)."""
        shown = [t for t in self._tracks if t.state is TrackState.TRACKED]
        boxes = np.array([t.box for t in shown], np.float32).reshape(-1, 4)
        kps = None
        if shown and all(t.keypoints is not None for t in shown):
            det = np.stack([t.det_box for t in shown]).astype(np.float64)
            scale = (boxes[:, 2:] - boxes[:, :2]) / np.maximum(det[:, 2:] - det[:, :2], 1e-6)
            kps = (np.stack([t.keypoints for t in shown]) - det[:, None, :2]) * scale[:, None] + boxes[:, None, :2]
        return Faces(boxes, np.array([t.score for t in shown], np.float32), keypoints=kps,
                     track_ids=np.array([t.track_id for t in shown], np.int64))

    # -- internals ------------------------------------------------------------------------------

    def _predict(self, dt: float) -> None:
        if not self._tracks:
            return
        means = np.stack([t.mean for t in self._tracks])
        covs = np.stack([t.covariance for t in self._tracks])
        lost = np.array([t.state is TrackState.LOST for t in self._tracks])
        means[lost, 7] = 0.0  # a lost face keeps moving but stops changing size (ByteTrack)
        means, covs = self.kf.predict(means, covs, dt)
        for t, m, c in zip(self._tracks, means, covs, strict=True):
            t.mean, t.covariance = m, c

    def _associate(self, tracks: list[Track], det_boxes: np.ndarray, det_scores: np.ndarray | None,
                   min_iou: float, buffer: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not tracks or len(det_boxes) == 0:
            return np.zeros((0, 2), np.int64), np.arange(len(tracks)), np.arange(len(det_boxes))
        track_boxes = xyah_to_xyxy(np.stack([t.mean for t in tracks]))
        if buffer > 0:
            track_boxes, det_boxes = _enlarge(track_boxes, buffer), _enlarge(det_boxes, buffer)
        sim = iou_matrix(track_boxes, det_boxes)
        if det_scores is not None:
            sim = sim * np.asarray(det_scores, np.float64)[None, :]
        return linear_assignment(1.0 - sim, 1.0 - min_iou)

    def _hit(self, tracks: list[Track], dets: np.ndarray, faces: Faces, ts: float,
             det_track: list[Track | None]) -> None:
        if not tracks:
            return
        means = np.stack([t.mean for t in tracks])
        covs = np.stack([t.covariance for t in tracks])
        pred, got = xyah_to_xyxy(means), faces.boxes[dets].astype(np.float64)
        lo, hi = np.maximum(pred[:, :2], got[:, :2]), np.minimum(pred[:, 2:], got[:, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        union = np.prod(pred[:, 2:] - pred[:, :2], axis=1) + np.prod(got[:, 2:] - got[:, :2], axis=1) - inter
        self._pred_iou[dets] = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        means, covs = self.kf.update(means, covs, xyxy_to_xyah(faces.boxes[dets]))
        for t, d, m, c in zip(tracks, dets, means, covs, strict=True):
            t.mean, t.covariance = m, c
            t.det_box = faces.boxes[d].copy()
            t.score = float(faces.scores[d])
            t.keypoints = None if faces.keypoints is None else faces.keypoints[d].copy()
            t.hits += 1
            t.last_seen = ts
            if self._thumbs is not None:
                big = faces.boxes[d, 3] - faces.boxes[d, 1] >= self.config.jump_ncc_min_px
                if big and t.thumb is not None and self._thumbs[d].any() and t.thumb.any():
                    self._ncc[d] = float(self._thumbs[d] @ t.thumb)
                t.thumb = self._thumbs[d]
            if t.state is TrackState.TENTATIVE:
                if t.hits >= self.config.min_hits:
                    self._confirm(t)
            else:
                t.state = TrackState.TRACKED
            det_track[d] = t

    def _confirm(self, track: Track) -> None:
        track.state = TrackState.TRACKED
        track.track_id = self._next_id
        self._next_id += 1
