"""What the tracker (:mod:`engine.track.bytetrack`) is made of: its settings, one track's state,
and the minimum-cost assignment of tracks to detections.

Assignment uses ``scipy.optimize.linear_sum_assignment`` (why not ``lap`` or ``supervision``:
see :mod:`engine.track.bytetrack`); costs above the gate are capped at the gate before solving,
so a pair above the gate is never better than leaving both unmatched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy.optimize import linear_sum_assignment

from engine.track.kalman import MIN_H
from engine.util.check import check

UNTRACKED = -1


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings (defaults: ByteTrack's, adapted to YuNet face scores).

    ``high_thresh``: detections at or above it take part in the first association;
    ``low_thresh``: detections in [low, high) only extend existing tracks (second stage);
    below it they are ignored. YuNet's card threshold is 0.6, so the second stage only sees
    detections when the detector's ``score_threshold`` is lowered to ``low_thresh``.
    ``new_track_thresh``: minimum score to start a track (ByteTrack: high + 0.1).
    ``match_iou`` / ``low_match_iou`` / ``tentative_match_iou``: minimum IoU for the first,
    second and tentative-track associations (ByteTrack: 0.2, 0.5, 0.3). With ``fuse_score``
    the first and tentative stages gate ``IoU * detection score`` instead of the IoU, as
    ByteTrack does outside MOT20; off by default because a face coming out of an occlusion
    is detected with a low score exactly when its IoU with the prediction is marginal
    (measured on the synthetic clips: a half-hidden face at score 0.67, IoU 0.26).
    ``lost_buffer``: box growth per side (x width/height) for re-matching lost tracks to
    leftover high-score detections (0 = off, plain ByteTrack).
    ``min_hits``: matched frames before a track is confirmed and gets an id (1 = at once).
    ``max_age_s``: seconds a lost track is kept (and predicted) after it was last seen.
    ``frame_dt``: nominal frame interval in seconds; the motion model steps in units of it
    (velocities are per nominal frame, noise grows with the real interval).
    ``keep_unconfirmed``: also return high-score detections that belong to no confirmed track
    (tentative, or too weak to start one) with track id -1; off, only confirmed tracks'
    detections are returned, as ByteTrack outputs only activated tracks.
    ``jump_iou``: a detection matched to a track with an IoU to the track's prediction below this
    is flagged ``meta["track_jump"]`` (True): the box jumped, as at a shot cut or when two faces
    swap; it may be another person, and the embedding policy embeds it at once so that the
    identity layer can split the track (:meth:`Tracker.split`). Frame to frame at 25 fps a
    tracked face's IoU with its prediction is ~0.8-0.95 (0 = never flag). ``jump_ncc``: the same
    flag when the frame is given to :meth:`Tracker.update` and the face's appearance signature
    (:mod:`engine.track.appearance`) correlates less than this with the track's on its previous
    matched frame -- a cut where the new face sits where the old one was, two faces swapping
    (-1 = never flag); only for boxes at least ``jump_ncc_min_px`` high: on smaller faces the
    few pixels of detection jitter decorrelate the signature (measured on 32-48 px faces: 10 %
    of frame pairs of the same face below 0.75, against < 1 % on the demo clip's 70-350 px faces).
    ``cut_ncc``: with the image, a frame whose whole-frame signature correlates less than this
    with the previous frame's is a shot cut, and every face in it is flagged. Measured: 0.19-0.39
    at the cuts of the demo clip and of a synthetic clip, >= 0.989 between any other frames.
    """

    high_thresh: float = 0.6
    low_thresh: float = 0.3
    new_track_thresh: float = 0.7
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    tentative_match_iou: float = 0.3
    fuse_score: bool = False
    lost_buffer: float = 0.3
    min_hits: int = 2
    max_age_s: float = 1.0
    frame_dt: float = 1.0 / 30
    keep_unconfirmed: bool = False
    jump_iou: float = 0.5
    jump_ncc: float = 0.75
    jump_ncc_min_px: float = 64.0
    cut_ncc: float = 0.7

    def __post_init__(self) -> None:
        for key in ("high_thresh", "low_thresh", "new_track_thresh", "match_iou", "low_match_iou",
                    "tentative_match_iou", "lost_buffer", "jump_iou"):
            value = getattr(self, key)
            check(0.0 <= value <= 1.0, f"tracker {key} must be in [0, 1], got {value}")
        check(self.low_thresh <= self.high_thresh,
               f"tracker low_thresh ({self.low_thresh}) must be <= high_thresh ({self.high_thresh})")
        check(self.new_track_thresh >= self.high_thresh,
               f"tracker new_track_thresh ({self.new_track_thresh}) must be >= high_thresh ({self.high_thresh})")
        check(self.jump_ncc_min_px >= 0, f"tracker jump_ncc_min_px must be >= 0, got {self.jump_ncc_min_px}")
        for key in ("jump_ncc", "cut_ncc"):
            check(-1.0 <= getattr(self, key) <= 1.0, f"tracker {key} must be in [-1, 1], got {getattr(self, key)}")
        check(self.min_hits >= 1, f"tracker min_hits must be >= 1, got {self.min_hits}")
        check(math.isfinite(self.max_age_s) and self.max_age_s >= 0,
               f"tracker max_age_s must be finite and >= 0, got {self.max_age_s}")
        check(math.isfinite(self.frame_dt) and self.frame_dt > 0,
               f"tracker frame_dt must be finite and > 0, got {self.frame_dt}")


