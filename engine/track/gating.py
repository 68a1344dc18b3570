"""Detector gating: run the face detector only on frames where something may have changed.

The detector is the one stage that runs on every frame (YuNet at 640x384: ~10-15 ms on this
2-core CPU; embeddings already run only for new or stale tracks, see ``policy.py``). When every
face is tracked and moves as its Kalman filter predicts, and nothing moves elsewhere in the
picture, a detection tells the tracker nothing new: on such frames the tracker carries its
boxes forward from its predictions (:meth:`engine.track.Tracker.predict_only`) and the
detector is skipped.

:meth:`DetectorGate.decide` (once per frame, before the detector) says *detect* when any of:

* ``first``: no reference frame yet (start, new frame size, a file that looped);
* ``changed``: the previous detection changed the picture the tracker had: a track started,
  a tracked face was missed, or a track's predicted box fell below ``min_iou`` with the box
  detected (a poorly predicted track); then the next ``burst_frames`` frames are detected too;
* ``waiting``: a tracked face has never been embedded (only a detected frame is embedded, so
  its name would otherwise wait for a detection the other rules would skip);
* ``uncertain``: a tracked face's predicted centre may be off by more than ``max_position_std``
  of its box height on this frame. For a track with ``error_samples`` detections compared
  with their predictions, that is its *measured* prediction error: at each detection the
  distance between the predicted and the detected centre, in box heights per frame of
  prediction, kept as a slowly decaying maximum (x 0.8 per detection), times the frames
  since the last detection plus this one. A face that moves as predicted (or stands still)
  is carried to the periodic bound; one that wanders (small faces jittering a few pixels a
  frame, someone turning) is detected as often as it needs. A younger track is judged by its
  Kalman position uncertainty (standard deviation of its centre, the larger of x and y): its
  velocity is still unknown, and the filter's process noise (ByteTrack's, made for detections
  on every frame) grows the deviation from ~0.05 to ~0.11 heights in 2 frames, so it is
  carried 1-2 frames at most. Measured on the 1920x1080 clip with 32-48 px faces wandering up
  to ~4 px a frame: without this check (inf), carrying faces up to 4 frames lost some at the
  next detection (10 id switches in 300 frames against 0 with detection on every frame); with
  the Kalman rule for every track, 1. ``error_samples=0`` keeps the Kalman rule for all;
* ``periodic``: ``max_skip_frames`` frames in a row were skipped, or ``max_skip_s`` seconds
  of media/capture time passed since the last detection -- the bound on how late a face that
  entered without moving (or moved too little to see) is found; a quarter of both while a face
  is lost inside the picture (its track waits to be found again, up to the tracker's
  ``max_age_s``: a face coming back from behind another moves inside the other's region, where
  motion is not looked for; on the 60 s synthetic clips, half instead of a quarter left 9-18
  instead of 2-11 face-frames unboxed in 10,240, and every frame's ``uncertain`` rule before
  following 3-8);
* ``motion``: frame differencing finds change outside the tracked faces: the frame is shrunk
  to ``motion_height`` px high and turned grey (bilinear, ~0.4 ms for 1080p; Frigate's motion
  detector works the same way), blurred 3x3, and compared with the same picture at the last
  detection; pixels that changed by more than ``motion_threshold`` grey levels and lie outside
  every tracked face's *region* (its box grown by ``margin_x`` widths sideways, ``margin_up``
  heights up and ``margin_down`` heights down: heads move with their bodies) are counted, and
  ``motion_min_px`` of them trigger a detection. Comparing with the last *detected* frame
  rather than the previous frame accumulates slow motion (a face creeping in from the edge).

Otherwise the frame is skipped. ``mode="every-frame"`` detects on every frame (the behaviour
before gating, one setting away). Trade-offs: a skipped frame's boxes are predictions (up to
``max_skip_s`` old), and faces on skipped frames are not embedded (the re-embedding policy
waits for the next detected frame, which is at most ``max_skip_frames`` away); a camera that
pans or a scene with much background motion (a TV, trees) runs at full rate, which is the
right answer for the former and wasted for the latter (mask such areas with a region of
interest). Clocks are seconds, like the tracker's.
"""
from __future__ import annotations

import math
from collections import Counter

import cv2
import numpy as np

from engine.boxes import iou_matrix
from engine.track.bytetrack import Tracker, TrackState

# re-exported: callers import the settings from here
from engine.track.gate_config import GATE_MODES as GATE_MODES
from engine.track.gate_config import REASONS as REASONS
from engine.track.gate_config import GateConfig as GateConfig
from engine.track.kalman import xyah_to_xyxy


