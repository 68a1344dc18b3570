"""MJPEG frames decoded on demand (engine.capture.jpeg_packets, CaptureConfig.decode_on_demand):
each packet gives a small grey preview at once and its full picture only when a stage reads it;
the picture is the one full decoding gives; the pipeline decodes the frames it detects on and
no others; a bad packet is still skipped; a camera that changes its frame size mid-stream is followed."""
from __future__ import annotations

import http.server
import threading

import cv2
import numpy as np
import pytest

from engine.capture import Capture, CaptureConfig, Frame
from engine.capture.jpeg_packets import JpegImage, preview_scale
from engine.capture.reader import open_reader
from engine.capture.source import parse_source
from tests.conftest import DEMO_MJPEG_FRAMES as N
from tests.test_jpeg_packets import _break_jpeg, _mjpeg_avi, _MjpegCamera, _read_all


@pytest.mark.parametrize(("shape", "scale"), [((720, 1280), 4), ((1080, 1920), 4), ((2160, 3840), 8),
                                              ((480, 640), 2), ((288, 352), 2), ((240, 320), 1), ((100, 100), 1)])
def test_preview_scale_keeps_the_gate_height(shape, scale):
    assert preview_scale(shape) == scale
    assert -(-shape[0] // scale) >= min(144, shape[0])


def test_frames_decode_when_read_and_match_full_decoding(tmp_path, demo_frames):
    path = _mjpeg_avi(tmp_path / "cam.avi", demo_frames)
    spec = parse_source(str(path))
    lazy = _read_all(open_reader(spec, 5.0, 5.0, on_demand=True))
    full = _read_all(open_reader(spec, 5.0, 5.0))
    assert len(lazy) == len(full) == N
    assert [t for _, t in lazy] == [t for _, t in full]
    h, w = demo_frames[0].shape[:2]  # 528x720: previews at 1/2 (264 px >= 144)
    for k, ((packet, pts), (image, _)) in enumerate(zip(lazy, full, strict=True)):
        assert isinstance(packet, JpegImage) and isinstance(image, np.ndarray)
        assert packet.decoded == (k == 0)  # the first packet was decoded in full to check the stream
        frame = Frame(packet, k, 0.0, pts)
        assert frame.shape == (h, w) and frame.preview.shape == (h // 2, w // 2)
        assert not frame.preview.flags.writeable
        if k == 0:
            continue
        assert not packet.decoded  # shape and preview did not decode it
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # the preview is the picture, smaller
        assert np.abs(cv2.resize(grey, (w // 2, h // 2), interpolation=cv2.INTER_AREA).astype(np.int16)
                      - frame.preview).mean() < 3.0
        got = frame.image
        assert packet.decoded and frame.image is got and not got.flags.writeable
        np.testing.assert_array_equal(got, image)  # the same libjpeg-turbo decoding, only later


def test_capture_hands_out_undecoded_frames_by_default(tmp_path, demo_frames):
    path = _mjpeg_avi(tmp_path / "cam.avi", demo_frames)
    for on_demand in (True, False):
        with Capture(str(path), CaptureConfig(realtime=False, decode_on_demand=on_demand)) as cap:
            cap.start()
            frames = [cap.read(5.0) for _ in range(N)]
        assert all(f is not None for f in frames)
        assert all((f.preview is not None) == on_demand for f in frames)
        assert frames[9].image.shape == demo_frames[0].shape
    assert CaptureConfig().decode_on_demand


def test_a_bad_packet_is_skipped_on_demand_too(tmp_path, demo_frames):
    path = _mjpeg_avi(tmp_path / "cam.avi", demo_frames)
    _break_jpeg(path, 5)
    reader = open_reader(parse_source(str(path)), 5.0, 5.0, on_demand=True)
    frames = _read_all(reader)
    assert len(frames) == N - 1 and reader.packets.skipped == 1
    assert [t for _, t in frames][4:6] == pytest.approx([4 / 25.0, 6 / 25.0])


def test_a_camera_that_changes_its_frame_size_is_followed(demo_frames):
    big = demo_frames[:4]
    small = [cv2.resize(f, (360, 264), interpolation=cv2.INTER_AREA) for f in demo_frames[4:8]]
    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in big + small]
    handler = type("Camera", (_MjpegCamera,), {"jpegs": jpegs})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
        reader = open_reader(parse_source(url), 5.0, 5.0, on_demand=True)
        assert reader.packets is not None
        got = [f for f, _ in _read_all(reader)]
    finally:
        server.shutdown()
        server.server_close()
    assert [g.shape for g in got] == [(528, 720)] * 4 + [(264, 360)] * 4
    assert [g.preview.shape for g in got] == [(264, 360)] * 4 + [(264, 360)] * 4  # 1/2, then 1/1
    for g, jpeg in zip(got, jpegs, strict=True):
        np.testing.assert_array_equal(g.image, cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))


def test_the_pipeline_decodes_the_frames_it_detects_on_and_no_others(tmp_path):
    """Megamind re-encoded as MJPEG, through the real pipeline with the detector gated: exactly the
    detected frames are decoded in full; tracking on the previews follows the same faces as with
    every frame decoded (the gate's pictures differ a little: DCT-scaled against bilinear)."""
    from engine.config import DetectorConfig
    from engine.pipeline import Pipeline, realtime_config
    from engine.recognizer import Recognizer
    from tests.test_gating import DEMO, _frames

    images = _frames(DEMO, 120)
    path = _mjpeg_avi(tmp_path / "megamind.avi", images, fps=24.0)
    spec = parse_source(str(path))
    recognizer = Recognizer.from_config(realtime_config(detector=DetectorConfig(input_size=(640, 384))))
    runs = {}
    for on_demand in (True, False):
        pipeline = Pipeline(recognizer)
        raw = _read_all(open_reader(spec, 5.0, 5.0, on_demand=on_demand))
        frames = [Frame(image, k, 0.0, pts) for k, (image, pts) in enumerate(raw)]
        results = [pipeline.process(f) for f in frames]
        runs[on_demand] = (frames, results, pipeline.gate)
    frames, results, gate = runs[True]
    decoded = sum(f._image.decoded for f in frames)  # what was decoded in full
    assert gate.counts["skipped"] > 20 and decoded == gate.detections == len(frames) - gate.counts["skipped"]
    lazy_faces = [len(r.faces) for r in results]
    full_faces = [len(r.faces) for r in runs[False][1]]
    assert sum(lazy_faces) > 100
    assert abs(sum(lazy_faces) - sum(full_faces)) <= 0.05 * sum(full_faces)
    assert abs(gate.detections - runs[False][2].detections) <= 0.15 * runs[False][2].detections


def test_a_packet_that_fails_its_full_decoding_is_shown_from_its_preview(caplog):
    """Not expected of libjpeg-turbo (the preview decodes every coefficient too), but a frame the
    gate already saw is never lost: its picture is the preview, enlarged, with a warning."""
    preview = np.full((180, 320), 77, np.uint8)
    image = JpegImage(np.frombuffer(b"no jpeg at all", np.uint8), (720, 1280), preview)
    with caplog.at_level("WARNING", logger="engine.capture.jpeg_packets"):
        got = Frame(image, 0, 0.0).image
    assert got.shape == (720, 1280, 3) and (got == 77).all() and not got.flags.writeable
    assert "did not decode in full" in caplog.text


@pytest.mark.parametrize(("argv", "on_demand"), [([], True), (["--decode", "full"], False),
                                                 (["--out", "x.avi"], False), (["--gate", "every-frame"], False)])
def test_decode_option_gives_full_frames_where_every_frame_is_decoded_anyway(argv, on_demand):
    import argparse

    from engine.cli.gate_args import add_gate_args, decode_on_demand

    parser = argparse.ArgumentParser()
    add_gate_args(parser)
    parser.add_argument("--out")
    assert decode_on_demand(parser.parse_args(argv)) is on_demand
