"""Detector gating (engine.track.gating): fewer detector calls on a real clip, tracks carried by
prediction in between, new faces found within the bound, every-frame mode one setting away."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from engine.boxes import iou_matrix
from engine.capture import Frame
from engine.records import Faces
from engine.track import Tracker, TrackerConfig, TrackState
from engine.track.gating import DetectorGate, GateConfig
from tests.conftest import REPO

DEMO = REPO / "resources" / "demo" / "megamind.avi"
FPS = 25.0


@pytest.fixture(scope="module")
def recognizer():
    from engine.config import DetectorConfig
    from engine.pipeline import realtime_config
    from engine.recognizer import Recognizer

    return Recognizer.from_config(realtime_config(detector=DetectorConfig(input_size=(640, 384))))


class CountingDetector:
    """The real detector, counting its calls."""

    def __init__(self, detector) -> None:
        self.detector, self.calls = detector, 0

    def __call__(self, image):
        self.calls += 1
        return self.detector(image)

    def __getattr__(self, name):
        return getattr(self.detector, name)


def _frames(path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


def _run(recognizer, images, gate: GateConfig):
    from engine.pipeline import Pipeline, PipelineConfig

    counter = CountingDetector(recognizer.detector)
    real = recognizer.detector
    recognizer.detector = counter
    try:
        pipeline = Pipeline(recognizer, None, PipelineConfig(gate=gate))
        results, pipeline.detected = [], []  # detected: did the detector run on frame i
        for i, img in enumerate(images):
            before = counter.calls
            results.append(pipeline.process(Frame(img, i, 0.0, i / FPS)))
            pipeline.detected.append(counter.calls > before)
    finally:
        recognizer.detector = real
    return results, counter.calls, pipeline


def test_config_validation():
    assert GateConfig().mode == "adaptive" and GateConfig().gated
    assert not GateConfig(mode="every-frame").gated
    for bad in (dict(mode="sometimes"), dict(max_skip_frames=-1), dict(max_skip_s=float("nan")),
                dict(max_skip_s=-0.1), dict(min_iou=1.5), dict(motion_threshold=0), dict(motion_threshold=256),
                dict(motion_height=8), dict(motion_min_px=0), dict(margin_down=-1.0), dict(burst_frames=-2),
                dict(max_skip_frames=2.5), dict(motion_min_px=True), dict(max_position_std=0.0)):
        with pytest.raises(ValueError, match="gate"):
            GateConfig(**bad)


def test_gating_on_a_real_clip_skips_the_detector_and_keeps_the_boxes(recognizer):
    """Megamind's first 96 frames: every-frame runs the detector on each frame; adaptive on far
    fewer, and the boxes it carries by prediction stay on the faces every-frame finds."""
    images = _frames(DEMO, 96)
    assert len(images) == 96
    full, full_calls, full_pipe = _run(recognizer, images, GateConfig(mode="every-frame"))
    gated, gated_calls, gated_pipe = _run(recognizer, images, GateConfig())
    assert full_calls == len(images) == full_pipe.gate.detections
    assert gated_calls == gated_pipe.gate.detections
    assert gated_calls < 0.75 * len(images), dict(gated_pipe.gate.counts)
    assert gated_pipe.gate.counts["skipped"] == len(images) - gated_calls
    # on frames where every-frame boxes a face, gating boxes it too (predicted on skipped frames)
    boxed = total = 0
    for a, b in zip(full, gated, strict=True):
        for box in a.faces.boxes:
            total += 1
            boxed += len(b.faces) > 0 and iou_matrix(box[None], b.faces.boxes).max() >= 0.5
    assert total > 50 and boxed / total >= 0.9, (boxed, total)
    # faces are embedded on detected frames only: never from a predicted box
    skipped = [r for r, n in zip(gated, gated_pipe.detected, strict=True) if not n]
    assert skipped and all(r.embedded == 0 for r in skipped)
    assert sum(r.embedded for r in gated) > 0


@pytest.fixture(scope="module")
def face_patch(recognizer):
    """A real face (Roxanne, the demo clip's frame 1) with some margin, 120 px high, to paste into a still scene."""
    img = _frames(DEMO, 2)[1]
    faces = recognizer.detect(img)
    assert len(faces)
    x1, y1, x2, y2 = faces.boxes[int(np.argmax(faces.scores))].astype(int)
    m = (x2 - x1) // 4
    patch = img[max(0, y1 - m):y2 + m, max(0, x1 - m):x2 + m]
    return cv2.resize(patch, (round(120 * patch.shape[1] / patch.shape[0]), 120), interpolation=cv2.INTER_AREA)


def _scene(face_patch, n: int, enter: int, at=(60, 80), move_to=None, move_at=None) -> list[np.ndarray]:
    """A still grey room; the face appears at frame ``enter`` (and jumps to ``move_to`` at ``move_at``)."""
    out = []
    h, w = face_patch.shape[:2]
    for i in range(n):
        img = np.full((480, 640, 3), 118, np.uint8)
        cv2.rectangle(img, (400, 300), (600, 460), (60, 90, 140), -1)  # some furniture
        if i >= enter:
            y, x = move_to if move_to is not None and i >= move_at else at
            img[y:y + h, x:x + w] = face_patch
        out.append(img)
    return out


def test_a_face_entering_with_motion_is_found_on_its_first_frame(recognizer, face_patch):
    images = _scene(face_patch, 30, enter=17)
    results, calls, pipeline = _run(recognizer, images, GateConfig())
    assert not any(len(r.faces) for r in results[:17])
    assert calls < 17  # the empty still room was mostly skipped
    assert len(results[17].faces) == 1 and pipeline.detected[17]
    assert all(len(r.faces) == 1 for r in results[17:])


@pytest.mark.parametrize("every", [3, 6])
def test_without_motion_a_new_face_is_found_within_the_bound(recognizer, face_patch, every):
    """Motion detection off (a threshold no pixel passes): only the periodic detection finds the
    face, at most ``max_skip_frames`` frames after it appears."""
    enter = 17
    gate = GateConfig(max_skip_frames=every - 1, max_skip_s=10.0, motion_threshold=255, max_position_std=float("inf"))
    results, calls, pipeline = _run(recognizer, _scene(face_patch, 40, enter=enter), gate)
    first = next(i for i, r in enumerate(results) if len(r.faces))
    assert enter <= first <= enter + every - 1, first
    assert calls <= len(results) // every + 1 + gate.burst_frames + 2
    assert pipeline.gate.counts["motion"] == 0


def test_a_jump_the_prediction_misses_brings_full_rate(recognizer, face_patch):
    """The face jumps far between two periodic detections (motion off): the detection that finds
    it elsewhere changes the tracks, and the gate detects the next frames too."""
    images = _scene(face_patch, 40, enter=0, move_to=(250, 300), move_at=21)
    gate = GateConfig(max_skip_frames=4, max_skip_s=10.0, motion_threshold=255, max_position_std=float("inf"))
    results, _, pipeline = _run(recognizer, images, gate)
    log = pipeline.detected
    found = next(i for i in range(21, 40) if log[i])
    assert all(log[found + 1:found + 1 + gate.burst_frames]), log[found:found + 4]
    assert pipeline.gate.counts["changed"] >= 1
    last = results[-1].faces
    assert len(last) == 1 and last.boxes[0, 0] > 200


def test_tracker_predict_only_moves_boxes_and_keeps_states():
    tracker = Tracker(TrackerConfig(min_hits=1, frame_dt=1 / FPS))
    kps = np.array([[[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]]], np.float32)
    for i in range(6):  # a face moving 4 px right per frame
        box = np.array([[20 + 4 * i, 30, 60 + 4 * i, 80]], np.float32)
        out = tracker.update(Faces(box, np.array([0.9], np.float32), keypoints=kps + [4 * i, 0]), i / FPS)
    tid = int(out.track_ids[0])
    seen = tracker.tracks[0].last_seen
    pred = tracker.predict_only(7 / FPS)
    assert pred.track_ids.tolist() == [tid] and pred.scores[0] == pytest.approx(0.9)
    assert pred.boxes[0, 0] == pytest.approx(20 + 4 * 7, abs=2.0)  # two frames ahead
    assert pred.keypoints[0, 0, 0] == pytest.approx(30 + 4 * 7, abs=2.0)
    track = tracker.tracks[0]
    assert track.state is TrackState.TRACKED and track.last_seen == seen
    with pytest.raises(ValueError, match="decrease"):
        tracker.predict_only(6 / FPS)
    # a lost track is still dropped max_age_s after it was last seen
    tracker.update(Faces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)), 8 / FPS)
    assert tracker.tracks[0].state is TrackState.LOST
    assert len(tracker.predict_only(8 / FPS + tracker.config.max_age_s + 0.1)) == 0 and not tracker.tracks


