"""``facescope eval grouping``: does the unknown-people lane find strangers, keep their ids, and
learn them when they are named? Measured end to end on synthetic clips of real LFW faces.

Per seed: LFW people are picked (``enrolled`` with enough photos to enrol, ``strangers`` never
enrolled); a gallery file in a temporary folder gets the enrolled people's photos. Pass 1 is
``visits`` clips (:func:`engine.synth.make_clip`, a new layout, background and usually a new
photo of each person every visit, one ``exit`` event per 255 frames in which an edge face leaves
and comes back): each clip runs through the real-time pipeline with the gallery's index and the
sightings collector, exactly as ``facescope run --gallery`` does, and the sightings are written
to the gallery. Every sighting is labelled with the truth identity its track matched most.
Then the unknown sightings are regrouped (:func:`engine.sightings.unknowns.regroup`) and scored
(:func:`engine.metrics.grouping.score_grouping`). Pass 2 is ``visits`` more clips of the same
people (other seeds): regrouped and scored again, and every stranger's pass-1 group must keep
its id and take in the stranger's pass-2 sightings. Then each group is named after its owner
(:func:`engine.sightings.unknowns.name_group`, the ``facescope unknowns name`` path) and pass 2's
clips run again, and then ``visits`` new clips (pass 3: other seeds, new photos where LFW has
them): the identification rate of the formerly unknown people is the share of their visible
frames (at least half of the face box visible) labelled with their name; frames labelled with
another name are counted apart (wrong).
"""
from __future__ import annotations

import math
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.metrics.grouping import group_owners, score_grouping
from engine.sightings.grouping import GroupingConfig

VISIBLE = 0.5  # a face counts for identification when at least this much of its box is visible


