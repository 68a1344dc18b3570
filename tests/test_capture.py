"""Capture layer: source parsing, the newest-frame slot, pacing, states, hang safety, RTSP reconnects.

Uses the demo clip in the repo (720x528, 23.976 fps, 270 frames). The RTSP test starts a real
GStreamer RTSP server (tests/rtsp_server.py, Debian's /usr/bin/python3 + python3-gi) and skips
with the reason when that cannot start. Every wait is bounded.
"""
from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import engine.capture.capture as capture_mod
from engine.capture import (
    Capture,
    CaptureConfig,
    CaptureState,
    Frame,
    SourceError,
    SourceReader,
    SourceSpec,
    open_capture,
    parse_source,
)
from engine.capture.reader import open_reader

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "megamind.avi"
DEMO_FRAMES, DEMO_FPS = 270, 23.976
GST_PYTHON = os.environ.get("FACESCOPE_GST_PYTHON", "/usr/bin/python3")
FAST = CaptureConfig(realtime=False)


def capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("facescope-")]


def wait_until(cond, timeout: float, step: float = 0.02) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def assert_no_capture_threads(timeout: float = 2.0) -> None:
    assert wait_until(lambda: not capture_threads(), timeout), f"threads left: {capture_threads()}"


def read_all(cap: Capture, timeout: float = 5.0) -> list[Frame]:
    frames = []
    while (f := cap.read(timeout)) is not None:
        frames.append(f)
    return frames


# ---------------------------------------------------------------- parse_source
def test_parse_webcam_and_urls():
    assert parse_source("0") == SourceSpec("webcam", 0, "webcam 0")
    assert parse_source(" 2 ").value == 2 and parse_source(3).value == 3
    assert parse_source("/dev/video4").kind == "webcam" and parse_source("/dev/video4").value == 4
    spec = parse_source("rtsp://admin:s3cret@10.0.0.5:554/Streaming/101")
    assert (spec.kind, spec.value) == ("url", "rtsp://admin:s3cret@10.0.0.5:554/Streaming/101")
    assert spec.display == "rtsp://admin:***@10.0.0.5:554/Streaming/101" and str(spec) == spec.display
    assert "s3cret" not in repr(spec) and "s3cret" not in f"{spec}"
    assert parse_source("rtsp://user:p@ss@cam/x").display == "rtsp://user:***@cam/x"
    assert parse_source("http://cam/video.mjpg?user=a&password=xyz&fps=5").display == \
        "http://cam/video.mjpg?user=a&password=***&fps=5"
    assert parse_source("https://cam.local/live.m3u8").display == "https://cam.local/live.m3u8"
    assert parse_source("udp://@:1234").kind == "url" and parse_source("RTSPS://cam/x").kind == "url"


def test_parse_files_and_folders(tmp_path):
    spec = parse_source(str(DEMO))
    assert (spec.kind, spec.value) == ("file", str(DEMO.resolve())) and parse_source(DEMO) == spec
    for name in ("b10.png", "b2.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert parse_source(str(tmp_path)) == SourceSpec("folder", str(tmp_path.resolve()), str(tmp_path))


@pytest.mark.parametrize("text, message", [
    ("", "empty source"),
    ("-1", "webcam index must be >= 0"),
    ("/nonexistent/clip.mp4", "no such file or folder: /nonexistent/clip.mp4"),
    ("ftp://bob:hunter2@host/x.mp4", "unsupported URL scheme 'ftp'"),
    ("rtsp://", "names no host"),
    ("rtsp://bob:hunter2@cam:99999/x", "malformed URL rtsp://bob:***@cam:99999/x"),
])
def test_parse_rejects_bad_sources(text, message):
    with pytest.raises(SourceError, match=re.escape(message)) as info:
        parse_source(text)
    assert "hunter2" not in str(info.value)  # passwords never reach a message


def test_parse_rejects_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError, match="holds no images"):
        parse_source(str(tmp_path))


