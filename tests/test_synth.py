"""Synthetic multi-face clips (engine.synth): video, ground truth, matching, realism for YuNet."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.synth import ClipInfo, load_truth, make_clip, match_truth
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def lfw() -> Path:
    return shared_path("data", "lfw")


@pytest.fixture(scope="module")
def short_clip(lfw, tmp_path_factory) -> ClipInfo:
    return make_clip(tmp_path_factory.mktemp("short") / "short.avi", lfw, faces=5, frames=40, seed=7)


@pytest.fixture(scope="module")
def long_clip(lfw, tmp_path_factory) -> ClipInfo:
    """Default parameters (6 enrolled + 1 unknown, 300 frames, crossings) at a quarter of the pixels."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.avi", lfw, size=(640, 360))


def _visible(frame: list[dict], at_least: float = 0.5) -> list[dict]:
    return [o for o in frame if o["visible_fraction"] >= at_least]


def test_short_clip_reads_back(short_clip):
    assert short_clip.path.name == "short.avi" and short_clip.truth_path.name == "short.avi.json"
    cap = cv2.VideoCapture(str(short_clip.path))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (720, 1280, 3)
        n += 1
    cap.release()
    assert n == short_clip.frames == 40 and short_clip.size == (1280, 720)


def test_truth_structure_and_stable_ids(short_clip):
    truth = load_truth(short_clip.truth_path)
    assert truth["fps"] == 25.0 and truth["size"] == (1280, 720) and truth["num_frames"] == 40
    assert len(truth["frames"]) == 40
    people = {p["id"]: p for p in truth["identities"]}
    assert len(people) == 6 and sum(p["enrolled"] for p in people.values()) == 5  # 5 faces + 1 unknown
    names_of = defaultdict(set)
    for frame in truth["frames"]:
        assert len(_visible(frame)) >= 5
        assert len({o["id"] for o in frame}) == len(frame)
        for o in frame:
            names_of[o["id"]].add(o["name"])
            assert o["name"] == people[o["id"]]["name"] and o["enrolled"] == people[o["id"]]["enrolled"]
            x1, y1, x2, y2 = o["box"]
            assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 720
            assert 0.0 <= o["visible_fraction"] <= 1.0 and 0.0 <= o["occluded_fraction"] <= 1.0
            assert o["visible_fraction"] + o["occluded_fraction"] <= 1.0 + 1e-3
            assert o["occluded"] == (o["occluded_fraction"] >= 0.5)
    assert all(len(v) == 1 for v in names_of.values()) and set(names_of) == set(people)
    # the ClipInfo matches the file
    assert [p["name"] for p in short_clip.identities] == [people[i]["name"] for i in sorted(people)]


def test_enrolment_images_are_other_photos_of_the_same_person(short_clip):
    names = [p["name"] for p in short_clip.identities]
    assert len(set(names)) == len(names)
    for p in short_clip.identities:
        sprite = Path(p["sprite_image"])
        assert sprite.is_file() and sprite.parent.name == p["name"]
        if not p["enrolled"]:
            assert p["enrol_images"] == []
            continue
        assert len(p["enrol_images"]) == 1
        for img in map(Path, p["enrol_images"]):
            assert img.is_file() and img.parent.name == p["name"] and img != sprite
    assert [p["name"] for p in short_clip.enrolled] == [p["name"] for p in short_clip.identities if p["enrolled"]]


def test_default_clip_has_crossings_full_occlusion_and_exit(long_clip):
    truth = load_truth(long_clip.truth_path)
    assert long_clip.frames == 300 and len(truth["frames"]) == 300 and len(truth["identities"]) == 7
    assert {e["kind"] for e in truth["events"]} == {"occlude", "cross", "exit"}
    overlaps, hidden = 0, defaultdict(list)
    for f, frame in enumerate(truth["frames"]):
        assert len(_visible(frame)) >= 5, f
        boxes = np.array([o["box"] for o in frame])
        lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
        rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
        overlaps += int((np.triu(inter, 1) > 0).any())
        for o in frame:
            if o["visible_fraction"] == 0:
                assert o["occluded"] and o["occluded_fraction"] == pytest.approx(1.0, abs=1e-3)
                hidden[o["id"]].append(f)
    assert overlaps >= 20
    assert len(hidden) >= 1
    for frames in hidden.values():  # short full occlusions: a few consecutive frames each
        assert 3 <= len(frames) <= 25 and frames[-1] - frames[0] == len(frames) - 1
    # the exit event: one face leaves the frame entirely and comes back
    (exit_event,) = [e for e in truth["events"] if e["kind"] == "exit"]
    who = exit_event["ids"][0]
    present = [any(o["id"] == who for o in frame) for frame in truth["frames"]]
    assert present[exit_event["start"]] and present[exit_event["end"]] and not all(present)


