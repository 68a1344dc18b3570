"""Drawing recognition results on frames with OpenCV (headless: no Qt here)."""
from __future__ import annotations

import cv2
import numpy as np

from engine.records import Faces

KNOWN = (80, 200, 60)     # BGR green
UNKNOWN = (60, 160, 255)  # BGR orange


def draw_faces(image: np.ndarray, faces: Faces, keypoints: bool = True, landmarks: bool = False) -> np.ndarray:
    """A copy of ``image`` with boxes, names, similarities and track ids drawn; ``landmarks``
    adds the 68 points and the head pose (yaw/pitch/roll in degrees) where the faces have them."""
    out = image.copy()
    scale = max(0.4, min(1.2, image.shape[0] / 900))
    thick = max(1, round(2 * scale))
    for i in range(len(faces)):
        x1, y1, x2, y2 = (int(round(v)) for v in faces.boxes[i])
        name = faces.names[i]
        color = KNOWN if name else UNKNOWN
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
        label = name or "unknown"
        sim = faces.similarities[i]
        if np.isfinite(sim):
            label += f" {sim:.2f}"
        if faces.track_ids[i] >= 0:
            label = f"#{faces.track_ids[i]} {label}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base - 2), (x1 + tw + 4, ty), color, -1)
        cv2.putText(out, label, (x1 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), thick, cv2.LINE_AA)
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