def test_every_frame_gate_never_skips():
    gate = DetectorGate(GateConfig(mode="every-frame"))
    tracker = Tracker()
    img = np.zeros((120, 160, 3), np.uint8)
    assert all(gate.decide(img, i / FPS, tracker) for i in range(20))
    assert gate.counts["every-frame"] == 20 and gate.counts["skipped"] == 0


def test_timing_metrics_against_truth():
    """Time-to-first-name, entries, missed (small apart) and wrong names on a hand-made truth."""
    from engine.bench.timing_metrics import FrameLog, reference_metrics, truth_metrics

    def obj(pid, name, box, vis=1.0, enrolled=True):
        return {"id": pid, "name": name, "enrolled": enrolled, "box": box, "box_full": box,
                "visible_fraction": vis, "occluded": False}

    a, b = [0, 0, 100, 100], [200, 200, 240, 240]  # A: 100 px, B: 40 px (small)
    frames = [[obj(0, "A", a), obj(1, "B", b)] for _ in range(10)]
    frames[5] = [obj(1, "B", b)]  # A leaves for one frame and comes back
    truth = {"fps": 10.0, "frames": frames, "identities": [{"name": "A"}, {"name": "B"}]}
    log = FrameLog()
    for i in range(10):
        boxes, names = [], []
        if i != 5:
            boxes.append(a)
            names.append("A" if i >= 3 and i != 6 else None)  # named at 3; unnamed on the frame back in view
        if i % 2 == 0:  # B boxed on even frames only, named wrongly at 8
            boxes.append(b)
            names.append("A" if i == 8 else ("B" if i >= 4 else None))
        log.add(i, np.array(boxes, np.float32).reshape(-1, 4), tuple(names))
    m = truth_metrics(log, truth)
    assert m["time_to_first_name_s"] == {"A": pytest.approx(0.3), "B": pytest.approx(0.4)}
    assert m["named_within_s"] == 2 and m["named_of"] == 2
    assert m["entry_delays_s"] == [pytest.approx(0.3), pytest.approx(0.4), pytest.approx(0.1)]
    assert m["truth_faces"] == 19 and m["missed"] == 5 and m["missed_small"] == 5
    assert m["boxed_fraction_min_px"] == pytest.approx(14 / 19) and m["wrong_names"] == 1
    assert "named_on_screen_within_s" not in m  # no latencies logged (an unpaced pass)
    # with each result's latency: the time until the name is shown adds the naming frame's latency
    timed = FrameLog()
    for i, (boxes, names) in log.frames.items():
        timed.add(i, boxes, names, latency_s=0.5 if i == 3 else 0.05)
    s = truth_metrics(timed, truth, within_s=0.5)
    assert s["time_to_first_name_on_screen_s"] == {"A": pytest.approx(0.8), "B": pytest.approx(0.45)}
    assert s["named_on_screen_within_s"] == 1 and s["time_to_first_name_s"] == m["time_to_first_name_s"]
    # against a reference pass: A's first name at frame 3 runs back to frame 0 of the reference
    ref = FrameLog()
    for i in range(10):
        ref.add(i, np.array([a, b], np.float32), (None, None))
    r = reference_metrics(log, ref, fps=10.0)
    assert r["time_to_first_name_s"]["A"] == pytest.approx(0.3) and r["missed"] == 6  # B on odd frames, A on frame 5


