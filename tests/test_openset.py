"""The open-set decision: two thresholds (unknown / probable / confirmed) and a margin to the
second-best person, on real SFace embeddings of LFW photos; the status in ``Faces`` and its
drawing; ``facescope eval openset`` and ``eval corrections`` on a small LFW subset (real models,
a real SQLite gallery). Needs ../shared (skips with the reason when absent)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.gallery.decision import CALIBRATED, DecisionConfig, decision_for
from engine.gallery.index import GalleryIndex, classify, decide
from engine.records import NO_ID, STATUS_CONFIRMED, STATUS_PROBABLE, STATUS_UNKNOWN, Faces

# People with >= 5 LFW photos (the protocol's pool) and a few with fewer (one-photo strangers).
MULTI = ("Alejandro_Toledo", "Ariel_Sharon", "Colin_Powell", "Donald_Rumsfeld", "Gerhard_Schroeder",
         "Hugo_Chavez", "Jacques_Chirac", "Jean_Chretien", "John_Ashcroft", "Junichiro_Koizumi",
         "Lleyton_Hewitt", "Tony_Blair")
SINGLES = ("Aaron_Eckhart", "Aaron_Guiel", "Aaron_Patterson", "Abba_Eban", "Abbas_Kiarostami", "Abdel_Aziz_Al-Hakim")


@pytest.fixture(scope="module")
def rec():
    from engine.config import RecognizerConfig
    from engine.recognizer import Recognizer

    return Recognizer.from_config(RecognizerConfig.still())


@pytest.fixture(scope="module")
def photos(lfw_dir, rec):
    """Name -> (K, D) embeddings of that person's first 4 LFW photos (shipped still recognizer)."""
    from engine.dataset_embed import embed_paths

    names = ("Tony_Blair", "Gerhard_Schroeder", "Colin_Powell")
    paths = [p for n in names for p in sorted((lfw_dir / "lfw-deepfunneled" / n).glob("*.jpg"))[:4]]
    emb = embed_paths(rec, paths, progress=False).embeddings
    return {n: emb[4 * k:4 * k + 4] for k, n in enumerate(names)}


@pytest.fixture(scope="module")
def index(photos):
    """Blair (pid 1) and Schroeder (pid 2) enrolled from 3 photos each, Powell not enrolled."""
    idx = GalleryIndex(photos["Tony_Blair"].shape[1])
    idx.reset(idx.dim, np.arange(6), np.repeat([1, 2], 3), np.concatenate(
        [photos["Tony_Blair"][:3], photos["Gerhard_Schroeder"][:3]]), {1: "Blair", 2: "Schroeder"})
    return idx


def test_search_gives_the_second_best_persons_similarity(photos, index):
    q = np.concatenate([photos["Tony_Blair"][3:], photos["Gerhard_Schroeder"][3:], photos["Colin_Powell"]])
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = index.vectors()
    per = np.stack([(unit @ g[:3].T).max(1), (unit @ g[3:].T).max(1)], axis=1)  # per person
    found = index.search(q)
    assert np.allclose(found[2], per.max(1), atol=1e-5)
    assert np.allclose(found.second, per.min(1), atol=1e-5)
    assert found[0].tolist()[:2] == [1, 2]  # the genuine probes find their person


