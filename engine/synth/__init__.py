"""Synthetic test clips: real LFW faces moving, scaling and crossing, with per-frame truth.

``make_clip(out.avi, lfw_dir, faces=6, frames=300, ...) -> ClipInfo`` writes the video and
``out.avi.json``; ``load_truth`` reads it back and ``match_truth`` maps detections to truth ids.
Test and benchmark tooling only: it needs the LFW images (``../shared``) and ships no data.
"""
from engine.synth.clip import ClipInfo, make_clip
from engine.synth.truth import load_truth, match_truth

__all__ = ["ClipInfo", "load_truth", "make_clip", "match_truth"]
