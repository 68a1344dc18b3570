"""Corrections that stick: "not this person" negatives refuse a stranger's next photos while the
person's own photos still match; stored through the CLI and the live session, erased with
their person, followed by a merge. Real models, real SQLite, LFW photos from ../shared."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.test_cli import facescope
from tests.test_gallery_trust import all_bytes

PERSON, STRANGER = "Tony_Blair", "Gerhard_Schroeder"


@pytest.fixture(scope="module")
def photos(lfw_dir):
    """Name -> list of (crop, embedding) of 6 LFW photos, embedded with the shipped still recognizer."""
    from engine.config import RecognizerConfig
    from engine.imageio import read_image
    from engine.recognizer import Recognizer

    rec = Recognizer.from_config(RecognizerConfig.still())
    out = {}
    for name in (PERSON, STRANGER):
        out[name] = []
        for path in sorted((lfw_dir / "lfw-deepfunneled" / name).glob("*.jpg"))[:6]:
            image = read_image(path)
            f = rec.largest(image)
            out[name].append((rec.embedder.aligned_crops(image, f.keypoints)[0], f.embeddings[0]))
    return rec, out


@pytest.fixture
def gallery(photos, tmp_path):
    """Blair enrolled from 4 photos, and a threshold so permissive that Schroeder matches him (the
    situation a user corrects: a stranger labelled as someone)."""
    from engine.gallery import Gallery

    rec, p = photos
    g = Gallery.open(tmp_path / "g.db", rec.embedder.id, rec.embedder.dim)
    g.enroll("Tony", np.stack([e for _, e in p[PERSON][:4]]), crops=[c for c, _ in p[PERSON][:4]])
    sims = g.index.search(np.stack([e for _, e in p[STRANGER]]))[2]
    yield g, float(sims.min()) - 0.01
    g.close()


def emb(photos, name, idx):
    return np.stack([photos[1][name][i][1] for i in idx])


def test_decide_refuses_a_match_closer_to_the_persons_negatives():
    from engine.gallery.index import decide

    pids, sims = np.array([3, 3, 3, -1]), np.array([0.6, 0.6, 0.3, 0.9], np.float32)
    negative = np.array([0.7, 0.5, -np.inf, 0.99], np.float32)
    assert decide(pids, sims, 0.4, negative).tolist() == [-1, 3, -1, -1]
    assert decide(pids, sims, 0.4).tolist() == [3, 3, -1, -1]  # without negatives: as before


def test_not_this_person_refuses_the_strangers_other_photos_only(gallery, photos):
    from engine.gallery.negatives import add_negative

    g, threshold = gallery
    tony = g.persons()[0].id
    assert (g.index.match(emb(photos, STRANGER, range(6)), threshold)[0] == tony).all()  # wrongly named
    crop, e = photos[1][STRANGER][0]
    add_negative(g, "tony", e, crop)  # "that is not Tony", on one photo
    refused = g.index.match(emb(photos, STRANGER, range(1, 6)), threshold)[0]
    assert (refused == -1).all(), refused  # his other photos are no longer Tony
    kept = g.index.match(emb(photos, PERSON, [4, 5]), threshold)[0]
    assert (kept == tony).all()  # Tony's own unseen photos still are
    # the still-image path (match_faces) applies it too, through the same decide
    from engine.recognizer import match_faces
    from engine.records import Faces

    f = Faces(boxes=np.zeros((2, 4), np.float32), scores=np.ones(2, np.float32),
              embeddings=np.concatenate([emb(photos, STRANGER, [3]), emb(photos, PERSON, [5])]))
    assert match_faces(f, g.index, threshold).identities.tolist() == [-1, tony]


def test_cli_not_person_on_a_sighting_sticks_after_reopening(gallery, photos):
    from engine.gallery import Gallery
    from engine.sightings import Sighting, store

    g, threshold = gallery
    rec = photos[0]
    tony = g.persons()[0].id
    crop, e = photos[1][STRANGER][1]
    now = time.time()
    sid = store.record(g, [Sighting(tony, "cam", now - 2, now, 9, crop, e, 0.8, 0.5)])[0]
    path = g.path
    g.close()
    out = facescope("gallery", "not-person", "--gallery", path, "--sighting", sid, "--person", "Tony").stdout
    assert "negative example" in out
    bad = facescope("gallery", "not-person", "--gallery", path, "--sighting", sid, "--person", "Nobody", check=False)
    assert bad.returncode == 2 and "Nobody" in bad.stderr
    with Gallery.open(path, rec.embedder.id, rec.embedder.dim) as g2:
        assert g2.index.negative_count == 1  # loaded with the index
        assert g2.db.execute("SELECT person_id FROM sightings WHERE id = ?", [sid]).fetchone()[0] is None
        e2 = g2.audit_entries()[-1]
        assert (e2.action, e2.person_id, e2.details["sighting"]) == ("not_person", tony, sid)
        assert (g2.index.match(emb(photos, STRANGER, [2, 3, 4]), threshold)[0] == -1).all()
        assert (g2.index.match(emb(photos, PERSON, [4, 5]), threshold)[0] == tony).all()


def test_negatives_follow_a_merge_and_go_with_an_erased_person(gallery, photos):
    from engine.gallery.negatives import add_negative, count

    g, threshold = gallery
    crop, e = photos[1][STRANGER][0]
    add_negative(g, "Tony", e, crop)
    g.add_person("Anthony")
    g.merge_persons("Tony", "Anthony")
    assert count(g, "Anthony") == 1 and g.index.negative_count == 1
    assert (g.index.match(emb(photos, STRANGER, [3]), threshold)[0] == -1).all()
    blob = np.asarray(e, "<f4").tobytes()
    g.delete_person("Anthony")
    assert count(g) == 0 and g.index.negative_count == 0
    path = g.path
    g.close()
    assert blob not in all_bytes(path)


def test_live_session_not_this_person(tmp_path):
    from engine.capture import CaptureConfig, parse_source
    from engine.live import LiveSession, realtime_recognizer
    from tests.test_sightings import DEMO, enrol_demo_cast

    rec = realtime_recognizer()
    s = LiveSession(tmp_path / "g.db", rec, capture_config=CaptureConfig(realtime=False), sightings=None)
    s.open()
    enrol_demo_cast(s.gallery, rec, names=("Roxanne",))
    results = s.run(parse_source(str(DEMO)))
    for r in results:
        named = [t for t, n in zip(r.faces.track_ids.tolist(), r.faces.names, strict=True) if n == "Roxanne"]
        if named and s.sample(named[0]) is not None:
            break
    else:
        raise AssertionError("Roxanne was never named")
    tid = named[0]
    assert "not Roxanne" in s.not_person(tid, "Roxanne")
    r = next(results)  # the correction runs between frames: the very next frame shows it
    label = dict(zip(r.faces.track_ids.tolist(), r.faces.names, strict=True)).get(tid)
    assert label != "Roxanne"
    assert s.gallery.index.negative_count == 1 and s.gallery.audit_entries()[-1].action == "not_person"
    with pytest.raises(ValueError):
        s.not_person(10_000, "Roxanne")  # no such face: clear error, nothing stored
    assert s.gallery.index.negative_count == 1
    results.close()
    s.close()


def test_reembedding_carries_negatives_and_sightings_along(gallery, photos):
    """`gallery reembed` re-embeds sightings and negatives from their crops in the same
    transaction: the gallery reopens, and a correction still refuses the stranger."""
    from engine.gallery import Gallery
    from engine.gallery.negatives import add_negative
    from engine.sightings import Sighting, store

    g, threshold = gallery
    rec = photos[0]
    crop, e = photos[1][STRANGER][0]
    add_negative(g, "Tony", e, crop)
    now = time.time()
    store.record(g, [Sighting(-1, "cam", now - 1, now, 5, crop, e, 0.7)])
    path = g.path
    g.close()
    with Gallery.open_for_reembed(path) as g2:
        g2.reembed(rec.embedder.embed_crops, "sface-again", rec.embedder.dim)
        assert g2.audit_entries()[-1].details["negatives"] == 1
    with Gallery.open(path, "sface-again", rec.embedder.dim) as g3:
        expected = rec.embedder.embed_crops(crop[None])[0]  # from the stored (JPEG) crop
        stored = np.frombuffer(g3.db.execute("SELECT embedding FROM negatives").fetchone()[0], "<f4")
        assert float(stored @ expected) / np.linalg.norm(stored) / np.linalg.norm(expected) > 0.95
        assert g3.index.negative_count == 1
        assert (g3.index.match(emb(photos, STRANGER, [3]), threshold)[0] == -1).all()