def test_two_thresholds_and_the_margin_grade_real_matches(photos, index):
    q = photos["Tony_Blair"][3:]
    found = index.search(q)
    s1, s2 = float(found[2][0]), float(found.second[0])
    assert s1 - s2 > 0.05, "Blair's own photo should lead Schroeder clearly"
    grade = lambda rule: classify(found[0], found[2], rule, found.negative, found.second)  # noqa: E731
    ids, st = grade(DecisionConfig(s1 - 0.1, s1 - 0.05))
    assert ids.tolist() == [1] and st.tolist() == [STATUS_CONFIRMED]
    ids, st = grade(DecisionConfig(s1 - 0.1, s1 + 0.01))  # between the two thresholds: probable, still Blair
    assert ids.tolist() == [1] and st.tolist() == [STATUS_PROBABLE]
    ids, st = grade(DecisionConfig(s1 + 0.01, s1 + 0.02))  # below "unknown": nobody
    assert ids.tolist() == [NO_ID] and st.tolist() == [STATUS_UNKNOWN]
    # margin: confirmed only when the lead over the second PERSON is large enough; a near tie is probable
    ids, st = grade(DecisionConfig(s1 - 0.1, s1 - 0.05, margin=(s1 - s2) - 0.01))
    assert st.tolist() == [STATUS_CONFIRMED]
    ids, st = grade(DecisionConfig(s1 - 0.1, s1 - 0.05, margin=(s1 - s2) + 0.01))
    assert ids.tolist() == [1] and st.tolist() == [STATUS_PROBABLE]
    # decide (ids only) agrees, and a float is the one-threshold rule of before
    assert decide(found[0], found[2], DecisionConfig(s1 - 0.1, s1 + 0.01, 0.5), found.negative).tolist() == [1]
    assert decide(found[0], found[2], s1 + 0.01).tolist() == [NO_ID]
    with pytest.raises(ValueError, match="second-best"):
        classify(found[0], found[2], DecisionConfig(0.1, 0.2, 0.05))  # a margin without `second` is an error
    assert classify([NO_ID], [np.nan], DecisionConfig(0.1, 0.2, 0.05))[0].tolist() == [NO_ID]  # nothing to confirm


def test_match_returns_the_status_and_negatives_still_refuse(photos, index):
    rule = DecisionConfig(0.2, 0.99)
    m = index.match(photos["Tony_Blair"][3:], rule)
    assert m[1] == ["Blair"] and m.status.tolist() == [STATUS_PROBABLE]
    neg = GalleryIndex(index.dim)
    neg.reset(index.dim, index.face_ids, index.person_ids, index.vectors(), index.names)
    neg.add_negatives([1], [1], photos["Tony_Blair"][3:])  # "this very face is not Blair"
    m = neg.match(photos["Tony_Blair"][3:], rule)
    assert m[0].tolist() == [NO_ID] and m.status.tolist() == [STATUS_UNKNOWN]


def test_decision_config_fails_loudly_and_resolves_per_embedder(rec):
    for bad in (dict(unknown=0.5, confirmed=0.4), dict(unknown=1.5, confirmed=1.5),
                dict(unknown=0.4, confirmed=0.5, margin=-0.1), dict(unknown=float("nan"), confirmed=0.5)):
        with pytest.raises(ValueError):
            DecisionConfig(**bad)
    assert rec.decision == CALIBRATED[rec.embedder.id]  # the shipped SFace is calibrated
    assert rec.threshold == rec.decision.unknown > rec.embedder.threshold  # stricter than the 1:1 card point
    assert decision_for("someone@else", 0.31) == DecisionConfig(0.31, 0.31, 0.0)  # uncalibrated: the card's
    d = decision_for(rec.embedder.id, 0.363, unknown=0.6)  # a bare --threshold above "confirmed" lifts it
    assert (d.unknown, d.confirmed) == (0.6, 0.6)


def test_faces_status_is_validated_and_follows_identities():
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    f = Faces(boxes, np.ones(2), identities=[3, NO_ID], names=("Ada", None),
              status=[STATUS_PROBABLE, STATUS_UNKNOWN])
    assert f.states.tolist() == [STATUS_PROBABLE, STATUS_UNKNOWN]
    with pytest.raises(ValueError, match="unknown exactly"):
        Faces(boxes, np.ones(2), identities=[3, NO_ID], status=[STATUS_UNKNOWN, STATUS_UNKNOWN])
    with pytest.raises(ValueError, match="STATUS_"):
        Faces(boxes, np.ones(2), identities=[3, NO_ID], status=[7, 0])
    g = f.replace(identities=[NO_ID, NO_ID], names=(None, None))  # new identities: the old status goes
    assert g.status is None and g.states.tolist() == [STATUS_UNKNOWN, STATUS_UNKNOWN]
    assert f.select([0]).status.tolist() == [STATUS_PROBABLE]
    legacy = Faces(boxes, np.ones(2), identities=[3, NO_ID], names=("Ada", None))  # one-threshold rule
    assert legacy.states.tolist() == [STATUS_CONFIRMED, STATUS_UNKNOWN]


