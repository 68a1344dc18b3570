"""Tracking layer: ByteTrack-style tracker, per-track identity voting, re-embedding policy.
Synthetic boxes only (no models, no data): fast and deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from engine.records import Faces
from engine.track import (
    EmbedPolicy,
    IdentityBook,
    IdentityConfig,
    KalmanFilter,
    PolicyConfig,
    Tracker,
    TrackerConfig,
    TrackState,
    face_quality,
    iou_matrix,
    linear_assignment,
    xyah_to_xyxy,
    xyxy_to_xyah,
)

DT = 1.0 / 30


def box(cx: float, cy: float, s: float = 60.0) -> list[float]:
    return [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]


def frame(boxes, scores=None, keypoints=None, **kw) -> Faces:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Faces(boxes, scores, keypoints, **kw)


def ids_by_cx(out: Faces) -> dict[int, float]:
    return {int(t): float((b[0] + b[2]) / 2) for t, b in zip(out.track_ids, out.boxes, strict=True)}


# --------------------------------------------------------------------------------------------- tracker

def test_iou_matrix_matches_brute_force():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (40, 2))
    wh = rng.uniform(0, 40, (40, 2))
    wh[:3] = 0  # degenerate boxes
    boxes = np.concatenate([xy, xy + wh], axis=1)
    a, b = boxes[:25], boxes[15:]

    def ref(p, q):
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = iw * ih
        union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
        return inter / union if union > 0 else 0.0

    expected = np.array([[ref(p, q) for q in b] for p in a])
    got = iou_matrix(a, b)
    assert got.shape == (25, 25)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(np.diag(iou_matrix(boxes[3:], boxes[3:])), 1.0)  # self-IoU
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 25)


def test_linear_assignment_gates_costs():
    cost = np.array([[0.1, 0.9], [0.2, 0.95], [0.99, 0.99]])
    matches, ur, uc = linear_assignment(cost, 0.8)
    assert matches.tolist() == [[0, 0]]
    assert ur.tolist() == [1, 2] and uc.tolist() == [1]
    # a pair above the gate is never preferred to leaving both unmatched (lapjv cost_limit semantics)
    matches, _, _ = linear_assignment(np.array([[0.5, 0.1], [0.1, 2.0]]), 0.6)
    assert sorted(matches.tolist()) == [[0, 1], [1, 0]]
    m, ur, uc = linear_assignment(np.zeros((0, 3)), 0.5)
    assert m.shape == (0, 2) and ur.size == 0 and uc.tolist() == [0, 1, 2]


def test_kalman_predicts_constant_velocity():
    kf = KalmanFilter()
    mean, cov = kf.initiate(xyxy_to_xyah(np.array([box(100, 100)])))
    for f in range(1, 15):
        mean, cov = kf.predict(mean, cov, 1.0)
        mean, cov = kf.update(mean, cov, xyxy_to_xyah(np.array([box(100 + 5 * f, 100 - 2 * f)])))
    pred, _ = kf.predict(mean, cov, 3.0)  # three frames ahead, e.g. two dropped
    np.testing.assert_allclose(xyah_to_xyxy(pred)[0], box(100 + 5 * 17, 100 - 2 * 17), atol=1.0)
    np.testing.assert_allclose(xyah_to_xyxy(xyxy_to_xyah(np.array([box(3, 4, 7)]))), [box(3, 4, 7)])


@pytest.mark.parametrize("lost_buffer", [0.0, 0.3])
def test_crossing_faces_keep_ids_through_full_occlusion(lost_buffer):
    tracker = Tracker(TrackerConfig(lost_buffer=lost_buffer))
    first_ids = None
    for f in range(50):
        a, b = (100 + 8 * f, 200 + f), (500 - 8 * f, 215 - 0.5 * f)
        boxes = [box(*a), box(*b)]
        if 23 <= f <= 26:  # b passes behind a: only a is detected (boxes overlap most there)
            boxes = [box(*a)]
        out = tracker.update(frame(boxes), f * DT)
        got = ids_by_cx(out)
        if f == 0:
            first_ids = out.track_ids.tolist()
            assert first_ids == [1, 2]  # confirmed on the very first frame
        assert len(got) == len(boxes)
        assert got[first_ids[0]] == pytest.approx(a[0], abs=0.1)
        if len(boxes) == 2:
            assert got[first_ids[1]] == pytest.approx(b[0], abs=0.1)
        else:
            lost = [t for t in tracker.tracks if t.track_id == first_ids[1]][0]
            assert lost.state is TrackState.LOST
            assert (lost.box[0] + lost.box[2]) / 2 == pytest.approx(b[0], abs=3.0)  # predicted behind a
    assert tracker.track_ids().tolist() == [1, 2]


def test_face_that_speeds_up_while_hidden_is_recovered_by_buffered_iou():
    """Hidden for 12 frames while accelerating from 2 to 10 px/frame: it reappears 56 px (0.7
    box widths) ahead of its constant-velocity prediction; plain IoU misses it."""
    xs = [200 + 2 * f for f in range(10)]
    for f in range(10, 23):
        xs.append(xs[-1] + 2 + 8 * (f - 9) / 13)
    assert iou_matrix([box(xs[-1], 200, 76)], [box(xs[9] + 2 * 13, 200, 76)])[0, 0] < 0.2
    results = {}
    for buffer in (0.0, 0.3):
        tracker = Tracker(TrackerConfig(lost_buffer=buffer))
        other = lambda f: box(600 - 2 * f, 400, 80)  # noqa: E731 (a second face, always visible)
        for f, x in enumerate(xs):
            boxes = [other(f)] if 10 <= f < 22 else [box(x, 200, 76), other(f)]
            out = tracker.update(frame(boxes), f * DT)
        results[buffer] = (out.track_ids.tolist(), tracker.tracks[0].state)
    assert results[0.3] == ([1, 2], TrackState.TRACKED)
    assert results[0.0] == ([2], TrackState.LOST)  # the face starts a new (tentative) track instead


def test_new_faces_get_new_increasing_ids_after_min_hits():
    tracker = Tracker(TrackerConfig(min_hits=2))
    out = tracker.update(frame([box(100, 100)]), 0.0)
    assert out.track_ids.tolist() == [1]
    out = tracker.update(frame([box(102, 100), box(400, 300)]), DT)
    assert out.track_ids.tolist() == [1]  # the newcomer is tentative: not returned yet
    assert any(t.state is TrackState.TENTATIVE and t.track_id == -1 for t in tracker.tracks)
    out = tracker.update(frame([box(104, 100), box(400, 302)]), 2 * DT)
    assert out.track_ids.tolist() == [1, 2]
    # a one-frame false detection never gets an id
    tracker.update(frame([box(106, 100), box(400, 304), box(250, 50)]), 3 * DT)
    out = tracker.update(frame([box(108, 100), box(400, 306), box(600, 400)]), 4 * DT)
    out = tracker.update(frame([box(110, 100), box(400, 308), box(600, 402)]), 5 * DT)
    assert out.track_ids.tolist() == [1, 2, 3]
    # keep_unconfirmed returns tentative detections with id -1
    t2 = Tracker(TrackerConfig(keep_unconfirmed=True))
    t2.update(frame([box(100, 100)]), 0.0)
    out = t2.update(frame([box(100, 100), box(400, 300)]), DT)
    assert out.track_ids.tolist() == [1, -1]


def test_lost_track_removed_after_max_age_seconds():
    tracker = Tracker(TrackerConfig(max_age_s=0.5))
    t = 0.0
    for _ in range(5):
        tracker.update(frame([box(100, 100)]), t)
        t += DT
    last_seen = t - DT
    # the face leaves; frames arrive irregularly (a real-time source dropping frames)
    for t in (last_seen + 0.05, last_seen + 0.3, last_seen + 0.45, last_seen + 0.5):
        assert tracker.update(frame([]), t).track_ids.size == 0
        assert tracker.track_ids().tolist() == [1]
        assert tracker.tracks[0].state is TrackState.LOST
    tracker.update(frame([]), last_seen + 0.51)
    assert tracker.track_ids().size == 0 and tracker.tracks == ()
    # the same face coming back now is a new track with a new id
    tracker.update(frame([box(100, 100)]), last_seen + 0.6)
    out = tracker.update(frame([box(100, 100)]), last_seen + 0.6 + DT)
    assert out.track_ids.tolist() == [2]


def test_lost_track_recovered_within_max_age():
    tracker = Tracker(TrackerConfig(max_age_s=1.0))
    for f in range(5):
        tracker.update(frame([box(100 + 4 * f, 100)]), f * DT)
    for f in range(5, 25):  # 0.67 s unseen, moving on
        tracker.update(frame([]), f * DT)
    out = tracker.update(frame([box(100 + 4 * 25, 100)]), 25 * DT)
    assert out.track_ids.tolist() == [1]


def test_low_score_detections_extend_tracks_but_start_none():
    cfg = TrackerConfig(high_thresh=0.6, low_thresh=0.3, new_track_thresh=0.7)
    tracker = Tracker(cfg)
    for f in range(3):
        tracker.update(frame([box(100 + 3 * f, 100)], [0.9]), f * DT)
    for f in range(3, 8):  # face turns away: detector score drops into [low, high)
        out = tracker.update(frame([box(100 + 3 * f, 100), box(400, 400)], [0.45, 0.45]), f * DT)
        assert out.track_ids.tolist() == [1]  # matched in the second stage; the lone low box is dropped
        assert out.scores.tolist() == pytest.approx([0.45])
    assert [t.track_id for t in tracker.tracks] == [1]
    # below low_thresh nothing matches: the track gets lost
    out = tracker.update(frame([box(100 + 3 * 8, 100)], [0.2]), 8 * DT)
    assert len(out) == 0 and tracker.tracks[0].state is TrackState.LOST
    # a high-score face below new_track_thresh extends tracks but starts none
    t2 = Tracker(cfg)
    t2.update(frame([box(100, 100)], [0.65]), 0.0)
    assert t2.tracks == ()


def test_dropped_frames_use_timestamps():
    """Fast motion with 4 frames dropped: a frame-count motion model would fall 120 px behind."""
    tracker = Tracker()
    speed = 30.0
    for f in range(6):
        out = tracker.update(frame([box(100 + speed * f, 200)]), f * DT)
    assert out.track_ids.tolist() == [1]
    out = tracker.update(frame([box(100 + speed * 10, 200)]), 10 * DT)
    assert out.track_ids.tolist() == [1]
    assert len(tracker.tracks) == 1


def test_keypoints_and_meta_follow_detections():
    tracker = Tracker()
    kps = np.arange(3 * 5 * 2, dtype=np.float32).reshape(3, 5, 2)
    q = np.array([0.1, 0.2, 0.3], np.float32)
    out = tracker.update(frame([box(100, 100), box(300, 100), box(500, 100)], [0.9, 0.4, 0.9], kps,
                               meta={"quality": q, "note": "x"}), 0.0)
    assert out.track_ids.tolist() == [1, 2]
    np.testing.assert_array_equal(out.keypoints, kps[[0, 2]])
    np.testing.assert_array_equal(out.meta["quality"], q[[0, 2]])
    assert out.meta["note"] == "x"
    np.testing.assert_array_equal(tracker.tracks[1].keypoints, kps[2])


def test_tracker_edge_cases():
    tracker = Tracker()
    assert len(tracker.update(Faces.empty(5), 0.0)) == 0
    tracker.update(frame([box(100, 100)]), 1.0)
    with pytest.raises(ValueError, match="decrease"):
        tracker.update(frame([box(100, 100)]), 0.5)
    tracker.update(frame([box(100, 100)]), 1.0)  # same timestamp is fine
    tracker.reset()
    assert tracker.tracks == ()
    out = tracker.update(frame([box(100, 100)]), 0.0)
    assert out.track_ids.tolist() == [2]  # ids are never reused, even after reset
    for bad in ({"low_thresh": 0.8}, {"min_hits": 0}, {"max_age_s": -1}, {"match_iou": 1.5},
                {"frame_dt": 0}, {"new_track_thresh": 0.5}):
        with pytest.raises(ValueError):
            TrackerConfig(**bad)


# --------------------------------------------------------------------------------------------- identity

A, B = 7, 9


def test_name_appears_after_agreeing_votes():
    book = IdentityBook(IdentityConfig(min_votes=2))
    assert book.label(1) == (-1, pytest.approx(np.nan, nan_ok=True))
    assert book.vote(1, A, 0.6, 0.9, 0.0)[0] == -1  # one vote is not enough
    pid, sim = book.vote(1, A, 0.7, 0.9, 0.25)
    assert pid == A and 0.6 <= sim <= 0.7
    assert book.decided([1, 2]).tolist() == [True, False]


def test_conflicting_first_votes_attach_nothing():
    book = IdentityBook()
    for k, pid in enumerate([A, B, A, B]):
        book.vote(1, pid, 0.6, 0.9, 0.25 * k)
    assert book.label(1)[0] == -1 and not book.decided([1])[0]


def test_name_holds_through_noisy_votes():
    book = IdentityBook()
    t = 0.0
    for _ in range(4):
        book.vote(1, A, 0.65, 0.9, t)
        t += 0.25
    noise = [(-1, 0.2), (B, 0.45), (A, 0.6), (-1, 0.1), (B, 0.5),
             (-1, 0.3), (A, 0.6), (B, 0.4), (-1, float("nan")), (A, 0.62)]
    for pid, sim in noise:
        label = book.vote(1, pid, sim, 0.8, t)
        assert label[0] == A, (pid, label)
        assert book.decided([1])[0] == (pid == A)  # contrary vote -> re-embed soon
        t += 0.25
    # no votes for a while (occlusion, track kept): the name stays
    assert book.label(1)[0] == A


def test_name_switches_after_sustained_contrary_evidence():
    book = IdentityBook()
    t = 0.0
    for _ in range(5):
        book.vote(1, A, 0.65, 0.9, t)
        t += 0.25
    labels = []
    for _ in range(12):
        labels.append(book.vote(1, B, 0.65, 0.9, t)[0])
        t += 0.25
    assert labels[0] == labels[1] == A          # a couple of contrary votes change nothing
    assert labels[-1] == B
    first_b = labels.index(B)
    assert all(x == B for x in labels[first_b:])  # no flicker once switched
    assert set(labels[:first_b]) <= {A, -1}       # possibly released on the way


def test_name_released_after_sustained_unknown_votes():
    book = IdentityBook()
    t = 0.0
    for _ in range(4):
        book.vote(3, A, 0.6, 0.9, t)
        t += 0.25
    labels = []
    for _ in range(12):
        labels.append(book.vote(3, -1, 0.15, 0.9, t))
        t += 0.25
    assert labels[0][0] == A
    assert labels[-1][0] == -1 and labels[-1][1] == pytest.approx(0.15)
    first = next(i for i, x in enumerate(labels) if x[0] == -1)
    assert all(x[0] == -1 for x in labels[first:])
    assert book.decided([3])[0]  # settled as unknown: refreshed at the slow rate


def test_a_near_miss_alone_does_not_settle_a_track_as_unknown():
    """IdentityConfig.near_miss: one unknown vote settles a track (min_votes 1, the pipeline's
    setting) unless it was a near miss; then a second unknown vote must follow."""
    book = IdentityBook(IdentityConfig(min_votes=1))
    book.vote(1, -1, 0.20, 0.9, 0.0)              # far from everyone: settled at once
    book.vote(2, -1, 0.45, 0.9, 0.0, near=True)   # just under the threshold: not yet
    assert book.decided([1, 2]).tolist() == [True, False]
    assert book.label(2)[0] == -1                  # still shown as unknown meanwhile
    book.vote(2, -1, 0.44, 0.9, 0.3, near=True)   # the second look agrees: settled now
    assert book.decided([2])[0]
    book.vote(3, -1, 0.45, 0.9, 0.0, near=True)   # ... or the next looks name the face (re-embedded at
    book.vote(3, A, 0.6, 0.9, 0.25)               # the undecided rate, 0.25 s; the unknown vote still
    assert not book.decided([3])[0]                # weighs: one match does not dominate it)
    assert book.vote(3, A, 0.6, 0.9, 0.5)[0] == A and book.decided([3])[0]
    off = IdentityBook(IdentityConfig(min_votes=1, near_miss=0.0))
    off.vote(4, -1, 0.45, 0.9, 0.0, near=True)
    assert off.decided([4])[0]                     # near_miss 0: the rule is off
    book.vote(5, A, 0.6, 0.9, 0.0, near=True)      # a vote for a person is never "near"
    assert book.decided([5])[0]
    with pytest.raises(ValueError, match="near_miss"):
        IdentityConfig(near_miss=-0.1)


def test_votes_decay_with_time():
    labels = {}
    for gap in (0.0, 60.0):
        book = IdentityBook(IdentityConfig(half_life_s=2.0))
        for k in range(5):
            book.vote(1, A, 0.7, 1.0, 0.2 * k)
        book.vote(1, B, 0.7, 1.0, 1.0 + gap)
        labels[gap] = book.vote(1, B, 0.7, 1.0, 1.2 + gap)[0]
    assert labels == {0.0: A, 60.0: B}  # a minute later the old votes have faded


def test_apply_fills_tracked_faces_and_forget():
    book = IdentityBook()
    for k in range(2):
        book.vote(5, A, 0.6, 1.0, 0.1 * k)
        book.vote(6, -1, 0.2, 1.0, 0.1 * k)
    faces = frame([box(100, 100), box(200, 100), box(300, 100), box(400, 100)], track_ids=[5, 6, 8, -1],
                  identities=[-1, -1, -1, B], names=(None, None, None, "Bob"),
                  similarities=[np.nan, np.nan, np.nan, 0.5])
    out = book.apply(faces, lambda pids: [{A: "Ann"}.get(p) for p in pids])
    assert out.identities.tolist() == [A, -1, -1, B]
    assert out.names == ("Ann", None, None, "Bob")
    assert out.similarities[0] == pytest.approx(0.6) and out.similarities[1] == pytest.approx(0.2)
    assert np.isnan(out.similarities[2]) and out.similarities[3] == pytest.approx(0.5)
    book.forget({5, 99})
    assert 5 not in book and book.label(5)[0] == -1 and len(book) == 1
    with pytest.raises(ValueError):
        book.vote(-1, A, 0.5, 0.5, 0.0)
    with pytest.raises(ValueError):
        IdentityConfig(window=1, min_votes=2)


# --------------------------------------------------------------------------------------------- policy

def tracked(ids, identities=None) -> Faces:
    n = len(ids)
    return frame([box(100 * (k + 1), 100) for k in range(n)], track_ids=ids,
                 identities=identities if identities is not None else [-1] * n)


def test_policy_selects_new_tracks_once():
    policy = EmbedPolicy(PolicyConfig(max_per_frame=None))
    faces = tracked([1, 2, -1])
    q = np.full(3, 0.8)
    mask = policy.select(faces, q, 0.0)
    assert mask.tolist() == [True, True, False]  # untracked faces are never embedded
    policy.mark_embedded(faces.track_ids[mask], q[mask], 0.0)
    assert not policy.select(faces, q, 0.05).any()
    assert policy.embedded(1) == (0.0, pytest.approx(0.8), 1)


def test_policy_refresh_timing():
    cfg = PolicyConfig(refresh_s=2.0, undecided_refresh_s=0.25, max_per_frame=None)
    policy = EmbedPolicy(cfg)
    faces = tracked([1, 2])
    q = np.full(2, 0.7)
    policy.mark_embedded([1, 2], q, 0.0)
    decided = np.array([True, False])
    assert policy.select(faces, q, 0.2, decided).tolist() == [False, False]
    assert policy.select(faces, q, 0.25, decided).tolist() == [False, True]
    policy.mark_embedded([2], [0.7], 0.25)
    assert policy.select(faces, q, 1.99, decided).tolist() == [False, True]
    assert policy.select(faces, q, 2.0, decided).tolist() == [True, True]
    # without ``decided``, a named face counts as decided
    named = tracked([1, 2], identities=[A, -1])
    assert policy.select(named, q, 1.0).tolist() == [False, True]


def test_policy_named_face_alone_is_refreshed_less_often():
    """A named, decided, good face with no face near it waits ``alone_refresh_s``; two faces
    close together (where tracks can swap people), a settled unknown and a poor face keep
    ``refresh_s``."""
    cfg = PolicyConfig(refresh_s=2.0, alone_refresh_s=5.0, near=0.5, alone_quality=0.6, max_per_frame=None)
    policy = EmbedPolicy(cfg)
    # 60 px boxes: 1 alone at x=100; 2 and 3 side by side (touching); 4 alone, unknown; 5 alone, poor
    faces = frame([box(100, 100), box(400, 100), box(460, 100), box(700, 400), box(1000, 100)],
                  track_ids=[1, 2, 3, 4, 5], identities=[A, A, B, -1, B])
    q = np.array([0.8, 0.8, 0.8, 0.8, 0.4])
    decided = np.ones(5, bool)
    named = np.array([True, True, True, False, True])
    policy.mark_embedded([1, 2, 3, 4, 5], q, 0.0)
    assert policy.select(faces, q, 1.9, decided, named).tolist() == [False] * 5
    assert policy.select(faces, q, 2.0, decided, named).tolist() == [False, True, True, True, True]
    assert policy.select(faces, q, 5.0, decided, named).tolist() == [True] * 5
    # the identity book's label, not faces.identities, says who is named when given
    assert policy.select(faces, q, 2.0, decided, np.zeros(5, bool)).tolist() == [True] * 5
    same = EmbedPolicy(PolicyConfig(refresh_s=2.0, alone_refresh_s=2.0, max_per_frame=None))
    same.mark_embedded([1, 2, 3, 4, 5], q, 0.0)
    assert same.select(faces, q, 2.0, decided, named).all()  # alone_refresh_s = refresh_s: the old rule
    with pytest.raises(ValueError):
        PolicyConfig(alone_refresh_s=-1.0)
    with pytest.raises(ValueError):
        policy.select(faces, q, 6.0, decided, named[:3])


def test_policy_named_refresh_spares_settled_unknowns():
    """``named_refresh_s`` stretches the re-checks of named faces only: a settled "unknown" keeps
    ``refresh_s`` (a better look may name it), a named face alone keeps ``alone_refresh_s``."""
    cfg = PolicyConfig(refresh_s=2.0, named_refresh_s=4.0, alone_refresh_s=10.0, near=0.5, max_per_frame=None)
    policy = EmbedPolicy(cfg)
    # 2 and 3 side by side and named; 4 alone, unknown; 1 alone and named
    faces = frame([box(100, 100), box(400, 100), box(460, 100), box(700, 400)],
                  track_ids=[1, 2, 3, 4], identities=[A, A, B, -1])
    q = np.full(4, 0.8)
    decided, named = np.ones(4, bool), np.array([True, True, True, False])
    policy.mark_embedded([1, 2, 3, 4], q, 0.0)
    assert policy.select(faces, q, 2.0, decided, named).tolist() == [False, False, False, True]
    assert policy.select(faces, q, 4.0, decided, named).tolist() == [False, True, True, True]
    assert policy.select(faces, q, 10.0, decided, named).tolist() == [True] * 4
    with pytest.raises(ValueError, match="named_refresh_s"):
        PolicyConfig(named_refresh_s=float("nan"))


def test_policy_quality_gain():
    policy = EmbedPolicy(PolicyConfig(quality_gain=0.15, refresh_s=10.0))
    faces = tracked([1])
    policy.mark_embedded([1], [0.5], 0.0)
    decided = np.array([True])
    assert not policy.select(faces, np.array([0.6]), 0.1, decided)[0]
    assert policy.select(faces, np.array([0.65]), 0.1, decided)[0]
    policy.mark_embedded([1], [0.65], 0.1)
    assert not policy.select(faces, np.array([0.7]), 0.2, decided)[0]  # best is 0.65 now
    policy.mark_embedded([1], [0.3], 0.3)  # a worse embedding does not lower the bar
    assert policy.embedded(1)[1] == pytest.approx(0.65)


def test_policy_cap_prioritises_new_then_undecided_then_oldest():
    policy = EmbedPolicy(PolicyConfig(max_per_frame=3, refresh_s=1.0, undecided_refresh_s=0.25))
    # tracks 1-4 decided, embedded at different times; 5-6 undecided; 7-8 new
    for tid, t in ((1, 0.5), (2, 0.1), (3, 0.3), (4, 0.2), (5, 0.9), (6, 0.7)):
        policy.mark_embedded([tid], [0.8], t)
    faces = tracked([1, 2, 3, 4, 5, 6, 7, 8])
    decided = np.array([True, True, True, True, False, False, False, False])
    q = np.full(8, 0.8)
    chosen = lambda mask: set(faces.track_ids[mask].tolist())  # noqa: E731
    assert chosen(policy.select(faces, q, 2.0, decided)) == {7, 8, 6}  # new, then the oldest undecided
    assert chosen(policy.select(faces, q, 2.0, decided)) == {7, 8, 6}  # deterministic
    policy.mark_embedded([6, 7, 8], [0.8] * 3, 2.0)
    assert chosen(policy.select(faces, q, 2.05, decided)) == {5, 2, 4}  # undecided 5, then oldest decided
    policy.mark_embedded([5, 2, 4], [0.8] * 3, 2.05)
    assert chosen(policy.select(faces, q, 2.1, decided)) == {3, 1}      # the rest; nothing else is due
    assert policy.select(faces, q, 2.1, decided).sum() == 2
    with pytest.raises(ValueError):
        PolicyConfig(max_per_frame=0)


def test_face_quality():
    faces = frame([box(320, 240, 100), box(320, 240, 40), box(320, 240, 12), box(10, 240, 100), box(320, 240, 100)],
                  [0.9, 0.9, 0.9, 0.9, 0.5])
    q = face_quality(faces, (480, 640, 3))
    assert q.dtype == np.float32 and q.shape == (5,)
    assert np.all((q >= 0) & (q <= 1))
    assert q[0] == pytest.approx(0.9)          # big, confident, inside
    assert q[0] > q[1] > q[2] == 0.0           # smaller is worse; tiny is useless
    assert q[3] == pytest.approx(0.9 * 0.6)    # 40 % of the box outside the frame
    assert q[4] == pytest.approx(0.5)
    assert face_quality(Faces.empty(), (480, 640)).shape == (0,)


# --------------------------------------------------------------------------------------------- together

def truth_of(b: np.ndarray, centres) -> int:
    c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    return int(np.argmin([np.hypot(*(c - np.asarray(x))) for x in centres]))


def test_stages_together_keep_names_and_bound_embeddings():
    """Three faces walk across; a fake gallery match with 20 % errors. Names appear fast, never
    flicker, and embeddings per frame stay well below faces per frame."""
    rng = np.random.default_rng(1)
    tracker, book, policy = Tracker(), IdentityBook(), EmbedPolicy()
    truth_pid = {0: 10, 1: 11, 2: -1}
    names = {10: "Ann", 11: "Bob"}
    shown: dict[int, list] = {0: [], 1: [], 2: []}
    embedded = 0
    n_frames = 150
    alive: set[int] = set()
    for f in range(n_frames):
        ts = f * DT
        centres = [(100 + 3 * f, 150), (600 - 3 * f, 160), (300, 400 + np.sin(f / 10) * 20)]
        faces = frame([box(*c, 80) for c in centres])
        out = tracker.update(faces, ts)
        now = {int(t) for t in tracker.track_ids()}
        book.forget(alive - now)
        policy.forget(alive - now)
        alive = now
        q = face_quality(out, (600, 800))
        need = policy.select(out, q, ts, book.decided(out.track_ids))
        for k in np.flatnonzero(need):
            pid = truth_pid[truth_of(out.boxes[k], centres)]
            if rng.random() < 0.2:
                pid = [10, 11, -1][rng.integers(3)]
            book.vote(int(out.track_ids[k]), pid, 0.6 if pid >= 0 else 0.2, float(q[k]), ts)
        policy.mark_embedded(out.track_ids[need], q[need], ts)
        embedded += int(need.sum())
        out = book.apply(out, lambda pids: [names.get(p) for p in pids])
        for k in range(len(out)):
            shown[truth_of(out.boxes[k], centres)].append(out.names[k])
    assert embedded / n_frames < 0.5  # 3 faces per frame
    for truth, seq in shown.items():
        expected = names.get(truth_pid[truth])
        assert seq[15:].count(expected) == len(seq) - 15, (truth, seq)  # named within 0.5 s, then stable


def test_policy_new_tracks_beyond_the_cap():
    """Faces that appear together are all embedded at once; only re-embeddings wait for budget."""
    faces = tracked([1, 2, 3, 4, 5])
    q = np.full(5, 0.8)
    assert EmbedPolicy(PolicyConfig(max_per_frame=2)).select(faces, q, 0.0).sum() == 5
    assert EmbedPolicy(PolicyConfig(max_per_frame=2, new_always=False)).select(faces, q, 0.0).sum() == 2
    policy = EmbedPolicy(PolicyConfig(max_per_frame=2, undecided_refresh_s=0.1))
    policy.mark_embedded([1, 2, 3, 4], [0.8] * 4, 0.0)
    mask = policy.select(faces, q, 1.0, np.zeros(5, bool))   # 5 is new, 1-4 are due: 1 left in budget
    assert mask.sum() == 2 and mask[4]
