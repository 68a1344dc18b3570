"""Webcams as users know them (engine.capture.webcams): the open plan per OS, settings parsing, the
listing through cv2-enumerate-cameras, and one clear error for a camera that is not there.

No webcam exists on the development machines: the property round-trip on a real device
(CAP_PROP_FOURCC / FRAME_WIDTH / FRAME_HEIGHT / FPS set, then read back) is never run here."""
from __future__ import annotations

import glob
import json

import cv2
import pytest

from engine.capture.webcams import (
    CameraEntry,
    WebcamSettings,
    default_backend,
    entries_from,
    format_cameras,
    fourcc_text,
    list_cameras,
    open_webcam,
    parse_resolution,
    plan_open,
)
from tests.test_cli import facescope

NO_CAMERA = 63  # an index no machine here has (V4L2 numbers devices from 0)
HAS_CAMERAS = bool(glob.glob("/dev/video*"))


def test_backend_per_os():
    assert [default_backend(s) for s in ("Linux", "Windows", "Darwin", "Plan9")] == \
        ["v4l2", "msmf", "avfoundation", "any"]
    assert plan_open(None, "Linux").backend_id == cv2.CAP_V4L2
    assert plan_open(None, "Windows").backend_id == cv2.CAP_MSMF
    assert plan_open(None, "Darwin").backend_id == cv2.CAP_AVFOUNDATION
    assert plan_open(WebcamSettings(backend="dshow"), "Linux").backend_id == cv2.CAP_DSHOW  # explicit wins
    assert plan_open(None, "Linux").props == ()  # nothing asked: the driver's default mode


def test_1080p30_asks_mjpg_first_then_size_and_rate():
    plan = plan_open(WebcamSettings(resolution=(1920, 1080), fps=30), "Linux")
    assert [p for p, _ in plan.props] == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                                          cv2.CAP_PROP_FPS]
    assert plan.props[0][1] == cv2.VideoWriter_fourcc(*"MJPG")
    assert [v for _, v in plan.props[1:]] == [1920.0, 1080.0, 30.0]
    # 720p30 fits uncompressed: no format is forced; an explicit one is kept; auto_mjpg=False never adds one
    assert cv2.CAP_PROP_FOURCC not in dict(plan_open(WebcamSettings(resolution=(1280, 720), fps=30)).props)
    assert dict(plan_open(WebcamSettings(fourcc="yuyv")).props)[cv2.CAP_PROP_FOURCC] == \
        cv2.VideoWriter_fourcc(*"YUYV")
    assert cv2.CAP_PROP_FOURCC not in dict(plan_open(WebcamSettings((1920, 1080), 30, auto_mjpg=False)).props)
    assert dict(plan_open(WebcamSettings(fps=60)).props)[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")


def test_settings_parse_and_fail_loudly():
    assert parse_resolution("1920x1080") == (1920, 1080) == parse_resolution("1080p")
    assert parse_resolution(" 1280 X 720 ") == (1280, 720)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_resolution("big")
    with pytest.raises(ValueError, match="4 letters"):
        WebcamSettings(fourcc="MJPEG")
    with pytest.raises(ValueError, match="backend"):
        WebcamSettings(backend="directshow")
    with pytest.raises(ValueError, match="fps"):
        WebcamSettings(fps=0)
    s = WebcamSettings.from_dict({"resolution": "720p", "fps": 25, "fourcc": "MJPG", "backend": "v4l2"})
    assert (s.resolution, s.fps, s.fourcc, s.backend) == ((1280, 720), 25, "MJPG", "v4l2")
    with pytest.raises(ValueError, match="unknown webcam settings"):
        WebcamSettings.from_dict({"size": "720p"})
    assert fourcc_text(cv2.VideoWriter_fourcc(*"MJPG")) == "MJPG" and fourcc_text(0) == ""


def test_listing_rows_and_table():
    from cv2_enumerate_cameras import CameraInfo  # the library's own record

    infos = [CameraInfo(2, "Integrated Camera", "/dev/video2", None, None, cv2.CAP_V4L2),
             CameraInfo(0, "HD Pro Webcam C920", "/dev/video0", 0x046D, 0x082D, cv2.CAP_V4L2)]
    rows = entries_from(infos, "v4l2")
    assert rows == [CameraEntry(0, "HD Pro Webcam C920", "v4l2", "/dev/video0", "046d:082d"),
                    CameraEntry(2, "Integrated Camera", "v4l2", "/dev/video2", None)]
    table = format_cameras(rows)
    assert "HD Pro Webcam C920" in table and "046d:082d" in table and "--source INDEX" in table
    assert format_cameras([]).startswith("no cameras found")
    with pytest.raises(ValueError, match="cannot list cameras on the msmf backend"):
        list_cameras("msmf", system="Linux")  # Windows-only listing asked on this OS


@pytest.mark.skipif(HAS_CAMERAS, reason="this machine has /dev/video* devices: the empty listing is not checkable")
def test_this_machine_lists_no_camera(tmp_path):
    assert list_cameras() == []
    r = facescope("cameras", "--json", tmp_path / "cams.json")
    assert "no cameras found" in r.stdout
    assert json.loads((tmp_path / "cams.json").read_text()) == {"cameras": []}


def test_missing_camera_is_one_clear_error():
    from engine.capture import Capture, CaptureConfig, SourceError

    with pytest.raises(SourceError, match=f"no camera with index {NO_CAMERA} on the v4l2 backend"):
        open_webcam(NO_CAMERA, WebcamSettings(resolution=(1920, 1080), fps=30), system="Linux")
    cap = Capture(str(NO_CAMERA), CaptureConfig(webcam=WebcamSettings(resolution=(1920, 1080), fps=30)))
    with cap:
        assert cap.read(timeout=10) is None
    assert cap.state.value == "failed" and f"no camera with index {NO_CAMERA}" in cap.reason
    assert cap.negotiated is None
    r = facescope("run", "--source", str(NO_CAMERA), "--webcam-size", "1080p", "--webcam-fps", "30", check=False)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("facescope: error:")]
    assert len(errors) == 1 and f"no camera with index {NO_CAMERA}" in errors[0], r.stderr
    r = facescope("run", "--source", "0", "--webcam-format", "MJPEG", check=False)
    assert r.returncode == 2 and "4 letters" in r.stderr
