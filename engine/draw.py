"""Drawing recognition results on frames with OpenCV (headless: no Qt here)."""
from __future__ import annotations

import cv2
import numpy as np

from engine.records import STATUS_PROBABLE, Faces

# Face colours of every view (OpenCV drawings here, the desktop's QColors via ``rgb``), as BGR.
COLOR_KNOWN = (80, 200, 60)       # green: a named person (confirmed)
COLOR_PROBABLE = (40, 230, 240)   # yellow, dashed box, "Name?": a probable name (engine.gallery.decision)
COLOR_UNKNOWN = (60, 160, 255)    # orange: nobody in the gallery (or not matched yet)
COLOR_ENROLLING = (255, 140, 60)  # blue: a track whose frames are being collected for enrolment
UNKNOWN_LABEL = "unknown"         # the label of a face without a name
PROBABLE_MARK = "?"               # appended to a probable name: "Ada?"


def rgb(color_bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """The same colour as (R, G, B), e.g. for ``QColor(*rgb(COLOR_KNOWN))``."""
    b, g, r = color_bgr
    return r, g, b


def face_color(faces: Faces, i: int) -> tuple[int, int, int]:
    """BGR colour of face ``i`` by its status: known (confirmed), probable or unknown."""
    if not faces.names[i]:
        return COLOR_UNKNOWN
    return COLOR_PROBABLE if is_probable(faces, i) else COLOR_KNOWN


def is_probable(faces: Faces, i: int) -> bool:
    """Face ``i`` has a probable name (drawn dashed, labelled "Name?")."""
    return bool(faces.names[i]) and int(faces.states[i]) == STATUS_PROBABLE


def face_label(faces: Faces, i: int) -> str:
    """``#<track id> <name> <similarity>`` of face ``i``, as every view labels it.

    The name is :data:`UNKNOWN_LABEL` when unidentified and ends in :data:`PROBABLE_MARK` when
    only probable ("Ada?"); the similarity (2 decimals) is left out when the face was not matched
    (NaN), the ``#<track id>`` when it is not tracked (< 0).
    """
    label = faces.names[i] or UNKNOWN_LABEL
    if is_probable(faces, i):
        label += PROBABLE_MARK
    sim = float(faces.similarities[i])
    if np.isfinite(sim):
        label += f" {sim:.2f}"
    tid = int(faces.track_ids[i])
    return f"#{tid} {label}" if tid >= 0 else label


def draw_faces(image: np.ndarray, faces: Faces, keypoints: bool = True, landmarks: bool = False) -> np.ndarray:
    """A copy of ``image`` with boxes, names, similarities and track ids drawn; ``landmarks``
    adds the 68 points and the head pose (yaw/pitch/roll in degrees) where the faces have them."""
    out = image.copy()
    scale = max(0.4, min(1.2, image.shape[0] / 900))
    thick = max(1, round(2 * scale))
    for i in range(len(faces)):
        x1, y1, x2, y2 = (int(round(v)) for v in faces.boxes[i])
        color = face_color(faces, i)
        if is_probable(faces, i):
            _dashed_rectangle(out, (x1, y1), (x2, y2), color, thick, dash=max(4, round(10 * scale)))
        else:
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
        label = face_label(faces, i)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base - 2), (x1 + tw + 4, ty), color, -1)
        cv2.putText(out, label, (x1 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), thick,
                    cv2.LINE_AA)
        if landmarks and faces.landmarks is not None:
            for x, y in faces.landmarks[i]:
                cv2.circle(out, (int(round(x)), int(round(y))), max(1, thick - 1), (255, 255, 0), -1, cv2.LINE_AA)
            if faces.poses is not None and np.all(np.isfinite(faces.poses[i])):
                yaw, pitch, roll = faces.poses[i]
                cv2.putText(out, f"y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}", (x1, y2 + int(18 * scale)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 0), thick, cv2.LINE_AA)
        if keypoints and faces.keypoints is not None:
            for x, y in faces.keypoints[i]:
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, color, -1, cv2.LINE_AA)
    return out


def _dashed_rectangle(image: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color, thick: int,
                      dash: int) -> None:
    """A rectangle of ``dash``-pixel strokes with ``dash``-pixel gaps (OpenCV has no dashed line)."""
    (x1, y1), (x2, y2) = p1, p2
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for start in range(0, max(length, 1), 2 * dash):
            t0, t1 = start / max(length, 1), min(start + dash, length) / max(length, 1)
            q0 = (round(a[0] + (b[0] - a[0]) * t0), round(a[1] + (b[1] - a[1]) * t0))
            q1 = (round(a[0] + (b[0] - a[0]) * t1), round(a[1] + (b[1] - a[1]) * t1))
            cv2.line(image, q0, q1, color, thick, cv2.LINE_AA)
