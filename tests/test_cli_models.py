"""CLI for the P4 models, run for real: eval landmarks/detector, YOLO + hourglass recognition,
landmark drawing, pose-aware enrolment."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.enrolment import EnrolmentCheck
from engine.records import Faces
from tests.conftest import REPO, shared_path
from tests.test_cli import facescope


def test_help_for_model_commands():
    for cmd in (["train", "landmarks"], ["train", "detector"], ["eval", "landmarks"], ["eval", "detector"]):
        assert "usage: facescope" in facescope(*cmd, "--help").stdout


def test_eval_landmarks_writes_the_documented_keys(tmp_path):
    pytest.importorskip("dlib")
    data = shared_path("data", "300w")
    js, png = tmp_path / "lm.json", tmp_path / "ced.png"
    out = facescope("eval", "landmarks", "--data", data, "--limit", "12", "--compare", "dlib", "--json", js,
                    "--ced", png).stdout
    r = json.loads(js.read_text())
    assert {"nme", "failure_rate_0.08", "failure_rate_0.10", "auc_0.08", "faces", "dlib_nme"} <= set(r)
    assert r["faces"] == 12 and 0 < r["nme"] < 0.2 and 0 < r["dlib_nme"] < 0.3 and 0 <= r["auc_0.08"] <= 1
    assert r["split"] == "val" and "not held out" in out and png.stat().st_size > 1000


def test_eval_landmarks_bad_folder_is_a_clear_error(tmp_path):
    res = facescope("eval", "landmarks", "--data", tmp_path, check=False)
    assert res.returncode == 2 and "no .pts files" in res.stderr


def test_eval_detector_against_yunet(tmp_path):
    lfw = shared_path("data", "lfw")
    afw = shared_path("data", "300w", "afw")
    js = tmp_path / "det.json"
    facescope("eval", "detector", "--lfw", lfw, "--afw", afw, "--images", "6", "--json", js)
    r = json.loads(js.read_text())
    assert set(r["sets"]) == {"lfw_heldout", "afw"}
    lfw_r = r["sets"]["lfw_heldout"]
    assert lfw_r["images"] == 6 and 0 <= lfw_r["recall"] <= 1 and lfw_r["reference_faces"] >= 6


def test_eval_lfw_with_box_only_yolo_and_hourglass(tmp_path):
    data = shared_path("data", "lfw")
    js = tmp_path / "lfw.json"
    facescope("eval", "lfw", "--data", data, "--limit", "3", "--detector", "yolo", "--json", js, "--roc", tmp_path / "roc.png")
    r = json.loads(js.read_text())
    assert r["pairs"] == 60 and r["accuracy"] > 0.8


def test_box_only_detector_without_landmarks_is_refused(tmp_path):
    img = shared_path("data", "lfw", "lfw-deepfunneled", "Aaron_Peirsol", "Aaron_Peirsol_0001.jpg")
    res = facescope("enroll", "--gallery", tmp_path / "g.db", "--name", "x", "--detector", "yolo", "--landmarks",
                    "none", img, check=False)
    assert res.returncode == 2 and "landmark model" in res.stderr


def test_run_yolo_with_landmark_overlay(tmp_path):
    import cv2

    video = tmp_path / "out.avi"
    out = facescope("run", "--source", REPO / "resources" / "demo" / "megamind.avi", "--frames", "12",
                    "--detector", "yolo", "--draw-landmarks", "--out", video).stdout
    assert "12 frames" in out
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    assert ok and frame.shape[:2] == (528, 720)
    cap.release()


def test_enrolment_check_flags_profile_and_blur():
    faces = Faces(np.array([[0, 0, 100, 100]], np.float32), np.ones(1, np.float32),
                  poses=np.array([[50.0, 5.0, 0.0]], np.float32), sharpness=np.array([0.05], np.float32))
    issues = EnrolmentCheck().issues(faces)
    assert any("yaw +50" in i for i in issues) and any("blurred" in i for i in issues)
    ok = faces.replace(poses=np.array([[10.0, 5.0, 0.0]], np.float32), sharpness=np.array([0.9], np.float32))
    assert EnrolmentCheck().issues(ok) == []


def test_enroll_refuses_a_profile_photo_unless_allowed(tmp_path):
    from engine.imageio import read_image
    from engine.recognizer import Recognizer

    rec = Recognizer.create()
    profile = None
    for path in sorted(shared_path("data", "300w", "afw").glob("*.jpg")):
        faces = rec.detect(read_image(path))
        if len(faces):
            f = rec.locate(read_image(path), faces.select([faces.largest()]))
            if abs(f.poses[0, 0]) > 40 and f.sharpness[0] > 0.3:
                profile = path
                break
    if profile is None:
        pytest.skip("no AFW photo measured as a profile by the current landmark model")
    db = tmp_path / "g.db"
    res = facescope("enroll", "--gallery", db, "--name", "side", profile, check=False)
    assert res.returncode == 2 and "turned sideways" in res.stderr
    res = facescope("enroll", "--gallery", db, "--name", "side", "--allow-poor", profile)
    assert "warning:" in res.stdout and "enrolled 1 face" in res.stdout
