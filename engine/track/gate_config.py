"""The detector gate's settings (:class:`GateConfig`); the rules they tune are in
:mod:`engine.track.gating`, the following of faces between detections in :mod:`engine.track.refine`."""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.util.check import check

GATE_MODES = ("adaptive", "every-frame")
REASONS = ("every-frame", "first", "changed", "waiting", "uncertain", "periodic", "motion")


@dataclass(frozen=True)
class GateConfig:
    """When to run the detector (each rule: :mod:`engine.track.gating`).

    ``mode``: "adaptive" (default) or "every-frame". ``max_skip_frames``: frames in a row
    without detection, at most (0 = every frame). ``max_skip_s``: seconds since the last
    detection, at most. ``burst_frames``: frames detected after a detection that changed the
    tracks. ``min_iou``: predicted-vs-detected box IoU below which a track is poorly predicted.
    ``motion_height``: height (px) of the grey frame compared; ``motion_threshold``: grey-level
    change (1-255) that counts; ``motion_min_px``: changed pixels (at ``motion_height``)
    outside tracked regions that trigger a detection. ``margin_x`` / ``margin_up`` /
    ``margin_down``: a tracked face's region, in face widths/heights around its box.
    ``max_position_std``: a tracked face's expected centre error (measured, or the Kalman
    standard deviation), in box heights, above which the frame is detected (``inf`` = never).
    ``error_samples``: measured prediction errors a track needs before they replace its Kalman
    deviation (0 = never). ``follow``: on skipped frames, follow the tracked faces by template
    matching on the grey frame and correct their predictions (:mod:`engine.track.refine`); a
    face that cannot be found makes the next frame detected (reason ``uncertain``), one too small
    to follow is judged by its prediction as without following.
    """

    mode: str = "adaptive"
    max_skip_frames: int = 9
    max_skip_s: float = 0.4
    burst_frames: int = 2
    min_iou: float = 0.6
    motion_height: int = 144
    motion_threshold: int = 20
    motion_min_px: int = 6
    margin_x: float = 0.6
    margin_up: float = 0.4
    margin_down: float = 1.5
    max_position_std: float = 0.1
    error_samples: int = 2
    follow: bool = True

    def __post_init__(self) -> None:
        check(self.mode in GATE_MODES, f"gate mode must be one of {', '.join(GATE_MODES)}, got {self.mode!r}")
        for key in ("max_skip_frames", "burst_frames", "motion_height", "motion_threshold", "motion_min_px",
                    "error_samples"):
            value = getattr(self, key)
            check(isinstance(value, int) and not isinstance(value, bool), f"gate {key} must be an int, got {value!r}")
        check(self.max_skip_frames >= 0, f"gate max_skip_frames must be >= 0, got {self.max_skip_frames}")
        check(self.burst_frames >= 0, f"gate burst_frames must be >= 0, got {self.burst_frames}")
        check(self.error_samples >= 0, f"gate error_samples must be >= 0, got {self.error_samples}")
        check(isinstance(self.follow, bool), f"gate follow must be true or false, got {self.follow!r}")
        check(math.isfinite(self.max_skip_s) and self.max_skip_s >= 0,
              f"gate max_skip_s must be finite and >= 0, got {self.max_skip_s}")
        check(0.0 <= self.min_iou <= 1.0, f"gate min_iou must be in [0, 1], got {self.min_iou}")
        check(16 <= self.motion_height <= 1080, f"gate motion_height must be in [16, 1080], got {self.motion_height}")
        check(1 <= self.motion_threshold <= 255,
              f"gate motion_threshold must be in [1, 255], got {self.motion_threshold}")
        check(self.motion_min_px >= 1, f"gate motion_min_px must be >= 1, got {self.motion_min_px}")
        check(self.max_position_std > 0, f"gate max_position_std must be > 0, got {self.max_position_std}")
        for key in ("margin_x", "margin_up", "margin_down"):
            value = getattr(self, key)
            check(math.isfinite(value) and 0.0 <= value <= 10.0, f"gate {key} must be in [0, 10], got {value}")

    @property
    def gated(self) -> bool:
        return self.mode != "every-frame"
