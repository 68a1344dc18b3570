"""Open-set identification with two thresholds and a margin (numpy only): the calibration of
:class:`engine.gallery.index.DecisionConfig` on a gallery of people and strangers.

Protocol (``facescope eval openset``). People with at least ``min_photos`` photos are shuffled
with ``seed``; the first ``gallery_size`` are *enrolled* from ``photos`` of their photos (a person's
score for a face is the cosine of their best enrolled photo, as in ``GalleryIndex``), and their
other photos (up to ``max_photos`` in all) are *genuine probes*. Everyone else is a *stranger*,
never enrolled: the other multi-photo people (all their photos, up to ``max_photos``) and the
first photo of the first ``singles`` people with fewer photos (the same for every seed, so one
embedding cache serves every seed).

For each probe: the best person ``p1`` with similarity ``s1`` and the second-best PERSON's ``s2``.
* A stranger is *falsely accepted* at threshold t (and margin m) when ``s1 >= t`` (and ``s1 - s2
  >= m``): FPR = fraction of stranger probes accepted (any name counts as false).
* TPR = fraction of genuine probes accepted AS THEIR OWN person (a wrong name is a miss).
The threshold for a target FPR is :func:`engine.metrics.verification.threshold_for_far` over the
strangers' scores (a stranger failing the margin can never be accepted, so it scores -inf); with N
stranger probes FPRs below 1/N cannot be resolved (FPR 1e-3 over 3,449 probes = 3 accepted).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.metrics.verification import _check_rate, threshold_for_far

ENROL, GENUINE, STRANGER = 0, 1, 2  # roles of a photo in a split


@dataclass(frozen=True)
class PeopleSplit:
    """Photos of one split: ``paths`` (N,), ``person`` (N,) int64 index into ``names``, ``role``
    (N,) int8 (ENROL / GENUINE / STRANGER). ``enrolled``: indices of the enrolled people."""

    paths: list[Path]
    person: np.ndarray
    role: np.ndarray
    names: list[str]
    enrolled: np.ndarray = field(repr=False)

    def counts(self) -> dict[str, int]:
        r = self.role
        return {"gallery_people": int(len(self.enrolled)), "enrolled_photos": int((r == ENROL).sum()),
                "genuine_probes": int((r == GENUINE).sum()), "stranger_probes": int((r == STRANGER).sum()),
                "stranger_people": int(len(np.unique(self.person[r == STRANGER])))}


def split_people(paths: Sequence[Path], labels, names: Sequence[str], gallery_size: int, photos: int = 3,
                 seed: int = 0, min_photos: int = 5, max_photos: int = 8, singles: int = 2000) -> PeopleSplit:
    """Split an identity-per-folder listing (``engine.metrics.list_identity_folder``: paths sorted
    by folder then file, (N,) labels, names) into gallery, genuine probes and strangers (module doc).

    Raises ValueError when the settings leave no stranger, no second person or no genuine probe.
    """
    y = np.asarray(labels, np.int64)
    if not 1 <= photos < min_photos:
        raise ValueError(f"photos per person must be in [1, min_photos={min_photos}), got {photos}")
    if max_photos < min_photos:
        raise ValueError(f"max_photos ({max_photos}) must be >= min_photos ({min_photos})")
    if singles < 0:
        raise ValueError(f"singles must be >= 0, got {singles}")
    by_person: dict[int, list[int]] = {}
    for i, lab in enumerate(y.tolist()):
        by_person.setdefault(lab, []).append(i)
    multi = sorted(p for p, rows in by_person.items() if len(rows) >= min_photos)
    few = sorted(p for p, rows in by_person.items() if len(rows) < min_photos)
    if not 2 <= gallery_size < len(multi):
        raise ValueError(f"gallery size must be in [2, {len(multi) - 1}] ({len(multi)} people have >= "
                         f"{min_photos} photos and some must stay strangers), got {gallery_size}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.array(multi, np.int64))
    enrolled = np.sort(order[:gallery_size])
    inside = set(enrolled.tolist())
    rows, person, role = [], [], []
    for p in multi:
        mine = by_person[p][:max_photos]
        if p in inside:
            pick = set(rng.permutation(len(mine))[:photos].tolist())
            kinds = [ENROL if k in pick else GENUINE for k in range(len(mine))]
        else:
            kinds = [STRANGER] * len(mine)
        rows += mine
        person += [p] * len(mine)
        role += kinds
    for p in few[:singles]:
        rows.append(by_person[p][0])
        person.append(p)
        role.append(STRANGER)
    return PeopleSplit([Path(paths[i]) for i in rows], np.array(person, np.int64), np.array(role, np.int8),
                       list(names), enrolled)


@dataclass(frozen=True)
class TopTwo:
    """Per probe: ``best`` (Q,) int64 best person (a label of the split), ``s1`` (Q,) float32 its
    similarity, ``s2`` (Q,) float32 the second-best person's (-inf with a one-person gallery)."""

    best: np.ndarray
    s1: np.ndarray
    s2: np.ndarray