def test_no_crossings_means_no_overlap(lfw, tmp_path):
    info = make_clip(tmp_path / "calm.avi", lfw, faces=5, frames=30, size=(640, 360), crossings=False, seed=2)
    truth = load_truth(info.truth_path)
    assert truth["events"] == []
    assert all(o["visible_fraction"] > 0.9 and not o["occluded"] for frame in truth["frames"] for o in frame)


def test_deterministic_for_a_seed(short_clip, lfw, tmp_path):
    again = make_clip(tmp_path / "again.avi", lfw, faces=5, frames=40, seed=7)
    a, b = load_truth(short_clip.truth_path), load_truth(again.truth_path)
    assert a["frames"] == b["frames"] and a["identities"] == b["identities"] and a["events"] == b["events"]
    other = load_truth(make_clip(tmp_path / "other.avi", lfw, faces=5, frames=40, seed=8).truth_path)
    assert [p["name"] for p in other["identities"]] != [p["name"] for p in a["identities"]]


def test_match_truth_exact_perturbed_and_unmatched(short_clip):
    truth = load_truth(short_clip.truth_path)
    frame = truth["frames"][0]
    boxes = np.array([o["box"] for o in frame])
    ids = np.array([o["id"] for o in frame])
    assert np.array_equal(match_truth(boxes, frame), ids)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(boxes))
    wh = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    noisy = boxes + rng.uniform(-0.12, 0.12, boxes.shape) * wh  # detector-like jitter
    assert np.array_equal(match_truth(noisy[order], frame), ids[order])
    far = np.array([[-500, -500, -400, -400]], float)  # a false positive matches nothing
    assert list(match_truth(np.vstack([boxes[:1], far]), frame)) == [ids[0], -1]
    assert match_truth(np.zeros((0, 4)), frame).shape == (0,)
    # one-to-one: two detections on the same face, only the better one gets it
    got = match_truth(np.vstack([boxes[0] + 2, boxes[0]]), frame)
    assert list(got) == [-1, ids[0]]
    # a fully hidden face is not matchable; a box shifted by a whole face width is not a match
    hidden = [dict(frame[0], visible_fraction=0.0)]
    assert list(match_truth(boxes[:1], hidden)) == [-1]
    assert list(match_truth(boxes[:1] + [wh[0, 0], 0, wh[0, 0], 0], frame[:1])) == [-1]


def test_load_truth_rejects_other_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frames": []}))
    with pytest.raises(ValueError, match="truth"):
        load_truth(bad)
    with pytest.raises(ValueError):
        load_truth(tmp_path / "missing.json")


def test_bad_parameters_fail_clearly(lfw, tmp_path):
    with pytest.raises(ValueError, match="faces"):
        make_clip(tmp_path / "x.avi", lfw, faces=0)
    with pytest.raises(ValueError, match="LFW"):
        make_clip(tmp_path / "x.avi", tmp_path / "nowhere", frames=2)
    empty = tmp_path / "lfw_empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="people"):
        make_clip(tmp_path / "x.avi", empty, frames=2)


def test_yunet_finds_the_visible_faces(short_clip):
    """The clip is realistic for the detector: most unoccluded faces are found at IoU >= 0.3."""
    from engine.config import DetectorConfig
    from engine.detectors import create_detector

    det = create_detector("yunet", DetectorConfig(input_size=(640, 384)))
    truth = load_truth(short_clip.truth_path)
    cap = cv2.VideoCapture(str(short_clip.path))
    found = total = false_pos = 0
    for f in range(short_clip.frames):
        ok, image = cap.read()
        assert ok
        if f % 5:
            continue
        faces = det(image)
        ids = match_truth(faces.boxes, truth["frames"][f])
        false_pos += int((ids < 0).sum())
        for o in truth["frames"][f]:
            if not o["occluded"] and o["visible_fraction"] >= 0.9:
                total += 1
                found += int(o["id"] in ids)
    cap.release()
    assert total >= 30
    assert found / total >= 0.8, (found, total)
    assert false_pos <= total // 10
