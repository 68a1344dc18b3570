"""A source's region of interest: where faces count, as normalised polygons.

Coordinates are fractions of the frame (x right, y down, both in [0, 1]), so one ROI fits every
resolution the camera may be switched to. ``mode="include"``: a face is kept when the centre of
its box lies inside any polygon (a doorway); ``mode="exclude"`` (a mask): a face is dropped
when its centre lies inside any polygon (a poster, a TV). A face on the border counts as inside.
The test is on the box centre, not the box: a face half out of a doorway still counts when
most of it is in. Filtering runs after detection and before tracking
(:attr:`engine.pipeline.Pipeline.face_filter`), so a dropped face makes no track, no event and
no sighting.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.records import Faces
from engine.util.check import check

MODES = ("include", "exclude")


@dataclass(frozen=True)
class Roi:
    """``polygons``: tuple of polygons, each a tuple of >= 3 (x, y) points in [0, 1];
    ``mode``: "include" (keep faces inside) or "exclude" (drop faces inside; a mask)."""

    polygons: tuple[tuple[tuple[float, float], ...], ...]
    mode: str = "include"

    def __post_init__(self) -> None:
        check(self.mode in MODES, f"ROI mode must be one of {MODES}, got {self.mode!r}")
        check(len(self.polygons) >= 1, "an ROI needs at least one polygon or rectangle")
        for poly in self.polygons:
            check(len(poly) >= 3, f"an ROI polygon needs >= 3 points, got {len(poly)}")
            for pt in poly:
                check(len(pt) == 2 and all(0.0 <= float(v) <= 1.0 for v in pt),
                      f"ROI points are (x, y) fractions of the frame in [0, 1], got {pt}")

    @classmethod
    def rect(cls, x0: float, y0: float, x1: float, y1: float, mode: str = "include") -> Roi:
        """One rectangle from its corners (fractions of the frame)."""
        check(x1 > x0 and y1 > y0, f"ROI rectangle needs x0 < x1 and y0 < y1, got {(x0, y0, x1, y1)}")
        return cls((((x0, y0), (x1, y0), (x1, y1), (x0, y1)),), mode)

    @classmethod
    def from_dict(cls, d: dict) -> Roi:
        """From a sources file: ``{"mode": "include", "rects": [[x0, y0, x1, y1], ...],
        "polygons": [[[x, y], [x, y], [x, y], ...], ...]}`` (rects and polygons add up)."""
        unknown = set(d) - {"mode", "rects", "polygons"}
        check(not unknown, f"unknown ROI keys {sorted(unknown)}; known: mode, rects, polygons")
        polys = []
        for r in d.get("rects", []):
            check(len(r) == 4, f"an ROI rect is [x0, y0, x1, y1], got {r}")
            polys += list(cls.rect(*map(float, r)).polygons)
        polys += [tuple((float(x), float(y)) for x, y in p) for p in d.get("polygons", [])]
        return cls(tuple(polys), d.get("mode", "include"))

    def to_dict(self) -> dict:
        return {"mode": self.mode, "polygons": [[list(p) for p in poly] for poly in self.polygons]}

    def inside(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) normalised points -> (N,) bool: inside (or on) any polygon."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        out = np.zeros(len(pts), bool)
        # cv2 wants float32 contours; scale up so that the float32 rounding stays far below a pixel
        scale = 10000.0
        for poly in self.polygons:
            contour = (np.asarray(poly, np.float32) * scale).reshape(-1, 1, 2)
            for i, (x, y) in enumerate(pts):
                if not out[i]:
                    out[i] = cv2.pointPolygonTest(contour, (float(x * scale), float(y * scale)), False) >= 0
        return out

    def keep_mask(self, boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """(N, 4) x1, y1, x2, y2 pixel boxes on a (height, width) frame -> (N,) bool: kept."""
        h, w = shape
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        centres = np.stack([(b[:, 0] + b[:, 2]) / (2.0 * w), (b[:, 1] + b[:, 3]) / (2.0 * h)], axis=1)
        inside = self.inside(centres)
        return inside if self.mode == "include" else ~inside


def face_filter(roi: Roi | None, min_face: float = 0.0):
    """A ``Pipeline.face_filter`` dropping faces outside ``roi`` and faces whose shorter box side
    is under ``min_face`` pixels; None when neither applies (the pipeline then skips the step)."""
    if roi is None and min_face <= 0:
        return None

    def apply(faces: Faces, shape: tuple[int, int]) -> Faces:
        if len(faces) == 0:
            return faces
        keep = np.ones(len(faces), bool)
        if min_face > 0:
            b = faces.boxes
            keep &= np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) >= min_face
        if roi is not None:
            keep &= roi.keep_mask(faces.boxes, shape)
        return faces if keep.all() else faces.select(np.flatnonzero(keep))

    return apply