def _unit(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if x.ndim != 2 or not np.all(np.isfinite(x)) or np.any(n == 0):
        raise ValueError("embeddings must be a (N, D) array of finite, non-zero rows")
    return x / n


def top_two_people(gallery_emb, gallery_person, probe_emb) -> TopTwo:
    """Best and second-best PERSON of every probe (a person scores their best enrolled photo),
    as ``GalleryIndex.search`` does; (G, D), (G,) int, (Q, D) -> :class:`TopTwo`. O(Q*G*D)."""
    g, q = _unit(gallery_emb), _unit(probe_emb)
    gp = np.asarray(gallery_person, np.int64)
    order = np.argsort(gp, kind="stable")
    people, starts = np.unique(gp[order], return_index=True)
    s = (q @ g[order].T) if len(q) else np.zeros((0, len(gp)), np.float32)
    per = np.maximum.reduceat(s, starts, axis=1) if len(q) else np.zeros((0, len(people)), np.float32)
    if len(people) == 1:
        return TopTwo(np.full(len(q), people[0]), per[:, 0], np.full(len(q), -np.inf, np.float32))
    top = np.argpartition(-per, 1, axis=1)[:, :2]
    r = np.arange(len(q))
    a, b = per[r, top[:, 0]], per[r, top[:, 1]]
    first = np.where(a >= b, top[:, 0], top[:, 1])
    return TopTwo(people[first], np.maximum(a, b).astype(np.float32), np.minimum(a, b).astype(np.float32))


def accepted(t: TopTwo, threshold: float, margin: float = 0.0) -> np.ndarray:
    """(Q,) bool: named at ``threshold`` with the margin rule (``s1 - s2 >= margin``; 0 = off)."""
    with np.errstate(invalid="ignore"):
        return (t.s1 >= np.float32(threshold)) & ((margin <= 0) | (t.s1 - t.s2 >= np.float32(margin)))


def threshold_at_fpr(strangers: TopTwo, fpr: float, margin: float = 0.0) -> float:
    """Smallest threshold at which at most ``fpr`` of the stranger probes are named (with the
    margin rule: a stranger failing the margin is never named, whatever the threshold)."""
    _check_rate(fpr, "fpr")
    score = np.where(accepted(strangers, -np.inf, margin), strangers.s1, -2.0)  # -2: below any cosine
    return max(-1.0, threshold_for_far(score, fpr))


@dataclass(frozen=True)
class OperatingPoint:
    """TPR (genuine probes named as themselves) and FPR (stranger probes named) at one rule;
    ``wrong``: genuine probes named as someone else. Rates are fractions in [0, 1]."""

    fpr_target: float | None
    margin: float
    threshold: float
    tpr: float
    fpr: float
    wrong: float

    def to_json(self) -> dict:
        return {"fpr_target": self.fpr_target, "margin": self.margin, "threshold": self.threshold,
                "tpr": self.tpr, "fpr": self.fpr, "wrong_name": self.wrong}


def operating_point(genuine: TopTwo, truth, strangers: TopTwo, threshold: float, margin: float = 0.0,
                    fpr_target: float | None = None) -> OperatingPoint:
    """Rates of the rule (``threshold``, ``margin``) on genuine probes of person ``truth`` (Q,)."""
    truth = np.asarray(truth, np.int64)
    named = accepted(genuine, threshold, margin)
    right = genuine.best == truth
    return OperatingPoint(fpr_target, float(margin), float(threshold), float(np.mean(named & right)),
                          float(np.mean(accepted(strangers, threshold, margin))), float(np.mean(named & ~right)))


def sweep(genuine: TopTwo, truth, strangers: TopTwo, fprs: Sequence[float], margins: Sequence[float],
          ) -> list[OperatingPoint]:
    """For every margin and target FPR: the threshold reaching that stranger FPR and the TPR there."""
    return [operating_point(genuine, truth, strangers, threshold_at_fpr(strangers, f, m), m, f)
            for m in margins for f in fprs]
