"""The session's people actions behind the GUI panels, without Qt: naming a group relabels live
tracks at once, enrolling a sighting, similar sightings, and "not this person" on an enrolled face.
Real sightings from the real pipeline on a synthetic LFW clip (tests/people_clip.py), real SQLite."""
from __future__ import annotations

import numpy as np
import pytest

from tests import people_clip
from tests.people_clip import run_pass, strangers, truth_name

recognizer, clip, base_gallery, session = (people_clip.recognizer, people_clip.clip, people_clip.base_gallery,
                                           people_clip.session)


def test_naming_a_group_relabels_the_live_tracks_and_the_frozen_frame(session, clip):
    from engine.sightings import unknowns

    clip_path, truth = clip
    run_pass(session, clip_path)  # ended: its last frame stays on screen, strangers unknown
    frozen = session.latest
    assert not any(n == "Stranger One" for n in frozen.faces.names)
    gid = unknowns.groups(session.gallery)[0].id
    pid, fids, tracks = session.name_unknown_group(gid, "Stranger One", k=2)
    assert len(fids) == 2 and len(tracks) == 1  # exactly one live face is that stranger
    r = session.latest
    (i,) = [i for i, n in enumerate(r.faces.names) if n == "Stranger One"]
    assert int(r.faces.track_ids[i]) == tracks[0] and int(r.faces.identities[i]) == pid
    assert truth_name(truth, r, i) in strangers(truth)
    with pytest.raises(KeyError):
        session.name_unknown_group(gid, "Again")  # the group is gone


def test_enrol_a_sighting_and_find_similar_ones(session):
    from engine.sightings import store

    conn = session.gallery.db.conn
    rows = store.list_sightings(conn, unknown=True)
    sid, group = rows[0].id, rows[0].group_id
    pid, fid, _ = session.enrol_sighting(sid, "Visitor")
    stored = store.embeddings(conn, session.gallery.dim, "id = ?", [sid])[1][0]
    np.testing.assert_array_equal(session.gallery.embeddings("Visitor")[1][0], stored)
    assert session.gallery.faces("Visitor")[0].source == f"sighting {sid}"
    hits = session.similar_sightings(sid, top=5)
    assert sid in [h for h, s in hits if s > 0.999] and hits[0][1] >= hits[-1][1]
    same = {r.id for r in rows if r.group_id == group}
    assert {h for h, _ in hits[:len(same)]} == same  # the same stranger's sightings first
    with pytest.raises(KeyError):
        session.enrol_sighting(10**9, "Nobody")
    assert [p.name for p in session.gallery.persons()].count("Nobody") == 0


def test_an_enrolled_face_that_is_not_the_person_becomes_a_negative(session, clip):
    from engine.gallery import negatives
    from engine.gallery.errors import UnknownFaceError
    from engine.gallery.index import decide
    from engine.sightings import store

    g = session.gallery
    name = people_clip.enrolled_names(clip[1])[0]
    sid = next(r.id for r in store.list_sightings(g.db.conn) if r.name == name)
    session.enrol_sighting(sid, name)  # a second face of the person: the one we will say is wrong
    fids, emb = g.embeddings(name)
    wrong = int(fids[-1])
    found = g.index.search(emb[-1:])
    assert decide(found[0], found[2], session.recognizer.threshold, found.negative)[0] >= 0
    n_audit = len(g.audit_entries())
    nid = negatives.face_to_negative(g, wrong)
    assert wrong not in [f.id for f in g.faces(name)] and wrong not in g.index.face_ids.tolist()
    assert negatives.count(g, name) == 1 and g.index.negative_count == 1 and nid > 0
    entries = g.audit_entries()
    assert len(entries) == n_audit + 1 and entries[-1].action == "not_person" and g.verify_audit().ok
    found = g.index.search(emb[-1:])  # that face (and faces like it) no longer match the person
    assert decide(found[0], found[2], session.recognizer.threshold, found.negative)[0] < 0
    with pytest.raises(UnknownFaceError):
        negatives.face_to_negative(g, wrong)
    assert negatives.count(g, name) == 1