def _longest_skip_run(flags) -> int:
    longest = cur = 0
    for d in flags:
        cur = 0 if d else cur + 1
        longest = max(longest, cur)
    return longest


def test_an_uncertain_prediction_is_not_carried_long(recognizer, face_patch):
    """A still face: judged by the Kalman deviation alone (error_samples=0) it is carried 2
    frames at most; with its measured prediction error (default) it is carried to the periodic
    bound once two detections showed it where predicted; with the check off (inf) the periodic
    bound alone sets the runs."""
    images = _scene(face_patch, 40, enter=0)
    runs = {}
    variants = {"kalman": dict(error_samples=0), "measured": {}, "off": dict(max_position_std=float("inf")),
                "followed": dict(follow=True, error_samples=0)}
    for key, cfg in variants.items():
        gate = GateConfig(**{"max_skip_frames": 4, "max_skip_s": 10.0, "motion_threshold": 255, "follow": False, **cfg})
        _, _, pipeline = _run(recognizer, images, gate)
        runs[key] = (_longest_skip_run(pipeline.detected[8:]), pipeline.gate.counts["uncertain"])
    assert runs["kalman"][1] > 0 and runs["kalman"][0] <= 2, runs
    assert runs["measured"][0] == 4 and runs["measured"][1] < runs["kalman"][1], runs
    assert runs["off"] == (4, 0), runs
    # followed by template matching, its position is measured on every skipped frame: no
    # extrapolated uncertainty, even by the Kalman deviation alone
    assert runs["followed"] == (4, 0), runs


