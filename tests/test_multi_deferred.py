"""The embedder off the engine thread (engine.multi.embedding, Pipeline.finish_deferred/absorb):
calls batch whole frames in order, first embeddings are flagged, errors surface on the engine
thread, a face in flight is not chosen again, late votes name the same people as in-line ones,
and the runner gets every embedding back on the worker thread. Real clips, models and gallery."""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from tests.test_multi_source import FRAMES, clips, gallery, gallery_file, recognizer  # noqa: F401 - fixtures


def _frames(path, n=FRAMES):
    """The clip's first ``n`` frames as capture Frames (25 fps media time)."""
    from engine.capture import Frame
    from tests.test_gating import _frames as images

    return [Frame(image, i, time.perf_counter(), i / 25.0) for i, image in enumerate(images(path, n))]


def _pipeline(recognizer, index, per_frame: int | None = None):  # noqa: F811 - the fixture's name
    from engine.multi import multi_pipeline_config
    from engine.pipeline import Pipeline
    from engine.track import PolicyConfig

    if per_frame is None:  # the several-sources default (MULTI_POLICY)
        return Pipeline(recognizer, index, multi_pipeline_config())
    return Pipeline(recognizer, index, multi_pipeline_config(policy=PolicyConfig(max_per_frame=per_frame,
                                                                                 new_always=False)))


def test_calls_take_whole_frames_in_order_and_flag_first_embeddings(clips, recognizer, gallery):  # noqa: F811
    from engine.multi.embedding import DeferredEmbedder

    begun = []
    for clip in clips:
        p = _pipeline(recognizer, gallery.index, per_frame=2).begin(_frames(clip.path, 1)[0])
        assert p.to_embed == 2  # three new faces, at most two chosen a frame
        begun.append(p)
    emb = DeferredEmbedder(recognizer.embedder.embed_tensor, max_faces=3)
    with pytest.raises(ValueError, match="no faces to embed"):
        emb.add("x", dataclasses.replace(begun[0], idx=begun[0].idx[:0], tensor=None))
    emb.add("a", begun[0], first=True)
    emb.add("b", begun[1])
    assert emb.busy and emb.submit() and not emb.submit()  # one call at a time
    assert emb.urgent  # the running call holds a first embedding
    done = emb.collect(wait=True)
    assert [k for k, _, _ in done.items] == ["a"] and done.faces == 2 and done.ms > 0  # "b" would make 4 > 3
    np.testing.assert_allclose(done.items[0][2], recognizer.embedder.embed_tensor(begun[0].tensor), atol=1e-5)
    assert not emb.urgent and emb.busy  # "b" still waits
    assert emb.submit() and not emb.urgent and emb.wait(30.0)
    (key, pending, vectors), = emb.collect().items
    assert key == "b" and pending is begun[1] and vectors.shape == (2, recognizer.embedder.dim)
    assert not emb.busy and emb.collect() is None
    # an embedder error (a tensor the model refuses) is raised on the thread that collects
    emb.add("bad", dataclasses.replace(begun[0], tensor=begun[0].tensor[:, :, :50]))
    emb.submit()
    with pytest.raises(ValueError, match="embedder input must be"):
        emb.collect(wait=True)
    emb.close()
    with pytest.raises(ValueError, match="max_faces"):
        DeferredEmbedder(recognizer.embedder.embed_tensor, max_faces=0)


def test_late_votes_name_the_same_people_and_in_flight_faces_wait(clips, recognizer, gallery):  # noqa: F811
    """Embeddings absorbed one frame late give each track the name the in-line pipeline gives it;
    while a face's embedding is in flight the policy does not choose it again."""
    frames = _frames(clips[0].path)
    inline = _pipeline(recognizer, gallery.index)
    names_inline: dict[int, set] = {}
    for f in frames:
        r = inline_last = inline.process(f)
        for t, n in zip(r.faces.track_ids.tolist(), r.faces.names, strict=True):
            names_inline.setdefault(t, set()).add(n)
    late = _pipeline(recognizer, gallery.index)
    names_late: dict[int, set] = {}
    prev, embedded, firsts = None, 0, []
    for f in frames:
        p = late.begin(f)
        if prev is not None and p.to_embed:  # the previous frame's faces are still in flight: not chosen again
            assert not set(p.sub.track_ids.tolist()) & set(prev.sub.track_ids.tolist())
        if p.to_embed:
            firsts.append(late.first_embedding(p))
        r = late.finish_deferred(p)
        assert r.embedded == 0 and r.embedded_faces is None  # nothing waited for the embedder
        if prev is not None:  # absorbed one frame late
            ef = late.absorb(prev, recognizer.embedder.embed_tensor(prev.tensor))
            embedded += 0 if ef is None else len(ef.crops)
            if prev.frame.index == 0:  # sent and absorbed: counted as ONE embedding of each face
                assert all(late.policy.embedded(int(t))[2] == 1 for t in prev.sub.track_ids)
        prev = p if p.to_embed else None
        for t, n in zip(r.faces.track_ids.tolist(), r.faces.names, strict=True):
            names_late.setdefault(t, set()).add(n)
    assert embedded > 0 and firsts[0] is True  # frame 0: every face is new
    union = {n for v in names_inline.values() for n in v if n}
    assert union and {n for v in names_late.values() for n in v if n} == union
    assert sorted(map(str, r.faces.names)) == sorted(map(str, inline_last.faces.names))  # same names at the end
    # a late embedding after a reset (a looping file, a re-enabled camera) is dropped, never voted
    p = late.begin(frames[0])
    late.finish_deferred(p)
    late.reset()
    assert late.absorb(p, recognizer.embedder.embed_tensor(p.tensor)) is None


