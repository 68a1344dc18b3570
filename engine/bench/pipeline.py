"""``facescope bench --source VIDEO``: the real-time pipeline against the naive OpenCV-Zoo loop.

Both run on the same frames of the same file in the same process and run: ours through the
capture thread (fast mode: every frame, no drops) + tracking + selective re-embedding; the
baseline is what the best-known demos do, ``cv2.FaceDetectorYN`` at the frame's size and
``cv2.FaceRecognizerSF`` (alignCrop + feature) on every face of every frame, matched against the
same gallery with the same threshold. With a ground-truth file (synthetic clips) both are
scored: identification accuracy over visible truth faces, and id switches of our tracker.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine.bench.timing_metrics import CpuClock, FrameCpu, FrameLog, pass_stats, timing_summary
from engine.capture import Capture, CaptureConfig, parse_source
from engine.pipeline import STAGES, Pipeline, PipelineConfig
from engine.recognizer import Recognizer


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Scorer:
    """Identification accuracy and id switches against ground truth (optional).

    Accuracy: over truth faces at least ``min_visible`` visible, the fraction whose matched
    detection carries the right name (None for people not enrolled). A track-id change within
    30 frames of the face being (almost) fully hidden or out of frame is counted apart
    (``switches_at_occlusion``): no tracker can carry an id through what it never sees.

    Wrong names (issue #15): a detection matched to a truth face (any visible part) and labelled
    with a person who is not that face's person -- a name on an impostor, or another enrolled
    person's name; unknown (None) is never a wrong name. ``wrong_names`` counts such faces over
    all frames, ``frames_with_wrong_name`` the frames with at least one, ``labelled`` the
    matched faces, the rate's denominator. A track-id change within 30 frames after a shot cut
    (truth ``cuts``) is counted apart too (``switches_at_cut``): a new shot is a new track."""

    truth: dict | None
    min_visible: float = 0.6
    correct: int = 0
    total: int = 0
    last_track: dict[int, int] = field(default_factory=dict)
    switches: int = 0
    switches_at_occlusion: int = 0
    occluded_recently: dict[int, int] = field(default_factory=dict)
    wrong_names: int = 0
    switches_at_cut: int = 0
    frames_with_wrong_name: int = 0
    labelled: int = 0

    def add(self, index: int, boxes: np.ndarray, names: tuple, track_ids: np.ndarray | None = None) -> None:
        if self.truth is None or index >= len(self.truth["frames"]):
            return
        from engine.synth import match_truth

        objs = self.truth["frames"][index]
        for o in objs:
            if o.get("occluded") or o["visible_fraction"] < 0.2:
                self.occluded_recently[o["id"]] = index
        ids = match_truth(boxes, objs) if len(boxes) else np.zeros(0, int)
        got = {int(t): k for k, t in enumerate(ids) if t >= 0}
        wrong = 0
        for o in objs:
            k = got.get(o["id"])
            if k is not None:
                self.labelled += 1
                truth_name = o["name"] if o.get("enrolled", True) else None
                wrong += names[k] is not None and names[k] != truth_name
        self.wrong_names += wrong
        self.frames_with_wrong_name += wrong > 0
        for o in objs:
            if o["visible_fraction"] < self.min_visible:
                continue
            self.total += 1
            k = got.get(o["id"])
            expected = o["name"] if o.get("enrolled", True) else None
            if k is not None and names[k] == expected:
                self.correct += 1
        if track_ids is not None:
            for tid_truth, k in got.items():
                tid = int(track_ids[k])
                prev = self.last_track.get(tid_truth)
                if prev is not None and prev != tid and tid >= 0:
                    if any(0 <= index - c <= 30 for c in self.truth.get("cuts", ())):
                        self.switches_at_cut += 1
                    elif index - self.occluded_recently.get(tid_truth, -10**9) <= 30:
                        self.switches_at_occlusion += 1
                    else:
                        self.switches += 1
                self.last_track[tid_truth] = tid

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    def wrong_name_summary(self) -> dict:
        """The wrong-name counts and the switches at cuts (class docstring) for a report; None
        values without truth."""
        have = self.truth is not None
        return {"id_switches_at_cut": self.switches_at_cut if have else None,
                "wrong_names": self.wrong_names if have else None,
                "frames_with_wrong_name": self.frames_with_wrong_name if have else None,
                "wrong_name_rate": self.wrong_names / self.labelled if have and self.labelled else None}


def run_ours(recognizer: Recognizer, gallery_index, source: str, frames: int, truth: dict | None,
             realtime: bool = False, config: PipelineConfig | None = None, log: FrameLog | None = None,
             on_demand: bool = True) -> dict:
    """One pass of the pipeline over the file: as fast as possible (every frame, for FPS and
    stage costs) or paced at the file's native rate like a camera (for end-to-end latency:
    in the fast pass a decoded frame waits for the busy pipeline, which no camera does).
    ``on_demand``: ``CaptureConfig.decode_on_demand`` (MJPEG frames decoded in full only where needed)."""
    pipeline = Pipeline(recognizer, gallery_index, config)
    scorer = Scorer(truth)
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    e2e, faces_n, emb_n = [], [], []
    split = FrameCpu()
    with Capture(parse_source(source), CaptureConfig(realtime=realtime, decode_on_demand=on_demand)) as capture:
        capture.start()
        t0 = cpu = None
        for r in pipeline.run(capture, max_frames=frames or None):
            split.frame_done(pipeline.gate.last_reason != "skipped", counted=t0 is not None)
            if log is not None:  # every frame, the first included: time-to-first-name starts there
                log.add(r.frame.index, r.faces.boxes, r.faces.names)
            if t0 is None:  # the first frame pays model warm-up: time from the second on
                t0, cpu = time.perf_counter(), CpuClock()
                split.resume()
                continue
            for s in STAGES:
                stages[s].append(r.timings_ms[s])
            e2e.append(r.e2e_ms)
            faces_n.append(len(r.faces))
            emb_n.append(r.embedded)
            scorer.add(r.frame.index, r.faces.boxes, r.faces.names, r.faces.track_ids)
            split.resume()  # the benchmark's own bookkeeping above is not the frame's cost
        wall = time.perf_counter() - (t0 or time.perf_counter())
        dropped = capture.stats().dropped
        if t0 is None:  # not one frame (unreadable file): the one-line error `facescope run` gives, not NaN stats
            from engine.errors import FacescopeError

            stats = capture.stats()
            raise FacescopeError(f"no frames from {capture.spec.display} ({stats.state.value}: "
                                 f"{stats.reason or 'no frame decoded'})")
    n = len(e2e)
    return {
        "frames": n, "fps": n / wall if wall > 0 else float("nan"), "dropped": dropped,
        "e2e_p50_ms": _pct(e2e, 50), "e2e_p95_ms": _pct(e2e, 95),
        "stages": {s: {"p50_ms": _pct(v, 50), "p95_ms": _pct(v, 95)} for s, v in stages.items()},
        "faces_per_frame": float(np.mean(faces_n)) if n else 0.0,
        "embeddings_per_frame": float(np.mean(emb_n)) if n else 0.0,
        "ident_accuracy": scorer.accuracy, "id_switches": scorer.switches if truth else None,
        "id_switches_at_occlusion": scorer.switches_at_occlusion if truth else None,
        **scorer.wrong_name_summary(),
        **pass_stats(pipeline, cpu, n),
        "engine_thread_cpu_ms": split.summary(),
    }


def run_opencv_zoo(recognizer: Recognizer, gallery_index, source: str, frames: int, truth: dict | None,
                   threshold: float, log: FrameLog | None = None) -> dict:
    """The naive loop: FaceDetectorYN at the frame's size + FaceRecognizerSF on every face."""
    from engine.models import find_card

    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise ValueError(f"baseline cannot open {source}")
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    card = find_card("yunet")  # the naive loop runs at the card's thresholds (no tracker to use low scores)
    det = cv2.FaceDetectorYN.create(str(card.verify()), "", (w, h), card.score_threshold, card.nms_threshold, 5000)
    rec = cv2.FaceRecognizerSF.create(str(find_card("sface").verify()), "")
    scorer = Scorer(truth)
    n, t0, faces_n = 0, None, []
    index = -1
    while not frames or n < frames:
        ok, image = cap.read()
        if not ok:
            break
        index += 1
        if t0 is None:
            t0 = time.perf_counter()  # as for ours, the first frame is warm-up
            det.detect(image)
            continue
        _, found = det.detect(image)
        found = np.zeros((0, 15), np.float32) if found is None else found
        names = []
        for row in found:
            feat = rec.feature(rec.alignCrop(image, row))
            if gallery_index is None:
                names.append(None)
                continue
            _, nm, sim = gallery_index.search(feat.reshape(1, -1))
            names.append(nm[0] if sim[0] >= threshold else None)
        boxes = np.concatenate([found[:, :2], found[:, :2] + found[:, 2:4]], axis=1) if len(found) else np.zeros((0, 4))
        scorer.add(index, boxes, tuple(names))
        if log is not None:
            log.add(index, boxes, tuple(names))
        faces_n.append(len(found))
        n += 1
    wall = time.perf_counter() - (t0 or time.perf_counter())
    cap.release()
    return {"frames": n, "fps": n / wall if wall > 0 else float("nan"),
            "faces_per_frame": float(np.mean(faces_n)) if faces_n else 0.0, "ident_accuracy": scorer.accuracy}


