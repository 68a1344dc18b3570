"""Open-set identification (1:N search with rejection) on embeddings (numpy only).

Protocol (open-set, as in the seed project): a gallery holds enrolled people; each probe is
searched against it. A *genuine* probe's person is enrolled, an *impostor* probe's is not.
At a threshold t a probe is accepted when its best gallery similarity is >= t.

* FPR (false positive identification rate) = fraction of impostor probes accepted.
* TPR = DIR (detection and identification rate) = fraction of genuine probes accepted AND
  whose best match has the right label.
* rank-1 = fraction of genuine probes whose best match has the right label (closed-set,
  no threshold).

For each requested FPR the threshold comes from the impostor max-similarities exactly as in
``verification.threshold_for_far``, so the same resolution limit applies (N impostors cannot
resolve FPRs below 1/N).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.metrics.verification import _check_rate, threshold_for_far

DEFAULT_FPRS = (0.5, 0.2, 0.1, 0.05, 0.01)


def _as_labels(labels, name: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D integer array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def split_gallery_probe(labels, gallery_per_identity: int = 1, seed: int | None = None,
                        max_identities: int | None = None, max_impostors: int | None = None,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split images (by label) into gallery, genuine probes and impostor probes.

    ``labels`` (N,) int, one per image. Returns three sorted int64 index arrays into
    ``labels``: ``(gallery_idx, probe_idx, impostor_idx)``.

    * An identity with more than ``gallery_per_identity`` images is *enrolled*: that many of
      its images go to the gallery (the first ones in index order, or a random choice when
      ``seed`` is given) and all its other images are genuine probes.
    * An identity with ``gallery_per_identity`` images or fewer (with the default 1: a single
      image, 4069 of LFW's 5749 people) cannot leave a probe, so it is an *impostor*: a person
      outside the gallery, all of whose images are impostor probes.
    * ``max_identities`` keeps only that many enrolled identities (the first by label, or a
      random choice with ``seed``); the others are left out entirely, which keeps the impostor
      set unchanged. ``max_impostors`` likewise caps the number of impostor identities.
    """
    y = _as_labels(labels)
    if gallery_per_identity < 1:
        raise ValueError(f"gallery_per_identity must be >= 1, got {gallery_per_identity}")
    for name, cap in (("max_identities", max_identities), ("max_impostors", max_impostors)):
        if cap is not None and cap < 0:
            raise ValueError(f"{name} must be >= 0, got {cap}")
    rng = np.random.default_rng(seed) if seed is not None else None
    order = np.argsort(y, kind="stable")               # indices grouped by label, in order
    ids, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    enrolled = np.flatnonzero(counts > gallery_per_identity)
    single = np.flatnonzero(counts <= gallery_per_identity)

    def cap(groups: np.ndarray, limit: int | None) -> np.ndarray:
        if limit is None or limit >= groups.size:
            return groups
        return np.sort(rng.choice(groups, limit, replace=False)) if rng else groups[:limit]

    gallery, probes = [], []
    for g in cap(enrolled, max_identities):
        members = order[starts[g]:starts[g] + counts[g]]
        pick = (rng.permutation(members.size)[:gallery_per_identity] if rng
                else np.arange(gallery_per_identity))
        mask = np.zeros(members.size, dtype=bool)
        mask[pick] = True
        gallery.append(members[mask])
        probes.append(members[~mask])
    impostors = [order[starts[g]:starts[g] + counts[g]] for g in cap(single, max_impostors)]

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)

    return cat(gallery), cat(probes), cat(impostors)


def _normalise(emb, name: str) -> np.ndarray:
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (rows, dim) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN/infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} has {int(np.sum(norms == 0))} all-zero rows (cannot normalise)")
    return x / norms


