"""Face verification metrics on similarity scores (numpy only).

Convention everywhere: a higher score means "more likely the same person" (cosine similarity)
and a pair is declared *same* when ``score >= threshold``. For distances pass ``-distance``.
Scores are float arrays of shape (P,); ``same`` is a bool array (P,) (0/1 ints accepted).
NaN or infinite scores, mismatched shapes and a missing class raise ValueError.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _as_scores(scores, name: str = "scores") -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN/infinite values")
    return arr


def _as_same(same, n: int) -> np.ndarray:
    arr = np.asarray(same)
    if arr.shape != (n,):
        raise ValueError(f"same must have shape ({n},) like scores, got {arr.shape}")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError("same must be boolean (or 0/1)")
        arr = arr.astype(bool)
    return arr


def _validate(scores, same) -> tuple[np.ndarray, np.ndarray]:
    s = _as_scores(scores)
    y = _as_same(same, s.size)
    if y.all() or not y.any():
        raise ValueError(f"need both same and different pairs, got {int(y.sum())} same "
                         f"and {int((~y).sum())} different")
    return s, y


def _check_rate(rate: float, name: str) -> float:
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {rate}")
    return rate


def best_threshold(scores, same) -> tuple[float, float]:
    """Threshold maximising accuracy on (scores, same), and that accuracy.

    Candidates: the smallest unique score (everything accepted), the midpoints between
    consecutive unique scores, and the next float above the largest (everything rejected).
    Ties go to the lowest candidate. O(P log P): one sort plus cumulative counts.
    """
    s, y = _validate(scores, same)
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    # last index of every run of equal scores -> unique values and cumulative counts
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    uniq = s[ends]
    same_le = np.cumsum(y)[ends]            # same pairs with score <= uniq[k]
    diff_le = (ends + 1) - same_le          # different pairs with score <= uniq[k]
    n_same = int(y.sum())
    # candidate j rejects exactly the scores <= uniq[j-1]  (j = 0 rejects nothing)
    correct = np.r_[n_same, n_same - same_le + diff_le]
    lo, hi = uniq[:-1], uniq[1:]
    mid = lo + (hi - lo) / 2.0
    mid = np.where(mid > lo, mid, hi)       # adjacent floats: the midpoint must exceed lo
    cands = np.r_[uniq[0], mid, np.nextafter(uniq[-1], np.inf)]
    j = int(np.argmax(correct))
    return float(cands[j]), float(correct[j]) / s.size


@dataclass(frozen=True)
class KFoldResult:
    """K-fold verification accuracy (fractions in [0, 1]).

    ``accuracy`` is the mean of ``fold_accuracies``; ``accuracy_std`` their population std
    (ddof=0, as LFW papers report "99.10 +- 0.40"). ``fold_thresholds[k]`` was chosen on all
    folds but ``folds[k]`` and applied to it.
    """

    accuracy: float
    accuracy_std: float
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]
    folds: tuple[int, ...]

    @property
    def mean_threshold(self) -> float:
        """Mean of the per-fold thresholds: a reasonable single operating threshold."""
        return float(np.mean(self.fold_thresholds))

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "accuracy_std": self.accuracy_std,
                "fold_accuracies": list(self.fold_accuracies),
                "fold_thresholds": list(self.fold_thresholds), "folds": list(self.folds),
                "mean_threshold": self.mean_threshold}


def kfold_accuracy(scores, same, folds) -> KFoldResult:
    """Standard LFW protocol: for each fold, pick the accuracy-maximising threshold on the
    other folds (see ``best_threshold``) and measure accuracy on it with ``score >= t``.

    ``scores`` (P,) float, ``same`` (P,) bool, ``folds`` (P,) int fold ids (any integers,
    >= 2 distinct). Every training split must contain both classes. O(P log P) per fold.
    """
    s, y = _validate(scores, same)
    f = np.asarray(folds)
    if f.shape != s.shape:
        raise ValueError(f"folds must have shape {s.shape} like scores, got {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"folds must be integers, got dtype {f.dtype}")
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError(f"k-fold accuracy needs >= 2 folds, got {ids.size}")
    accs, thrs = [], []
    for k in ids:
        test = f == k
        try:
            t, _ = best_threshold(s[~test], y[~test])
        except ValueError as exc:
            raise ValueError(f"training split without fold {int(k)}: {exc}") from None
        accs.append(float(np.mean((s[test] >= t) == y[test])))
        thrs.append(t)
    return KFoldResult(float(np.mean(accs)), float(np.std(accs)), tuple(accs), tuple(thrs),
                       tuple(int(k) for k in ids))


def roc(scores, same) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve ``(fpr, tpr, thresholds)``, each (K+1,) float64 for K unique scores.

    ``thresholds`` is decreasing: ``+inf`` (nothing accepted, fpr = tpr = 0) then every
    unique score; ``fpr[k]``/``tpr[k]`` are the fractions of different/same pairs with
    ``score >= thresholds[k]``. Like sklearn's ``roc_curve(drop_intermediate=False)``.
    """
    s, y = _validate(scores, same)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[ends]
    fp = (ends + 1) - tp
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return fpr, tpr, np.r_[np.inf, s[ends]]


def threshold_for_far(impostor_scores, far: float) -> float:
    """Smallest threshold whose false-accept fraction on ``impostor_scores`` is <= ``far``.

    ``impostor_scores`` (N,) float (different-person similarities), ``far`` in [0, 1).
    With k = floor(far * N) allowed false accepts, returns the smallest float32 above the
    (k+1)-th largest impostor score, so at most k impostors satisfy ``score >= threshold``
    (fewer when scores tie). Trade-off: this is the most permissive threshold meeting the
    target *on this data*; nothing is added for unseen impostors.

    Resolution: only multiples of 1/N are measurable. With N = 3000, FAR 1e-3 means 3
    accepted impostors, and any far < 1/N gives k = 0, i.e. a threshold just above the
    highest impostor: an estimate resting on a single score. Use N >> 1/far.
    """
    imp = _as_scores(impostor_scores, "impostor_scores")
    far = _check_rate(far, "far")
    k = int(math.floor(far * imp.size + 1e-9))   # tolerance: 0.29 * 100 = 28.999...
    kth = np.partition(imp, imp.size - 1 - k)[imp.size - 1 - k]
    # The next float32 above kth (not float64): similarities are float32 at run time, and
    # NumPy compares a float32 array with a Python float in float32, where a float64
    # nextafter would round back down onto kth and accept it.
    above = np.float32(kth)
    while above <= kth:  # smallest float32 strictly above kth
        above = np.nextafter(above, np.float32(np.inf))
    return float(above)


def tar_at_far(scores, same, far: float) -> tuple[float, float]:
    """True-accept rate at a false-accept rate: ``(tar, threshold)``.

    ``threshold = threshold_for_far(scores[~same], far)`` (smallest threshold with impostor
    fraction ``>= threshold`` at most ``far``); ``tar`` = fraction of same pairs with
    ``score >= threshold``. See ``threshold_for_far`` for the resolution limit: LFW's 3000
    different pairs cannot resolve FAR 1e-3 finer than 3 pairs, nor anything below 1/3000.
    """
    s, y = _validate(scores, same)
    t = threshold_for_far(s[~y], far)
    return float(np.mean(s[y] >= t)), t