def test_config_and_frame_validation():
    with pytest.raises(ValueError, match="read_timeout_s"):
        CaptureConfig(read_timeout_s=0)
    with pytest.raises(ValueError, match="backoff_max_s"):
        CaptureConfig(backoff_initial_s=2, backoff_max_s=1)
    with pytest.raises(ValueError, match="max_frames"):
        CaptureConfig(max_frames=0)
    for bad in (-1, 2.0, 65):
        with pytest.raises(ValueError, match="decode_threads"):
            CaptureConfig(decode_threads=bad)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        Frame(np.zeros((4, 4), np.uint8), 0, 0.0)
    with pytest.raises(ValueError, match="SourceSpec|kind"):
        SourceSpec("camera", 0, "x")


# ---------------------------------------------------------------- files and folders
def test_file_fast_mode_delivers_every_frame_in_order():
    with Capture(str(DEMO), FAST) as cap:
        frames = []
        while (f := cap.read(5.0)) is not None:
            frames.append(f)
            if len(frames) <= 20:
                time.sleep(0.002)  # a consumer slower than decoding must still see every frame
        stats = cap.stats()
    assert [f.index for f in frames] == list(range(DEMO_FRAMES))
    ts = np.array([f.timestamp for f in frames])
    pts = np.array([f.pts_s for f in frames])
    assert np.all(np.diff(ts) > 0) and np.all(np.diff(pts) > 0)
    assert abs(pts[-1] - pts[0] - (DEMO_FRAMES - 1) / DEMO_FPS) < 0.05
    assert (stats.state, stats.captured, stats.delivered, stats.dropped) == (CaptureState.ENDED, 270, 270, 0)
    assert "end of file" in stats.reason and cap.finished
    assert frames[0].image.shape == (528, 720, 3) and not frames[0].image.flags.writeable
    ref = cv2.VideoCapture(str(DEMO))
    ok, first = ref.read()
    ref.release()
    assert ok and np.array_equal(first, frames[0].image)
    assert_no_capture_threads()


def test_file_realtime_slow_consumer_drops_and_measures_native_fps():
    with Capture(str(DEMO), CaptureConfig(realtime=True)) as cap:
        got, t0 = [], time.perf_counter()
        while time.perf_counter() - t0 < 2.5:
            f = cap.read(1.0)
            assert f is not None
            got.append(f)
            time.sleep(0.1)  # ~10 FPS consumer against a 24 FPS source
        stats = cap.stats()
    assert stats.state == CaptureState.LIVE
    assert abs(stats.fps - DEMO_FPS) < 2.0, stats
    assert stats.dropped >= 20 and stats.delivered == len(got)
    assert 0 <= stats.captured - stats.delivered - stats.dropped <= 1  # one frame may wait in the slot
    idx = [f.index for f in got]
    assert idx == sorted(set(idx)) and idx[-1] - idx[0] > len(idx)  # newest frames, gaps = drops
    # paced like a camera: frame i became due ~i/24 s after the first
    span = got[-1].timestamp - got[0].timestamp
    assert abs(span - (idx[-1] - idx[0]) / DEMO_FPS) < 0.15


def test_stop_mid_stream_is_prompt_idempotent_and_leaves_no_threads():
    states = []
    cap = Capture(str(DEMO), CaptureConfig(realtime=True), on_state=lambda s, r: states.append((s, r)))
    cap.start()
    for _ in range(5):
        assert cap.read(2.0) is not None
    t = time.perf_counter()
    cap.stop()
    assert time.perf_counter() - t < 1.5
    cap.stop()  # idempotent
    assert (cap.state, cap.reason) == (CaptureState.ENDED, "stopped")
    assert cap.read(0.1) is None and cap.read(None) is None  # never blocks once stopped
    assert [s for s, _ in states] == [CaptureState.LIVE, CaptureState.ENDED]
    assert_no_capture_threads()
    with pytest.raises(RuntimeError, match="stopped"):
        cap.start()


