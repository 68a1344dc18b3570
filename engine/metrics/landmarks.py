"""Landmark accuracy: NME (inter-ocular), failure rates, CED curve and its AUC."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.landmarks.ibug import interocular


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, 68, 2) each -> (N,) mean point-to-point error / outer-eye-corner distance (fraction)."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(f"nme: shapes differ or are not (N, K, 2): {pred.shape} vs {truth.shape}")
    return np.linalg.norm(pred - truth, axis=-1).mean(-1) / interocular(truth)


def ced(errors: np.ndarray, limit: float = 0.08, steps: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: (thresholds in [0, limit], fraction of faces <= each)."""
    e = np.sort(np.asarray(errors, np.float64))
    x = np.linspace(0.0, limit, steps + 1)
    return x, np.searchsorted(e, x, side="right") / max(len(e), 1)


def auc(errors: np.ndarray, limit: float = 0.08) -> float:
    """Area under the CED curve up to ``limit``, normalised to [0, 1] (300-W's AUC@0.08)."""
    x, y = ced(errors, limit)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2.0 has only trapz
    return float(trapezoid(y, x) / limit)


def summary(errors: np.ndarray, prefix: str = "") -> dict[str, float]:
    """``nme`` (mean, fraction), ``failure_rate_0.08/0.10`` (fraction of faces above), ``auc_0.08``."""
    e = np.asarray(errors, np.float64)
    return {f"{prefix}nme": float(e.mean()), f"{prefix}failure_rate_0.08": float((e > 0.08).mean()),
            f"{prefix}failure_rate_0.10": float((e > 0.10).mean()), f"{prefix}auc_0.08": auc(e, 0.08)}


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, limit: float = 0.08) -> Path:
    """Write a CED plot (one curve per method) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=110)
    for label, errors in curves.items():
        x, y = ced(errors, limit)
        ax.plot(x * 100, y * 100, label=f"{label} (NME {np.mean(errors) * 100:.2f} %, AUC {auc(errors, limit):.3f})")
    ax.set_xlabel("NME (% of outer inter-ocular distance)")
    ax.set_ylabel("faces (%)")
    ax.set_xlim(0, limit * 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Cumulative error distribution")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