def test_runner_embeds_on_its_worker_and_hands_every_embedding_back(clips, recognizer, gallery):  # noqa: F811
    from engine.capture import CaptureConfig
    from engine.multi import MultiSource, SourceSettings

    recognizer.warm_up()  # its embedder call is not a round's (the runner warms up on its engine thread)
    emb = recognizer.embedder
    real, calls = emb.embed_tensor, []

    def spy(x):
        calls.append((threading.current_thread().name, len(x)))
        return real(x)

    emb.embed_tensor = spy
    try:
        runner = MultiSource(recognizer, [SourceSettings(str(c.path)) for c in clips], gallery.index,
                             capture_config=CaptureConfig(realtime=False), defer_embedding=True)
        results = []
        with runner:
            assert runner.wait_started()
            rounds = list(runner.rounds())
    finally:
        del emb.embed_tensor
    for rnd in rounds:
        results += rnd.results
        if len(rnd.results) == len(clips):  # (a source that ended drops what comes back for it)
            assert rnd.embedded == sum(sr.result.embedded for sr in rnd.results)  # handed back with the next frames
    assert calls and all(name.startswith("facescope-embedder") for name, _ in calls)  # never the engine thread
    handed = sum(sr.result.embedded for sr in results)
    assert 0 < handed <= sum(n for _, n in calls)  # only a call still running at the end may be lost
    assert runner.embed_calls >= len(calls) - 1
    for clip, name in zip(clips, runner.names, strict=True):
        mine = [sr for sr in results if sr.source == name]
        assert len(mine) == FRAMES
        named = {n for sr in mine for n in sr.faces.names if n is not None}
        assert named and named <= {p["name"] for p in clip.enrolled}, (name, named)
        for sr in mine:
            ef = sr.result.embedded_faces
            if ef is not None:  # crops and embeddings of tracks this source still shows (sightings read them)
                assert len(ef.crops) == len(ef.faces.embeddings) == sr.result.embedded
                assert set(ef.faces.track_ids.tolist()) <= set(sr.result.alive)


def test_only_files_read_unpaced_embed_in_line(clips, recognizer):  # noqa: F811
    from engine.capture import CaptureConfig
    from engine.multi import MultiSource, SourceSettings

    files = [SourceSettings(str(c.path)) for c in clips]
    unpaced = CaptureConfig(realtime=False)
    assert not MultiSource(recognizer, files, capture_config=unpaced).defers_embedding  # reproducible
    assert MultiSource(recognizer, files).defers_embedding  # paced like cameras
    # a camera among them is live whatever the files do: no frame of it waits for the embedder
    assert MultiSource(recognizer, [*files, SourceSettings("rtsp://cam.local/live")],
                       capture_config=unpaced).defers_embedding
    assert not MultiSource(recognizer, files, defer_embedding=False).defers_embedding


def test_run_cli_paced_sources_record_sightings_from_deferred_embeddings(clips, gallery_file, tmp_path):  # noqa: F811
    """`run --realtime` with two sources: embeddings come back on later frames, and the sightings written
    still carry each face's crop and embedding, named people among them, under each source's name."""
    import sqlite3

    from engine.gallery.codec import blobs_to_matrix
    from tests.test_cli import facescope

    db = tmp_path / "people.db"
    db.write_bytes(gallery_file.read_bytes())
    facescope("run", "--source", clips[0].path, "--source", clips[1].path, "--source-name", "door", "--realtime",
              "--gallery", db)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT s.source, s.embedding, p.name FROM sightings s "
                            "LEFT JOIN persons p ON p.id = s.person_id").fetchall()
    finally:
        conn.close()
    assert {r[0] for r in rows} == {"door", clips[1].path.name}
    emb = blobs_to_matrix([r[1] for r in rows], len(rows[0][1]) // 4)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3)  # real unit embeddings, not placeholders
    for clip, name in ((clips[0], "door"), (clips[1], clips[1].path.name)):
        named = {r[2] for r in rows if r[0] == name and r[2]}
        assert named and named <= {p["name"] for p in clip.enrolled}, (name, named)