def best_matches(gallery_emb, probe_emb, chunk_size: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Cosine search: for each probe, ``(max_similarity (P,) float64, gallery index (P,) int64)``.

    Embeddings (G, D) and (P, D) are L2-normalised here. Probes are processed in chunks of
    ``chunk_size`` rows (default: about 4M similarities, 32 MB, per chunk). Ties go to the
    lowest gallery index.
    """
    g = _normalise(gallery_emb, "gallery_emb")
    p = _normalise(probe_emb, "probe_emb")
    if g.shape[1] != p.shape[1]:
        raise ValueError(f"gallery dim {g.shape[1]} != probe dim {p.shape[1]}")
    step = chunk_size or max(1, (1 << 22) // g.shape[0])
    best = np.empty(p.shape[0], dtype=np.float64)
    arg = np.empty(p.shape[0], dtype=np.int64)
    for lo in range(0, p.shape[0], step):
        sims = p[lo:lo + step] @ g.T
        arg[lo:lo + step] = np.argmax(sims, axis=1)
        best[lo:lo + step] = sims[np.arange(sims.shape[0]), arg[lo:lo + step]]
    return best, arg


@dataclass(frozen=True)
class IdentResult:
    """Open-set identification rates; rates are fractions in [0, 1], thresholds cosines.

    ``tpr_at_fpr[f]`` is the DIR at the threshold ``thresholds[f]`` chosen for target FPR f;
    ``fpr_actual[f]`` is the impostor fraction actually accepted there (<= f).
    ``n_gallery`` counts gallery images (templates), ``n_identities`` distinct gallery labels.
    """

    tpr_at_fpr: dict[float, float]
    thresholds: dict[float, float]
    fpr_actual: dict[float, float]
    rank1: float
    n_gallery: int
    n_identities: int
    n_genuine: int
    n_impostor: int

    def to_json(self) -> dict:
        """JSON-ready dict; the per-FPR dicts are keyed by ``str(fpr)`` (e.g. ``"0.01"``)."""
        return {"tpr_at_fpr": {str(k): v for k, v in self.tpr_at_fpr.items()},
                "thresholds": {str(k): v for k, v in self.thresholds.items()},
                "fpr_actual": {str(k): v for k, v in self.fpr_actual.items()},
                "rank1": self.rank1, "n_gallery": self.n_gallery,
                "n_identities": self.n_identities, "n_genuine": self.n_genuine,
                "n_impostor": self.n_impostor}


def identification_rates(gallery_emb, gallery_labels, probe_emb, probe_labels,
                         fprs=DEFAULT_FPRS, chunk_size: int | None = None) -> IdentResult:
    """Open-set DIR at each target FPR, plus closed-set rank-1 (see module docstring).

    ``gallery_emb`` (G, D), ``gallery_labels`` (G,) int, ``probe_emb`` (P, D),
    ``probe_labels`` (P,) int. Probes whose label occurs in ``gallery_labels`` are genuine,
    the rest impostors; both kinds must be present (ValueError otherwise). Several gallery
    images per identity are fine: the best one counts. One (chunked) matrix product, O(P*G*D).
    """
    gl = _as_labels(gallery_labels, "gallery_labels")
    pl = _as_labels(probe_labels, "probe_labels")
    ge = np.asarray(gallery_emb)
    pe = np.asarray(probe_emb)
    if ge.ndim != 2 or ge.shape[0] != gl.size:
        raise ValueError(f"gallery_emb {ge.shape} and gallery_labels {gl.shape} disagree")
    if pe.ndim != 2 or pe.shape[0] != pl.size:
        raise ValueError(f"probe_emb {pe.shape} and probe_labels {pl.shape} disagree")
    targets = [_check_rate(f, "fpr") for f in fprs]
    if not targets:
        raise ValueError("fprs is empty")
    genuine = np.isin(pl, gl)
    if not genuine.any():
        raise ValueError("no genuine probes: no probe label occurs in the gallery")
    if genuine.all():
        raise ValueError("no impostor probes: every probe label occurs in the gallery, "
                         "so false positive rates cannot be measured")
    sim, idx = best_matches(ge, pe, chunk_size)
    correct = gl[idx] == pl
    g_sim, g_ok, imp = sim[genuine], correct[genuine], sim[~genuine]
    tpr, thr, actual = {}, {}, {}
    for f in targets:
        t = threshold_for_far(imp, f)
        thr[f] = t
        tpr[f] = float(np.mean(g_ok & (g_sim >= t)))
        actual[f] = float(np.mean(imp >= t))
    return IdentResult(tpr, thr, actual, float(np.mean(g_ok)), int(gl.size),
                       int(np.unique(gl).size), int(genuine.sum()), int((~genuine).sum()))