def test_a_face_that_wanders_is_detected_as_often_as_it_needs(recognizer, face_patch):
    """A face jumping about 15 % of its height at random every frame (motion rule off): its
    measured prediction error keeps the detector on (almost) every frame, and the face gets no
    more track ids than with detection on every frame."""
    rng = np.random.default_rng(0)
    h = face_patch.shape[0]
    images = []
    for _ in range(40):
        img = np.full((480, 640, 3), 118, np.uint8)
        y, x = (np.array([60, 80]) + rng.uniform(-0.15, 0.15, 2) * h).astype(int)
        img[y:y + h, x:x + face_patch.shape[1]] = face_patch
        images.append(img)
    gate = GateConfig(max_skip_frames=4, max_skip_s=10.0, motion_threshold=255, follow=False)
    results, calls, pipeline = _run(recognizer, images, gate)
    assert _longest_skip_run(pipeline.detected[8:]) <= 1 and calls >= 30, (calls, pipeline.gate.counts)
    every, _, _ = _run(recognizer, images, GateConfig(mode="every-frame"))

    def ids(rs):
        return {int(t) for r in rs for t in r.faces.track_ids}

    assert all(len(r.faces) == 1 for r in results) and len(ids(results)) <= len(ids(every)), (ids(results), ids(every))


def test_a_face_that_turns_back_is_followed_between_detections(recognizer, face_patch):
    """A face sweeping left and right (8 px a frame, turning every 6 frames; motion rule off):
    the motion model overshoots at each turn. Followed by template matching (engine.track.refine),
    its boxes on skipped frames stay where detection on every frame puts them, with fewer
    detections than without following and one track id."""
    h, w = face_patch.shape[:2]
    images = []
    for i in range(48):
        img = np.full((480, 640, 3), 118, np.uint8)
        phase = i % 12
        x = 80 + 8 * (phase if phase < 6 else 12 - phase)
        img[60:60 + h, x:x + w] = face_patch
        images.append(img)
    gate = GateConfig(max_skip_frames=9, max_skip_s=10.0, motion_threshold=255)
    every, _, _ = _run(recognizer, images, GateConfig(mode="every-frame"))
    followed, f_calls, f_pipe = _run(recognizer, images, gate)
    plain, p_calls, p_pipe = _run(recognizer, images, dataclasses.replace(gate, follow=False))
    assert f_calls < p_calls / 2, (f_calls, p_calls, f_pipe.gate.counts, p_pipe.gate.counts)
    assert all(len(r.faces) == 1 for r in followed)
    assert len({int(r.faces.track_ids[0]) for r in followed}) == 1
    iou = [float(iou_matrix(a.faces.boxes, b.faces.boxes)[0, 0]) for a, b in zip(every, followed, strict=True)]
    assert min(iou) > 0.75 and np.mean(iou) > 0.9, np.round(iou, 2)