def test_loop_and_max_frames():
    with Capture(str(DEMO), CaptureConfig(realtime=False, loop=True, max_frames=300)) as cap:
        frames = read_all(cap)
    assert [f.index for f in frames] == list(range(300))
    assert frames[DEMO_FRAMES].pts_s < frames[DEMO_FRAMES - 1].pts_s  # media time restarts at the loop
    assert cap.state == CaptureState.ENDED and "max_frames=300" in cap.reason


def test_image_folder_source(tmp_path):
    for i, name in enumerate(["f1.png", "f2.jpg", "f10.png"]):
        cv2.imwrite(str(tmp_path / name), np.full((40, 50, 3), 60 * (i + 1), np.uint8))
    (tmp_path / "f3.png").write_bytes(b"not an image")  # skipped with a warning
    (tmp_path / "notes.txt").write_text("ignored")
    with Capture(str(tmp_path), FAST) as cap:
        frames = read_all(cap)
    assert [int(f.image[0, 0, 0]) for f in frames] == [60, 120, 180]  # natural order: f1, f2, f10
    assert [f.index for f in frames] == [0, 1, 2] and all(f.pts_s is None for f in frames)
    assert cap.state == CaptureState.ENDED and cap.stats().dropped == 0


# ---------------------------------------------------------------- failures
def test_missing_webcam_fails_fast_with_reason():
    t = time.perf_counter()
    with Capture("97", CaptureConfig(open_timeout_s=2.0)) as cap:
        assert cap.read(5.0) is None
        assert time.perf_counter() - t < 2.5
        assert cap.state == CaptureState.FAILED and cap.finished
        assert "webcam 97" in cap.reason and "no camera" in cap.reason
    with pytest.raises(SourceError, match="webcam 97"):
        open_capture(parse_source("97"), open_timeout_s=2.0)
    assert time.perf_counter() - t < 5.0
    assert_no_capture_threads()


def test_unreachable_url_fails_without_reconnect():
    t = time.perf_counter()
    with Capture("rtsp://bob:hunter2@127.0.0.1:9/x", CaptureConfig(open_timeout_s=2.0, reconnect=False)) as cap:
        assert cap.read(5.0) is None
        assert time.perf_counter() - t < 3.0
        assert cap.state == CaptureState.FAILED
        assert "cannot open stream rtsp://bob:***@127.0.0.1:9/x" in cap.reason and "hunter2" not in cap.reason
    assert_no_capture_threads()


def test_unreachable_url_keeps_reconnecting_then_stops_cleanly():
    cfg = CaptureConfig(open_timeout_s=2.0, backoff_initial_s=0.1, backoff_max_s=0.4)
    states = []
    with Capture("rtsp://127.0.0.1:9/x", cfg, on_state=lambda s, r: states.append(s)) as cap:
        assert cap.read(1.5) is None  # times out: nothing to deliver, but not finished
        assert cap.state == CaptureState.RECONNECTING and not cap.finished
        assert "retrying in" in cap.reason and cap.stats().reconnects >= 2
        t = time.perf_counter()
    assert time.perf_counter() - t < 1.5
    assert states[0] == CaptureState.RECONNECTING and states[-1] == CaptureState.ENDED
    assert_no_capture_threads()


def test_reconnect_gives_up_after_max_reconnect_s():
    cfg = CaptureConfig(open_timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.2, max_reconnect_s=0.6)
    with Capture("rtsp://127.0.0.1:9/x", cfg) as cap:
        assert cap.read(3.0) is None
        assert cap.state == CaptureState.FAILED and cap.reason.startswith("gave up after")


class FakeReader(SourceReader):
    """Delivers ``frames`` frames at ~100 FPS, then blocks like a dead camera until ``unblock``."""

    fps = 100.0

    def __init__(self, frames: int, unblock: threading.Event):
        self.left, self.unblock = frames, unblock

    def read(self):
        if self.left <= 0:
            self.unblock.wait(30)
            return None
        self.left -= 1
        time.sleep(0.01)
        return np.zeros((32, 32, 3), np.uint8), None, time.perf_counter()


