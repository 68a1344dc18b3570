"""The Qt-free live session (engine/live.py): enrolment from a running source, reusing what the
pipeline made; labels by person id (rename/delete show on the next frame); the frozen last frame
relabelled; one open-set decision; the recognizer presets. Real models, the demo clip, no Qt."""
from __future__ import annotations

import numpy as np
import pytest

from engine.capture import CaptureConfig, parse_source
from tests.conftest import REPO

DEMO = REPO / "resources" / "demo" / "megamind.avi"


@pytest.fixture(scope="module")
def recognizer():
    from engine.live import realtime_recognizer

    return realtime_recognizer()  # shipped models: a load failure is a bug, not a skip


@pytest.fixture
def session(recognizer, tmp_path):
    from engine.live import LiveSession

    s = LiveSession(tmp_path / "gallery.db", recognizer, capture_config=CaptureConfig(realtime=False))
    s.open()
    yield s
    s.close()


class EmbedSpy:
    """Counts the embedder's inference calls (and passes them through to the real model)."""

    def __init__(self, embedder, monkeypatch) -> None:
        self.calls = 0
        real = embedder.embed_tensor

        def counted(x):
            self.calls += 1
            return real(x)

        monkeypatch.setattr(embedder, "embed_tensor", counted)


def _run_until(results, cond, limit=200):
    for _, r in zip(range(limit), results, strict=False):  # at most ``limit`` frames
        if cond(r):
            return r
    raise AssertionError("condition not met within the clip")


def test_one_shot_enrolment_reuses_the_pipelines_embedding(session, monkeypatch):
    spy = EmbedSpy(session.recognizer.embedder, monkeypatch)
    made: dict[int, list[np.ndarray]] = {}
    embedded_by_pipeline = 0
    results = session.run(parse_source(str(DEMO)))
    r = _run_until(results, lambda r: r.embedded_faces is not None and (r.embedded_faces.faces.track_ids >= 0).any())
    tid = int(r.embedded_faces.faces.track_ids[0])
    sample = session.sample(tid)
    assert sample is not None and sample.crop.shape == (112, 112, 3) and sample.crop.dtype == np.uint8
    np.testing.assert_array_equal(sample.embedding, r.embedded_faces.faces.embeddings[0])

    before = spy.calls
    job = session.enrol(tid, "Roxanne")
    assert tid in session.enrolling and job.status == "collecting"  # posted: the worker runs it
    for r in results:  # the next frames: the request runs between two of them
        if r.embedded_faces is not None:
            embedded_by_pipeline += 1
            for t, e in zip(r.embedded_faces.faces.track_ids.tolist(), r.embedded_faces.faces.embeddings,
                            strict=True):
                made.setdefault(t, []).append(e)
        if job.status == "ready":
            break
    done = session.poll()
    assert done == [job] and job.status == "done" and "Roxanne" in job.message and tid not in session.enrolling
    ids, stored = session.gallery.embeddings("Roxanne")
    assert len(ids) == 1
    np.testing.assert_array_equal(stored[0], sample.embedding)  # the pipeline's own embedding, not a new one
    assert spy.calls - before == embedded_by_pipeline  # enrolment ran no model of its own
    # the track is named on the next frame (assign_identity ran on the worker)
    r = _run_until(results, lambda r: (r.faces.track_ids == tid).any())
    i = int(np.flatnonzero(r.faces.track_ids == tid)[0])
    assert r.faces.names[i] == "Roxanne" and r.faces.identities[i] == job.person_id
    results.close()
    assert not session.running


def test_rename_and_delete_show_on_the_next_frame(session):
    results = session.run(parse_source(str(DEMO)))
    r = _run_until(results, lambda r: r.embedded_faces is not None and (r.embedded_faces.faces.track_ids >= 0).any())
    tid = int(r.embedded_faces.faces.track_ids[0])
    job = session.enrol(tid, "Ann")
    _run_until(results, lambda r: job.status == "ready")
    session.poll()

    def name_of(r):
        hit = np.flatnonzero(r.faces.track_ids == tid)
        return r.faces.names[int(hit[0])] if hit.size else "gone"

    assert name_of(_run_until(results, lambda r: name_of(r) != "gone")) == "Ann"
    session.gallery.rename_person("Ann", "Ann Renamed")
    assert name_of(next(results)) in ("Ann Renamed", "gone")  # the very next frame
    assert name_of(_run_until(results, lambda r: name_of(r) != "gone")) == "Ann Renamed"
    session.gallery.delete_person("Ann Renamed")
    r = _run_until(results, lambda r: name_of(r) != "gone")
    i = int(np.flatnonzero(r.faces.track_ids == tid)[0])
    assert r.faces.names[i] is None and r.faces.identities[i] == -1  # unknown, not a stale name
    results.close()


def test_best_k_enrols_k_samples_the_pipeline_made(session):
    from engine.live import TRACK_LOST_S

    results = session.run(parse_source(str(DEMO)))
    r = _run_until(results, lambda r: r.embedded_faces is not None and (r.embedded_faces.faces.track_ids >= 0).any())
    tid = int(r.embedded_faces.faces.track_ids[0])
    first = session.sample(tid)
    job = session.enrol(tid, "Best K", k=3, seconds=0.6)
    made = [first.embedding]
    for r in results:
        e = r.embedded_faces
        if e is not None:
            made += [emb for t, emb in zip(e.faces.track_ids.tolist(), e.faces.embeddings, strict=True) if t == tid]
        if job.status == "ready":
            break
    session.poll()
    assert job.status == "done", job.message
    assert 1 <= len(job.samples) <= 3 and TRACK_LOST_S > 0
    q = [s.quality for s in job.samples]
    assert q == sorted(q, reverse=True)  # best first
    for s in job.samples:  # every stored embedding is one the pipeline computed for this track
        assert any(np.array_equal(s.embedding, m) for m in made)
    assert session.gallery.persons()[0].face_count == len(job.samples)
    results.close()