def test_while_a_face_is_lost_the_periodic_bound_is_quartered(recognizer, face_patch):
    """The face vanishes inside the picture without motion being looked for (threshold 255): its
    track is lost, and the gate detects four times as often until it is found again or forgotten."""
    images = _scene(face_patch, 60, enter=0)[:20] + _scene(face_patch, 80, enter=100)
    gate = GateConfig(max_skip_frames=7, max_skip_s=10.0, motion_threshold=255)
    results, _, pipeline = _run(recognizer, images, gate)
    assert len(results[10].faces) == 1 and len(results[-1].faces) == 0
    lost_from = next(i for i in range(20, 60) if pipeline.detected[i])  # the detection that misses the face
    assert _longest_skip_run(pipeline.detected[8:20]) == 7  # tracked: the full bound
    assert _longest_skip_run(pipeline.detected[lost_from + 1:lost_from + 25]) == 1  # lost: a quarter (7 // 4)
    assert _longest_skip_run(pipeline.detected[lost_from + 40:]) == 7  # forgotten (max_age_s): the full bound


def test_faces_waiting_for_their_first_embedding_keep_the_detector_on(recognizer, face_patch):
    """One embedding a frame (the several-sources policy) and six still faces: only detected
    frames are embedded, so the gate detects ("waiting", after the burst that follows new
    tracks) until each face has had its first embedding -- six faces embedded on six frames in
    a row, not spread over the periodic detections."""
    from engine.pipeline import Pipeline, PipelineConfig
    from engine.track import PolicyConfig

    h, w = face_patch.shape[:2]
    img = np.full((480, 6 * (w + 20), 3), 118, np.uint8)
    for k in range(6):
        img[60:60 + h, 10 + k * (w + 20):10 + k * (w + 20) + w] = face_patch
    pipeline = Pipeline(recognizer, None, PipelineConfig(
        gate=GateConfig(max_skip_s=10.0, motion_threshold=255),
        policy=PolicyConfig(max_per_frame=1, new_always=False)))
    embedded = [pipeline.process(Frame(img.copy(), i, 0.0, i / FPS)).embedded for i in range(10)]
    assert sum(embedded[:7]) == 6, embedded
    assert pipeline.gate.counts["waiting"] >= 2, pipeline.gate.counts
    tracks = [t.track_id for t in pipeline.tracker.tracks]
    assert len(tracks) == 6 and all(pipeline.policy.embedded(t) is not None for t in tracks)


def test_correct_positions_moves_the_motion_model_not_the_track_record():
    """A followed face's measured centre pulls its Kalman state towards it; hits, last_seen,
    state and last detected box stay (it was not a detection). Refiner settings are validated."""
    from engine.track.refine import RefineConfig

    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update(Faces(np.array([[100, 100, 200, 220]], np.float32), np.array([0.9], np.float32)), 0.0)
    tracker.predict_only(0.04)
    (t,) = tracker.tracks
    before = (t.hits, t.last_seen, t.state, t.det_box.copy(), t.mean.copy())
    tracker.correct_positions([t.track_id], np.array([[170.0, 160.0]]))
    assert (t.hits, t.last_seen, t.state) == before[:3] and np.array_equal(t.det_box, before[3])
    assert before[4][0] < t.mean[0] < 170.0 and abs(t.mean[1] - 160.0) < 1.0
    assert t.mean[3] == pytest.approx(before[4][3], rel=0.05)  # the height is not measured
    assert tracker.shown().boxes[0, 0] > before[3][0]
    for bad in (dict(min_px=2), dict(min_score=1.5), dict(search=0.0)):
        with pytest.raises(ValueError, match="refine"):
            RefineConfig(**bad)