def test_watchdog_turns_a_hung_read_into_reconnecting(monkeypatch):
    unblock = threading.Event()
    monkeypatch.setattr(capture_mod, "open_reader", lambda spec, *a: FakeReader(10, unblock))
    cfg = CaptureConfig(read_timeout_s=0.4, backoff_initial_s=0.1)
    states = []
    try:
        with Capture("rtsp://127.0.0.1:1/fake", cfg, on_state=lambda s, r: states.append((s, r))) as cap:
            frames = []
            t = time.perf_counter()
            while len(frames) < 25 and time.perf_counter() - t < 5:
                if (f := cap.read(0.5)) is not None:
                    frames.append(f)
            assert len(frames) == 25  # frames kept coming through two hangs
            t = time.perf_counter()
        assert time.perf_counter() - t < 1.5  # stop() does not wait on the hung I/O threads
        kinds = [s for i, (s, _) in enumerate(states) if i == 0 or s != states[i - 1][0]]
        assert kinds[:4] == [CaptureState.LIVE, CaptureState.RECONNECTING, CaptureState.LIVE,
                             CaptureState.RECONNECTING]
        assert "sent no frame for 0.4 s" in states[1][1]
        assert np.all(np.diff([f.timestamp for f in frames]) > 0)
        assert np.all(np.diff([f.index for f in frames]) > 0)
    finally:
        unblock.set()  # let the abandoned threads return from their "hung" read, release and exit
    assert_no_capture_threads()


def test_hung_open_fails_within_open_timeout(monkeypatch):
    unblock = threading.Event()
    monkeypatch.setattr(capture_mod, "open_reader", lambda *a: unblock.wait(30))
    try:
        t = time.perf_counter()
        with Capture("rtsp://127.0.0.1:1/fake", CaptureConfig(open_timeout_s=0.5, reconnect=False)) as cap:
            assert cap.read(3.0) is None
            assert time.perf_counter() - t < 1.2
            assert cap.state == CaptureState.FAILED and "no answer within 0.5 s" in cap.reason
    finally:
        unblock.set()
    assert_no_capture_threads()


class UnpluggedReader(FakeReader):
    """A camera whose read() fails (returns False) after ``frames`` frames: unplugged, no hang."""

    def read(self):
        return super().read() if self.left > 0 else None


def test_webcam_that_dies_after_being_live_is_reopened(monkeypatch):
    opens = []

    def fake_open(spec, *a):
        opens.append(spec)
        if len(opens) == 2:
            raise SourceError("cannot open webcam 0: unplugged")
        return UnpluggedReader(5 if len(opens) == 1 else 1000, threading.Event())

    monkeypatch.setattr(capture_mod, "open_reader", fake_open)
    states = []
    with Capture("0", CaptureConfig(backoff_initial_s=0.05), on_state=lambda s, r: states.append(s)) as cap:
        assert wait_until(lambda: len(opens) >= 3 and cap.state == CaptureState.LIVE, 3.0), cap.stats()
        assert cap.stats().reconnects == 2
    assert states[:4] == [CaptureState.LIVE, CaptureState.RECONNECTING, CaptureState.RECONNECTING, CaptureState.LIVE]
    assert_no_capture_threads()


