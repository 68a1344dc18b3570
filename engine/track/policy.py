"""Re-embedding policy: which tracked faces need an embedding on this frame.

Embedding is the expensive stage, and a face that stays in view does not change identity, so
a track is embedded when it is *new* (never embedded), when its face got clearly *better*
(quality up by ``quality_gain`` over the best embedding so far), when its identity is still
*undecided* and ``undecided_refresh_s`` has passed (names appear within a few hundred ms, and a
contested name is resolved fast), or every ``refresh_s`` seconds otherwise -- every
``alone_refresh_s`` seconds for a named face of good quality with no other face near it (no
other box within ``near`` of the larger box's size). Two tracks swap people only where faces
pass close to each other, and a face that changes at once (a cut, someone stepping into the
place of someone else) is flagged as a jump below, so such a face is re-checked less often:
on the synthetic 7-face clips that cuts the re-embeddings (each ~22 ms of CPU for SFace) by a
third to a half (0.13 -> 0.07 a frame on `--seed 1`, 0.15 -> 0.09 on the meet/swap/cross clip)
with the same accuracy and wrong names; a settled "unknown" and a small or poor face (the
1080p clip's 32-48 px faces: 3.9 points of accuracy lost without that condition) keep
``refresh_s``. At most
``max_per_frame`` faces are chosen -- new tracks first, then undecided ones, then those
embedded longest ago -- so the cost of a frame grows with the faces that appear, not with all
faces in view; whatever is cut waits for the next frame. A face whose box *jumped* off its
track's prediction (``faces.meta["track_jump"]``, set by the tracker: a shot cut, two faces
swapping) counts as new: it may be another person, and the sooner it is embedded, the fewer
frames show the old name on it (the identity layer then splits the track).

:func:`face_quality` is the quality used for both the gain test and the identity vote weights.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.records import Faces
from engine.util.check import check


@dataclass(frozen=True)
class PolicyConfig:
    """Re-embedding settings.

    ``refresh_s``: re-embed a decided track after this many seconds; ``named_refresh_s``: the
    same for a decided track with a name (None = ``refresh_s``; a settled "unknown" keeps
    ``refresh_s``: a better look may name it); ``alone_refresh_s``: the
    same for a named decided track of quality >= ``alone_quality`` with no other face ``near``
    (a fraction of the larger box's size between the boxes' edges, on each side); never less
    than ``refresh_s``. ``undecided_refresh_s``:
    the same for tracks whose identity is undecided (new, contested, not yet named).
    ``quality_gain``: re-embed at once when quality rose this much above the best embedded.
    ``max_per_frame``: embeddings per frame at most (None = no cap). ``min_quality``: faces
    below it are never embedded (they would only add noise votes). ``new_always``: tracks
    never embedded are embedded at once even beyond ``max_per_frame`` (names appear on the
    first frame; the price is one slower frame when many faces appear together); the cap then
    only spreads re-embeddings, which use what budget the new tracks left.
    """

    refresh_s: float = 2.0
    named_refresh_s: float | None = None
    alone_refresh_s: float = 5.0
    near: float = 0.5
    alone_quality: float = 0.6
    undecided_refresh_s: float = 0.25
    quality_gain: float = 0.15
    max_per_frame: int | None = 4
    min_quality: float = 0.0
    new_always: bool = True

    def __post_init__(self) -> None:
        for key in ("refresh_s", "alone_refresh_s", "undecided_refresh_s", "near"):
            value = getattr(self, key)
            check(math.isfinite(value) and value >= 0, f"policy {key} must be finite and >= 0, got {value}")
        check(self.named_refresh_s is None or (math.isfinite(self.named_refresh_s) and self.named_refresh_s >= 0),
              f"policy named_refresh_s must be finite and >= 0 or None, got {self.named_refresh_s}")
        check(0.0 < self.quality_gain <= 1.0, f"policy quality_gain must be in (0, 1], got {self.quality_gain}")
        check(self.max_per_frame is None or self.max_per_frame >= 1,
               f"policy max_per_frame must be >= 1 or None, got {self.max_per_frame}")
        check(0.0 <= self.alone_quality <= 1.0, f"policy alone_quality must be in [0, 1], got {self.alone_quality}")
        check(0.0 <= self.min_quality <= 1.0, f"policy min_quality must be in [0, 1], got {self.min_quality}")


@dataclass
class _Embedded:
    last: float       # timestamp of the latest embedding
    best: float       # best quality embedded so far
    count: int = 1


NEW, UNDECIDED, OTHER = 0, 1, 2  # selection priority classes


class EmbedPolicy:
    """Per-track embedding bookkeeping; ``select`` then ``mark_embedded`` once per frame."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self._state: dict[int, _Embedded] = {}

    def select(self, faces: Faces, qualities: np.ndarray, timestamp: float,
               decided: np.ndarray | None = None, named: np.ndarray | None = None) -> np.ndarray:
        """(N,) bool mask of the faces to embed now.

        ``faces``: one frame's faces with track ids (untracked faces, id -1, are never chosen).
        ``qualities``: (N,) in [0, 1] (see :func:`face_quality`). ``decided``: (N,) bool, True
        where the track's identity is settled (``IdentityBook.decided(faces.track_ids)``);
        None takes ``faces.identities >= 0`` (named = decided, so unknown faces are re-embedded
        at the undecided rate). ``named``: (N,) bool, the track carries a person's name
        (``IdentityBook.named(faces.track_ids)``; None takes ``faces.identities >= 0``): only a
        named face alone waits ``alone_refresh_s`` (a settled "unknown" keeps ``refresh_s``: a
        better look may name it).
        """
        cfg = self.config
        n = len(faces)
        q = np.asarray(qualities, np.float64).reshape(-1)
        check(len(q) == n, f"policy: {len(q)} qualities for {n} faces")
        decided = (faces.identities >= 0) if decided is None else np.asarray(decided, bool).reshape(-1)
        check(len(decided) == n, f"policy: {len(decided)} decided flags for {n} faces")
        ts = float(timestamp)
        tids = faces.track_ids
        jump = faces.meta.get("track_jump") if faces.meta else None
        jump = np.zeros(n, bool) if jump is None or len(jump) != n else np.asarray(jump, bool)
        klass = np.full(n, -1)
        last = np.full(n, -np.inf)
        alone_s = max(cfg.alone_refresh_s, cfg.refresh_s)  # a longer refresh_s set by the user wins
        named_s = cfg.refresh_s if cfg.named_refresh_s is None else cfg.named_refresh_s
        alone = self._alone(faces.boxes) if alone_s != cfg.refresh_s else np.zeros(n, bool)
        named = (faces.identities >= 0) if named is None else np.asarray(named, bool).reshape(-1)
        check(len(named) == n, f"policy: {len(named)} named flags for {n} faces")
        seen: set[int] = set()
        for k in range(n):
            t = int(tids[k])
            if t < 0 or t in seen or not q[k] >= cfg.min_quality:
                continue
            seen.add(t)
            state = self._state.get(t)
            if state is None or jump[k]:
                klass[k] = NEW
                continue
            last[k] = state.last
            age = ts - state.last
            period = cfg.undecided_refresh_s if not decided[k] else (
                alone_s if alone[k] and named[k] and q[k] >= cfg.alone_quality else
                named_s if named[k] else cfg.refresh_s)
            due = age >= period
            if due or q[k] >= state.best + cfg.quality_gain - 1e-9:
                klass[k] = OTHER if decided[k] else UNDECIDED
        cand = np.flatnonzero(klass >= 0)
        if cfg.new_always and cfg.max_per_frame is not None:
            new = cand[klass[cand] == NEW]
            rest = cand[klass[cand] != NEW]
            budget = max(0, cfg.max_per_frame - len(new))
            if len(rest) > budget:
                order = np.lexsort((rest, last[rest], klass[rest]))
                rest = rest[order[:budget]]
            cand = np.concatenate([new, rest])
        elif cfg.max_per_frame is not None and len(cand) > cfg.max_per_frame:
            # new first (better quality first), then undecided, then oldest embedding; index breaks ties
            order = np.lexsort((cand, np.where(klass[cand] == NEW, -q[cand], 0.0), last[cand], klass[cand]))
            cand = cand[order[:cfg.max_per_frame]]
        mask = np.zeros(n, bool)
        mask[cand] = True
        return mask

    def _alone(self, boxes: np.ndarray) -> np.ndarray:
        """(N,) bool: no other box within ``near`` x the larger of the two boxes' sizes (gap
        between edges, x and y both)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        n = len(b)
        if n < 2:
            return np.ones(n, bool)
        size = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        reach = self.config.near * np.maximum(size[:, None], size[None, :])
        gap_x = np.maximum(b[None, :, 0] - b[:, None, 2], b[:, None, 0] - b[None, :, 2])
        gap_y = np.maximum(b[None, :, 1] - b[:, None, 3], b[:, None, 1] - b[None, :, 3])
        near = (gap_x < reach) & (gap_y < reach)
        np.fill_diagonal(near, False)
        return ~near.any(axis=1)

    def mark_embedded(self, track_ids: Iterable[int], qualities: Iterable[float], timestamp: float) -> None:
        """Record that these tracks were embedded at ``timestamp`` with these qualities."""
        ts = float(timestamp)
        for t, q in zip(np.asarray(track_ids).reshape(-1), np.asarray(qualities, np.float64).reshape(-1), strict=True):
            t = int(t)
            if t < 0:
                continue
            state = self._state.get(t)
            if state is None:
                self._state[t] = _Embedded(ts, float(q))
            else:
                state.last, state.best, state.count = ts, max(state.best, float(q)), state.count + 1

    def embedded(self, track_id: int) -> tuple[float, float, int] | None:
        """``(last timestamp, best quality, count)`` of a track's embeddings, None if never."""
        s = self._state.get(int(track_id))
        return None if s is None else (s.last, s.best, s.count)

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop removed tracks."""
        for t in track_ids:
            self._state.pop(int(t), None)

    def reset(self) -> None:
        self._state.clear()


def face_quality(faces: Faces, frame_shape: tuple[int, ...], *, min_size: float = 16.0,
                 good_size: float = 80.0, yaw_ok: float = 30.0, yaw_max: float = 60.0,
                 pitch_ok: float = 20.0, pitch_max: float = 45.0) -> np.ndarray:
    """(N,) float32 in [0, 1]: how good each face is for recognition.

    The product of

    * the detector score (clipped to [0, 1]);
    * size: the box's shorter side, 0 at ``min_size`` px, 1 from ``good_size`` px up, log-linear
      between (the embedder works on 112 px crops; small faces lose identity detail first);
    * border: the fraction of the box inside the frame (a face cut by the border aligns badly);
    * pose, when ``faces.poses`` is set (68-point landmarks): 1 up to ``yaw_ok`` degrees of
      yaw, falling linearly to 0 at ``yaw_max`` (a profile gives a poor embedding), and the
      same for pitch with ``pitch_ok``/``pitch_max``;
    * sharpness, when ``faces.sharpness`` is set: ``0.5 + 0.5 * sharpness`` (motion blur costs
      up to half the weight rather than all of it: a blurred frontal face still votes).

    ``frame_shape``: ``(H, W)`` or ``image.shape``. Without landmarks a profile or a blurred
    face is judged by its detector score only.
    """
    n = len(faces)
    if n == 0:
        return np.zeros(0, np.float32)
    check(len(frame_shape) >= 2 and frame_shape[0] > 0 and frame_shape[1] > 0,
           f"face_quality: bad frame shape {frame_shape}")
    check(0 < min_size < good_size, f"face_quality: need 0 < min_size < good_size, got {min_size}, {good_size}")
    h, w = float(frame_shape[0]), float(frame_shape[1])
    b = faces.boxes.astype(np.float64)
    bw = np.clip(b[:, 2] - b[:, 0], 0, None)
    bh = np.clip(b[:, 3] - b[:, 1], 0, None)
    score = np.clip(faces.scores.astype(np.float64), 0.0, 1.0)
    side = np.minimum(bw, bh)
    size = np.clip(np.log(np.maximum(side, 1e-6) / min_size) / math.log(good_size / min_size), 0.0, 1.0)
    iw = np.clip(np.minimum(b[:, 2], w) - np.maximum(b[:, 0], 0.0), 0, None)
    ih = np.clip(np.minimum(b[:, 3], h) - np.maximum(b[:, 1], 0.0), 0, None)
    area = bw * bh
    inside = np.divide(iw * ih, area, out=np.zeros_like(area), where=area > 0)
    q = score * size * np.clip(inside, 0.0, 1.0)
    if faces.poses is not None:
        yaw, pitch = np.abs(faces.poses[:, 0].astype(np.float64)), np.abs(faces.poses[:, 1].astype(np.float64))
        pose = (np.clip((yaw_max - yaw) / (yaw_max - yaw_ok), 0, 1)
                * np.clip((pitch_max - pitch) / (pitch_max - pitch_ok), 0, 1))
        q = q * np.where(np.isfinite(pose), pose, 1.0)
    if faces.sharpness is not None:
        q = q * (0.5 + 0.5 * np.clip(faces.sharpness.astype(np.float64), 0, 1))
    return q.astype(np.float32)
