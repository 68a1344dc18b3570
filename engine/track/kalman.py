"""Constant-velocity Kalman filter on boxes, batched over tracks (the one ByteTrack uses).

State (8,): ``cx, cy, a, h, vcx, vcy, va, vh`` -- box centre, aspect ratio ``w / h``, height
and their velocities. Measurement (4,): ``cx, cy, a, h``. Noise scales with the box height, as
in SORT/DeepSORT/ByteTrack (``std_weight_position = 1/20``, ``std_weight_velocity = 1/160``).

Unlike ByteTrack, :meth:`KalmanFilter.predict` takes ``dt`` in *nominal frames* (possibly
fractional, one per track): the tracker derives it from frame timestamps, so a frame dropped by
a real-time source moves the prediction two steps and widens its uncertainty accordingly
(process noise scales linearly with ``dt``). Velocities are per nominal frame.
All methods take and return stacked arrays: means (N, 8), covariances (N, 8, 8).
"""
from __future__ import annotations

import numpy as np

MIN_H = 1.0  # px; keeps noise and boxes well defined for degenerate predictions


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` -> (N, 4) ``cx, cy, w / h, h``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = b[:, 2] - b[:, 0]
    h = np.maximum(b[:, 3] - b[:, 1], MIN_H)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) ``cx, cy, a, h, ...`` -> (N, 4) ``x1, y1, x2, y2``."""
    s = np.asarray(xyah, np.float64).reshape(len(xyah), -1)
    h = np.maximum(s[:, 3], MIN_H)
    w = np.maximum(s[:, 2], 0.0) * h
    return np.stack([s[:, 0] - w / 2, s[:, 1] - h / 2, s[:, 0] + w / 2, s[:, 1] + h / 2], axis=1)


class KalmanFilter:
    """Batched constant-velocity Kalman filter in ``(cx, cy, a, h)`` space."""

    ndim = 4

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160) -> None:
        self.std_weight_position = std_weight_position
        self.std_weight_velocity = std_weight_velocity

    def _h(self, means: np.ndarray) -> np.ndarray:
        return np.maximum(means[:, 3], MIN_H)

    def initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from (N, 4) ``xyah`` measurements: zero velocity, wide velocity prior."""
        m = np.asarray(measurements, np.float64).reshape(-1, 4)
        means = np.concatenate([m, np.zeros_like(m)], axis=1)
        h = self._h(means)
        wp, wv = self.std_weight_position, self.std_weight_velocity
        one = np.ones_like(h)
        std = np.stack([2 * wp * h, 2 * wp * h, 1e-2 * one, 2 * wp * h,
                        10 * wv * h, 10 * wv * h, 1e-5 * one, 10 * wv * h], axis=1)
        return means, _diag(std ** 2)

    def predict(self, means: np.ndarray, covariances: np.ndarray,
                dt: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Advance by ``dt`` nominal frames (scalar or (N,), >= 0)."""
        n = len(means)
        if n == 0:
            return means.copy(), covariances.copy()
        dt = np.broadcast_to(np.asarray(dt, np.float64), (n,))
        h = self._h(means)
        wp, wv = self.std_weight_position, self.std_weight_velocity
        one = np.ones_like(h)
        std = np.stack([wp * h, wp * h, 1e-2 * one, wp * h, wv * h, wv * h, 1e-5 * one, wv * h], axis=1)
        q = _diag(std ** 2 * dt[:, None])
        f = np.broadcast_to(np.eye(8), (n, 8, 8)).copy()
        f[:, np.arange(4), np.arange(4) + 4] = dt[:, None]
        new_means = np.einsum("nij,nj->ni", f, means)
        new_covs = f @ covariances @ f.transpose(0, 2, 1) + q
        return new_means, new_covs

    def project(self, means: np.ndarray, covariances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State -> measurement space: (N, 4) means and (N, 4, 4) innovation covariances."""
        h = self._h(means)
        wp = self.std_weight_position
        std = np.stack([wp * h, wp * h, np.full_like(h, 1e-1), wp * h], axis=1)
        return means[:, :4].copy(), covariances[:, :4, :4] + _diag(std ** 2)

    def update(self, means: np.ndarray, covariances: np.ndarray,
               measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct (N,) predictions with (N, 4) ``xyah`` measurements."""
        if len(means) == 0:
            return means.copy(), covariances.copy()
        z = np.asarray(measurements, np.float64).reshape(-1, 4)
        proj_mean, s = self.project(means, covariances)
        return _correct(means, covariances, z - proj_mean, s)

    def update_position(self, means: np.ndarray, covariances: np.ndarray, centres: np.ndarray,
                        noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Correct (N,) predictions with (N, 2) measured box centres only (aspect, height and the
        velocities follow through their covariances). ``noise``: the centre's standard deviation
        as a fraction of a detection's (template matching, ``engine.track.refine``, is steadier
        than the detector's box from frame to frame: with 1, boxes of a face turning back lagged
        to IoU 0.78 of every-frame detection's, 0.80 with 0.5)."""
        if len(means) == 0:
            return means.copy(), covariances.copy()
        z = np.asarray(centres, np.float64).reshape(-1, 2)
        r = (noise * self.std_weight_position * self._h(means)) ** 2        # (N,)
        s = covariances[:, :2, :2] + r[:, None, None] * np.eye(2)           # H P H^T + R, (N, 2, 2)
        return _correct(means, covariances, z - means[:, :2], s)


def _correct(means: np.ndarray, covariances: np.ndarray, innovation: np.ndarray,
             s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kalman correction for a measurement of the state's first K dimensions: ``innovation``
    (N, K) = measured - predicted, ``s`` (N, K, K) its covariance (H P H^T + R)."""
    pht = covariances[:, :, :s.shape[-1]]                                 # P H^T, (N, 8, K)
    gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)  # P H^T S^-1 (S symmetric)
    new_means = means + np.einsum("nij,nj->ni", gain, innovation)
    new_covs = covariances - gain @ s @ gain.transpose(0, 2, 1)
    return new_means, 0.5 * (new_covs + new_covs.transpose(0, 2, 1))


def _diag(v: np.ndarray) -> np.ndarray:
    out = np.zeros(v.shape + (v.shape[-1],), np.float64)
    idx = np.arange(v.shape[-1])
    out[..., idx, idx] = v
    return out