# ---------------------------------------------------------------- a real RTSP server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """tests/rtsp_server.py in a subprocess; ``start()`` returns once it listens, or raises."""

    def __init__(self, port: int, log: Path, codec: str = "h264"):
        self.port, self.log, self.codec, self.proc = port, log, codec, None

    def start(self, timeout: float = 15.0) -> None:
        cmd = [GST_PYTHON, str(REPO / "tests" / "rtsp_server.py"), "--port", str(self.port), "--file", str(DEMO),
               "--codec", self.codec]
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        lines: queue.Queue[str] = queue.Queue()

        def pump(out=self.proc.stdout) -> None:
            for line in out:
                lines.put(line)
            lines.put("")  # EOF: the server exited, no need to wait out the timeout

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line.startswith("READY"):
            self.kill()
            raise RuntimeError(f"RTSP server did not start (exit {self.proc.returncode}): "
                               f"{self.log.read_text(errors='replace').strip()[-500:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def serve_rtsp(tmp_path: Path, codec: str = "h264") -> RtspServer:
    """A started RtspServer streaming the demo clip (kill it when done), or skip the test when
    GStreamer or one of its elements is absent."""
    if not Path(GST_PYTHON).exists():
        pytest.skip(f"RTSP server needs {GST_PYTHON} with GStreamer bindings (see tests/rtsp_server.py)")
    server = RtspServer(_free_port(), tmp_path / "rtsp_server.log", codec)
    try:
        server.start()
    except RuntimeError as e:
        if "MISSING" not in str(e):  # rtsp_server.py names what is absent; anything else is a real failure
            raise
        pytest.skip(f"{e} -- install: apt-get install -y --no-install-recommends python3-gi "
                    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
                    "gstreamer1.0-plugins-ugly gstreamer1.0-libav")
    return server


@pytest.fixture
def rtsp_server(tmp_path):
    server = serve_rtsp(tmp_path)
    yield server
    server.kill()


def test_rtsp_stream_survives_server_kill_and_restart(rtsp_server):
    url = f"rtsp://127.0.0.1:{rtsp_server.port}/demo"
    cfg = CaptureConfig(open_timeout_s=5.0, read_timeout_s=1.5, backoff_initial_s=0.25, backoff_max_s=1.0,
                        max_reconnect_s=30.0)
    states = []

    def collect(n: int, timeout: float) -> list[Frame]:
        got, t = [], time.perf_counter()
        while len(got) < n and time.perf_counter() - t < timeout:
            if (f := cap.read(0.5)) is not None:
                got.append(f)
        return got

    with Capture(url, cfg, on_state=lambda s, r: states.append(s)) as cap:
        before = collect(24, 15.0)
        assert len(before) == 24 and cap.state == CaptureState.LIVE, cap.stats()
        assert before[0].image.shape == (528, 720, 3) and before[0].pts_s is None
        rtsp_server.kill()
        killed = time.perf_counter()
        assert wait_until(lambda: cap.state == CaptureState.RECONNECTING, cfg.read_timeout_s + 3.0), cap.stats()
        cap.read(0)  # drop a frame decoded before the kill, if one is still waiting
        rtsp_server.start()
        after = collect(24, 20.0)
        assert len(after) == 24 and cap.state == CaptureState.LIVE, cap.stats()
        stats = cap.stats()
    frames = before + after
    assert after[0].timestamp > killed
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)
    assert np.all(np.diff([f.index for f in frames]) > 0)
    assert stats.reconnects >= 1 and stats.fps > 10
    changes = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]  # reasons may change within a state
    assert changes == [CaptureState.LIVE, CaptureState.RECONNECTING, CaptureState.LIVE, CaptureState.ENDED]
    assert_no_capture_threads(cfg.read_timeout_s + 2.0)


def test_rtsp_frozen_server_is_detected_by_timeouts_and_recovered(rtsp_server):
    # SIGSTOP: the server neither sends nor closes anything, like a camera that lost power
    # behind a switch. Only the read timeouts (FFmpeg's and the watchdog) can notice.
    url = f"rtsp://127.0.0.1:{rtsp_server.port}/demo"
    cfg = CaptureConfig(open_timeout_s=2.0, read_timeout_s=1.0, backoff_initial_s=0.25, backoff_max_s=0.5)
    with Capture(url, cfg) as cap:
        assert cap.read(15.0) is not None and cap.state == CaptureState.LIVE, cap.stats()
        rtsp_server.proc.send_signal(signal.SIGSTOP)
        frozen = time.perf_counter()
        assert wait_until(lambda: cap.state == CaptureState.RECONNECTING, cfg.read_timeout_s + 2.0), cap.stats()
        assert time.perf_counter() - frozen < cfg.read_timeout_s + 2.0
        rtsp_server.kill()  # SIGKILL ends a stopped process too
        cap.read(0)
        rtsp_server.start()
        f = cap.read(20.0)
        assert f is not None and f.timestamp > frozen and cap.state == CaptureState.LIVE, cap.stats()
        t = time.perf_counter()
    assert time.perf_counter() - t < 1.5
    assert_no_capture_threads(cfg.read_timeout_s + cfg.open_timeout_s + 2.0)