@dataclass(frozen=True)
class GroupingEvalConfig:
    """``enrolled``/``strangers`` people per clip, ``visits`` clips per pass of ``frames`` frames
    at ``size`` (W, H); enrolled people get ``gallery_images`` photos; strangers are LFW people
    with at least ``stranger_images`` photos (so that visits can show different photos); naming
    enrols a group's best ``name_k`` crops; ``grouping``: the grouping rule under test."""

    enrolled: int = 2
    strangers: int = 3
    visits: int = 3
    frames: int = 300
    size: tuple[int, int] = (960, 540)
    gallery_images: int = 2
    stranger_images: int = 2
    name_k: int = 5
    grouping: GroupingConfig = field(default_factory=GroupingConfig)
    sweep: tuple[float, ...] = ()  # other grouping distances scored on the same sightings (no writes)

    def __post_init__(self) -> None:
        for name, lo in (("enrolled", 1), ("strangers", 1), ("visits", 1), ("frames", 30), ("gallery_images", 1),
                         ("stranger_images", 1), ("name_k", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise ValueError(f"GroupingEvalConfig.{name} must be an int >= {lo}, got {v!r}")
        if len(self.size) != 2 or min(self.size) < 64:
            raise ValueError(f"GroupingEvalConfig.size must be (W, H) >= 64, got {self.size!r}")


def pick_people(lfw_root: Path, seed: int, cfg: GroupingEvalConfig) -> tuple[list[str], list[str]]:
    """(enrolled names, stranger names) drawn from LFW with ``seed``, never the same person twice."""
    from engine.synth.clip import _people

    people = _people(str(lfw_root))
    need = max(4, 1 + cfg.gallery_images)
    rng = np.random.default_rng(seed)
    known = [n for n, f in people if len(f) >= need]
    enrolled = [known[i] for i in rng.choice(len(known), cfg.enrolled, replace=False)]
    pool = [n for n, f in people if len(f) >= cfg.stranger_images and n not in enrolled]
    strangers = [pool[i] for i in rng.choice(len(pool), cfg.strangers, replace=False)]
    return enrolled, strangers


class _Pass:
    """Runs clips through the real-time pipeline, writes their sightings, scores identification."""

    def __init__(self, recognizer, gallery, names: list[str]) -> None:
        self.rec, self.gallery, self.names = recognizer, gallery, names
        self.truth: dict[int, str | None] = {}  # sighting id -> identity
        self.hits: Counter = Counter()           # identity -> visible frames labelled with its name
        self.seen: Counter = Counter()           # identity -> visible frames
        self.wrong: Counter = Counter()          # identity -> visible frames labelled with another name
        self.photos: dict[str, set[str]] = defaultdict(set)

    def run(self, clip) -> None:
        from engine.capture import Capture, CaptureConfig, parse_source
        from engine.pipeline import Pipeline
        from engine.sightings import SightingCollector, SightingConfig, store
        from engine.synth import load_truth, match_truth

        truth = load_truth(clip.truth_path)
        who = {p["id"]: p["name"] for p in truth["identities"]}
        for p in truth["identities"]:
            self.photos[p["name"]].add(Path(p["sprite_image"]).name)
        spec = parse_source(str(clip.path))
        pipeline = Pipeline(self.rec, self.gallery.index)
        collector = SightingCollector(spec.display, SightingConfig())
        tracks: dict[int, Counter] = defaultdict(Counter)
        with Capture(spec, CaptureConfig(realtime=False)) as capture:
            capture.start()
            for r in pipeline.run(capture):
                objs = truth["frames"][r.frame.index]
                faces = r.faces
                ids = match_truth(faces.boxes, objs) if len(faces) else np.zeros(0, np.int64)
                for tid, t in zip(faces.track_ids.tolist(), ids.tolist(), strict=True):
                    if t >= 0 and tid >= 0:
                        tracks[tid][who[t]] += 1
                named = {t: faces.names[k] for k, t in enumerate(ids.tolist()) if t >= 0}
                for o in objs:
                    if o["visible_fraction"] >= VISIBLE:
                        self.seen[o["name"]] += 1
                        got = named.get(o["id"])
                        self.hits[o["name"]] += got == o["name"]
                        self.wrong[o["name"]] += got is not None and got != o["name"]
                collector.observe(r)
        collector.end_all()
        done = collector.take()
        for sid, s in zip(store.record(self.gallery, done), done, strict=True):
            c = tracks.get(s.track_id)
            self.truth[sid] = c.most_common(1)[0][0] if c else None

    def rate(self, names, wrong: bool = False) -> float | None:
        seen = sum(self.seen[n] for n in names)
        return sum((self.wrong if wrong else self.hits)[n] for n in names) / seen if seen else None


def _groups(gallery) -> dict[int, int | None]:
    """Unknown sighting id -> group id (None: ungrouped)."""
    return dict(gallery.db.conn.execute("SELECT id, group_id FROM sightings WHERE person_id IS NULL").fetchall())


def _clips(lfw: Path, folder: Path, names: list[str], seeds: list[int], cfg: GroupingEvalConfig) -> list:
    from engine.synth import make_clip

    return [make_clip(folder / f"visit{s}.avi", lfw, faces=cfg.enrolled, unknown_faces=cfg.strangers,
                      frames=cfg.frames, size=cfg.size, seed=s, gallery_images=cfg.gallery_images, names=names)
            for s in seeds]


def eval_seed(recognizer, lfw: Path, seed: int, cfg: GroupingEvalConfig, folder: Path, progress=None) -> dict:
    """One seed, start to end, in ``folder`` (clips and gallery); see the module docstring."""
    from engine.gallery import Gallery
    from engine.live_enrolment import enrol_image_files
    from engine.sightings import unknowns

    say = progress or (lambda _msg: None)
    enrolled, strangers = pick_people(lfw, seed, cfg)
    names = enrolled + strangers
    first = _clips(lfw, folder, names, [1000 * seed + v for v in range(cfg.visits)], cfg)
    gallery_path = folder / "gallery.db"
    emb = recognizer.embedder
    with Gallery.open(gallery_path, emb.id, emb.dim, create=True) as g:
        photo = recognizer.for_photos()
        for p in first[0].enrolled:
            n, problems = enrol_image_files(g, photo, p["enrol_images"], p["name"])
            if n == 0:
                raise RuntimeError(f"could not enrol {p['name']}: {problems}")
        say(f"seed {seed}: pass 1, {cfg.visits} clips; enrolled {', '.join(enrolled)}; strangers "
            f"{', '.join(strangers)}")
        one = _Pass(recognizer, g, names)
        for clip in first:
            one.run(clip)
        unknowns.regroup(g, cfg.grouping)
        score1 = score_grouping(one.truth, _groups(g), strangers)
        sweep1 = _sweep(g, one.truth, strangers, cfg)
        owners1 = group_owners(one.truth, _groups(g))
    # a restart between the passes: ids must come back from the file
    second = _clips(lfw, folder, names, [1000 * seed + 100 + v for v in range(cfg.visits)], cfg)
    say(f"seed {seed}: pass 2, {cfg.visits} more clips of the same people")
    with Gallery.open(gallery_path, emb.id, emb.dim, create=False) as g:
        two = _Pass(recognizer, g, names)
        for clip in second:
            two.run(clip)
        unknowns.regroup(g, cfg.grouping)
        groups = _groups(g)
        both = {**one.truth, **two.truth}
        score2 = score_grouping(both, groups, strangers)
        sweep2 = _sweep(g, both, strangers, cfg)
        persist = _persistence(owners1, one.truth, two.truth, groups, strangers)
        named = _name_groups(g, group_owners(both, groups), set(names), cfg.name_k)
        say(f"seed {seed}: named {named['named']} groups; pass 2 again")
        again = _Pass(recognizer, g, names)
        for clip in second:
            again.run(clip)
        third = _clips(lfw, folder, names, [1000 * seed + 200 + v for v in range(cfg.visits)], cfg)
        say(f"seed {seed}: pass 3, {cfg.visits} new clips of the same people")
        fresh = _Pass(recognizer, g, names)
        for clip in third:
            fresh.run(clip)
    return {"seed": seed, "enrolled": enrolled, "strangers": strangers,
            "photos": {n: sorted(one.photos[n] | two.photos[n]) for n in names},
            "new_photos_pass3": {n: sorted(fresh.photos[n] - one.photos[n] - two.photos[n]) for n in strangers},
            "pass1": score1, "pass2": score2, "persistence": persist, "naming": named,
            "sweep": {"pass1": sweep1, "pass2": sweep2},
            "identified_before_naming": two.rate(strangers), "wrong_before_naming": two.rate(strangers, True),
            "identified_after_naming": again.rate(strangers), "wrong_after_naming": again.rate(strangers, True),
            "identified_pass3": fresh.rate(strangers), "wrong_pass3": fresh.rate(strangers, True),
            "enrolled_identified": two.rate(enrolled), "enrolled_identified_after_naming": again.rate(enrolled)}


def _sweep(gallery, truth: dict, strangers: list[str], cfg: GroupingEvalConfig) -> dict:
    """{distance: score} of the grouping other ``max_distance`` values would make of the same
    sightings now (computed from a snapshot, never written)."""
    from dataclasses import replace

    from engine.sightings import regrouping

    snap = regrouping.snapshot(gallery)
    out = {}
    for d in cfg.sweep:
        plan = regrouping.compute(snap, replace(cfg.grouping, max_distance=float(d)))
        group = {int(i): (None if g < 0 else int(g)) for i, g in zip(snap.ids.tolist(), plan.group.tolist(),
                                                                       strict=True)}
        score = score_grouping(truth, group, strangers)
        out[f"{float(d):.2f}"] = {k: v for k, v in score.items() if k != "per_stranger"}
    return out


def _persistence(owners1: dict, truth1: dict, truth2: dict, groups: dict, strangers: list[str]) -> dict:
    """Per stranger grouped in pass 1: did every pass-1 group id it owned survive, and did its
    pass-2 sightings that are grouped at all go to one of those ids (by majority) rather than to
    a new group? Pass-2 sightings left ungrouped (e.g. too poor) count in ``grouped``, not here."""
    per = {}
    for s in strangers:
        ids1 = {g for g, o in owners1.items() if o[0] == s}
        if not ids1:
            continue
        kept = all(any(groups.get(sid) == g for sid, who in truth1.items() if who == s) for g in ids1)
        mine = [groups.get(sid) for sid, who in truth2.items() if who == s]
        where = Counter(g for g in mine if g is not None)
        top = where.most_common(1)[0][0] if where else None
        per[s] = {"pass1_groups": sorted(ids1), "kept": kept, "pass2_joined": top in ids1,
                  "pass2_sightings": len(mine), "pass2_grouped": sum(where.values()),
                  "pass2_in_pass1_groups": sum(n for g, n in where.items() if g in ids1)}
    ok = [p["kept"] and p["pass2_joined"] for p in per.values()]
    return {"strangers": len(per), "persisted": sum(ok), "rate": sum(ok) / len(ok) if ok else None, "per_stranger": per}


def _name_groups(gallery, owners: dict, names: set[str], k: int) -> dict:
    """Name every group after its owner (a user naming each tile); groups owned by no true face are ignored."""
    from engine.sightings import unknowns

    done = {"named": 0, "ignored": 0, "faces": 0}
    for gid, (owner, _n, _all) in sorted(owners.items()):
        if owner in names:
            _, fids = unknowns.name_group(gallery, gid, owner, k)
            done["named"] += 1
            done["faces"] += len(fids)
        else:
            unknowns.ignore_group(gallery, gid)
            done["ignored"] += 1
    return done


def _pooled(scores: list[dict]) -> dict:
    """Scores of several seeds pooled: counts summed, groups per stranger over all covered, worst purity."""
    covered = sum(s["covered"] for s in scores)
    owned = sum(s["groups_per_stranger"] * s["covered"] for s in scores if s["covered"])
    return {"strangers": sum(s["strangers"] for s in scores), "covered": covered,
            "groups_per_stranger": owned / covered if covered else None,
            "purity_min": min((s["purity"] for s in scores if s["purity"] is not None), default=None),
            "mixed_groups": sum(s["mixed_groups"] for s in scores),
            "other_groups": sum(s["other_groups"] for s in scores),
            "grouped": _mean(s["grouped"] for s in scores)}


def _mean(values) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def eval_grouping(lfw: str | Path, seeds, cfg: GroupingEvalConfig | None = None, recognizer=None,
                  workdir: str | Path | None = None, progress=None) -> dict:
    """Run :func:`eval_seed` for every seed; per-seed results and their summary (pooled counts)."""
    from engine.live import realtime_recognizer
    from engine.synth.clip import _people

    cfg = cfg or GroupingEvalConfig()
    lfw = Path(lfw)
    root = lfw / "lfw-deepfunneled" if (lfw / "lfw-deepfunneled").is_dir() else lfw
    if not root.is_dir() or not _people(str(root)):
        raise ValueError(f"LFW folder not found or empty: {lfw}")
    rec = recognizer or realtime_recognizer()
    runs = []
    with tempfile.TemporaryDirectory(prefix="facescope-grouping-") as tmp:
        base = Path(workdir) if workdir else Path(tmp)
        for seed in seeds:
            folder = base / f"seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            runs.append(eval_seed(rec, root, int(seed), cfg, folder, progress))
    summary = {"seeds": [r["seed"] for r in runs], "pass1": _pooled([r["pass1"] for r in runs]),
               "pass2": _pooled([r["pass2"] for r in runs]),
               "persisted": sum(r["persistence"]["persisted"] for r in runs),
               "persistence_checked": sum(r["persistence"]["strangers"] for r in runs),
               **{k: _mean(r[k] for r in runs) for k in (
                   "identified_before_naming", "identified_after_naming", "identified_pass3", "wrong_before_naming",
                   "wrong_after_naming", "wrong_pass3", "enrolled_identified", "enrolled_identified_after_naming")}}
    if cfg.sweep:
        summary["sweep"] = {p: {d: _pooled([r["sweep"][p][d] for r in runs]) for d in runs[0]["sweep"][p]}
                            for p in ("pass1", "pass2")}
    return {"config": {"enrolled": cfg.enrolled, "strangers": cfg.strangers, "visits": cfg.visits,
                       "frames": cfg.frames, "size": list(cfg.size), "max_distance": cfg.grouping.max_distance,
                       "min_samples": cfg.grouping.min_samples, "min_quality": cfg.grouping.min_quality,
                       "sweep": list(cfg.sweep),
                       "embedder": rec.embedder.id, "threshold": rec.threshold},
            "seeds": runs, "summary": summary}
