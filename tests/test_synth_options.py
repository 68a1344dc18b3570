"""synth-clip options of issue #15: small faces (--face-px), shot cuts (--cuts), close swaps and
meetings (--events swap,meet); real LFW faces from ../shared."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.boxes import iou_matrix
from engine.synth import load_truth, make_clip
from engine.track.appearance import thumbnails
from tests.conftest import shared_path
from tests.test_cli import facescope


@pytest.fixture(scope="module")
def lfw() -> Path:
    return shared_path("data", "lfw")


def _heights(truth: dict) -> np.ndarray:
    return np.array([o["box_full"][3] - o["box_full"][1] for f in truth["frames"] for o in f])


def test_face_px_room_camera_clip_from_the_cli(lfw, tmp_path):
    """The command another helper runs: 1920x1080, 8 people + 1 stranger, faces 32-48 px high."""
    out = tmp_path / "room.avi"
    facescope("synth-clip", "--lfw", lfw, "--out", out, "--size", "1920x1080", "--faces", "8", "--face-px", "32,48",
              "--frames", "100")
    truth = load_truth(out.with_name("room.avi.json"))
    h = _heights(truth)
    assert truth["face_px"] == [32.0, 48.0] and truth["size"] == (1920, 1080)
    assert h.min() >= 32 - 1e-6 and h.max() <= 48 + 1e-6 and h.max() - h.min() > 4
    # outside scripted events faces stay near home (<= one face height of wander): boxes overlap heavily
    busy = {(i, f) for e in truth["events"] for i in e["ids"] for f in range(e["start"], e["end"] + 2)}
    for f, (a, b) in enumerate(zip(truth["frames"], truth["frames"][1:], strict=False)):
        near = {o["id"]: o["box"] for o in a}
        pairs = [(near[o["id"]], o["box"]) for o in b if o["id"] in near and (o["id"], f) not in busy]
        assert len(pairs) >= 6
        for p, q in pairs:
            assert iou_matrix(np.array([p]), np.array([q]))[0, 0] > 0.6
    # the sprite is pre-shrunk (INTER_AREA), so the pasted face is a clean small face, not aliased noise:
    # the still-image detector finds most of them at their true place
    from engine.config import DetectorConfig
    from engine.detectors import create_detector

    cap = cv2.VideoCapture(str(out))
    image = cap.read()[1]
    cap.release()
    found = create_detector("yunet", DetectorConfig(input_size=None))(image)
    iou = iou_matrix(np.array([o["box"] for o in truth["frames"][0]]), found.boxes)
    assert (iou.max(axis=1) > 0.3).sum() >= 6, iou.max(axis=1)


def test_face_px_and_other_options_are_validated(lfw, tmp_path):
    for kwargs in ({"face_px": (4, 10)}, {"face_px": (50, 40)}, {"face_px": (30, 400)},
                   {"cuts": 5, "frames": 5}, {"cuts": -1}, {"event_kinds": ("swap", "jump")}, {"event_kinds": ()}):
        with pytest.raises(ValueError):
            make_clip(tmp_path / "x.avi", lfw, **{"frames": 10, "size": (640, 360), **kwargs})
    bad = facescope("synth-clip", "--lfw", lfw, "--out", tmp_path / "x.avi", "--face-px", "32", check=False)
    assert bad.returncode == 2 and "MIN,MAX" in bad.stderr and "Traceback" not in bad.stderr


def test_cuts_change_the_scene_and_the_people_in_each_place(lfw, tmp_path):
    info = make_clip(tmp_path / "cuts.avi", lfw, faces=5, unknown_faces=1, frames=90, size=(640, 360), cuts=2,
                     seed=3)
    truth = json.loads(info.truth_path.read_text())
    assert truth["cuts"] == [30, 60]
    cuts = [e for e in truth["events"] if e["kind"] == "cut"]
    assert [e["start"] for e in cuts] == [30, 60]
    cap = cv2.VideoCapture(str(info.path))
    images = [cap.read()[1] for _ in range(90)]
    sig = [thumbnails(im, np.array([[0, 0, 640, 360]]))[0] for im in images]
    ncc = np.array([sig[k] @ sig[k - 1] for k in range(1, 90)])
    assert set(np.flatnonzero(ncc < 0.7) + 1) == {30, 60}  # the background changes at the cuts only
    for c, event in zip((30, 60), cuts, strict=True):
        before, after = truth["frames"][c - 1], truth["frames"][c]
        assert sorted(o["id"] for o in after) == event["ids"] and len(after) >= 4  # ceil(2*6/3) shown at least
        iou = iou_matrix(np.array([o["box"] for o in after]), np.array([o["box"] for o in before]))
        k, j = np.nonzero(iou > 0.5)
        # where a face was, another person is now (a tracker following boxes would carry the name over)
        assert len(k) >= 3 and all(after[a]["id"] != before[b]["id"] for a, b in zip(k, j, strict=True))
    # identities and enrolment are those of the clip without cuts: cuts only rearrange the scene
    plain = make_clip(tmp_path / "plain.avi", lfw, faces=5, unknown_faces=1, frames=90, size=(640, 360), seed=3)
    assert plain.identities == info.identities
    plain_truth = json.loads(plain.truth_path.read_text())
    assert plain_truth["frames"][:30] == truth["frames"][:30] and "cuts" not in plain_truth


@pytest.mark.parametrize("kind", ["swap", "meet"])
def test_close_swaps_and_meetings(lfw, tmp_path, kind):
    info = make_clip(tmp_path / f"{kind}.avi", lfw, faces=4, unknown_faces=0, frames=80, size=(640, 360),
                     seed=2, event_kinds=(kind,))
    truth = json.loads(info.truth_path.read_text())
    (event,) = [e for e in truth["events"] if e["kind"] == kind]
    a, b = event["ids"]
    mid = (event["start"] + event["end"]) // 2
    objs = {o["id"]: o for o in truth["frames"][mid]}
    back = objs[a]
    hidden = back["occluded_fraction"]
    assert (0.6 <= hidden <= 0.85) if kind == "swap" else (0.8 <= hidden < 1.0), hidden  # close, never fully gone
    ha, hb = (objs[i]["box"][3] - objs[i]["box"][1] for i in (a, b))
    assert abs(ha - hb) < 0.05 * ha  # same size: only motion (or appearance) tells them apart

    def centre(i, f):
        o = next(o for o in truth["frames"][f] if o["id"] == i)
        return np.array([(o["box"][0] + o["box"][2]) / 2, (o["box"][1] + o["box"][3]) / 2])

    start, end = event["start"], event["end"]
    moved = np.linalg.norm(centre(a, end) - centre(b, start))
    back_home = np.linalg.norm(centre(a, end) - centre(a, start))
    if kind == "swap":
        assert moved < 0.2 * np.linalg.norm(centre(a, start) - centre(b, start))  # a ends where b started
    else:
        assert back_home < moved  # a goes back where it came from
