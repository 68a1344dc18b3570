"""MJPEG files and streams decoded by libjpeg-turbo from FFmpeg's packets (engine.capture.jpeg_packets):
the same frames and timestamps as FFmpeg's own decoding, a bad packet skipped, a first packet that is
not a whole frame sends the source back to FFmpeg, and an MJPEG IP camera (HTTP multipart and RTSP,
real servers on 127.0.0.1) is read the same way."""
from __future__ import annotations

import http.server
import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.capture import Capture, CaptureConfig
from engine.capture.reader import open_reader
from engine.capture.source import parse_source
from tests.conftest import DEMO_MJPEG_FRAMES as N

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "megamind.avi"


def _mjpeg_avi(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _break_jpeg(path: Path, k: int) -> None:
    """Overwrite the start-of-image marker of the k-th JPEG in the file: that packet is no JPEG."""
    data = bytearray(path.read_bytes())
    at = -1
    for _ in range(k + 1):
        at = data.find(b"\xff\xd8\xff", at + 1)
        assert at >= 0, f"fewer than {k + 1} JPEGs in {path}"
    data[at:at + 2] = b"\x00\x00"
    path.write_bytes(bytes(data))


def _read_all(reader) -> list[tuple[np.ndarray, float | None]]:
    out = []
    try:
        while (raw := reader.read()) is not None:
            out.append((raw[0], raw[1]))
    finally:
        reader.release()
    return out


def test_mjpeg_file_frames_and_times_match_ffmpeg_decoding(tmp_path, demo_frames):
    path = _mjpeg_avi(tmp_path / "cam.avi", demo_frames)
    spec = parse_source(str(path))
    fast = open_reader(spec, 5.0, 5.0)
    assert fast.packets is not None  # decoded from packets by default
    ffmpeg = open_reader(spec, 5.0, 5.0, jpeg_packets=False)
    assert ffmpeg.packets is None
    a, b = _read_all(fast), _read_all(ffmpeg)
    assert len(a) == len(b) == N
    assert [t for _, t in a] == [t for _, t in b] == pytest.approx([k / 25.0 for k in range(N)])
    for (x, _), (y, _), original in zip(a, b, demo_frames, strict=True):
        assert x.shape == y.shape == original.shape and x.dtype == np.uint8 and x.flags.c_contiguous
        assert np.abs(x.astype(np.int16) - y).mean() < 2.0  # chroma upsampling differs, nothing else
        assert np.abs(x.astype(np.int16) - original).mean() < 4.0  # the picture written, give or take JPEG
    with Capture(str(path), CaptureConfig(realtime=False)) as cap:  # and through the capture thread, in order
        got = [cap.read(5.0) for _ in range(N)]
    assert [f.index for f in got] == list(range(N))
    np.testing.assert_array_equal(got[7].image, a[7][0])


def test_a_packet_that_is_no_jpeg_is_skipped(tmp_path, demo_frames, caplog):
    path = _mjpeg_avi(tmp_path / "cam.avi", demo_frames)
    _break_jpeg(path, 5)
    reader = open_reader(parse_source(str(path)), 5.0, 5.0)
    assert reader.packets is not None
    with caplog.at_level(logging.WARNING, logger="engine.capture.jpeg_packets"):
        frames = _read_all(reader)
    assert len(frames) == N - 1 and reader.packets.skipped == 1
    assert [t for _, t in frames][4:6] == pytest.approx([4 / 25.0, 6 / 25.0])  # frame 5 is the one missing
    assert sum("not a decodable JPEG" in r.getMessage() for r in caplog.records) == 1


def test_first_packet_not_a_frame_leaves_decoding_to_ffmpeg(tmp_path, demo_frames):
    path = _mjpeg_avi(tmp_path / "cam.avi", demo_frames)
    _break_jpeg(path, 0)
    reader = open_reader(parse_source(str(path)), 5.0, 5.0)
    assert reader.packets is None  # reopened: FFmpeg decodes (and drops the broken first frame itself)
    frames = _read_all(reader)
    assert N - 1 <= len(frames) <= N and all(f.shape == demo_frames[0].shape for f, _ in frames)


def test_other_codecs_are_decoded_by_ffmpeg():
    reader = open_reader(parse_source(str(DEMO)), 5.0, 5.0)  # MPEG-4 part 2
    try:
        assert reader.packets is None and reader.read()[0].shape == (528, 720, 3)
    finally:
        reader.release()


class _MjpegCamera(http.server.BaseHTTPRequestHandler):
    """An IP camera's MJPEG stream: multipart/x-mixed-replace, one JPEG a part."""

    jpegs: list[bytes] = []

    def do_GET(self) -> None:  # http.server calls it by this name
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=frame")
        self.end_headers()
        try:
            for jpeg in self.jpegs:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                 + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


def test_mjpeg_ip_camera_stream_is_read_from_packets(demo_frames):
    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in demo_frames[:10]]
    handler = type("Camera", (_MjpegCamera,), {"jpegs": jpegs})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
        reader = open_reader(parse_source(url), 5.0, 5.0)
        assert reader.packets is not None
        frames = [f for f, _ in _read_all(reader)]
    finally:
        server.shutdown()
        server.server_close()
    assert len(frames) == len(jpegs)
    for got, jpeg in zip(frames, jpegs, strict=True):  # exactly what libjpeg-turbo makes of each JPEG sent
        np.testing.assert_array_equal(got, cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))


def test_mjpeg_rtsp_camera_is_read_from_packets(tmp_path):
    """RTP/JPEG, as an IP camera's MJPEG mode streams it (GStreamer's RTSP server): FFmpeg rebuilds each
    frame's JPEG from the RTP packets, libjpeg-turbo decodes it; the same pictures as FFmpeg's own decoding."""
    from tests.test_capture import serve_rtsp

    server = serve_rtsp(tmp_path, "mjpeg")
    try:
        spec = parse_source(f"rtsp://127.0.0.1:{server.port}/demo")
        firsts = {}
        for packets in (True, False):  # each client gets the clip from its start
            reader = open_reader(spec, 5.0, 5.0, jpeg_packets=packets)
            try:
                assert (reader.packets is not None) == packets
                firsts[packets] = [reader.read()[0] for _ in range(5)]
            finally:
                reader.release()
    finally:
        server.kill()
    for a in firsts[True]:  # each matches one of FFmpeg's (a frame lost in transit must not shift the pairs)
        assert a.shape == (528, 720, 3)
        assert min(np.abs(a.astype(np.int16) - b).mean() for b in firsts[False]) < 2.0
