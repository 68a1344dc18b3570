"""Follow tracked faces on the frames the detector skips, by template matching on a small grey frame.

On a skipped frame (:mod:`engine.track.gating`) the tracker only has its Kalman predictions, and a
face that turns or changes speed drifts from them; the gate's ``uncertain`` and ``changed`` rules
then bring the detector back (on the synthetic clips, about half of its calls). This stage looks
for each tracked face where its box was at the last detection: the face's pixels in the gate's
grey frame (the frame shrunk to ``GateConfig.motion_height`` px, which the gate makes anyway) are
the template, searched with normalised cross-correlation (``cv2.matchTemplate``,
``TM_CCOEFF_NORMED``) in a window around the predicted box of the current grey frame; the best
match, refined to a fraction of a pixel by a parabola through its neighbours, is a measurement of
the face's centre that corrects the track's Kalman filter (position only: size and velocity stay
the filter's). About 0.1 ms of CPU a face in all (7 faces: ~0.6 ms a skipped frame, 0.24 ms of it
matching); a YuNet call costs ~9 ms.

The template always comes from the last *detection* (never from an earlier match), so errors do
not add up from frame to frame. A face whose best match scores under ``min_score`` (turned,
hidden) is not corrected and is reported lost: the gate detects the next frame
(:meth:`engine.track.gating.DetectorGate.followed`); so is a face whose predicted box overlaps
another's (two faces crossing: a template may lock onto the other face, swapping their tracks)
or leaves the frame (part of the face is gone). A face too small in the grey frame
(fewer than ``min_px`` rows: ~80 px at 720p with a 144-px grey frame), cut by the frame's edge or
flat (too dark to correlate) has no template and is neither: the gate's other rules judge its
prediction as before.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.boxes import overlapping
from engine.track.bytetrack import Tracker, TrackState
from engine.util.check import check


@dataclass(frozen=True)
class RefineConfig:
    """``min_px``: smallest template height (grey pixels) followed; ``min_score``: smallest NCC
    of a match trusted; ``search``: search margin around the predicted box, in template heights;
    ``max_jump``: farthest a match may put the face's centre from its predicted centre, in face
    heights (farther: not trusted; a face turning back at 8 px a frame is off its prediction by
    up to ~0.2 of its height, see tests/test_gating.py)."""

    min_px: int = 12
    min_score: float = 0.7
    search: float = 0.35
    max_jump: float = 0.3

    def __post_init__(self) -> None:
        check(isinstance(self.min_px, int) and self.min_px >= 4,
              f"refine min_px must be an int >= 4, got {self.min_px}")
        check(-1.0 <= self.min_score <= 1.0, f"refine min_score must be in [-1, 1], got {self.min_score}")
        check(0.05 <= self.search <= 2.0, f"refine search must be in [0.05, 2], got {self.search}")
        check(0.0 < self.max_jump <= 2.0, f"refine max_jump must be in (0, 2], got {self.max_jump}")


class TemplateRefiner:
    """Per-source: :meth:`remember` after each detected frame, :meth:`correct` on each skipped one."""

    def __init__(self, config: RefineConfig | None = None) -> None:
        self.config = config or RefineConfig()
        # id -> (patch, its top-left x0, y0 in grey px, the grey pixels it samples: 1 or 2)
        self._templates: dict[int, tuple[np.ndarray, float, float, int]] = {}

    def reset(self) -> None:
        self._templates = {}

    def remember(self, grey: np.ndarray, shape: tuple[int, int], tracker: Tracker) -> None:
        """Templates of the tracked faces detected on this frame. ``grey``: (h, w) uint8, this
        frame shrunk; ``shape``: the full frame's (H, W)."""
        sy, sx = grey.shape[0] / shape[0], grey.shape[1] / shape[1]
        out = {}
        for t in tracker.tracks:
            if t.state is not TrackState.TRACKED:
                continue
            x1, y1, x2, y2 = (float(v) for v in t.det_box)
            c0, r0 = int(round(x1 * sx)), int(round(y1 * sy))
            c1, r1 = int(round(x2 * sx)), int(round(y2 * sy))
            if r1 - r0 < self.config.min_px or c0 < 0 or r0 < 0 or c1 > grey.shape[1] or r1 > grey.shape[0]:
                continue  # too small to follow, or cut by the frame's edge
            # every other grey pixel of a face twice the smallest size: a quarter of the matching
            # work (0.55 -> ~0.2 ms a frame for 7 faces of 30-40 rows), still >= min_px / 2 rows
            step = 2 if r1 - r0 >= 2 * self.config.min_px else 1
            patch = grey[r0:r1:step, c0:c1:step].copy()
            if float(patch.std()) < 2.0:
                continue  # flat (a face in the dark): normalised correlation is undefined there
            out[t.track_id] = (patch, float(c0), float(r0), step)
        self._templates = out

    def correct(self, grey: np.ndarray, shape: tuple[int, int], tracker: Tracker) -> tuple[list[int], list[int]]:
        """Correct the tracked faces' predicted positions on this skipped frame (after
        ``tracker.advance``). Returns (ids of the tracked faces followed, ids of those whose
        template found no trusted match); faces without a template (too small, at the frame's
        edge) are in neither."""
        cfg = self.config
        sy, sx = grey.shape[0] / shape[0], grey.shape[1] / shape[1]
        ids, centres, lost = [], [], []
        tracked = [t for t in tracker.tracks if t.state is TrackState.TRACKED]
        boxes = [t.box for t in tracked]
        crossing = overlapping(boxes)
        for t, (x1, y1, x2, y2), close in zip(tracked, boxes, crossing, strict=True):
            tpl = self._templates.get(t.track_id)
            if tpl is None:
                continue  # too small or cut at the last detection: the gate's prediction rules judge it
            if close or x1 < 0 or y1 < 0 or x2 > shape[1] or y2 > shape[0]:
                # two faces crossing (a template may lock onto the other face), or a face leaving
                # the picture (part of it is gone): the detector decides
                lost.append(t.track_id)
                continue
            patch, x0, y0, step = tpl
            th, tw = patch.shape[0] * step, patch.shape[1] * step  # grey px
            det = t.det_box
            # where the template's top-left would be if the face moved as predicted
            px = x0 + (float(t.mean[0]) - (det[0] + det[2]) / 2) * sx
            py = y0 + (float(t.mean[1]) - (det[1] + det[3]) / 2) * sy
            m = max(2 * step, int(round(cfg.search * th)))
            c0, r0 = int(round(px)) - m, int(round(py)) - m
            c1, r1 = c0 + tw + 2 * m, r0 + th + 2 * m
            cc0, rr0, cc1, rr1 = max(c0, 0), max(r0, 0), min(c1, grey.shape[1]), min(r1, grey.shape[0])
            window = grey[rr0:rr1:step, cc0:cc1:step]
            if window.shape[0] < patch.shape[0] + 2 or window.shape[1] < patch.shape[1] + 2:
                lost.append(t.track_id)
                continue
            score = cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED)
            _, best, _, (bx, by) = cv2.minMaxLoc(score)
            if best < cfg.min_score:
                lost.append(t.track_id)
                continue
            fx, fy = (bx + _vertex(score[by], bx)) * step, (by + _vertex(score[:, bx], by)) * step
            dx, dy = cc0 + fx - x0, rr0 + fy - y0  # the face's shift since its detection, grey px
            cx, cy = (det[0] + det[2]) / 2 + dx / sx, (det[1] + det[3]) / 2 + dy / sy
            if max(abs(cx - t.mean[0]), abs(cy - t.mean[1])) > cfg.max_jump * max(float(t.mean[3]), 1.0):
                # far from where its motion put it: more likely something passing over the face
                # (the match slid with it) than the face jumping; the detector decides
                lost.append(t.track_id)
                continue
            ids.append(t.track_id)
            centres.append((cx, cy))
        if ids:
            tracker.correct_positions(ids, np.array(centres, np.float64))
        return ids, lost


def _vertex(line: np.ndarray, k: int) -> float:
    """Sub-pixel offset (-0.5..0.5) of the peak at ``line[k]`` from a parabola through it and its
    two neighbours; 0 at the line's ends."""
    if k < 1 or k > len(line) - 2:
        return 0.0
    a, b, c = float(line[k - 1]), float(line[k]), float(line[k + 1])
    den = a - 2 * b + c
    return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
