"""``facescope eval corrections``: do "not this person" corrections stick, and at what cost?

Protocol, on a :class:`engine.metrics.openset.PeopleSplit`: the enrolled people go into a REAL
gallery file (``engine.gallery.Gallery``, SQLite, in a folder the caller gives), and every face
is matched by ``GalleryIndex.match`` with the decision under test, i.e. the app's own code path.
For each stranger (a person never enrolled) with at least ``corrections + 1`` photos whose photos
are falsely named: X = the person their first falsely named photo is given; the user says
"not X" (:func:`engine.gallery.negatives.add_negative`, one transaction each) on up to
``corrections`` of their photos named X. Measured before and after all the corrections:

* the stranger's OTHER photos (never corrected) named X, and named anyone;
* every stranger photo except the corrected ones, named anyone;
* genuine probes (enrolled people's other photos) named as themselves: corrections must not
  cost the enrolled people their names (the acceptance bar: within 0.2 points).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.metrics.openset import ENROL, GENUINE, STRANGER, PeopleSplit
from engine.records import NO_ID


@dataclass(frozen=True)
class CorrectionResult:
    """Counts before -> after the corrections; rates are fractions in [0, 1]."""

    rule: dict
    strangers_corrected: int
    negatives: int
    other_photos: int
    other_as_x: tuple[int, int]
    other_named: tuple[int, int]
    stranger_photos: int
    stranger_named: tuple[int, int]
    genuine_probes: int
    genuine_rate: tuple[float, float]

    @property
    def genuine_change_points(self) -> float:
        return 100.0 * (self.genuine_rate[1] - self.genuine_rate[0])

    def to_json(self) -> dict:
        pair = lambda v: {"before": v[0], "after": v[1]}  # noqa: E731
        return {"rule": self.rule, "strangers_corrected": self.strangers_corrected, "negatives": self.negatives,
                "other_photos": self.other_photos, "other_photos_named_as_x": pair(self.other_as_x),
                "other_photos_named": pair(self.other_named), "stranger_photos": self.stranger_photos,
                "stranger_photos_named": pair(self.stranger_named), "genuine_probes": self.genuine_probes,
                "genuine_named_right": pair(self.genuine_rate),
                "genuine_change_points": self.genuine_change_points}


def run_corrections(split: PeopleSplit, embeddings: np.ndarray, rule, folder: str | Path, embedder_id: str,
                    corrections: int = 1) -> CorrectionResult:
    """Enrol ``split``'s gallery into a new gallery file in ``folder``, correct strangers as in the
    module doc and measure. ``embeddings`` (N, D) parallel to ``split.paths``; ``rule``: a
    DecisionConfig or a float threshold (what ``GalleryIndex.match`` takes)."""
    from engine.gallery import Gallery
    from engine.gallery.negatives import add_negative

    if corrections < 1:
        raise ValueError(f"corrections must be >= 1, got {corrections}")
    emb = np.asarray(embeddings, np.float32)
    if emb.shape[0] != len(split.paths):
        raise ValueError(f"{emb.shape[0]} embeddings for {len(split.paths)} photos")
    path = Path(folder) / "corrections.db"
    if path.exists():
        raise ValueError(f"{path} exists: run_corrections needs a gallery of its own")
    role, person, names = split.role, split.person, split.names
    with Gallery.open(path, embedder_id, emb.shape[1], frontend="api") as gallery:
        for p in split.enrolled.tolist():
            gallery.enroll(names[p], emb[(person == p) & (role == ENROL)])
        label_of = gallery.index.names  # person id -> name
        pid_of = {n: pid for pid, n in label_of.items()}

        def named(rows: np.ndarray) -> np.ndarray:  # (R,) person id per photo, NO_ID when unknown
            return gallery.index.match(emb[rows], rule)[0] if len(rows) else np.zeros(0, np.int64)

        strangers = np.flatnonzero(role == STRANGER)
        genuine = np.flatnonzero(role == GENUINE)
        truth = np.array([pid_of[names[p]] for p in person[genuine]], np.int64)
        s_before = named(strangers)
        g_before = float(np.mean(named(genuine) == truth))
        fixed, others, x_of_other, count = [], [], [], 0
        for p in np.unique(person[strangers]).tolist():
            rows = strangers[person[strangers] == p]
            if len(rows) < corrections + 1:
                continue
            got = s_before[np.searchsorted(strangers, rows)]
            if not (got != NO_ID).any():
                continue
            x = int(got[got != NO_ID][0])
            chosen = rows[got == x][:corrections]
            for r in chosen.tolist():
                add_negative(gallery, label_of[x], emb[r])
            fixed += chosen.tolist()
            rest = np.setdiff1d(rows, chosen)
            others += rest.tolist()
            x_of_other += [x] * len(rest)
            count += 1
        others_a, x_arr = np.array(others, np.int64), np.array(x_of_other, np.int64)
        o_before = s_before[np.searchsorted(strangers, others_a)]
        o_after = named(others_a)
        keep = np.setdiff1d(strangers, np.array(fixed, np.int64))
        s_after = named(keep)
        g_after = float(np.mean(named(genuine) == truth))
        n_neg = len(fixed)
    rule_json = dataclasses.asdict(rule) if dataclasses.is_dataclass(rule) else {"threshold": float(rule)}
    return CorrectionResult(
        rule_json, count, n_neg, len(others_a),
        (int((o_before == x_arr).sum()), int((o_after == x_arr).sum())),
        (int((o_before != NO_ID).sum()), int((o_after != NO_ID).sum())),
        len(keep), (int((s_before[np.searchsorted(strangers, keep)] != NO_ID).sum()), int((s_after != NO_ID).sum())),
        len(genuine), (g_before, g_after))
