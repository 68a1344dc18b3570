"""Real sightings for the people tests (no Qt): a synthetic clip of LFW faces (`facescope synth-clip`:
2 enrolled people, 2 strangers) run PASSES times through a real LiveSession on a real gallery file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.capture import CaptureConfig, parse_source
from tests.test_cli import facescope

PASSES = 3  # a stranger seen on 3 passes is 3 sightings: a group (DBSCAN core: 3 neighbours)


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def truth_name(truth: dict, r, i: int) -> str | None:
    """The LFW person under face ``i`` of result ``r`` (box IoU >= 0.4 with the clip's truth)."""
    best, who = 0.4, None
    for t in truth["frames"][r.frame.index]:
        iou = _box_iou(r.faces.boxes[i].tolist(), t["box"])
        if iou >= best:
            best, who = iou, t["name"]
    return who


@pytest.fixture(scope="module")
def recognizer():
    from engine.live import realtime_recognizer

    return realtime_recognizer()  # shipped models: a load failure is a bug, not a skip


@pytest.fixture(scope="module")
def clip(lfw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "people.avi"
    facescope("synth-clip", "--lfw", lfw_dir, "--out", out, "--faces", "2", "--unknown", "2", "--frames", "150",
              "--size", "640x360")
    truth = json.loads(Path(f"{out}.json").read_text())
    return out, truth


def _session(path: Path, recognizer):
    from engine.live import LiveSession

    s = LiveSession(path, recognizer, capture_config=CaptureConfig(realtime=False))
    s.open()
    return s


def run_pass(session, clip_path: Path, on_result=None) -> int:
    """One pass of the clip through the session (on this thread), sightings written at the end."""
    n = 0
    for r in session.run(parse_source(str(clip_path))):
        n += 1
        if on_result is not None:
            on_result(r)
    session.flush_sightings(force=True)
    return n


@pytest.fixture(scope="module")
def base_gallery(clip, recognizer, tmp_path_factory):
    """The enrolled people of the clip (their held-out photos) + PASSES passes of sightings, regrouped."""
    clip_path, truth = clip
    path = tmp_path_factory.mktemp("people") / "base.db"
    s = _session(path, recognizer)
    try:
        for ident in (i for i in truth["identities"] if i["enrolled"]):
            paths = [clip_path.parent / p for p in ident["enrol_images"]]
            assert s.enrol_images(paths, ident["name"].replace("_", " "))[0] == len(paths)
        for _ in range(PASSES):
            run_pass(s, clip_path)
        assert s.regroup_unknowns()["groups"] >= 2
    finally:
        s.close()
    return path


@pytest.fixture
def session(base_gallery, recognizer, tmp_path):
    path = tmp_path / "people.db"
    shutil.copy(base_gallery, path)
    s = _session(path, recognizer)
    yield s
    s.close()


def enrolled_names(truth) -> list[str]:
    return [i["name"].replace("_", " ") for i in truth["identities"] if i["enrolled"]]


def strangers(truth) -> list[str]:
    return [i["name"] for i in truth["identities"] if not i["enrolled"]]
