"""Typed records that cross stage boundaries.

``Faces`` holds N faces of one frame as parallel numpy arrays. Stages never mutate a
``Faces``; they return a new one via :meth:`Faces.replace`, which re-validates shapes.
Coordinates are pixels of the source frame (x right, y down); boxes are ``x1, y1, x2, y2``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

NO_ID = -1  # the one "no person" id: a face that matched nobody, or was not matched yet
UNKNOWN = NO_ID  # older name of NO_ID

# How sure a face's identity is (``Faces.status``; the rule is engine.gallery.index.decide):
STATUS_UNKNOWN = 0    # no name: below the "unknown" threshold, refused by negatives, or not matched
STATUS_PROBABLE = 1   # a name between the two thresholds, or a near tie with the second person ("Name?")
STATUS_CONFIRMED = 2  # a name above the "confirmed" threshold, clear of the second person
STATUS_NAMES = ("unknown", "probable", "confirmed")


def _as(a: Any, dtype: Any, shape_tail: tuple[int, ...], name: str, n: int | None) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=dtype)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise ValueError(f"Faces.{name}: expected shape (N, {', '.join(map(str, shape_tail)) or ''}), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"Faces.{name}: has {arr.shape[0]} rows, boxes have {n}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Faces:
    """Faces of one frame, as parallel arrays; shapes (N faces, K keypoints, D embedding size).

    boxes (N,4) float32 xyxy px · scores (N,) float32 in [0,1] · keypoints (N,K,2) float32 px
    or None · track_ids (N,) int64 (-1 = untracked) · embeddings (N,D) float32 L2-normalised
    or None · identities (N,) int64 person id (-1 = unknown) · names tuple of N str|None ·
    similarities (N,) float32 cosine of the best gallery match (NaN = not matched) ·
    landmarks (N,L,2) float32 px (68 iBUG points) or None · poses (N,3) float32 degrees
    (yaw, pitch, roll; see ``engine.landmarks.pose``) or None · sharpness (N,) float32 in
    [0,1] (1 = sharp) or None · status (N,) int8 ``STATUS_*`` or None: how sure each identity
    is (unknown where identities is -1, probable or confirmed where it is a person); None = not
    graded (a named face counts as confirmed, see :attr:`states`). Replacing ``identities``
    without a new ``status`` drops it to None, so a status never describes other identities.
    Arrays are made read-only so that a stage cannot change another stage's input.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    identities: np.ndarray | None = None
    names: tuple[str | None, ...] | None = None
    similarities: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    poses: np.ndarray | None = None
    sharpness: np.ndarray | None = None
    status: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4) if np.size(self.boxes) == 0 else self.boxes
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("boxes", _as(boxes, np.float32, (4,), "boxes", None))
        n = len(self.boxes)
        if not np.all(np.isfinite(self.boxes)):
            raise ValueError("Faces.boxes: contains NaN or inf")
        set_("scores", _as(self.scores, np.float32, (), "scores", n))
        if self.keypoints is not None:
            kps = np.asarray(self.keypoints, dtype=np.float32)
            if kps.ndim != 3 or kps.shape[0] != n or kps.shape[2] != 2:
                raise ValueError(f"Faces.keypoints: expected shape ({n}, K, 2), got {kps.shape}")
            set_("keypoints", _as(kps, np.float32, kps.shape[1:], "keypoints", n))
        tids = np.full(n, -1) if self.track_ids is None else self.track_ids
        set_("track_ids", _as(tids, np.int64, (), "track_ids", n))
        if self.embeddings is not None:
            emb = np.asarray(self.embeddings, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise ValueError(f"Faces.embeddings: expected shape ({n}, D), got {emb.shape}")
            set_("embeddings", _as(emb, np.float32, emb.shape[1:], "embeddings", n))
        ids = np.full(n, UNKNOWN) if self.identities is None else self.identities
        set_("identities", _as(ids, np.int64, (), "identities", n))
        names = (None,) * n if self.names is None else tuple(self.names)
        if len(names) != n:
            raise ValueError(f"Faces.names: has {len(names)} entries, boxes have {n}")
        set_("names", names)
        sims = np.full(n, np.nan) if self.similarities is None else self.similarities
        set_("similarities", _as(sims, np.float32, (), "similarities", n))

        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float32)
            if lm.ndim != 3 or lm.shape[0] != n or lm.shape[2] != 2:
                raise ValueError(f"Faces.landmarks: expected shape ({n}, L, 2), got {lm.shape}")
            set_("landmarks", _as(lm, np.float32, lm.shape[1:], "landmarks", n))
        if self.poses is not None:
            set_("poses", _as(self.poses, np.float32, (3,), "poses", n))
        if self.sharpness is not None:
            set_("sharpness", _as(self.sharpness, np.float32, (), "sharpness", n))
        if self.status is not None:
            st = _as(self.status, np.int8, (), "status", n)
            if not np.isin(st, (STATUS_UNKNOWN, STATUS_PROBABLE, STATUS_CONFIRMED)).all():
                raise ValueError(f"Faces.status: values must be STATUS_* codes 0/1/2, got {np.unique(st).tolist()}")
            if ((st == STATUS_UNKNOWN) != (self.identities == NO_ID)).any():
                raise ValueError("Faces.status: must be unknown exactly where identities is -1")
            set_("status", st)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, keypoints: int = 0) -> Faces:
        kps = np.zeros((0, keypoints, 2), np.float32) if keypoints else None
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), kps)

    def replace(self, **changes: Any) -> Faces:
        """A validated copy with some fields changed (new ``identities`` without a new ``status``
        drop the status: it graded the old identities)."""
        if "identities" in changes and "status" not in changes:
            changes["status"] = None
        return replace(self, **changes)

    @property
    def states(self) -> np.ndarray:
        """(N,) int8 ``STATUS_*`` of every face: ``status``, or where it is None, confirmed for a
        named face (identity >= 0) and unknown otherwise (faces matched by a one-threshold rule)."""
        if self.status is not None:
            return self.status
        return np.where(self.identities >= 0, STATUS_CONFIRMED, STATUS_UNKNOWN).astype(np.int8)

    def select(self, index: Any) -> Faces:
        """Faces at ``index`` (int array, slice or boolean mask), all fields kept parallel."""
        idx = np.arange(len(self))[index].reshape(-1)
        kw = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "meta":
                kw["meta"] = dict(value)
            elif f.name == "names":
                kw["names"] = tuple(value[i] for i in idx)
            elif value is not None:
                kw[f.name] = value[idx]
            else:
                kw[f.name] = None
        return Faces(**kw)

    @property
    def areas(self) -> np.ndarray:
        wh = np.clip(self.boxes[:, 2:] - self.boxes[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def largest(self) -> int:
        """Index of the largest face; ValueError when there is none."""
        if len(self) == 0:
            raise ValueError("no faces")
        return int(np.argmax(self.areas))
