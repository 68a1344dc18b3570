"""Sightings (schema v3): recorded by the live session and `facescope run` from the demo clip,
stored with their best crop, migrated into older galleries, erased with their person, purged
by retention, listed/exported/searched from the CLI. Real models, real SQLite, the demo clip."""
from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.capture import CaptureConfig, parse_source
from tests.conftest import REPO
from tests.test_cli import facescope
from tests.test_gallery_trust import all_bytes, entropy_fragments

DEMO = REPO / "resources" / "demo" / "megamind.avi"
ENROL = json.loads((REPO / "resources" / "demo" / "megamind_enrol.json").read_text())


def demo_frame(index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(DEMO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    assert ok, f"cannot read frame {index} of {DEMO}"
    return image


@pytest.fixture(scope="module")
def recognizer():
    from engine.live import realtime_recognizer

    return realtime_recognizer()


def enrol_demo_cast(gallery, rec, names=("Roxanne", "Bernard")) -> None:
    for entry in ENROL["enrol"]:
        if entry["name"] not in names:
            continue
        embs, crops = [], []
        for i in entry["frames"]:
            image = demo_frame(i)
            faces = rec.largest(image)
            assert len(faces) == 1
            embs.append(faces.embeddings[0])
            crops.append(rec.embedder.aligned_crops(image, faces.keypoints)[0])
        gallery.enroll(entry["name"], np.stack(embs), crops=crops)


@pytest.fixture(scope="module")
def recorded(recognizer, tmp_path_factory) -> Path:
    """A gallery with Roxanne enrolled (Bernard stays unknown) and the sightings of one pass of the clip."""
    from engine.live import LiveSession

    db = tmp_path_factory.mktemp("sightings") / "g.db"
    s = LiveSession(db, recognizer, capture_config=CaptureConfig(realtime=False))
    s.open()
    enrol_demo_cast(s.gallery, recognizer, names=("Roxanne",))
    for _ in s.run(parse_source(str(DEMO))):
        s.poll()
    s.poll()
    written = s.sightings_written
    s.close()
    assert written >= 2, written
    return db


def copy_of(db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "g.db"
    shutil.copy(db, out)
    return out


def rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT s.id, s.person_id, p.name, s.source, s.first_seen, s.last_seen, s.frames, "
                            "s.crop_jpeg, s.embedding, s.quality FROM sightings s "
                            "LEFT JOIN persons p ON p.id = s.person_id ORDER BY s.id").fetchall()
    finally:
        conn.close()


def test_a_pass_of_the_clip_records_named_and_unknown_sightings(recorded):
    got = rows(recorded)
    names = [r[2] for r in got]
    assert "Roxanne" in names and None in names  # Bernard was never enrolled: unknown
    t0 = time.time()
    for _, _, _, source, first, last, frames, jpeg, emb, quality in got:
        assert source == str(DEMO)
        assert t0 - 600 < first <= last <= t0 and frames >= 3
        crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape == (112, 112, 3) and crop.std() > 10  # a real face, not a blank
        v = np.frombuffer(emb, "<f4")
        assert v.shape == (128,) and abs(np.linalg.norm(v) - 1) < 1e-3 and 0 <= quality <= 1
    total_frames = sum(r[6] for r in got)
    assert total_frames <= 270 * 3  # no track counted twice (at most a few faces per frame)


def test_the_best_crop_of_a_named_sighting_matches_its_person(recorded, recognizer):
    from engine.gallery import Gallery

    with Gallery.open(recorded, recognizer.embedder.id, recognizer.embedder.dim, create=False) as g:
        for _, pid, name, *_, emb, _ in rows(recorded):
            if name == "Roxanne":
                pids, _, sims = g.index.search(np.frombuffer(emb, "<f4"))
                assert pids[0] == pid and sims[0] >= recognizer.threshold


def test_a_v2_gallery_opens_and_migrates_to_v3_in_one_step(recognizer, tmp_path):
    """A v2 file as the previous version wrote it (the v3 file minus the people tables, version 2):
    opening migrates it in one audited transaction, keeps every face, and the tables work."""
    from engine.gallery import SCHEMA_VERSION, Gallery

    db = tmp_path / "v2.db"
    with Gallery.open(db, recognizer.embedder.id, recognizer.embedder.dim) as g:
        enrol_demo_cast(g, recognizer)
        before = g.embeddings()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        for t in ("sightings", "negatives", "unknown_groups"):
            conn.execute(f"DROP TABLE {t}")
        conn.execute("UPDATE meta SET schema_version = 2")
    conn.execute("VACUUM")
    conn.close()
    assert Gallery.inspect(db).schema_version == 2  # the probe reads a v2 file (no people tables needed)
    with Gallery.open(db, recognizer.embedder.id, recognizer.embedder.dim) as g:
        assert Gallery.inspect(db).schema_version == SCHEMA_VERSION == 3
        entries = g.audit_entries()
        assert (entries[-1].action, entries[-1].details) == ("migrate", {"from_version": 2, "to_version": 3})
        assert g.verify_audit().ok
        ids, emb = g.embeddings()
        np.testing.assert_array_equal(ids, before[0])
        np.testing.assert_array_equal(emb, before[1])
        assert g.db.execute("SELECT count(*) FROM sightings").fetchone()[0] == 0
        n = len(entries)
    with Gallery.open(db, recognizer.embedder.id, recognizer.embedder.dim) as g:
        assert len(g.audit_entries()) == n  # migrated once


def test_embeddings_are_read_from_the_covering_indexes_added_to_older_v3_files(recorded, recognizer, tmp_path):
    """A v3 file made before ``sightings_vectors`` / ``sightings_group_cover`` gets them at the next
    writable open (not audited: no data changed); whole-table embedding reads, the regroup snapshot
    and a group's best sightings then come from them (no crop read), with the same ids in the same
    (ascending) order and the same bytes."""
    from engine.gallery import Gallery
    from engine.sightings import regrouping, store

    db = copy_of(recorded, tmp_path)
    conn = sqlite3.connect(db)
    with conn:  # the layout of a v3 file made before the covering indexes
        conn.execute("DROP INDEX sightings_vectors")
        conn.execute("DROP INDEX sightings_group_cover")
        conn.execute("CREATE INDEX sightings_group ON sightings (group_id)")
    by_table = conn.execute("SELECT id, embedding FROM sightings ORDER BY id").fetchall()
    conn.close()
    emb_id, dim = recognizer.embedder.id, recognizer.embedder.dim
    Gallery.inspect(db)  # reading only: not added
    assert not {"sightings_vectors", "sightings_group_cover"} & {r[0] for r in sqlite3.connect(db).execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}
    with Gallery.open(db, emb_id, dim) as g:
        n_audit = len(g.audit_entries())
        c = g.db.conn
        plan = " ".join(str(r) for r in c.execute("EXPLAIN QUERY PLAN SELECT id, embedding FROM sightings WHERE 1"))
        assert "COVERING INDEX sightings_vectors" in plan, plan
        plan = " ".join(str(r) for r in c.execute("EXPLAIN QUERY PLAN SELECT id, group_id, embedding, quality "
                                                   "FROM sightings WHERE person_id IS NULL"))
        assert "COVERING INDEX sightings_vectors" in plan, plan
        plan = " ".join(str(r) for r in c.execute("EXPLAIN QUERY PLAN SELECT id, quality, first_seen, last_seen, "
                                                   "source FROM sightings WHERE group_id = 1 ORDER BY quality DESC"))
        assert "COVERING INDEX sightings_group_cover" in plan, plan  # the unknown-people list reads no row
        ids, emb = store.embeddings(c, dim)
        assert ids.tolist() == [r[0] for r in by_table] and len(ids) >= 2
        np.testing.assert_array_equal(emb, np.stack([np.frombuffer(r[1], "<f4") for r in by_table]))
        snap = regrouping.snapshot(g)
        assert snap.ids.tolist() == sorted(snap.ids.tolist()) and len(snap.ids) >= 1
        assert store.search(c, emb[0], dim, 1)[0][0] == ids[0]
    with Gallery.open(db, emb_id, dim) as g:
        assert len(g.audit_entries()) == n_audit


def test_erasing_a_person_erases_their_sightings_to_the_last_byte(recorded, recognizer, tmp_path):
    from engine.gallery import Gallery

    db = copy_of(recorded, tmp_path)
    named = [r for r in rows(db) if r[2] == "Roxanne"]
    unknown = [r for r in rows(db) if r[2] is None]
    gone = [r[8] for r in named] + [f for r in named for f in entropy_fragments(r[7])]  # embeddings, crop pieces
    kept = [f for r in unknown for f in entropy_fragments(r[7])]
    with Gallery.open(db, recognizer.embedder.id, recognizer.embedder.dim, create=False) as g:
        g.delete_person("Roxanne")
    left = rows(db)
    assert [r[0] for r in left] == [r[0] for r in unknown]  # the unknown sightings stay
    data = all_bytes(db)
    assert not any(piece in data for piece in gone)
    assert sum(piece in data for piece in kept) >= len(kept) - 1  # the scan finds what is still there


def test_merging_people_keeps_their_sightings(recorded, recognizer, tmp_path):
    from engine.gallery import Gallery

    db = copy_of(recorded, tmp_path)
    n = sum(r[2] == "Roxanne" for r in rows(db))
    with Gallery.open(db, recognizer.embedder.id, recognizer.embedder.dim, create=False) as g:
        g.add_person("Ada")
        g.merge_persons("Roxanne", "Ada")
    assert sum(r[2] == "Ada" for r in rows(db)) == n > 0


def test_retention_purges_old_unknown_then_old_named_then_over_the_cap(recorded, recognizer, tmp_path):
    from engine.gallery import Gallery
    from engine.sightings import RetentionConfig, Sighting, store

    db = copy_of(recorded, tmp_path)
    day, now = 86400.0, time.time()
    with Gallery.open(db, recognizer.embedder.id, recognizer.embedder.dim, create=False) as g:
        store.delete(g)
        image = demo_frame(1)
        faces = recognizer.largest(image)
        crop = recognizer.embedder.aligned_crops(image, faces.keypoints)[0]
        pid = g.persons()[0].id

        def s(person, age_days):
            t = now - age_days * day
            return Sighting(person, "cam", t - 5, t, 10, crop, faces.embeddings[0], 0.8)

        ids = store.record(g, [s(-1, 31), s(-1, 29), s(pid, 89), s(pid, 91), s(pid, 1), s(-1, 0.5)])
        assert store.purge(g, RetentionConfig(), now=now) == 2  # unknown 31 d, named 91 d
        left = [r.id for r in store.list_sightings(g.db.conn)]
        assert sorted(left) == sorted([ids[1], ids[2], ids[4], ids[5]])
        assert store.purge(g, RetentionConfig(max_rows=2), now=now) == 2
        assert sorted(r.id for r in store.list_sightings(g.db.conn)) == sorted([ids[4], ids[5]])  # the newest two
        assert store.purge(g, RetentionConfig(), now=now) == 0
        actions = [e.action for e in g.audit_entries()]
        assert actions.count("purge_sightings") == 3 and actions[-1] == "purge_sightings"  # delete + 2 purges
        assert g.verify_audit().ok
        with pytest.raises(ValueError):
            store.record(g, [s(-1, 0), Sighting(-1, "cam", now, now - 1, 1, crop, faces.embeddings[0], 0.5)])
        assert len(store.list_sightings(g.db.conn)) == 2  # the bad batch wrote nothing


def test_retention_config_fails_loudly():
    from engine.sightings import RetentionConfig, SightingConfig

    for bad in ({"unknown_days": 0}, {"named_days": -1}, {"max_rows": 0}, {"unknown_days": float("nan")}):
        with pytest.raises(ValueError):
            RetentionConfig(**bad)
    with pytest.raises(ValueError):
        SightingConfig(min_frames=0)


def test_cli_lists_exports_searches_and_purges(recorded, recognizer, tmp_path):
    db = copy_of(recorded, tmp_path)
    listed = json.loads(facescope("sightings", "list", "--gallery", db, "--format", "json").stdout)
    assert len(listed) == len(rows(db)) and {d["name"] for d in listed} == {"Roxanne", None}
    assert listed == sorted(listed, key=lambda d: -d["last_seen"])  # newest first
    roxanne = json.loads(facescope("sightings", "list", "--gallery", db, "--person", "roxanne",
                                   "--format", "json").stdout)
    assert roxanne and all(d["name"] == "Roxanne" for d in roxanne)
    assert json.loads(facescope("sightings", "list", "--gallery", db, "--since", "2099-01-01",
                                "--format", "json").stdout) == []
    bad = facescope("sightings", "list", "--gallery", db, "--person", "Nobody", check=False)
    assert bad.returncode == 2 and "Nobody" in bad.stderr

    out = tmp_path / "s.csv"
    facescope("sightings", "export", "--gallery", db, "--out", out, "--crops", tmp_path / "crops", "--unknown")
    exported = list(csv.DictReader(out.open()))
    assert exported and all(r["name"] == "" for r in exported)
    for r in exported:
        crop = cv2.imread(str(tmp_path / "crops" / f"{r['id']}.jpg"))
        assert crop is not None and crop.shape == (112, 112, 3)

    photo = tmp_path / "roxanne.jpg"  # Roxanne alone: the frame cut around her face, with a margin
    image = demo_frame(61)
    x0, y0, x1, y1 = recognizer.largest(image).boxes[0]
    w, h = x1 - x0, y1 - y0
    cv2.imwrite(str(photo), image[max(0, int(y0 - h / 2)): int(y1 + h / 2), max(0, int(x0 - w / 2)): int(x1 + w / 2)])
    hits = json.loads(facescope("sightings", "search", "--gallery", db, "--image", photo, "--top", "3",
                                "--format", "json").stdout)
    assert hits[0]["name"] == "Roxanne" and hits[0]["cosine"] > 0.6

    assert "purged 0 sightings" in facescope("sightings", "purge", "--gallery", db).stdout  # all recent
    assert f"purged {len(listed)} sightings" in facescope("sightings", "purge", "--gallery", db, "--all").stdout
    assert rows(db) == []


def test_facescope_run_records_sightings(recorded, tmp_path):
    db = copy_of(recorded, tmp_path)
    n = len(rows(db))
    out = facescope("run", "--source", DEMO, "--gallery", db, "--frames", "120").stdout
    added = len(rows(db)) - n
    assert added >= 1 and f"{added} sightings recorded" in out
    facescope("run", "--source", DEMO, "--gallery", db, "--frames", "30", "--no-sightings")
    assert len(rows(db)) == n + added


def test_two_sources_in_a_row_lose_no_sighting(recognizer, tmp_path):
    """The worker finishes a source's visits when it ends; the owner writes them whenever it next
    polls, even after the next source started."""
    from engine.live import LiveSession

    s = LiveSession(tmp_path / "g.db", recognizer, capture_config=CaptureConfig(realtime=False))
    s.open()
    starts = []
    for _ in range(2):
        starts.append(time.time())
        for _ in s.run(parse_source(str(DEMO)), max_frames=60):
            pass  # no poll during or between the runs
    s.poll()
    written = s.sightings_written
    s.close()
    firsts = [r[4] for r in rows(tmp_path / "g.db")]
    assert len(firsts) == written
    assert any(t < starts[1] for t in firsts) and any(t >= starts[1] for t in firsts)  # visits of both runs


def test_a_stream_password_never_reaches_the_sightings(recognizer, tmp_path):
    """The session records ``SourceSpec.display`` (password masked), never the raw URL."""
    from engine.capture import Capture
    from engine.gallery import Gallery
    from engine.pipeline import Pipeline
    from engine.sightings import SightingCollector, store

    url = parse_source("rtsp://admin:hunter2@cam.local/stream?token=abc123")
    collector = SightingCollector(url.display)
    cap = Capture(parse_source(str(DEMO)), CaptureConfig(realtime=False))
    cap.start()
    for r in Pipeline(recognizer).run(cap, max_frames=40):
        collector.observe(r)
    cap.stop()
    collector.end_all()
    with Gallery.open(tmp_path / "g.db", recognizer.embedder.id, recognizer.embedder.dim) as g:
        assert store.record(g, collector.take())
        sources = {r.source for r in store.list_sightings(g.db.conn)}
    assert sources == {url.display} and "***" in url.display
    data = all_bytes(tmp_path / "g.db")
    assert b"hunter2" not in data and b"abc123" not in data


def test_a_sighting_written_after_its_person_was_erased_never_lands_on_someone_else(recognizer, tmp_path):
    """Visits finish on the worker and are written seconds later; meanwhile the person may be
    erased and the freed id handed to the next person enrolled (SQLite reuses the highest id). The
    sighting keeps the name it was decided with: written as unknown then, never as the newcomer
    (whose row is newer than the visit); a rename keeps it, and a person renumbered by an import
    with --replace keeps their sightings under the new id."""
    from engine.capture import Capture
    from engine.gallery import Gallery
    from engine.pipeline import Pipeline
    from engine.sightings import SightingCollector, store

    emb = recognizer.embedder
    with Gallery.open(tmp_path / "g.db", emb.id, emb.dim) as g:
        enrol_demo_cast(g, recognizer, names=("Roxanne",))
        rox = g.persons()[0].id
        collector = SightingCollector("clip")
        cap = Capture(parse_source(str(DEMO)), CaptureConfig(realtime=False))
        cap.start()
        for r in Pipeline(recognizer, g.index).run(cap, max_frames=120):
            collector.observe(r)
        cap.stop()
        collector.end_all()
        pending = collector.take()
        assert {s.name for s in pending if s.person_id == rox} == {"Roxanne"}  # decided with her name
        g.delete_person("Roxanne")
        g.enroll("Zed", pending[0].embedding[None])
        zed = {n: p for p, n in g.index.names.items()}["Zed"]
        assert zed == rox  # the freed id, reused
        ids = store.record(g, pending)
        got = {r.id: r for r in store.list_sightings(g.db.conn)}
        assert all(got[i].person_id is None and got[i].name is None for i in ids)  # nobody's, not Zed's
        assert store.list_sightings(g.db.conn, person="Zed") == []

        # the id alone (no name: written by an older caller) is trusted as before
        s0 = dataclasses.replace(pending[0], person_id=zed, name=None)
        assert store.list_sightings(g.db.conn, ids=store.record(g, [s0]))[0].name == "Zed"
        # a visit of Zed (his row older than it), Zed renamed before it is written: still his
        now = time.time()
        s1 = dataclasses.replace(pending[0], person_id=zed, name="Zed", first_seen=now - 1, last_seen=now)
        g.rename_person("Zed", "Zed Z")
        assert store.list_sightings(g.db.conn, ids=store.record(g, [s1]))[0].name == "Zed Z"
        # renumbered by an import with --replace: the name is followed to its new id
        g.rename_person("Zed Z", "Zed")
        other = tmp_path / "other.db"
        with Gallery.open(other, emb.id, emb.dim) as o:
            o.enroll("Cy", pending[0].embedding[None])
            o.enroll("Zed", pending[0].embedding[None])  # Zed is person 2 there
            o.enroll("Ann", pending[0].embedding[None])
        g.import_from(other, mode="replace")
        ids_now = {n: p for p, n in g.index.names.items()}
        assert ids_now["Zed"] != zed and ids_now["Cy"] == zed
        assert store.list_sightings(g.db.conn, ids=store.record(g, [s1]))[0].person_id == ids_now["Zed"]
