"""Head pose from 68 landmarks (PnP against a generic 3-D head) and crop sharpness.

Pose: six landmarks (nose tip, chin, outer eye corners, mouth corners) matched to a generic
head model (millimetre-like units, x right, y up, z towards the camera) with
``cv2.solvePnP``; the camera is a pinhole with focal length = the frame's larger side and
the principal point at its centre (no calibration is available for a webcam). Angles in
degrees: yaw > 0 when the face turns towards the image's right, pitch > 0 when it looks
up, roll > 0 when it tilts clockwise in the image. Accuracy is a few degrees: enough to
tell frontal from profile, which is what enrolment and voting use it for.

Sharpness: variance of the Laplacian of the grey face crop, mapped to [0, 1] on a log
scale between ``BLUR_VAR`` (blurred) and ``SHARP_VAR`` (sharp), measured on the 128 px
landmark crop so it does not depend on the face's size in the frame.
"""
from __future__ import annotations

import cv2
import numpy as np

# iBUG index -> generic 3-D point: the widely used six-point head model, with its depths set to
# adult anthropometry (nose tip ~0.45 outer-eye-corner distances in front of the eye corners,
# mouth corners ~0.33, chin ~0.25). The usual depths (135/125/65) make the nose too flat, which
# inflates yaw: frontal LFW photos came out at 15-20 deg, 3/4 views at 40+.
POSE_INDEX = (30, 8, 36, 45, 48, 54)
MODEL_3D = np.array([[0.0, 0.0, 0.0], [0.0, -330.0, -110.0], [-225.0, 170.0, -200.0], [225.0, 170.0, -200.0],
                     [-150.0, -150.0, -150.0], [150.0, -150.0, -150.0]])
BLUR_VAR, SHARP_VAR = 15.0, 300.0


def camera_matrix(frame_shape: tuple[int, ...]) -> np.ndarray:
    h, w = float(frame_shape[0]), float(frame_shape[1])
    f = max(h, w)
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)


def head_pose(landmarks: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """(N, 68, 2) px -> (N, 3) float32 (yaw, pitch, roll) degrees; NaN where PnP fails."""
    lm = np.asarray(landmarks, np.float64)
    k = camera_matrix(frame_shape)
    out = np.full((len(lm), 3), np.nan, np.float32)
    flip = np.diag([1.0, -1.0, -1.0])  # model axes (y up, z to camera) -> camera axes (y down, z forward)
    for i, pts in enumerate(lm):
        # Start from a frontal head at the distance its eye span implies: six points leave PnP
        # with mirror solutions (a head facing away), which a frontal start avoids.
        img_pts = pts[list(POSE_INDEX)]
        eye_px = max(float(np.linalg.norm(img_pts[2] - img_pts[3])), 1.0)
        z = k[0, 0] * 450.0 / eye_px
        c = img_pts[0]
        rvec0 = np.array([[np.pi], [0.0], [0.0]])
        tvec0 = np.array([[(c[0] - k[0, 2]) * z / k[0, 0]], [(c[1] - k[1, 2]) * z / k[1, 1]], [z]])
        ok, rvec, _ = cv2.solvePnP(MODEL_3D, img_pts, k, None, rvec0, tvec0, useExtrinsicGuess=True,
                                   flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            continue
        r, _ = cv2.Rodrigues(rvec)
        r = r @ flip.T  # rotation of the head relative to a face looking straight at the camera
        # R = Rz(roll) @ Ry(yaw) @ Rx(pitch), camera axes x right, y down, z forward
        yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1, 1)))
        pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
        roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
        out[i] = (-yaw, _wrap(pitch), roll)
    return out


def _wrap(a: float) -> float:
    return float((a + 180.0) % 360.0 - 180.0)


def sharpness(crops: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR crops -> (N,) float32 in [0, 1]."""
    out = np.zeros(len(crops), np.float32)
    for i, c in enumerate(crops):
        var = cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
        out[i] = np.clip(np.log(max(var, 1e-6) / BLUR_VAR) / np.log(SHARP_VAR / BLUR_VAR), 0.0, 1.0)
    return out
