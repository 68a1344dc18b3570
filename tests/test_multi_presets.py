"""What several sources set differently from one (engine.multi.presets): the models' threads through
the real recognizer, the config checks, and the several-sources policy. Real shipped models."""
from __future__ import annotations

import dataclasses

import pytest

from engine.config import RuntimeConfig


def test_multi_runtime_one_thread_per_frame_models_all_cores_for_the_embedder():
    from engine.multi import multi_runtime

    auto = multi_runtime(RuntimeConfig())
    assert (auto.threads, auto.embedder_threads) == (1, 0)
    assert auto.for_embedder().threads == 0 and auto.for_embedder().embedder_threads is None
    assert multi_runtime(RuntimeConfig(threads=2)) == RuntimeConfig(threads=2)  # the user's choice is kept
    assert multi_runtime(RuntimeConfig(embedder_threads=1)).embedder_threads == 1
    assert RuntimeConfig(threads=3).for_embedder() == RuntimeConfig(threads=3)  # None: same as the others
    with pytest.raises(ValueError, match="embedder_threads"):
        RuntimeConfig(embedder_threads=-1)


def test_recognizer_sessions_get_their_threads():
    from engine.multi import multi_runtime
    from engine.pipeline import realtime_config
    from engine.recognizer import Recognizer

    config = realtime_config()
    rec = Recognizer.from_config(dataclasses.replace(config, runtime=multi_runtime(config.runtime)))
    assert rec.detector.session.threads == 1 and rec.landmarker.session.threads == 1
    assert rec.embedder.session.threads == 0
    plain = Recognizer.from_config(config)  # one source: every model on all cores, as before
    assert plain.detector.session.threads == plain.embedder.session.threads == 0


def test_multi_policy_rechecks_named_faces_less_often_than_one_source():
    from engine.multi import MULTI_POLICY
    from engine.pipeline import PipelineConfig

    one = PipelineConfig().policy
    assert MULTI_POLICY.named_refresh_s > one.refresh_s and MULTI_POLICY.alone_refresh_s > one.alone_refresh_s
    assert MULTI_POLICY.refresh_s == one.refresh_s  # a settled "unknown" is re-checked as often as before
    # what names new faces and resolves contested ones is unchanged
    assert MULTI_POLICY.undecided_refresh_s == one.undecided_refresh_s
    assert MULTI_POLICY.quality_gain == one.quality_gain


def test_warm_up_runs_every_stage_once_on_a_read_only_frame():
    """Recognizer.warm_up pays the first-use costs (Numba's warp kernels, each model's first run)
    before a session's first face; MultiSource and Pipeline.run call it while sources connect."""
    from engine.align import warp
    from engine.pipeline import realtime_config
    from engine.recognizer import Recognizer

    rec = Recognizer.from_config(realtime_config())
    embedded, located = [], []
    embed, locate = rec.embedder.embed_tensor, rec.locate
    rec.embedder.embed_tensor = lambda x: (embedded.append(x.shape), embed(x))[1]
    rec.locate = lambda image, faces: (located.append(len(faces)), locate(image, faces))[1]
    rec.warm_up()
    rec.warm_up()  # once per recognizer
    assert embedded == [(4, 3, 112, 112)] and located == [4]
    assert warp._warp_kernel.signatures and all(not sig[0].mutable for sig in warp._warp_kernel.signatures)