def test_decode_threads_reach_the_decoder(monkeypatch):
    """CaptureConfig.decode_threads is FFmpeg's thread count for the file (0: FFmpeg's own choice);
    a Capture opens its file with it, and the frames are the same either way."""
    firsts = {}
    for n in (1, 2):
        reader = open_reader(parse_source(str(DEMO)), 5.0, 5.0, decode_threads=n)
        try:
            assert reader._cap.get(cv2.CAP_PROP_N_THREADS) == n
            firsts[n] = reader.read()[0]
        finally:
            reader.release()
    np.testing.assert_array_equal(firsts[1], firsts[2])
    opened = []

    def spy(*args):  # the real reader, its decoder's thread count noted
        reader = open_reader(*args)
        opened.append(reader._cap.get(cv2.CAP_PROP_N_THREADS))
        return reader

    monkeypatch.setattr(capture_mod, "open_reader", spy)
    with Capture(str(DEMO), CaptureConfig(realtime=False, decode_threads=1, max_frames=3)) as cap:
        assert [cap.read(5.0) is not None for _ in range(3)] == [True] * 3
    assert opened == [1.0]


def test_open_capture_one_shot_reader():
    reader = open_capture(str(DEMO), open_timeout_s=5.0)
    try:
        image, pts, t = reader.read()
        assert image.shape == (528, 720, 3) and pts is not None and t > 0
        assert reader.fps == pytest.approx(DEMO_FPS, abs=0.01)
    finally:
        reader.release()
    with pytest.raises(SourceError, match="cannot decode video file"):
        bad = Path(__file__)  # exists, but is no video
        open_capture(parse_source(str(bad)))
    assert_no_capture_threads()


def _phone_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    """An MP4 as phones write a portrait video: each picture stored turned 90 degrees, plus a
    rotation in its track header ('tkhd' matrix) that players apply. OpenCV writes the file; the
    matrix is set in place (the pixels are what the camera sensor saw)."""
    import struct

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (h, w))
    for f in frames:
        writer.write(cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE))
    writer.release()
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0, "no track header written"
    matrix = at + 4 + 4 + (32 if data[at + 4] == 1 else 20) + 16  # past version/flags, times, ids, layer, volume
    assert struct.unpack(">9i", data[matrix:matrix + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)  # identity
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)  # turn 90 degrees
    path.write_bytes(bytes(data))


def test_phone_video_with_rotation_in_its_header_is_read_upright(tmp_path):
    """A portrait phone video is stored sideways with a rotation flag: frames come out upright (as
    a player shows them), so faces are not lying on their side for the detector."""
    cap = cv2.VideoCapture(str(DEMO))
    frames = [cap.read()[1] for _ in range(60)][50:]  # frames with faces in them
    cap.release()
    path = tmp_path / "phone.mp4"
    _phone_video(path, frames)
    reader = open_reader(parse_source(str(path)), 5.0, 5.0)
    try:
        got = [reader.read()[0] for _ in range(len(frames))]
    finally:
        reader.release()
    for want, image in zip(frames, got, strict=True):
        assert image.shape == want.shape  # (528, 720, 3): upright, not (720, 528)
        assert np.abs(image.astype(np.int16) - want).mean() < 4.0  # the same picture, give or take MPEG-4 loss
    sideways = cv2.rotate(frames[0], cv2.ROTATE_90_COUNTERCLOCKWISE)
    with Capture(str(path), FAST) as live:  # and the capture thread delivers them so
        f = live.read(5.0)
    assert f is not None and f.image.shape == frames[0].shape and sideways.shape != f.image.shape