def test_a_face_too_small_to_follow_is_judged_as_without_following(recognizer, face_patch):
    """A still 48-px face crop (its box under 12 rows of the 144-px grey frame, RefineConfig.min_px): it has
    no template, so it is neither followed nor reported lost; the gate detects it exactly as
    often as without following (not on every other frame)."""
    small = cv2.resize(face_patch, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    images = []
    for _ in range(40):
        img = np.full((480, 640, 3), 118, np.uint8)
        img[100:100 + small.shape[0], 200:200 + small.shape[1]] = small
        images.append(img)
    gate = GateConfig(max_skip_frames=9, max_skip_s=10.0, motion_threshold=255)
    followed, calls, pipeline = _run(recognizer, images, gate)
    _, plain_calls, _ = _run(recognizer, images, dataclasses.replace(gate, follow=False))
    assert sum(len(r.faces) == 1 for r in followed) >= 35, [len(r.faces) for r in followed]
    assert calls == plain_calls < 30, (calls, plain_calls, pipeline.gate.counts)
    assert pipeline.refiner._templates == {}


def test_the_refiner_follows_a_small_shift_and_distrusts_a_jump(face_patch):
    """TemplateRefiner on its own: a face detected at one place, then on a skipped frame moved by
    4 % of its height (followed: the track's centre moves with it) or by 20 % (within the search
    window, but farther from the prediction than a max_jump of 10 %: reported lost, the track
    untouched);
    a face overlapping another, or leaving the picture, is not followed either."""
    from engine.track.refine import RefineConfig, TemplateRefiner

    def frame(dx: int, dy: int = 0, second=None) -> np.ndarray:
        img = np.full((480, 640, 3), 118, np.uint8)
        h, w = face_patch.shape[:2]
        img[100 + dy:100 + dy + h, 200 + dx:200 + dx + w] = face_patch
        if second is not None:
            img[second[1]:second[1] + h, second[0]:second[0] + w] = face_patch
        return img

    gate = DetectorGate(GateConfig())
    h, w = face_patch.shape[:2]
    box = np.array([[200, 100, 200 + w, 100 + h]], np.float32)

    def start(image):
        tracker = Tracker(TrackerConfig(min_hits=1))
        tracker.update(Faces(box, np.array([0.9], np.float32)), 0.0)
        refiner = TemplateRefiner(RefineConfig(max_jump=0.1))
        refiner.remember(gate._small_grey(image), image.shape[:2], tracker)
        tracker.predict_only(0.04)
        return tracker, refiner

    for shift, followed in ((round(0.04 * h), True), (round(0.2 * h), False)):
        tracker, refiner = start(frame(0))
        (t,) = tracker.tracks
        before = t.mean[0]
        ok, lost = refiner.correct(gate._small_grey(frame(shift)), (480, 640), tracker)
        assert (ok, lost) == (([t.track_id], []) if followed else ([], [t.track_id])), shift
        if followed:
            assert abs(t.mean[0] - (before + shift)) < 0.5 * shift
        else:
            assert t.mean[0] == before
    tracker, refiner = start(frame(0))
    tracker.update(Faces(np.concatenate([box, box + [w // 2, 0, w // 2, 0]]), np.array([0.9, 0.9], np.float32)),
                   0.08)
    refiner.remember(gate._small_grey(frame(0, second=(200 + w // 2, 100))), (480, 640), tracker)
    tracker.predict_only(0.12)
    ok, lost = refiner.correct(gate._small_grey(frame(0, second=(200 + w // 2, 100))), (480, 640), tracker)
    assert ok == [] and len(lost) == 2  # crossing faces: the detector decides
    flat = np.full((480, 640, 3), 30, np.uint8)  # a box with nothing to correlate (a face in the dark)
    tracker, refiner = start(flat)
    assert refiner._templates == {} and refiner.correct(gate._small_grey(flat), (480, 640), tracker) == ([], [])
