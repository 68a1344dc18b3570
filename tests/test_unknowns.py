"""The unknown-people lane: unknown sightings of real LFW faces grouped (DBSCAN rule), ids that
survive restarts and sightings coming and going, name / merge / ignore in one audited
transaction each, and the CLI. Real models, real SQLite, LFW photos from ../shared."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_cli import facescope

PEOPLE = ("Colin_Powell", "Tony_Blair", "Donald_Rumsfeld")


@pytest.fixture(scope="module")
def faces(lfw_dir):
    """Person -> list of (crop, embedding, quality) for 7 photos each (the 7th is held out)."""
    from engine.config import RecognizerConfig
    from engine.imageio import read_image
    from engine.recognizer import Recognizer
    from engine.track import face_quality

    rec = Recognizer.from_config(RecognizerConfig.still())
    out = {}
    for name in PEOPLE:
        out[name] = []
        for path in sorted((lfw_dir / "lfw-deepfunneled" / name).glob("*.jpg"))[:7]:
            image = read_image(path)
            f = rec.largest(image)
            assert len(f) == 1, path
            out[name].append((rec.embedder.aligned_crops(image, f.keypoints)[0], f.embeddings[0],
                              float(face_quality(f, image.shape)[0])))
    return rec, out


def sighting(sample, t: float, source: str = "rtsp://cam/1"):
    from engine.sightings import Sighting

    crop, emb, q = sample
    return Sighting(-1, source, t - 3, t, 12, crop, emb, q)


@pytest.fixture
def gallery(faces, tmp_path):
    from engine.gallery import Gallery
    from engine.sightings import store

    rec, per = faces
    g = Gallery.open(tmp_path / "g.db", rec.embedder.id, rec.embedder.dim)
    now = time.time()
    ids = {n: store.record(g, [sighting(s, now - 60 * i) for i, s in enumerate(per[n][:6])]) for n in PEOPLE}
    yield g, ids
    g.close()


def group_of(g, sighting_ids) -> set:
    q = ",".join(map(str, sighting_ids))
    return {r[0] for r in g.db.execute(f"SELECT group_id FROM sightings WHERE id IN ({q})")}


def test_one_group_per_stranger_with_ids_that_persist(gallery, faces, tmp_path):
    from engine.gallery import Gallery
    from engine.sightings import store, unknowns

    g, ids = gallery
    rec, per = faces
    summary = unknowns.regroup(g)
    assert summary["groups"] == 3 and summary["new"] == 3
    gid = {n: group_of(g, ids[n]) for n in PEOPLE}
    assert all(len(v) == 1 and None not in v for v in gid.values())  # pure, complete groups
    assert len({next(iter(v)) for v in gid.values()}) == 3
    audit_n = len(g.audit_entries())
    assert unknowns.regroup(g)["new"] == 0 and len(g.audit_entries()) == audit_n  # nothing changed: no entry

    g.close()  # a restart keeps the ids
    g2 = Gallery.open(tmp_path / "g.db", rec.embedder.id, rec.embedder.dim)
    unknowns.regroup(g2)
    assert {n: group_of(g2, ids[n]) for n in PEOPLE} == gid
    # sightings come (the held-out photo) and go (two of Blair's purged): ids stay
    new = store.record(g2, [sighting(per["Colin_Powell"][6], time.time(), "cam2")])
    store.delete(g2, ids["Tony_Blair"][:2])
    unknowns.regroup(g2)
    assert group_of(g2, new) == gid["Colin_Powell"]
    assert group_of(g2, ids["Tony_Blair"][2:]) == gid["Tony_Blair"]
    listed = {x.id: x for x in unknowns.groups(g2)}
    powell = listed[next(iter(gid["Colin_Powell"]))]
    assert powell.sightings == 7 and set(powell.sources) == {"rtsp://cam/1", "cam2"} and len(powell.best) == 5
    g2.close()


def test_naming_a_group_enrols_its_best_crops_in_one_transaction(gallery, faces):
    from engine.sightings import unknowns

    g, ids = gallery
    rec, per = faces
    unknowns.regroup(g)
    gid = next(iter(group_of(g, ids["Donald_Rumsfeld"])))
    pid, fids = unknowns.name_group(g, gid, "Donald", k=4)
    assert len(fids) == 4 and [p.name for p in g.persons()] == ["Donald"]
    assert {r[0] for r in g.db.execute("SELECT person_id FROM sightings WHERE id IN "
                                       f"({','.join(map(str, ids['Donald_Rumsfeld']))})")} == {pid}
    assert gid not in {x.id for x in unknowns.groups(g, include_ignored=True)}
    e = g.audit_entries()[-1]
    assert (e.action, e.person_id, e.details["faces"], e.details["sightings"]) == ("name_group", pid, 4, 6)
    # the held-out photo is now identified; the other strangers are not
    pids = g.index.match(np.stack([per["Donald_Rumsfeld"][6][1], per["Tony_Blair"][6][1]]), rec.threshold)[0]
    assert pids.tolist() == [pid, -1]
    with pytest.raises(KeyError):
        unknowns.name_group(g, 9999, "X")
    assert len(g.persons()) == 1


def test_merge_sticks_and_ignore_keeps_an_anchor(gallery, faces):
    from engine.sightings import store, unknowns

    g, ids = gallery
    _, per = faces
    unknowns.regroup(g)
    a, b = (next(iter(group_of(g, ids[n]))) for n in ("Colin_Powell", "Tony_Blair"))
    assert unknowns.merge_groups(g, a, b) == 6
    unknowns.regroup(g)  # DBSCAN finds two clusters, but both keep the merged id
    assert group_of(g, ids["Colin_Powell"] + ids["Tony_Blair"]) == {a}

    c = next(iter(group_of(g, ids["Donald_Rumsfeld"])))
    unknowns.ignore_group(g, c)
    assert c not in {x.id for x in unknowns.groups(g)}
    store.delete(g, ids["Donald_Rumsfeld"])  # his sightings expire ...
    back = store.record(g, [sighting(s, time.time()) for s in per["Donald_Rumsfeld"][3:7]])
    unknowns.regroup(g)  # ... and he comes back: he joins the ignored anchor, no new group forms
    assert group_of(g, back) == {c}
    assert [x.id for x in unknowns.groups(g)] == [a]
    assert [e.action for e in g.audit_entries()][-5:] == ["merge_groups", "ignore_group", "purge_sightings",
                                                          "record_sightings", "regroup"]


def test_suggests_a_known_person_just_below_the_threshold(gallery, faces):
    from engine.sightings import unknowns
    from engine.sightings.grouping import GroupingConfig

    g, ids = gallery
    rec, per = faces
    g.enroll("Tony", np.stack([per["Tony_Blair"][6][1]]))
    unknowns.regroup(g)
    gid = next(iter(group_of(g, ids["Tony_Blair"])))
    centroid = np.frombuffer(g.db.execute("SELECT centroid FROM unknown_groups WHERE id = ?", [gid]).fetchone()[0],
                             "<f4")
    sim = float(g.index.search(centroid)[2][0])
    hints = {x.id: x.suggestion for x in unknowns.groups(g, sim + 0.05, config=GroupingConfig(suggest_within=0.1))}
    assert hints[gid] == ("Tony", pytest.approx(sim))
    others = [h for k, h in hints.items() if k != gid]
    assert others == [None, None]
    assert all(h is None for h in (x.suggestion for x in unknowns.groups(g, sim - 0.01)))  # above: no hint


def test_cli_lists_names_merges_and_ignores(gallery, tmp_path: Path):
    g, ids = gallery
    db = g.path
    g.close()
    listed = json.loads(facescope("unknowns", "list", "--gallery", db, "--format", "json").stdout)
    assert len(listed) == 3 and all(x["sightings"] == 6 for x in listed)
    first, second, third = (x["id"] for x in listed)
    out = facescope("unknowns", "name", "--gallery", db, str(first), "Someone", "--k", "3").stdout
    assert "3 face(s) enrolled" in out
    facescope("unknowns", "merge", "--gallery", db, str(second), str(third))
    facescope("unknowns", "ignore", "--gallery", db, str(second))
    assert json.loads(facescope("unknowns", "list", "--gallery", db, "--format", "json").stdout) == []
    everything = json.loads(facescope("unknowns", "list", "--gallery", db, "--all", "--format", "json").stdout)
    assert [(x["id"], x["status"], x["sightings"]) for x in everything] == [(second, "ignored", 12)]
    bad = facescope("unknowns", "name", "--gallery", db, "777", "X", check=False)
    assert bad.returncode == 2 and "777" in bad.stderr
