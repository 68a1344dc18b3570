"""The real-time pipeline's settings: tracking, identity, re-embedding, gating (the detector and
embedder live in the Recognizer's config), and the recognizer preset that goes with them."""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.config import RecognizerConfig
from engine.track import IdentityConfig, PolicyConfig, TrackerConfig
from engine.track.gating import GateConfig


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
    # The detector runs only on frames where something may have changed (motion outside the
    # tracked faces, a face that could not be followed, or at least every 0.4 s); GateConfig(mode=
    # "every-frame") detects on every frame as before (engine.track.gating, engine.track.refine).
    gate: GateConfig = field(default_factory=GateConfig)


def realtime_config(pipeline: PipelineConfig | None = None, **parts) -> RecognizerConfig:
    """``RecognizerConfig.realtime`` with the detector threshold this pipeline's tracker needs
    (its ``low_thresh``); ``parts`` replace sub-configs as in the preset."""
    return RecognizerConfig.realtime((pipeline or PipelineConfig()).tracker.low_thresh, **parts)