class TrackState(str, Enum):
    TENTATIVE = "tentative"  # born recently, not yet min_hits matches; id -1
    TRACKED = "tracked"      # confirmed and matched on the latest frame
    LOST = "lost"            # confirmed, missed since ``last_seen``; predicted until max_age_s


class Track:
    """One track. Read-only for callers (the tracker owns and mutates it).

    ``box``: the Kalman estimate (xyxy px) at the latest frame -- for a lost track, where the
    face is predicted to be. ``det_box``/``score``/``keypoints``: the last matched detection.
    ``hits``: matched frames; ``last_seen``: timestamp (s) of the last match.
    """

    __slots__ = ("track_id", "state", "mean", "covariance", "det_box", "score", "keypoints", "hits", "last_seen",
                 "thumb")

    def __init__(self, mean: np.ndarray, covariance: np.ndarray, det_box: np.ndarray, score: float,
                 keypoints: np.ndarray | None, timestamp: float) -> None:
        self.track_id = UNTRACKED
        self.state = TrackState.TENTATIVE
        self.mean, self.covariance = mean, covariance
        self.det_box, self.score, self.keypoints = det_box, score, keypoints
        self.hits = 1
        self.last_seen = timestamp
        self.thumb: np.ndarray | None = None  # appearance signature of the last matched detection

    @property
    def box(self) -> np.ndarray:
        # xyah_to_xyxy for one row, in plain floats: read several times per track and frame,
        # where the batched numpy version costs ~80 us a call in overhead alone
        cx, cy, a, h = self.mean[:4].tolist()
        h = max(h, MIN_H)
        w = max(a, 0.0) * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)

    @property
    def is_confirmed(self) -> bool:
        return self.state is not TrackState.TENTATIVE

    def __repr__(self) -> str:
        x1, y1, x2, y2 = self.box
        return (f"Track(id={self.track_id}, {self.state.value}, box=({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}), "
                f"hits={self.hits}, last_seen={self.last_seen:.3f})")


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching keeping only pairs with ``cost <= max_cost``.

    Returns ``matches`` (K, 2) [row, col], ``unmatched_rows``, ``unmatched_cols`` (int arrays).
    """
    cost = np.asarray(cost, np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n), np.arange(m)
    capped = np.minimum(cost, max_cost + 1e-9)  # above the gate = as good as unmatched
    rows, cols = linear_sum_assignment(capped)
    ok = cost[rows, cols] <= max_cost
    matches = np.stack([rows[ok], cols[ok]], axis=1).astype(np.int64)
    return (matches, np.setdiff1d(np.arange(n), matches[:, 0]), np.setdiff1d(np.arange(m), matches[:, 1]))


def _enlarge(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """Boxes grown by ``buffer`` x their width/height on every side (C-BIoU's buffered box)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    pad = buffer * np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1) * np.array([-1, -1, 1, 1])
    return b + pad
