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

from engine.capture import Capture, CaptureConfig, parse_source
from engine.pipeline import STAGES, Pipeline
from engine.recognizer import Recognizer


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Scorer:
    """Identification accuracy and id switches against ground truth (optional).

    Accuracy: over truth faces at least ``min_visible`` visible, the fraction whose matched
    detection carries the right name (None for people not enrolled). A track-id change within
    30 frames of the face being (almost) fully hidden or out of frame is counted apart
    (``switches_at_occlusion``): no tracker can carry an id through what it never sees."""

    truth: dict | None
    min_visible: float = 0.6
    correct: int = 0
    total: int = 0
    last_track: dict[int, int] = field(default_factory=dict)
    switches: int = 0
    switches_at_occlusion: int = 0
    occluded_recently: dict[int, int] = field(default_factory=dict)

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
                    if index - self.occluded_recently.get(tid_truth, -10**9) <= 30:
                        self.switches_at_occlusion += 1
                    else:
                        self.switches += 1
                self.last_track[tid_truth] = tid

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None


def run_ours(recognizer: Recognizer, gallery_index, source: str, frames: int, truth: dict | None,
             realtime: bool = False) -> dict:
    """One pass of the pipeline over the file: as fast as possible (every frame, for FPS and
    stage costs) or paced at the file's native rate like a camera (for end-to-end latency:
    in the fast pass a decoded frame waits for the busy pipeline, which no camera does)."""
    pipeline = Pipeline(recognizer, gallery_index)
    scorer = Scorer(truth)
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    e2e, faces_n, emb_n = [], [], []
    with Capture(parse_source(source), CaptureConfig(realtime=realtime)) as capture:
        capture.start()
        t0 = None
        for r in pipeline.run(capture, max_frames=frames or None):
            if t0 is None:  # the first frame pays model warm-up: time from the second on
                t0 = time.perf_counter()
                continue
            for s in STAGES:
                stages[s].append(r.timings_ms[s])
            e2e.append(r.e2e_ms)
            faces_n.append(len(r.faces))
            emb_n.append(r.embedded)
            scorer.add(r.frame.index, r.faces.boxes, r.faces.names, r.faces.track_ids)
        wall = time.perf_counter() - (t0 or time.perf_counter())
        dropped = capture.stats().dropped
    n = len(e2e)
    return {
        "frames": n, "fps": n / wall if wall > 0 else float("nan"), "dropped": dropped,
        "e2e_p50_ms": _pct(e2e, 50), "e2e_p95_ms": _pct(e2e, 95),
        "stages": {s: {"p50_ms": _pct(v, 50), "p95_ms": _pct(v, 95)} for s, v in stages.items()},
        "faces_per_frame": float(np.mean(faces_n)) if n else 0.0,
        "embeddings_per_frame": float(np.mean(emb_n)) if n else 0.0,
        "ident_accuracy": scorer.accuracy, "id_switches": scorer.switches if truth else None,
        "id_switches_at_occlusion": scorer.switches_at_occlusion if truth else None,
    }


def run_opencv_zoo(recognizer: Recognizer, gallery_index, source: str, frames: int, truth: dict | None,
                   threshold: float) -> dict:
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
        faces_n.append(len(found))
        n += 1
    wall = time.perf_counter() - (t0 or time.perf_counter())
    cap.release()
    return {"frames": n, "fps": n / wall if wall > 0 else float("nan"),
            "faces_per_frame": float(np.mean(faces_n)) if faces_n else 0.0, "ident_accuracy": scorer.accuracy}


def bench_pipeline(recognizer: Recognizer, source: str | Path, frames: int = 0, gallery_index=None,
                   truth: dict | None = None, baseline: str | None = None, latency_pass: bool = True) -> dict:
    """Run ours (and the baseline) and return one JSON-able dict (see module docstring).

    ``fps``, ``stages``, accuracy: the fast pass. ``e2e_p50_ms``/``e2e_p95_ms``: the paced
    (camera-like) pass when ``latency_pass``, else the fast pass; both are kept
    (``fast_e2e_*``, ``realtime_*``) so the difference is visible.
    """
    result = run_ours(recognizer, gallery_index, str(source), frames, truth)
    out = {"source": str(source), **result, "fast_e2e_p50_ms": result["e2e_p50_ms"],
           "fast_e2e_p95_ms": result["e2e_p95_ms"], "latency_pass": "fast"}
    if latency_pass:
        paced = run_ours(recognizer, gallery_index, str(source), frames, None, realtime=True)
        out.update({"e2e_p50_ms": paced["e2e_p50_ms"], "e2e_p95_ms": paced["e2e_p95_ms"],
                    "realtime_fps": paced["fps"], "realtime_dropped": paced["dropped"], "latency_pass": "realtime"})
    if baseline == "opencv-zoo":
        base = run_opencv_zoo(recognizer, gallery_index, str(source), frames, truth, recognizer.threshold)
        out.update({"baseline": baseline, "baseline_fps": base["fps"], "baseline_frames": base["frames"],
                    "baseline_ident_accuracy": base["ident_accuracy"],
                    "ratio": result["fps"] / base["fps"] if base["fps"] else float("nan")})
    elif baseline is not None:
        raise ValueError(f"unknown baseline {baseline!r}; available: opencv-zoo")
    return out