def bench_pipeline(recognizer: Recognizer, source: str | Path, frames: int = 0, gallery_index=None,
                   truth: dict | None = None, baseline: str | None = None, latency_pass: bool = True,
                   config: PipelineConfig | None = None, on_demand: bool = True) -> dict:
    """Run ours (and the baseline) and return one JSON-able dict (see module docstring).
    ``on_demand``: MJPEG frames decoded in full only where a stage needs them (``--decode``).

    ``fps``, ``stages``, accuracy: the fast pass. ``e2e_p50_ms``/``e2e_p95_ms``: the paced
    (camera-like) pass when ``latency_pass``, else the fast pass; both are kept
    (``fast_e2e_*``, ``realtime_*``) so the difference is visible.
    """
    log, base_log = FrameLog(), FrameLog()  # per-frame boxes and names: time-to-first-name, missed faces
    result = run_ours(recognizer, gallery_index, str(source), frames, truth, config=config, log=log,
                      on_demand=on_demand)
    out = {"source": str(source), **result, "decode": "on-demand" if on_demand else "full",
           "fast_e2e_p50_ms": result["e2e_p50_ms"],
           "fast_e2e_p95_ms": result["e2e_p95_ms"], "latency_pass": "fast"}
    if latency_pass:
        paced = run_ours(recognizer, gallery_index, str(source), frames, None, realtime=True, config=config,
                         on_demand=on_demand)
        out.update({f"realtime_{k}": paced[k] for k in ("cpu_ms_per_frame", "cores_used", "detect_fraction")})
        out.update({"e2e_p50_ms": paced["e2e_p50_ms"], "e2e_p95_ms": paced["e2e_p95_ms"],
                    "realtime_fps": paced["fps"], "realtime_dropped": paced["dropped"], "latency_pass": "realtime"})
    if baseline == "opencv-zoo":
        base = run_opencv_zoo(recognizer, gallery_index, str(source), frames, truth, recognizer.threshold, base_log)
        out.update({"baseline": baseline, "baseline_fps": base["fps"], "baseline_frames": base["frames"],
                    "baseline_ident_accuracy": base["ident_accuracy"],
                    "ratio": result["fps"] / base["fps"] if base["fps"] else float("nan")})
    elif baseline is not None:
        raise ValueError(f"unknown baseline {baseline!r}; available: opencv-zoo")
    out.update(timing_summary(log, truth, str(source), base_log, result["cpu_ms_per_frame"]))
    return out
