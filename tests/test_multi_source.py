"""Several sources in one process (engine.multi): results tagged by source, one recognizer, embeddings
of several sources in one embedder call, ROI filtering, a failing source not stopping the others,
and `facescope run --source A --source B` end to end. Real clips, models, gallery and captures."""
from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from tests.test_cli import facescope

FRAMES = 50


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two short synthetic clips (different people) with their truth."""
    from engine.synth import make_clip

    root = tmp_path_factory.mktemp("multi")
    lfw = shared_path("data", "lfw")
    return [make_clip(root / f"c{seed}.avi", lfw, faces=3, unknown_faces=0, frames=FRAMES, size=(640, 360),
                      seed=seed) for seed in (11, 12)]


@pytest.fixture(scope="module")
def recognizer():
    from engine.live import realtime_recognizer

    return realtime_recognizer()


@pytest.fixture(scope="module")
def gallery_file(clips, recognizer, tmp_path_factory) -> Path:
    """A gallery file holding the enrolled people of both clips."""
    from engine.enrolment import prepare_enrolment
    from engine.gallery import Gallery

    path = tmp_path_factory.mktemp("gal") / "people.db"
    emb = recognizer.embedder
    g = Gallery.open(path, emb.id, emb.dim, create=True)
    try:
        for clip in clips:
            enrolled = 0
            for person in clip.enrolled:
                batch = prepare_enrolment(recognizer, person["enrol_images"])
                if len(batch):  # an image refused by the enrolment checks (a profile) leaves that person out
                    enrolled += len(batch.enroll_into(g, person["name"])) > 0
            assert enrolled >= 2, clip.path
    finally:
        g.close()
    return path


@pytest.fixture
def gallery(gallery_file, recognizer):
    from engine.gallery import Gallery

    g = Gallery.open(gallery_file, recognizer.embedder.id, recognizer.embedder.dim, create=False)
    yield g
    g.close()


def _run(runner):
    """Iterate the engine loop; per round: (Round, embedder calls made during it)."""
    out = []
    calls = runner.recognizer.embedder.calls
    for rnd in runner.rounds():
        out.append((rnd, len(calls)))
    return out


@pytest.fixture
def spied(recognizer):
    """The shared embedder, its real ``embed_tensor`` wrapped to record each call's batch size
    (warmed up first: the runner's warm-up call is not a round's)."""
    recognizer.warm_up()
    emb = recognizer.embedder
    real = emb.embed_tensor
    emb.calls = []

    def counting(x):
        emb.calls.append(len(x))
        return real(x)

    emb.embed_tensor = counting
    yield emb
    del emb.embed_tensor, emb.calls


def test_two_sources_tagged_batched_with_one_recognizer(clips, recognizer, gallery, spied):
    from engine.capture import CaptureConfig
    from engine.multi import MultiSource, SourceSettings

    runner = MultiSource(recognizer, [SourceSettings(str(clips[0].path), name="door"),
                                      SourceSettings(str(clips[1].path))],
                         gallery.index, capture_config=CaptureConfig(realtime=False))
    assert runner.names == ["door", clips[1].path.name]
    # one recognizer: every source's pipeline holds the same models
    assert all(runner.pipeline(n).recognizer is recognizer for n in runner.names)
    with runner:
        assert runner.wait_started()
        rounds = _run(runner)
    by_source: dict[str, list] = {n: [] for n in runner.names}
    before = 0
    for rnd, after in rounds:
        assert after - before == rnd.embed_calls <= 1  # never more than one embedder call a round
        if rnd.embed_calls:
            assert spied.calls[after - 1] == rnd.embedded == sum(sr.result.embedded for sr in rnd.results)
        before = after
        assert len({sr.source for sr in rnd.results}) == len(rnd.results)  # at most one frame a source a round
        for sr in rnd.results:
            by_source[sr.source].append(sr)
    # faces of both sources went through one call (round 0: both first frames were waiting)
    shared = [rnd for rnd, _ in rounds if sum(sr.result.embedded > 0 for sr in rnd.results) == 2]
    assert shared, "no round embedded faces of both sources in one call"
    assert runner.embed_calls == len(spied.calls) < sum(len(v) for v in by_source.values())
    status = runner.status()
    for clip, name in zip(clips, runner.names, strict=True):
        results = by_source[name]
        assert len(results) == FRAMES == status[name].frames  # not realtime: every frame, none dropped
        assert status[name].state == "ended"
        named = {n for sr in results for n in sr.faces.names if n is not None}
        expected = {p["name"] for p in clip.enrolled}
        assert named and named <= expected, (name, named, expected)  # each source names its own people
        assert runner.latest(name) is results[-1]


def test_two_frames_of_a_round_begin_on_two_threads(clips, recognizer, gallery):
    """In a round with frames of both sources, one frame's detection/tracking/alignment runs on
    the engine's helper thread while the other's runs on the engine thread; the results are
    those of running them one after the other (same faces and names on every frame)."""
    import threading

    from engine.capture import CaptureConfig
    from engine.multi import MultiSource, SourceSettings
    from engine.multi import rounds as rounds_mod

    def run(helpers: int):
        rounds_mod.BEGIN_HELPERS, saved = helpers, rounds_mod.BEGIN_HELPERS
        try:
            runner = MultiSource(recognizer, [SourceSettings(str(c.path)) for c in clips], gallery.index,
                                 capture_config=CaptureConfig(realtime=False))
            threads: set[str] = set()
            for s in runner._sources:
                real = s.pipeline.begin

                def spy(frame, wait_ms=0.0, real=real):
                    threads.add(threading.current_thread().name)
                    return real(frame, wait_ms)

                s.pipeline.begin = spy
            out = {}
            with runner:
                assert runner.wait_started()
                for rnd in runner.rounds():
                    for sr in rnd.results:
                        out[sr.source, sr.result.frame.index] = (len(sr.faces), sr.faces.names)
            return out, threads
        finally:
            rounds_mod.BEGIN_HELPERS = saved

    parallel, threads = run(1)
    assert any(t.startswith("facescope-engine-helper") for t in threads) and len(threads) == 2, threads
    serial, threads = run(0)
    assert len(threads) == 1
    assert parallel == serial and len(parallel) == 2 * FRAMES


def test_roi_drops_faces_whose_centre_is_outside(clips, recognizer):
    from engine.capture import CaptureConfig
    from engine.multi import MultiSource, Roi, SourceSettings

    src = str(clips[0].path)
    left, right = Roi.rect(0.0, 0.0, 0.5, 1.0), Roi.rect(0.0, 0.0, 0.5, 1.0, mode="exclude")
    runner = MultiSource(recognizer, [SourceSettings(src, name="all"), SourceSettings(src, name="left", roi=left),
                                      SourceSettings(src, name="right", roi=right)],
                         capture_config=CaptureConfig(realtime=False), frames_per_source=30)
    xs: dict[str, list[float]] = {n: [] for n in runner.names}
    with runner:
        for rnd in runner.rounds():
            for sr in rnd.results:
                b = sr.faces.boxes
                xs[sr.source] += ((b[:, 0] + b[:, 2]) / 2 / sr.frame.image.shape[1]).tolist()
    assert min(xs["all"]) < 0.45 and max(xs["all"]) > 0.55  # the clip has faces on both sides
    assert xs["left"] and max(xs["left"]) <= 0.5
    assert xs["right"] and min(xs["right"]) >= 0.5
    assert len(xs["left"]) + len(xs["right"]) <= len(xs["all"]) + 5  # split, not duplicated (tracks may differ)


def test_roi_geometry_and_settings_file(tmp_path):
    from engine.multi import Roi, SourceSettings, load_sources, unique_names

    tri = Roi((((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)),))
    assert tri.inside(np.array([[0.1, 0.1], [0.9, 0.9], [0.5, 0.5]])).tolist() == [True, False, True]  # edge: in
    boxes = np.array([[10, 10, 30, 30], [600, 300, 640, 360]], np.float32)
    assert tri.keep_mask(boxes, (360, 640)).tolist() == [True, False]
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        Roi.rect(0, 0, 1.5, 1)
    with pytest.raises(ValueError, match="mode"):
        Roi.rect(0, 0, 1, 1, mode="inside")
    cfg = tmp_path / "sources.toml"
    cfg.write_text('[[source]]\nname = "door"\nsource = "rtsp://u:secret@cam/live"\ndet_size = "320x192"\n'
                   'min_face = 24\nroi = { rects = [[0.2, 0.0, 0.8, 1.0]], mode = "include" }\n\n'
                   '[[source]]\nsource = "0"\nwebcam = { resolution = "1080p", fps = 30 }\ndecode_threads = 0\n')
    a, b = load_sources(cfg)
    assert (a.name, a.det_size, a.min_face, a.roi.mode) == ("door", (320, 192), 24.0, "include")
    assert (a.decode_threads, b.decode_threads) == (None, 0)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="decode_threads"):
            SourceSettings.from_dict({"source": "a.mp4", "decode_threads": bad})
    assert b.label == "webcam0" and b.webcam.resolution == (1920, 1080) and b.webcam.fps == 30
    assert "secret" not in SourceSettings("rtsp://u:secret@cam/live").label
    (tmp_path / "bad.json").write_text(json.dumps({"sources": [{"source": "0", "colour": "red"}]}))
    with pytest.raises(ValueError, match="unknown source keys \\['colour'\\]"):
        load_sources(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="unique"):
        unique_names([SourceSettings("a.mp4", name="x"), SourceSettings("b.mp4", name="x")])
    assert unique_names([SourceSettings("/a/clip.mp4"), SourceSettings("/b/clip.mp4")]) == ["clip.mp4", "clip.mp4-2"]
    # Names are topics and file names too (slug): differing only in case or punctuation is refused...
    with pytest.raises(ValueError, match="'Front door' / 'front-door'"):
        unique_names([SourceSettings("a.mp4", name="Front door"), SourceSettings("b.mp4", name="front-door")])
    # ... and a derived name steps past a given one it would share a topic with.
    assert unique_names([SourceSettings("a.mp4", name="door_mp4"), SourceSettings("/x/door.mp4")]) == [
        "door_mp4", "door.mp4-2"]
    assert unique_names([SourceSettings("rtsp://u:p@10.0.0.5/live"), SourceSettings("rtsp://10.0.0.6/live")]) == [
        "10.0.0.5/live", "10.0.0.6/live"]


def test_failing_source_does_not_stop_the_others(clips, recognizer, tmp_path):
    from engine.capture import CaptureConfig
    from engine.multi import MultiSource, SourceSettings

    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video at all\n" * 100)
    states: list[tuple[str, str]] = []
    runner = MultiSource(recognizer, [SourceSettings(str(broken), name="broken"),
                                      SourceSettings(str(clips[0].path), name="good"),
                                      SourceSettings(str(clips[1].path), name="crashes")],
                         capture_config=CaptureConfig(realtime=False),
                         on_state=lambda name, state, reason: states.append((name, state)))

    def boom(faces, shape):  # a processing error in one source (a bug in its filter, say)
        raise RuntimeError("filter exploded")

    runner.pipeline("crashes").face_filter = boom
    with runner:
        frames = {n: 0 for n in runner.names}
        for rnd in runner.rounds():
            for sr in rnd.results:
                frames[sr.source] += 1
    st = runner.status()
    assert st["broken"].state == "failed" and "cannot decode video file" in st["broken"].reason
    assert st["crashes"].state == "error" and "filter exploded" in st["crashes"].reason
    assert frames == {"broken": 0, "good": FRAMES, "crashes": 0}
    assert st["good"].state == "ended" and st["good"].frames == FRAMES
    assert ("broken", "failed") in states and ("crashes", "error") in states


def test_run_cli_two_sources_writes_per_source_events(clips, gallery_file, tmp_path):
    events, out = tmp_path / "events.jsonl", tmp_path / "annotated"
    db = tmp_path / "people.db"
    db.write_bytes(gallery_file.read_bytes())  # sightings are written: a copy keeps the shared file clean
    r = facescope("run", "--source", clips[0].path, "--source", clips[1].path, "--source-name", "door",
                  "--gallery", db, "--events", events, "--out", out)
    lines = [json.loads(s) for s in events.read_text().splitlines()]
    other = clips[1].path.name
    for clip, name in ((clips[0], "door"), (clips[1], other)):
        mine = [e for e in lines if e["source"] == name]
        assert any(e["kind"] == "appear" for e in mine), name
        named = {e["name"] for e in mine if e["kind"] == "identified" and e["name"]}
        assert named and named <= {p["name"] for p in clip.enrolled}, (name, named)
        assert f"{name}: {FRAMES} frames" in r.stdout
        video = out / f"{'door' if name == 'door' else 'c12_avi'}.avi"
        assert stat.S_IMODE(video.stat().st_mode) == 0o600  # faces with names: the user's only
        cap = cv2.VideoCapture(str(video))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
        cap.release()
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(isinstance(e["epoch"], float) for e in lines)
    conn = sqlite3.connect(db)
    try:
        sources = {row[0] for row in conn.execute("SELECT DISTINCT source FROM sightings")}
    finally:
        conn.close()
    assert sources == {"door", other}  # sightings carry the source name


def test_bench_several_sources_reports_per_source(clips, tmp_path):
    out = tmp_path / "bench.json"
    r = facescope("bench", "--source", clips[0].path, "--source", clips[1].path, "--decode", "full", "--json", out)
    res = json.loads(out.read_text())
    assert set(res["sources"]) == {clips[0].path.name, clips[1].path.name}
    assert res["paced"] is True and res["cores_total"] > 0 and res["decode"] == "full"  # every frame decoded in full
    for s in res["sources"].values():
        assert s["frames"] > 0 and s["fps"] > 0 and s["e2e_p95_ms"] >= s["e2e_p50_ms"] > 0
        assert s["ident_accuracy"] is not None and s["id_switches"] is not None  # scored against SOURCE.json
        assert 0 < s["capture_cores"] < s["cores"] <= res["cores_total"] + 1e-6  # decoding is part of a source
        assert s["cpu_ms_per_frame"] > 0 and s["native_fps"] == 25.0
        # every processed frame has one gate verdict; the first is always detected
        assert sum(s["gate"].values()) == s["frames"] and s["gate"]["first"] >= 1
        assert s["detector_calls"] == s["frames"] - s["gate"].get("skipped", 0) >= 1
        shown, ttfn = s["timing"]["time_to_first_name_on_screen_s"], s["timing"]["time_to_first_name_s"]
        assert shown.keys() == ttfn.keys() and all(  # paced: a name's time until shown adds its result's latency
            (ttfn[p] is None) == (shown[p] is None) and (ttfn[p] is None or shown[p] > ttfn[p]) for p in ttfn)
    scoring = res["bench_scoring_cpu_s"] / res["wall_s"]  # the benchmark's own truth matching, left out
    assert abs(sum(s["cores"] for s in res["sources"].values()) + scoring - res["cores_total"]) < 0.05  # shares add up
    assert "2 sources paced like cameras" in r.stdout and "detector on" in r.stdout
    assert res["ort_threads"] == {"models": 1, "embedder": 0}  # engine.multi.multi_runtime (no --threads given)


def test_engine_thread_and_per_source_detector_size(clips, recognizer, monkeypatch):
    import engine.capture.capture as capture_mod
    from engine.capture import CaptureConfig
    from engine.capture.reader import open_reader
    from engine.multi import MultiSource, SourceSettings

    decoders: list[int] = []

    def spy(spec, open_s, read_s, webcam, decode_threads, *rest):  # the real reader; its decoder threads
        decoders.append(decode_threads)  # noted (that they reach FFmpeg: tests/test_capture.py)
        return open_reader(spec, open_s, read_s, webcam, decode_threads, *rest)

    monkeypatch.setattr(capture_mod, "open_reader", spy)
    src = str(clips[0].path)
    runner = MultiSource(recognizer, [SourceSettings(src, name="full"),
                                      SourceSettings(src, name="small", det_size=(320, 192), min_face=1000,
                                                     decode_threads=0)],
                         capture_config=CaptureConfig(realtime=False), frames_per_source=20)
    small = runner.pipeline("small").recognizer
    # its own (small) detector; the landmark and embedding models are the shared ones
    assert small.detector is not recognizer.detector and small.config.detector.input_size == (320, 192)
    assert small.embedder is recognizer.embedder and small.landmarker is recognizer.landmarker
    got: list = []
    small_calls: list[tuple] = []  # (frame shape, results of "small" out before this call)
    real_detector = small.detector

    def counted(image):  # the real detector, its calls recorded
        small_calls.append((image.shape, sum(sr.source == "small" for sr in got)))
        return real_detector(image)

    small.detector = counted
    cv_threads: set[int] = set()
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)  # what a 2-core machine has by default, whatever this one has

    def on_result(sr) -> None:
        got.append(sr)
        cv_threads.add(cv2.getNumThreads())

    try:
        runner.start(on_result=on_result)  # the engine on its own thread, as a GUI runs it
        assert runner.join(timeout=120)
        runner.stop()
        assert cv_threads == {1}  # OpenCV single-threaded while the runner runs (engine.multi.presets) ...
        assert cv2.getNumThreads() == 2  # ... and as it was after stop()
        runner.stop()  # idempotent: does not release twice
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
    assert sum(sr.source == "full" for sr in got) == 20 == sum(sr.source == "small" for sr in got)
    assert all(len(sr.faces) == 0 for sr in got if sr.source == "small")  # min_face 1000 px drops every face
    # its detector's first run (session start-up) is paid by the warm-up, before its first frame
    assert small_calls[0] == ((240, 320, 3), 0) and small_calls[1][0] == (360, 640, 3)
    assert any(len(sr.faces) for sr in got if sr.source == "full")
    # each source decodes on one FFmpeg thread (engine.multi.presets.DECODE_THREADS) unless it says otherwise
    assert sorted(decoders) == [0, 1]


def test_published_payload_names_the_events_source():
    from engine.events_out.publisher import Publisher

    class Collect:  # a sink as Publisher sees one (put / start / close / display)
        display = "memory"

        def __init__(self):
            self.items = []

        def start(self):
            pass

        def put(self, item):
            self.items.append(item)

        def close(self, drain_s=5.0):
            return None

    sink = Collect()
    pub = Publisher([sink], None)  # several sources: each event names its own
    ev = {"kind": "identified", "track_id": 3, "frame": 7, "t": 1.0, "media_s": 0.28, "name": "Ada",
          "similarity": 0.61, "source": "door", "epoch": 1796549798.78}
    pub.publish(ev)
    pub.publish({**ev, "source": "hall"})
    # Derived names of two cameras with the same path on two hosts stay whole: two topics, not one "live".
    pub.publish({**ev, "source": "10.0.0.5/live"})
    pub.publish({**ev, "source": "10.0.0.6/live"})
    assert [(p["source"], p["source_name"]) for p in sink.items] == [
        ("door", "door"), ("hall", "hall"), ("10.0.0.5/live", "10.0.0.5/live"), ("10.0.0.6/live", "10.0.0.6/live")]
    single = Publisher([sink], "rtsp://u:***@10.0.0.5:554/live")  # one source: its short form
    single.publish({k: v for k, v in ev.items() if k != "source"})
    assert sink.items[-1]["source_name"] == "10.0.0.5/live"
    assert sink.items[0]["time"].startswith("2026-12-06T")


def test_idle_engine_sleeps_until_a_capture_has_a_frame(clips, recognizer):
    """Paced like a camera, the engine waits most of each frame period: it sleeps on the captures'
    wake-up (Capture(on_frame=...)) instead of polling every few ms, and the wait is reported as
    the next frame's capture_wait."""
    from engine.capture import CaptureConfig
    from engine.multi import MultiSource, SourceSettings

    runner = MultiSource(recognizer, [SourceSettings(str(clips[0].path), name="a")],
                         capture_config=CaptureConfig(realtime=True), frames_per_source=30)
    polls = 0
    poll = runner._poll

    def counted(order):
        nonlocal polls
        polls += 1
        return poll(order)

    runner._poll = counted
    with runner:
        waits = [sr.result.timings_ms["capture_wait"] for rnd in runner.rounds() for sr in rnd.results]
    assert len(waits) == 30
    assert polls <= 3 * len(waits)  # a frame, then one sleep until the next (was ~8 polls a frame)
    assert np.median(waits[1:]) > 10.0  # 40 ms a frame at 25 fps, most of it spent waiting


def test_detector_sizes_share_one_copy_per_size_and_refuse_a_recognizer_without_a_config(recognizer):
    """Sources of the same ``det_size`` share one extra detector (real YuNet sessions); the shared size
    is the shared recognizer itself; a recognizer not built from a config tree cannot be resized."""
    import dataclasses

    from engine.multi.detector_sizes import DetectorSizes

    sizes = DetectorSizes(recognizer)
    a, b = sizes.for_size((320, 192), "door"), sizes.for_size((320, 192), "hall")
    assert a is b and a.detector is not recognizer.detector and a.embedder is recognizer.embedder
    image = np.zeros((192, 320, 3), np.uint8)
    assert len(a.detector(image)) == 0  # the copy's detector runs (nothing to find in black)
    assert sizes.for_size(None) is recognizer
    assert sizes.for_size(recognizer.config.detector.input_size) is recognizer
    bare = DetectorSizes(dataclasses.replace(recognizer, config=None))
    with pytest.raises(ValueError, match="det_size .* for door: .*cannot be resized"):
        bare.for_size((320, 192), "door")