def test_probable_faces_are_drawn_dashed_and_labelled_with_a_question_mark():
    from engine.draw import COLOR_KNOWN, COLOR_PROBABLE, draw_faces, face_color, face_label

    boxes = np.array([[100, 100, 500, 800], [600, 100, 1000, 800]], np.float32)
    f = Faces(boxes, np.ones(2), identities=[3, 4], names=("Ada", "Bob"), similarities=[0.47, 0.8],
              status=[STATUS_PROBABLE, STATUS_CONFIRMED])
    assert face_label(f, 0) == "Ada? 0.47" and face_label(f, 1) == "Bob 0.80"
    assert face_color(f, 0) == COLOR_PROBABLE != COLOR_KNOWN == face_color(f, 1)
    out = draw_faces(np.zeros((900, 1100, 3), np.uint8), f, keypoints=False).astype(int)
    near = lambda px, c: np.abs(px - np.array(c)).max(axis=-1) < 40  # noqa: E731 (anti-aliased strokes)
    bottom_probable = near(out[800, 110:490], COLOR_PROBABLE)
    bottom_known = near(out[800, 610:990], COLOR_KNOWN)
    assert bottom_known.all()  # solid
    assert 0.3 < bottom_probable.mean() < 0.7  # dashed: strokes and gaps


@pytest.fixture(scope="module")
def small_lfw(lfw_dir, tmp_path_factory):
    """A small LFW-style folder: symlinks to 12 people with >= 5 photos and 6 with fewer."""
    root = tmp_path_factory.mktemp("lfw_small") / "lfw-deepfunneled"
    for name in MULTI + SINGLES:
        src = lfw_dir / "lfw-deepfunneled" / name
        if not src.is_dir():
            pytest.skip(f"LFW person {name} missing from {lfw_dir}")
        (root / name).mkdir(parents=True)
        for p in sorted(src.glob("*.jpg"))[:6]:
            (root / name / p.name).symlink_to(p)
    return root.parent


def _eval(*args):
    from engine.cli.main import main

    return main(["eval", *map(str, args)])


def test_eval_openset_on_a_small_lfw_subset_and_its_cache(small_lfw, tmp_path, monkeypatch, capsys):
    cache, out = tmp_path / "emb.npz", tmp_path / "openset.json"
    common = ("--data", small_lfw, "--gallery-size", 6, "--max-photos", 6, "--singles", 6, "--cache", cache)
    assert _eval("openset", *common, "--seeds", "0,1", "--margins", "0,0.05", "--json", out) == 0
    r = json.loads(out.read_text())
    assert len(r["seeds"]) == 2 and cache.exists()
    for s in r["seeds"]:
        assert s["gallery_people"] == 6 and s["enrolled_photos"] == 18 and s["stranger_people"] == 12
        for p in s["points"]:
            assert p["fpr"] <= p["fpr_target"] + 1e-9  # the threshold reaches the target on this data
            assert 0.5 < p["tpr"] <= 1.0  # SFace names most enrolled people's other photos
        # the margin rule can only remove names: at a fixed threshold, never more strangers named
        assert s["decision_confirmed"]["fpr"] <= s["decision_named"]["fpr"]
    text = capsys.readouterr().out
    assert "TPR %" in text and "over seeds 0,1" in text
    # the second run embeds nothing: every photo comes from the cache
    import engine.embed_cache as ec

    monkeypatch.setattr(ec, "embed_paths", lambda *a, **k: pytest.fail("embedded although cached"))
    assert _eval("openset", *common, "--seeds", "2", "--json", out) == 0
    # a cache made by other settings is refused, not mixed
    monkeypatch.undo()
    assert _eval("openset", *common, "--flip", "--json", out) == 2
    assert "was made with" in capsys.readouterr().err


