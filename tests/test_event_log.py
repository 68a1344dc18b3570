"""EventLog bookkeeping: appear / identified / lost per track, and what an erasure changes.

A person erased while one of their tracks is hidden (the tracker still keeps it) must not be named
again: neither by that track's later "lost" event nor by a presence state built from the events.
"""
from __future__ import annotations

import numpy as np

from engine.events import EventLog
from engine.multi.events import MultiEventLog
from engine.records import Faces


def frame(*tracks: tuple[int, str | None]) -> Faces:
    """Faces with the given (track id, name) pairs; a name gets similarity 0.7."""
    n = len(tracks)
    boxes = np.array([[10.0 * k, 0, 10.0 * k + 8, 8] for k in range(n)], np.float32).reshape(-1, 4)
    return Faces(boxes, np.full(n, 0.9, np.float32), track_ids=np.array([t for t, _ in tracks], np.int64),
                 names=tuple(name for _, name in tracks),
                 similarities=np.array([0.7 if name else np.nan for _, name in tracks], np.float32))


def kinds(events) -> list[tuple[str, int, str | None]]:
    return [(e.kind, e.track_id, e.name) for e in events]


def test_appear_identified_renamed_hidden_and_lost():
    log = EventLog()
    assert kinds(log.update(frame((1, None), (2, "Ann")), 0, 0.0)) == [
        ("appear", 1, None), ("appear", 2, "Ann"), ("identified", 2, "Ann")]
    assert kinds(log.update(frame((1, "Bob"), (2, "Ann")), 1, 0.04)) == [("identified", 1, "Bob")]
    # track 2 hidden but still kept by the tracker: no event; then dropped: lost, with its last name
    assert kinds(log.update(frame((1, "Bob")), 2, 0.08, alive={1, 2})) == []
    assert kinds(log.update(frame((1, "Bob")), 3, 0.12, alive={1})) == [("lost", 2, "Ann")]
    assert kinds(log.update(frame(), 4, 0.16)) == [("lost", 1, "Bob")]


def test_forget_unnames_a_hidden_track_at_once_and_its_lost_event_names_nobody():
    log = EventLog()
    log.update(frame((1, "Ann"), (2, "Bob")), 0, 0.0)
    assert kinds(log.update(frame((2, "Bob")), 1, 0.04, alive={1, 2})) == []  # Ann's track hidden
    log.forget([1])  # Ann erased from the gallery while hidden
    events = log.update(frame((2, "Bob")), 2, 0.08, alive={1, 2})
    assert kinds(events) == [("identified", 1, None)]
    assert events[0].frame == 2 and events[0].similarity is None
    # seen again (the pipeline now labels it unknown): nothing new; lost: without her name
    assert kinds(log.update(frame((1, None), (2, "Bob")), 3, 0.12)) == []
    assert kinds(log.update(frame((2, "Bob")), 4, 0.16, alive={2})) == [("lost", 1, None)]


def test_forget_of_a_visible_track_gives_one_event_and_unknown_or_gone_tracks_none():
    log = EventLog()
    log.update(frame((1, "Ann"), (2, None)), 0, 0.0)
    log.forget([1, 2, 99])  # 2 was never named, 99 never seen
    # the visible track is labelled unknown by the pipeline on this frame: one event, not two
    assert kinds(log.update(frame((1, None), (2, None)), 1, 0.04)) == [("identified", 1, None)]
    log.forget([1])
    assert kinds(log.update(frame((1, None), (2, None)), 2, 0.08)) == []  # already unnamed: nothing
    # a forget applies once: a later name on that track is an ordinary identification
    assert kinds(log.update(frame((1, "Cat"), (2, None)), 3, 0.12)) == [("identified", 1, "Cat")]


def test_multi_event_log_forgets_per_source():
    from engine.capture.frame import Frame
    from engine.multi.results import SourceResult
    from engine.pipeline_records import FrameResult

    log = MultiEventLog()

    def result(source, faces, index, alive):
        f = Frame(image=np.zeros((8, 8, 3), np.uint8), index=index, timestamp=float(index), pts_s=None)
        return SourceResult(source, FrameResult(f, faces, {}, 0.0, 0, frozenset(alive)), index)

    for src in ("door", "hall"):
        log.update(result(src, frame((1, "Ann")), 0, {1}))
    log.forget("door", [1])  # track 1 of the door; the hall's track 1 is someone else's business
    door = log.update(result("door", frame(), 1, {1}))
    hall = log.update(result("hall", frame(), 1, {1}))
    assert [(e["kind"], e["name"], e["source"]) for e in door] == [("identified", None, "door")]
    assert hall == []