def test_enrolling_the_frozen_last_frame_relabels_it(session):
    results = session.run(parse_source(str(DEMO)), max_frames=400)
    r = _run_until(results, lambda r: r.embedded_faces is not None and (r.embedded_faces.faces.track_ids >= 0).any())
    tid = int(r.embedded_faces.faces.track_ids[0])
    results.close()  # the source ended; the last frame stays on screen
    assert not session.running and session.latest is r
    i = int(np.flatnonzero(r.faces.track_ids == tid)[0])
    assert r.faces.names[i] is None
    job = session.enrol(tid, "Frozen")  # runs at once: no worker
    assert job.status == "ready"
    session.poll()
    assert job.status == "done" and job.result is not None
    assert job.result.faces.names[i] == "Frozen" and session.latest.faces.names[i] == "Frozen"
    session.gallery.rename_person("Frozen", "Thawed")
    assert session.relabel_latest().faces.names[i] == "Thawed"


def test_enrolling_a_track_never_seen_fails_with_a_message(session):
    job = session.enrol(99999, "Nobody")
    session.poll()
    assert job.status == "failed" and "nothing enrolled" in job.message
    assert session.gallery.persons() == [] and not session.enrolling
    with pytest.raises(ValueError):
        session.enrol(1, "  ")


def test_one_open_set_decision_everywhere(recognizer):
    from engine.gallery import GalleryIndex, decide
    from engine.recognizer import match_faces
    from engine.records import NO_ID, Faces

    rng = np.random.default_rng(0)
    people = rng.normal(size=(3, 8)).astype(np.float32)
    index = GalleryIndex(8)
    index.add([1, 2, 3], [10, 11, 12], people)
    for p, n in zip((10, 11, 12), "abc", strict=True):
        index.set_name(p, n)
    queries = people + rng.normal(scale=0.6, size=people.shape).astype(np.float32)
    pids, _, sims = index.search(queries)
    threshold = float(np.median(sims))  # one accepted above, one rejected below, one exactly at it
    expected = decide(pids, sims, threshold)
    assert (expected == NO_ID).any() and (expected != NO_ID).any()
    assert decide([NO_ID, 10], [np.nan, -np.inf], -1.0).tolist() == [NO_ID, NO_ID]
    m_ids, m_names, _ = index.match(queries, threshold)
    assert m_ids.tolist() == expected.tolist()
    assert [n is None for n in m_names] == (expected == NO_ID).tolist()  # unknown is None, not "unknown"
    faces = Faces(np.tile([0, 0, 10, 10], (3, 1)), np.ones(3), embeddings=queries / np.linalg.norm(queries, axis=1,
                                                                                                      keepdims=True))
    out = match_faces(faces, index, threshold)
    assert out.identities.tolist() == expected.tolist()
    assert [n is None for n in out.names] == (expected == NO_ID).tolist()


def test_presets_own_their_detector_settings():
    from engine.config import DetectorConfig, RecognizerConfig
    from engine.pipeline import PipelineConfig, realtime_config
    from engine.track import TrackerConfig

    rt = realtime_config()
    assert rt.detector.score_threshold == TrackerConfig().low_thresh == PipelineConfig().tracker.low_thresh
    assert rt.detector.input_size == (640, 384)
    # a user's threshold is kept; the tracker's is what a detector without one gets
    assert realtime_config(detector=DetectorConfig(score_threshold=0.8)).detector.score_threshold == 0.8
    assert RecognizerConfig.still().detector.input_size is None and RecognizerConfig.still().detector.pyramid
    assert RecognizerConfig.still().detector.score_threshold is None


def test_dropped_photos_enrol_off_the_owner_thread_with_the_still_detector(session, tmp_path):
    """Drop-to-enrol: the model work runs on another thread (prepare_images), the write on the
    owner thread (store_images); photos get the still-image detector (native size + pyramid), so
    a face filling a big photo is found, which the real-time 640x384 detector misplaces."""
    import threading

    import cv2

    from engine.detectors.multiscale import PyramidDetector
    from tests.conftest import shared_path

    lfw = shared_path("data", "lfw", "lfw-deepfunneled")
    photo = cv2.imread(str(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"))
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(photo, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC))  # 2000x2000
    still = session.photo_recognizer()
    assert isinstance(still.detector, PyramidDetector) and not isinstance(session.recognizer.detector, PyramidDetector)
    assert still.embedder is session.recognizer.embedder and still.landmarker is session.recognizer.landmarker
    assert session.photo_recognizer() is still  # built once per recognizer
    out = {}
    files = [big, tmp_path / "no.jpg"]
    worker = threading.Thread(target=lambda: out.update(batch=session.prepare_images(files, still)))
    worker.start()
    worker.join(120)
    batch = out["batch"]
    assert len(batch) == 1 and len(batch.problems) == 1 and "no.jpg" in batch.problems[0]
    assert "Aaron Peirsol" not in {p.name for p in session.gallery.persons()}  # nothing written off-thread
    assert session.store_images(batch, "Aaron Peirsol") == (1, batch.problems)
    ref = still.largest(photo)  # the original 250x250 photo: the same face, embedded alike
    _, stored = session.gallery.embeddings("Aaron Peirsol")
    assert float(ref.embeddings[0] @ stored[0]) > 0.8
