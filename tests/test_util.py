"""The shared helpers: atomic writes, the rate meter, image suffixes, the config check, boxes, labels."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.boxes import iou_matrix
from engine.draw import COLOR_ENROLLING, COLOR_KNOWN, COLOR_UNKNOWN, draw_faces, face_label, rgb
from engine.gallery import Gallery
from engine.records import Faces
from engine.util.check import check
from engine.util.fsio import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from engine.util.imagefiles import IMAGE_SUFFIXES, is_image_path
from engine.util.rate import RateMeter

posix_modes = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------ atomic writes
def test_atomic_writes_replace_the_target_and_leave_no_temp(tmp_path: Path):
    target = tmp_path / "sub" / "card.json"  # the folder is created
    atomic_write_json(target, {"b": 1, "a": [1, 2]}, sort_keys=True)
    assert target.read_text() == json.dumps({"a": [1, 2], "b": 1}, indent=2, sort_keys=True) + "\n"
    atomic_write_text(target, "né\n")
    assert target.read_bytes() == "né\n".encode()
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(target.parent) == ["card.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fi")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["last.pt"]
    with pytest.raises(TypeError):  # not JSON: fails before anything is written
        atomic_write_json(target, {"x": object()})
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["last.pt"]


def test_atomic_path_keeps_the_suffix_for_writers_that_choose_the_format_by_it(tmp_path: Path):
    image = np.full((8, 10, 3), (10, 200, 30), np.uint8)
    with atomic_path(tmp_path / "crop.png") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".png") and tmp.name.startswith(".")
        assert cv2.imwrite(str(tmp), image)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "crop.png")), image)  # PNG: lossless
    with atomic_path(tmp_path / "emb.npy") as tmp:
        np.save(tmp, np.arange(5))  # np.save appends .npy unless the name already ends with it
    np.testing.assert_array_equal(np.load(tmp_path / "emb.npy"), np.arange(5))
    assert sorted(os.listdir(tmp_path)) == ["crop.png", "emb.npy"]


@posix_modes
def test_private_files_are_owner_only_and_others_keep_their_mode(tmp_path: Path):
    secret = atomic_write_text(tmp_path / "settings.json", "{}", private=True)
    assert _mode(secret) == 0o600
    atomic_write_text(secret, "{} ")  # rewriting without private keeps the existing bits
    assert _mode(secret) == 0o600
    shared = tmp_path / "report.json"
    shared.write_text("x")
    os.chmod(shared, 0o644)
    atomic_write_text(shared, "y")
    assert _mode(shared) == 0o644 and shared.read_text() == "y"
    old = os.umask(0o022)
    try:
        fresh = atomic_write_text(tmp_path / "new.txt", "z")
    finally:
        os.umask(old)
    assert _mode(fresh) == 0o644  # a new file: 0666 minus the umask, as open() gives


@posix_modes
def test_gallery_export_is_private_and_self_contained(tmp_path: Path):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(2, 8)).astype(np.float32)
    with Gallery.open(tmp_path / "people.db", "test-emb", 8) as g:
        g.enroll("Ada", emb / np.linalg.norm(emb, axis=1, keepdims=True))
        out = tmp_path / "out" / "copy.db"
        out.parent.mkdir()
        g.export(out)
    assert _mode(out) == 0o600  # faces and embeddings: readable by the owner only
    assert os.listdir(out.parent) == ["copy.db"]
    conn = sqlite3.connect(out)
    try:
        assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 2
    finally:
        conn.close()


# ------------------------------------------------------------------ rate meter
def test_rate_meter_measures_a_steady_rate_and_drops_to_zero_after_a_stall():
    meter = RateMeter(window_s=2.0, clock=lambda: 0.0)
    assert meter.rate(0.0) == 0.0
    meter.tick(0.0)
    assert meter.rate(0.0) == 0.0  # one tick is no rate yet
    for i in range(1, 51):  # 25 Hz for 2 s
        meter.tick(i * 0.04)
    assert meter.rate(2.0) == pytest.approx(25.0)
    assert len(meter) <= 51
    assert meter.rate(3.0) == pytest.approx(25.0)  # the ticks of the last second still count
    assert meter.rate(4.5) == 0.0  # nothing for more than the window: stalled, not frozen at 25
    meter.tick(10.0)
    meter.tick(10.5)
    assert meter.rate(10.5) == pytest.approx(2.0)
    meter.reset()
    assert meter.rate(10.5) == 0.0 and len(meter) == 0


def test_rate_meter_uses_its_clock_and_validates():
    now = [100.0]
    meter = RateMeter(1.0, clock=lambda: now[0])
    for _ in range(11):
        meter.tick()
        now[0] += 0.1
    assert meter.rate() == pytest.approx(10.0)
    bounded = RateMeter(10.0, max_events=4)
    for t in range(10):
        bounded.tick(float(t))
    assert len(bounded) == 4 and bounded.rate(9.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="window_s"):
        RateMeter(0.0)
    with pytest.raises(ValueError, match="max_events"):
        RateMeter(1.0, max_events=1)


# ------------------------------------------------------------------ image suffixes
def test_every_image_suffix_is_one_opencv_reads(tmp_path: Path):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)  # JPEG 2000 needs >= 32 px
    for suffix in IMAGE_SUFFIXES:
        path = tmp_path / f"x{suffix}"
        assert cv2.imwrite(str(path), image[:, :, 0] if suffix == ".pgm" else image), suffix  # PGM: grey only
        back = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert back is not None and back.shape == image.shape, suffix


def test_is_image_path():
    assert is_image_path("a/b/Face.JPG") and is_image_path(Path("x.webp")) and is_image_path("y.tiff")
    assert not is_image_path("notes.txt") and not is_image_path("clip.mp4") and not is_image_path("jpg")
    assert not is_image_path("._x.jpg") and not is_image_path("dir/.hidden.png")


# ------------------------------------------------------------------ check, boxes
def test_check_raises_value_error_with_the_message():
    check(True, "never shown")
    with pytest.raises(ValueError, match="^epochs must be >= 1, got 0$"):
        check(False, "epochs must be >= 1, got 0")


def test_one_iou_matrix_serves_the_tracker_and_the_synthetic_truth():
    import engine.synth.truth
    import engine.track
    import engine.track.bytetrack

    assert engine.track.iou_matrix is engine.track.bytetrack.iou_matrix is engine.synth.truth.iou_matrix is iou_matrix
    got = iou_matrix([[0, 0, 10, 10], [5, 5, 15, 15]], [0, 0, 10, 10])
    np.testing.assert_allclose(got[:, 0], [1.0, 25 / 175])


# ------------------------------------------------------------------ labels and colours
def _faces() -> Faces:
    return Faces(boxes=np.array([[10, 10, 60, 70], [80, 10, 130, 70], [10, 80, 60, 140]], np.float32),
                 scores=np.ones(3, np.float32), track_ids=np.array([3, 7, -1]),
                 names=("Ada", None, None), similarities=np.array([0.8123, 0.2, np.nan]))


def test_face_label_and_colours():
    faces = _faces()
    assert [face_label(faces, i) for i in range(3)] == ["#3 Ada 0.81", "#7 unknown 0.20", "unknown"]
    assert rgb(COLOR_KNOWN) == (60, 200, 80) and rgb(COLOR_UNKNOWN) == (255, 160, 60)
    assert len({COLOR_KNOWN, COLOR_UNKNOWN, COLOR_ENROLLING}) == 3
    out = draw_faces(np.zeros((160, 160, 3), np.uint8), faces, keypoints=False)

    def painted(color, region) -> int:
        return int(np.all(out[region] == color, axis=-1).sum())

    ada, other = (slice(0, 62), slice(0, 70)), (slice(0, 62), slice(75, 140))  # above the third face's label
    assert painted(COLOR_KNOWN, ada) > 50 and painted(COLOR_UNKNOWN, ada) == 0
    assert painted(COLOR_UNKNOWN, other) > 50 and painted(COLOR_KNOWN, other) == 0