def test_eval_corrections_stop_a_strangers_other_photos_matching(small_lfw, tmp_path):
    out = tmp_path / "corr.json"
    # a permissive "unknown" threshold makes strangers match someone: the situation users correct
    assert _eval("corrections", "--data", small_lfw, "--gallery-size", 6, "--max-photos", 6, "--singles", 6,
                 "--cache", tmp_path / "emb.npz", "--threshold", 0.2, "--json", out) == 0
    r = json.loads(out.read_text())
    run = next(x for x in r["runs"] if x["rule_name"] == "decision")
    assert run["rule"]["unknown"] == 0.2 and run["strangers_corrected"] >= 3
    x = run["other_photos_named_as_x"]
    assert x["before"] > 0 and x["after"] < x["before"]
    assert run["stranger_photos_named"]["after"] <= run["stranger_photos_named"]["before"]
    assert abs(run["genuine_change_points"]) <= 20  # a 6-person toy gallery: coarse, but must not collapse


def test_identity_book_grades_a_track_by_its_latest_vote_for_its_person():
    from engine.track import IdentityBook

    book = IdentityBook()
    book.vote(1, 7, 0.6, 1.0, 0.0, confirmed=True)
    book.vote(1, 7, 0.6, 1.0, 0.1, confirmed=True)
    book.vote(2, 7, 0.5, 1.0, 0.0, confirmed=False)
    book.vote(2, 7, 0.5, 1.0, 0.1, confirmed=False)
    assert book.label(1)[0] == book.label(2)[0] == 7
    assert book.confirmed([1, 2, 99]).tolist() == [True, False, False]
    book.vote(1, 7, 0.5, 1.0, 0.2, confirmed=False)  # the latest vote for the person was only probable
    assert book.confirmed([1]).tolist() == [False]


def test_the_pipeline_carries_the_status_to_every_frame(tmp_path):
    """Real video through the real-time pipeline: Roxanne enrolled from the demo manifest is a
    confirmed name with the calibrated decision, and the same name only probable ("Roxanne?")
    when the margin to the second person (Bernard) is out of reach."""
    import dataclasses

    from engine.capture import Capture, CaptureConfig, parse_source
    from engine.cli.demo_cmd import DEMO_MANIFEST, DEMO_VIDEO, enrol_from_manifest
    from engine.config import MatchConfig
    from engine.draw import face_label
    from engine.gallery import Gallery
    from engine.pipeline import Pipeline, realtime_config
    from engine.recognizer import Recognizer

    rec = Recognizer.from_config(realtime_config())
    strict = dataclasses.replace(rec, match=MatchConfig(margin=1.5))  # Bernard would have to score < -0.5
    seen = {}
    with Gallery.open(tmp_path / "g.db", rec.embedder.id, rec.embedder.dim) as g:
        enrol_from_manifest(rec, g, DEMO_MANIFEST)
        for label, r in (("default", rec), ("strict", strict)):
            with Capture(parse_source(str(DEMO_VIDEO)), CaptureConfig(realtime=False, max_frames=30)) as cap:
                cap.start()
                frames = [res.faces for res in Pipeline(r, g.index).run(cap)]
            seen[label] = [(f.names[i], int(f.states[i]), face_label(f, i)) for f in frames for i in range(len(f))
                           if f.names[i]]
    assert seen["default"] and all(s == STATUS_CONFIRMED for _, s, _ in seen["default"])
    assert {n for n, _, _ in seen["strict"]} == {"Roxanne"}
    assert all(s == STATUS_PROBABLE and "Roxanne?" in lab for _, s, lab in seen["strict"]), seen["strict"]
