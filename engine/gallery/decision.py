"""The open-set decision: its settings (two thresholds and a margin) and :func:`classify` / :func:`decide`.

A face's best person ``p1`` scores ``s1`` (cosine of their best face), the second-best PERSON
``s2``. With a :class:`DecisionConfig`:

* ``s1 < unknown`` (or NaN, or closer to p1's "not this person" negatives than to p1's faces):
  **unknown**, no identity;
* ``s1 >= confirmed`` and ``s1 - s2 >= margin``: **confirmed**, p1's name;
* otherwise **probable**: p1's id and name, shown as "Name?". A near tie (margin not met) is
  therefore never a confirmed name, but when it clears ``unknown`` it still says who the face most
  resembles (a user who sees "Ada?" can correct it); it never beats a clear match.

Why two thresholds and not the model card's one: the card's threshold (SFace 0.363) is a 1:1
*verification* point (FAR 1e-3 over pairs: "are these two photos the same person?"). A gallery
compares each face with every person, so strangers are falsely named far more often: on LFW, a
stranger matches one of 200 enrolled people at 0.363 in about 45 % of photos. The defaults below
are *open-set* points measured with ``facescope eval openset`` (LFW, 200 people enrolled from 3
photos, about 3,500 stranger photos, 10 seeds): ``unknown`` at a stranger false-positive rate of
1e-2, ``confirmed`` at 1e-3. They rise with the gallery's size; for a household gallery of a few
people they are conservative (fewer false names than stated, at a small cost in named faces).
Embedders without a calibration here (another card, a model you trained) keep the single
threshold of their card (``DecisionConfig.single``), as before, until you calibrate them and pass
``--threshold`` / ``--confirmed`` / ``--margin``.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from engine.records import NO_ID, STATUS_CONFIRMED, STATUS_PROBABLE, STATUS_UNKNOWN
from engine.util.check import check as _check


@dataclass(frozen=True)
class DecisionConfig:
    """``unknown``: cosine below which a face has no name. ``confirmed``: cosine from which a
    name is confirmed (>= ``unknown``; equal = no probable band). ``margin``: how far (cosine) the
    best person must lead the second-best person for a confirmed name (0 = no margin rule)."""

    unknown: float
    confirmed: float
    margin: float = 0.0

    def __post_init__(self) -> None:
        for key in ("unknown", "confirmed", "margin"):
            value = getattr(self, key)
            _check(isinstance(value, numbers.Real) and math.isfinite(value),
                   f"decision {key} must be a finite number, got {value!r}")
        _check(-1.0 <= self.unknown <= 1.0,
               f"decision unknown threshold must be a cosine in [-1, 1], got {self.unknown}")
        _check(self.unknown <= self.confirmed <= 1.0,
               f"decision confirmed threshold must be in [unknown={self.unknown}, 1], got {self.confirmed}")
        _check(0.0 <= self.margin <= 2.0, f"decision margin must be in [0, 2], got {self.margin}")

    @classmethod
    def single(cls, threshold: float) -> DecisionConfig:
        """The one-threshold rule (a model card's threshold, or a bare ``--threshold``): every
        name at or above it is confirmed, no margin."""
        return cls(float(threshold), float(threshold), 0.0)


# Open-set points per embedder (card id = name@sha256[:12]), from `facescope eval openset --seeds
# 0,...,9` on LFW (README "Thresholds"): the MEDIAN over the 10 seeds of the thresholds reaching
# stranger FPR 1e-2 (unknown: 0.4613) and 1e-3 (confirmed: 0.5187) with a 200-person gallery (the
# median, because one seed in ten leaves a look-alike of an enrolled person among the strangers --
# Abdullah Gul, 0.70-0.79 against Recep Tayyip Erdogan -- which lifts its threshold to 0.746).
# Margin: the largest tested margin that costs at most one of the 7,771 genuine probes of the 10
# seeds at the confirmed point (0.03: 7,669 -> 7,668 named right; 0.05 costs 5); on LFW it buys
# nothing at these thresholds (the same 37 strangers confirmed with margins 0 to 0.1, the same 4
# wrong names), so it is a cheap guard for look-alikes who are both enrolled (siblings), which LFW
# does not test, not a measured gain.
CALIBRATED: dict[str, DecisionConfig] = {
    "sface@fb143eea0783": DecisionConfig(unknown=0.461, confirmed=0.519, margin=0.03),
}


def decision_for(embedder_id: str, card_threshold: float, unknown: float | None = None,
                 confirmed: float | None = None, margin: float | None = None) -> DecisionConfig:
    """The decision a recognizer applies: the calibrated one of ``embedder_id`` (else the card's
    single threshold), with any of ``unknown`` / ``confirmed`` / ``margin`` given by the user
    replacing it. A user ``unknown`` above the default ``confirmed`` lifts ``confirmed`` to it
    (a bare ``--threshold 0.6`` still means "no name below 0.6, a name above")."""
    base = CALIBRATED.get(embedder_id) or DecisionConfig.single(card_threshold)
    u = base.unknown if unknown is None else float(unknown)
    c = base.confirmed if confirmed is None else float(confirmed)
    if confirmed is None:
        c = max(c, u)
    return DecisionConfig(u, c, base.margin if margin is None else float(margin))


Rule = DecisionConfig | float


def classify(person_ids: np.ndarray, similarities: np.ndarray, rule: Rule,
             negative: np.ndarray | None = None, second: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """THE open-set decision, graded: (Q,) person ids of the best matches, their (Q,) cosine
    similarities -> ``(ids (Q,) int64, status (Q,) int8 STATUS_*)``.

    ``rule``: a :class:`DecisionConfig` (two thresholds + margin) or a float (one threshold:
    ``DecisionConfig.single``). Unknown (``NO_ID``): no match, NaN, below ``rule.unknown``, or
    (given ``negative`` (Q,), ``SearchResult.negative``) closer to that person's "not this person"
    examples than to their faces. Confirmed: at or above ``rule.confirmed`` and, given ``second``
    (Q,) (``SearchResult.second``), ``similarity - second >= rule.margin``; the rest is probable
    (the person's id, shown as "Name?"). A margin > 0 with a face to confirm and no ``second`` is
    a ValueError (a caller must not lose the rule silently).
    Every caller (pipeline votes, still-image matching, ``match``) goes through here.
    """
    rule = rule if isinstance(rule, DecisionConfig) else DecisionConfig.single(float(rule))
    pids = np.asarray(person_ids, np.int64)
    sims = np.asarray(similarities, np.float32)
    with np.errstate(invalid="ignore"):
        known = (pids != NO_ID) & np.isfinite(sims) & (sims >= np.float32(rule.unknown))
        if negative is not None:
            known &= ~(np.asarray(negative, np.float32) > sims)
        sure = known & (sims >= np.float32(rule.confirmed))
        if rule.margin > 0 and sure.any():
            if second is None:
                raise ValueError("a decision with a margin needs the second-best person's similarities")
            sure &= (sims - np.asarray(second, np.float32)) >= np.float32(rule.margin)
    status = np.where(sure, STATUS_CONFIRMED, np.where(known, STATUS_PROBABLE, STATUS_UNKNOWN)).astype(np.int8)
    return np.where(known, pids, NO_ID), status


def decide(person_ids: np.ndarray, similarities: np.ndarray, threshold: Rule,
           negative: np.ndarray | None = None, second: np.ndarray | None = None) -> np.ndarray:
    """:func:`classify`'s ids only: (Q,) int64, ``NO_ID`` where the face is unknown (a probable
    face keeps its person's id). ``threshold``: a float (one threshold) or a DecisionConfig."""
    rule = threshold if isinstance(threshold, DecisionConfig) else DecisionConfig.single(float(threshold))
    if second is None and rule.margin > 0:  # the ids do not depend on the margin
        rule = DecisionConfig(rule.unknown, rule.confirmed, 0.0)
    return classify(person_ids, similarities, rule, negative, second)[0]