class DetectorGate:
    """Per-source detector gate; ``decide(image, clock, tracker)`` once per frame, in order.

    Reads the tracker (its tracks and Kalman filter), never changes it. ``counts``: frames per
    reason detected (``REASONS``) plus ``"skipped"``; ``last_reason``: the latest frame's.
    """

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()
        self.counts: Counter[str] = Counter()
        self.last_reason = ""
        self.reset()

    def reset(self) -> None:
        """Forget the reference frame and the pending check (a new source or scene)."""
        self._ref: np.ndarray | None = None           # (h, w) uint8 grey at the last detection
        self._shape: tuple[int, int] | None = None    # full frame (H, W) of the reference
        self._prev_clock: float | None = None
        self._last_detect: float | None = None
        self._skipped = 0
        self._burst = 0
        self._predicted: dict[int, np.ndarray] | None = None  # track id -> predicted xyxy at the last detection
        self._gap = 1  # frames of prediction behind self._predicted (skipped frames + 1)
        self._error: dict[int, tuple[float, int]] = {}  # track id -> (centre error per frame, in heights; samples)
        self._followed: set[int] = set()  # tracks followed on the last skipped frame (engine.track.refine)
        self._lost: set[int] = set()      # ... and those that could not be
        self.grey: np.ndarray | None = None  # the last frame's small grey picture (motion, following)

    def followed(self, followed, lost) -> None:
        """Which tracked faces were followed on this skipped frame and which could not be
        (:mod:`engine.track.refine`). A followed face's position was measured, so the
        ``uncertain`` rule does not extrapolate its prediction error; a lost one makes the
        next frame detected (reason ``uncertain``)."""
        self._followed, self._lost = {int(t) for t in followed}, {int(t) for t in lost}

    @property
    def detections(self) -> int:
        return sum(v for k, v in self.counts.items() if k != "skipped")

    def decide(self, image, clock: float, tracker: Tracker, waiting: bool = False) -> bool:
        """True: run the detector on this frame; False: carry the tracks by prediction.

        ``image``: (H, W, 3) uint8 BGR (or (H, W) grey), or a :class:`~engine.capture.Frame`,
        whose ``preview`` (an MJPEG frame's small grey picture, decoded without the full one) is
        used when it is at least ``motion_height`` high: the full picture is then never decoded
        here. One source gives the gate frames of one kind, so its pictures stay comparable;
        ``clock``: the frame's time in seconds
        (the tracker's); ``tracker``: the source's tracker, as left by the previous frame;
        ``waiting``: a tracked face still waits for its first embedding, which only a detected
        frame gives (reason ``waiting``: with one embedding a frame, 7 new faces are named on 7
        detected frames, not 7 detections spread over predicted ones).
        """
        cfg = self.config
        if not cfg.gated:
            return self._detect("every-frame", None, clock, tracker)
        clock = float(clock)
        if self._prev_clock is not None and clock < self._prev_clock:
            self.reset()  # a looping file restarted
        shape = _shape(image)
        grey = self.grey = self._small_grey(image, shape)
        reason = None
        if self._ref is None or self._shape != shape or self._last_detect is None:
            reason = "first"
        if reason is None and self._predicted is not None:
            if self._tracks_changed(tracker):
                self._burst = cfg.burst_frames
                reason = "changed"
            self._predicted = None
        if reason is None and self._burst > 0:
            self._burst -= 1
            reason = "changed"
        if reason is None and waiting:
            reason = "waiting"
        frames_bound, s_bound = cfg.max_skip_frames, cfg.max_skip_s
        if reason is None and self._hidden_face(tracker, shape):  # a face lost in the picture may be back
            frames_bound, s_bound = frames_bound // 4, s_bound / 4
        if reason is None and (self._skipped >= frames_bound or clock - self._last_detect >= s_bound - 1e-9):
            reason = "periodic"
        if reason is None and self._uncertain(tracker):
            reason = "uncertain"
        if reason is None and self._motion_outside(grey, shape, tracker):
            reason = "motion"
        self._shape = shape
        if reason is None:
            self._prev_clock = clock
            self._skipped += 1
            self.counts["skipped"] += 1
            self.last_reason = "skipped"
            return False
        return self._detect(reason, grey, clock, tracker)

    # -- internals ------------------------------------------------------------------------------

    def _detect(self, reason: str, grey: np.ndarray | None, clock: float, tracker: Tracker) -> bool:
        if grey is not None:
            self._predicted = self._predict(tracker, clock)
            self._gap = self._skipped + 1
            self._ref = grey
            self._last_detect = float(clock)
            self._prev_clock = float(clock)
            self._skipped = 0
        self.counts[reason] += 1
        self.last_reason = reason
        return True

    def _small_grey(self, image, shape: tuple[int, int] | None = None) -> np.ndarray:
        h, w = shape or _shape(image)
        sh = min(self.config.motion_height, h)
        sw = max(1, round(w * sh / h))
        preview = getattr(image, "preview", None)
        if preview is not None and preview.shape[0] >= sh:
            image = preview  # already shrunk by the JPEG decoder (an area average): one more small step
        elif not isinstance(image, np.ndarray):
            image = image.image
        # bilinear, not INTER_AREA: 0.4 ms vs ~15 ms for 1080p -> 256x144; the blur below
        # takes out the aliasing noise that point sampling leaves
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(small, (3, 3), 0)

    def _predict(self, tracker: Tracker, clock: float) -> dict[int, np.ndarray]:
        """Where the tracker's motion model puts each TRACKED face at ``clock`` (before the
        detection's update), to compare with what the detector finds."""
        tracks = [t for t in tracker.tracks if t.state is TrackState.TRACKED]
        if not tracks or self._prev_clock is None:
            return {}
        dt = max(0.0, (clock - self._prev_clock) / tracker.config.frame_dt)
        means = np.stack([t.mean for t in tracks])
        covs = np.stack([t.covariance for t in tracks])
        means, _ = tracker.kf.predict(means, covs, dt)
        boxes = xyah_to_xyxy(means)
        return {t.track_id: boxes[k] for k, t in enumerate(tracks)}

    def _tracks_changed(self, tracker: Tracker) -> bool:
        """After a detection: did it start, lose or badly correct a track?"""
        predicted = self._predicted or {}
        now = {t.track_id: t for t in tracker.tracks if t.is_confirmed}
        tracked = {tid for tid, t in now.items() if t.state is TrackState.TRACKED}
        self._measure(predicted, now, tracked)
        if tracked - set(predicted):
            return True   # a new face
        if set(predicted) - tracked:
            return True   # a tracked face was not found (turned away, hidden, left)
        if not predicted:
            return False
        ids = sorted(predicted)
        pred = np.stack([predicted[i] for i in ids])
        det = np.stack([now[i].det_box for i in ids])
        iou = np.diag(iou_matrix(pred, det)) if len(ids) else np.ones(0)
        return bool(np.any(iou < self.config.min_iou))

    def _measure(self, predicted: dict, now: dict, tracked: set) -> None:
        """Record each tracked face's prediction error of the last detection (see ``uncertain``)."""
        errors = {}
        for tid in tracked & set(predicted):
            p, d = predicted[tid], now[tid].det_box
            h = max(float(d[3] - d[1]), 1.0)
            off = math.hypot((p[0] + p[2] - d[0] - d[2]) / 2, (p[1] + p[3] - d[1] - d[3]) / 2) / h / self._gap
            old, n = self._error.get(tid, (0.0, 0))
            errors[tid] = (max(off, 0.8 * old), n + 1)
        self._error = errors  # tracks not seen at this detection start again

    @staticmethod
    def _hidden_face(tracker: Tracker, shape: tuple[int, int]) -> bool:
        """Is a lost track predicted inside the picture (hidden by another face, turned away),
        rather than gone past its edge (a face coming back in from there moves: ``motion``)?"""
        h, w = shape
        for t in tracker.tracks:
            if t.state is TrackState.LOST:
                x1, y1, x2, y2 = t.box
                if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
                    return True
        return False

    def _uncertain(self, tracker: Tracker) -> bool:
        """Is any tracked face's predicted centre too uncertain to carry it one more frame?"""
        limit = self.config.max_position_std
        if not math.isfinite(limit):
            return False
        need = self.config.error_samples
        followed, lost = self._followed, self._lost
        self._followed, self._lost = set(), set()
        for t in tracker.tracks:
            if t.state is TrackState.TRACKED:
                if t.track_id in lost:
                    return True
                if t.track_id in followed:
                    continue
                error, n = self._error.get(t.track_id, (0.0, 0))
                if need and n >= need:
                    if error * (self._skipped + 1) > limit:
                        return True
                    continue
                var = max(float(t.covariance[0, 0]), float(t.covariance[1, 1]))
                if math.sqrt(max(var, 0.0)) > limit * max(float(t.mean[3]), 1.0):
                    return True
        return False

    def _motion_outside(self, grey: np.ndarray, shape: tuple[int, int], tracker: Tracker) -> bool:
        cfg = self.config
        if self._ref is None or self._ref.shape != grey.shape:
            return True
        changed = cv2.absdiff(grey, self._ref) > cfg.motion_threshold
        if int(np.count_nonzero(changed)) < cfg.motion_min_px:
            return False
        sy, sx = grey.shape[0] / shape[0], grey.shape[1] / shape[1]
        for t in tracker.tracks:
            if not t.is_confirmed:
                continue
            for box in (t.box, t.det_box):  # where it is predicted now, and where it was seen
                x1, y1, x2, y2 = (float(v) for v in box)
                bw, bh = x2 - x1, y2 - y1
                c0 = max(0, int(math.floor((x1 - cfg.margin_x * bw) * sx)))
                c1 = max(0, int(math.ceil((x2 + cfg.margin_x * bw) * sx)))
                r0 = max(0, int(math.floor((y1 - cfg.margin_up * bh) * sy)))
                r1 = max(0, int(math.ceil((y2 + cfg.margin_down * bh) * sy)))
                changed[r0:r1, c0:c1] = False
        return int(np.count_nonzero(changed)) >= cfg.motion_min_px


def _shape(image) -> tuple[int, int]:
    """(H, W) of an array or a Frame (which says it without decoding its picture)."""
    shape = image.shape
    return (int(shape[0]), int(shape[1]))
