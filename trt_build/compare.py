"""How two runs of one network are compared (export, preparation and engine parity checks)."""
from __future__ import annotations

import numpy as np


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarity of two (N, ...) arrays, flattened per sample (float64).
    A sample that is all zeros in either array counts as 1 (nothing to disagree about)."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, (a * b).sum(1) / np.maximum(den, 1e-30), 1.0)
