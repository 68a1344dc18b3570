"""What a several-sources run sets differently from one source: the re-embedding policy, the
models' threads, the decoders' threads and OpenCV's thread pool. One place, so the CLI, the benchmark and the GUI grid
run the same engine.

Why each (four 1280x720 25 fps clips through one engine on this 2-core VM, alternating runs;
``facescope bench --source c1.avi ... --source c4.avi``, see docs/scaling.md): with several
sources the engine already keeps both cores busy with different frames (one helper thread for
every other frame's detection, the embedder on its own thread), so a model splitting ONE small
inference over both cores only adds hand-offs: ONNX Runtime's second thread and OpenCV's pool
cost CPU time without giving frames back. Together with the longer refresh of named faces below,
the process's CPU for four sources fell from 1.38-1.50 to 1.25-1.36 cores (12 s clips) and from
1.39-1.40 to 1.18-1.21 (60 s clips), alternating runs, at the same accuracy.
"""
from __future__ import annotations

import dataclasses
import threading

import cv2

from engine.config import RuntimeConfig
from engine.pipeline import PipelineConfig
from engine.track import PolicyConfig

# Per source at most one embedding a frame, new faces included: a burst of new faces on every
# camera at once (all sources starting together) is then embedded one face of each source per call
# (4 sources: calls of 4, ~90 ms each here), so every camera's first names come after the first
# short call instead of one camera's seven faces going first; in-line (files read unpaced) no round
# embeds more than one face a source. A named face is re-checked every 4 s (10 s when of good
# quality and alone) instead of 2 s (5 s): new, undecided, jumped and better-seen faces are embedded
# as before, and a settled "unknown" is still re-checked every 2 s (a better look may name it: at 4 s
# a face that came back poorly seen was named 1.7 s later on a 60 s clip), so this only thins the
# re-checks of faces that keep their name: embedded faces 120-123 -> 94-106 on the four 12 s clips,
# 569-570 -> 458-465 on four 60 s ones, accuracy unchanged.
MULTI_POLICY = PolicyConfig(max_per_frame=1, new_always=False, named_refresh_s=4.0, alone_refresh_s=10.0)


# Each file or stream is decoded on ONE FFmpeg thread (a source's ``decode_threads`` says otherwise):
# the sources' capture threads already decode side by side, and frame threading's second thread
# costs CPU without giving frames back. 1280x720 25 fps, one thread against FFmpeg's two here:
# 2.2 vs 2.9 ms of CPU a frame (MJPG), 3.4 vs 4.1 ms (H.264). A 4K stream may need more than one
# core's worth of decoding: give it ``decode_threads = 0`` (FFmpeg's choice) in the sources file.
DECODE_THREADS = 1


def multi_pipeline_config(**parts) -> PipelineConfig:
    """The pipeline settings every source of a :class:`MultiSource` gets by default:
    ``PipelineConfig(policy=MULTI_POLICY, **parts)`` (``parts`` replace other fields, e.g. ``gate``)."""
    return PipelineConfig(**{"policy": MULTI_POLICY, **parts})


def multi_runtime(runtime: RuntimeConfig) -> RuntimeConfig:
    """The runtime of a several-sources recognizer: with ``threads`` 0 (auto), ONE ONNX Runtime
    thread for the per-frame models (detector, landmarks: sources run side by side instead) and
    all cores for the embedder, whose first-name calls run while the engine holds new frames
    (:data:`engine.multi.rounds.URGENT_WAIT_S`): with one thread there, fewer sources showed their
    first names within 1 s. A ``threads`` the user set is kept for every model."""
    if runtime.threads != 0:
        return runtime
    embedder = 0 if runtime.embedder_threads is None else runtime.embedder_threads
    return dataclasses.replace(runtime, threads=1, embedder_threads=embedder)


_CV_LOCK = threading.Lock()
_cv_users = 0
_cv_before = 0


def hold_single_threaded_opencv() -> None:
    """OpenCV's own thread pool off (``cv2.setNumThreads(1)``) until every holder has called
    :func:`release_opencv_threads`. The engine's OpenCV calls are small (frame resizes for the
    detector and the motion gate, face thumbnails): a 1280x720 -> 256x144 resize took 0.39 ms of
    CPU on the pool's two threads against 0.19 ms on one (measured here). Process-wide."""
    global _cv_users, _cv_before
    with _CV_LOCK:
        if _cv_users == 0:
            _cv_before = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv_users += 1


def release_opencv_threads() -> None:
    """Undo one :func:`hold_single_threaded_opencv`; the last one restores the earlier setting."""
    global _cv_users
    with _CV_LOCK:
        if _cv_users == 0:
            return
        _cv_users -= 1
        if _cv_users == 0:
            cv2.setNumThreads(_cv_before)
