"""What detector gating (or any cheaper pipeline) may cost in recall, beside FPS: time-to-first-name,
missed faces (small ones apart), wrong names, and the CPU a pass used.

A :class:`FrameLog` keeps each frame's output boxes and names of one pass. Against a synthetic
clip's truth (:func:`truth_metrics`):

* ``time_to_first_name_s``: per enrolled person, from the first frame they are at least
  ``min_visible`` visible to the first frame a box matched to them (IoU >= 0.3) carries their
  name; ``None`` = never named. ``named_within_s``: how many were named within ``within_s``.
* ``missed``: truth faces at least ``min_visible`` visible with no box at all (a face-frame
  count), ``missed_small`` those of them whose full box is under ``small_px`` high, and
  ``boxed_fraction_min_px``: of the faces at least ``min_face_px`` high and ``min_visible``
  visible, the fraction boxed (the "32 px faces boxed in >= 95 % of frames" check).
* ``wrong_names``: boxed faces carrying a name that is not theirs (unenrolled people: any name).
* ``entry_delays_s``: every time an enrolled person becomes ``min_visible`` visible again (their
  first appearance, coming back in after leaving, out from behind an occluder), the time until a
  box on them carries their name (0 when a kept track still carries it; None = never);
  ``entries_named_within_s`` counts those within ``within_s``.
* On screen (when the log has each result's latency, a paced run): time-to-first-name counted
  until the name is *shown*, i.e. plus the latency of the result that first carries it
  (``time_to_first_name_on_screen_s``, ``named_on_screen_within_s``). A pipeline that names a
  frame late (its result waits for the embedder) gets its name stamped on an earlier frame than
  one that shows the name on the next frame (embedder on its own thread), though a viewer sees
  both at the same moment: the media-time figures favour the former, these do not.

Without truth (megamind) a *reference* pass stands in (:func:`reference_metrics`: the OpenCV-Zoo
baseline, which detects at the frame's full size on every frame): ``missed`` counts its boxes
that no output box overlaps (IoU >= 0.3), and a name's time-to-first-name runs from the start
of the reference's continuous run of boxes (frame to frame IoU >= 0.3, walking back) that
leads to the output box first carrying that name: the start of that face's shot, where it was
first named. :class:`CpuClock` gives process CPU time per frame and the cores used.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from engine.boxes import iou_matrix

MATCH_IOU = 0.3


@dataclass
class FrameLog:
    """Output boxes (N, 4) xyxy and names (N,) of each frame index of one pass, and (a paced pass)
    ``latency_s``: each frame's capture-to-result seconds."""

    frames: dict[int, tuple[np.ndarray, tuple]] = field(default_factory=dict)
    latency_s: dict[int, float] = field(default_factory=dict)

    def add(self, index: int, boxes: np.ndarray, names: tuple, latency_s: float | None = None) -> None:
        self.frames[int(index)] = (np.asarray(boxes, np.float64).reshape(-1, 4).copy(), tuple(names))
        if latency_s is not None:
            self.latency_s[int(index)] = float(latency_s)


@dataclass
class CpuClock:
    """Process CPU seconds (all threads: capture decoding included) over a wall-clock span."""

    cpu0: float = field(default_factory=time.process_time)
    wall0: float = field(default_factory=time.perf_counter)

    def summary(self, frames: int) -> dict:
        cpu, wall = time.process_time() - self.cpu0, time.perf_counter() - self.wall0
        return {"cpu_ms_per_frame": 1000.0 * cpu / frames if frames else float("nan"),
                "cores_used": cpu / wall if wall > 0 else float("nan")}


class FrameCpu:
    """The engine thread's CPU per frame, split by the gate's verdict: a *skipped* frame runs no
    model (the gate, following, the Kalman filters and the frame's records: the per-frame Python),
    a *detected* one runs the detector (and landmarks and the embedder for the faces it embeds).
    ``thread_time`` of the thread iterating ``Pipeline.run``: what its pool threads compute for a
    multi-threaded model call is not in it (one ONNX Runtime thread: all of it is).

    ``frame_done(detected, counted)`` when a frame's result arrives; ``resume()`` after the
    caller's own bookkeeping, which is left out."""

    def __init__(self) -> None:
        self._mark = time.thread_time()
        self._sum = {True: 0.0, False: 0.0}
        self._n = {True: 0, False: 0}

    def frame_done(self, detected: bool, counted: bool = True) -> None:
        if counted:
            self._sum[detected] += time.thread_time() - self._mark
            self._n[detected] += 1

    def resume(self) -> None:
        self._mark = time.thread_time()

    def summary(self) -> dict:
        """{"detected": ms a frame, "skipped": ms a frame, "detected_frames": n, "skipped_frames": n}."""
        def ms(k: bool) -> float | None:
            return 1000.0 * self._sum[k] / self._n[k] if self._n[k] else None
        return {"detected": ms(True), "skipped": ms(False), "detected_frames": self._n[True],
                "skipped_frames": self._n[False]}


def truth_metrics(log: FrameLog, truth: dict, min_visible: float = 0.5, small_px: float = 48.0,
                  min_face_px: float = 32.0, within_s: float = 1.0) -> dict:
    """Recall and naming-speed figures of ``log`` against a synthetic clip's ``truth`` (module doc).

    Only frames in ``log`` count. Returns a JSON-able dict.
    """
    from engine.synth import match_truth

    fps = float(truth["fps"])
    first_seen: dict[str, int] = {}
    first_named: dict[str, int] = {}
    enrolled = {p["name"] for p in truth["identities"] if p.get("enrolled", True)}
    visible = missed = missed_small = big = big_boxed = wrong = 0
    seen_at: dict[str, int] = {}      # person -> last frame they were min_visible visible
    entry: dict[str, int] = {}        # person -> frame their current (unnamed) entry began
    delays: list[float | None] = []
    for index in sorted(log.frames):
        if index >= len(truth["frames"]):
            continue
        boxes, names = log.frames[index]
        objs = truth["frames"][index]
        ids = match_truth(boxes, objs) if len(boxes) else np.zeros(0, int)
        got = {int(t): k for k, t in enumerate(ids) if t >= 0}
        for o in objs:
            if o["visible_fraction"] < min_visible:
                continue
            visible += 1
            k = got.get(o["id"])
            height = o["box_full"][3] - o["box_full"][1]
            if height >= min_face_px:
                big += 1
                big_boxed += k is not None
            if k is None:
                missed += 1
                missed_small += height < small_px
            person = o["name"]
            if person in enrolled:
                first_seen.setdefault(person, index)
                if seen_at.get(person, -2) != index - 1 and person not in entry:
                    entry[person] = index
                seen_at[person] = index
            if k is not None:
                name = names[k]
                if name is not None and (name != person or person not in enrolled):
                    wrong += 1
                if name == person and person in enrolled:
                    first_named.setdefault(person, index)
                    if person in entry:
                        delays.append((index - entry.pop(person)) / fps)
    ttfn = {p: (None if p not in first_named else max(0, first_named[p] - first_seen[p]) / fps)
            for p in sorted(first_seen)}
    delays += [None] * len(entry)  # entries never named
    screen = {}
    if log.latency_s:
        shown = {p: None if v is None else v + log.latency_s.get(first_named[p], 0.0) for p, v in ttfn.items()}
        screen = {"time_to_first_name_on_screen_s": shown,
                  "named_on_screen_within_s": sum(v is not None and v <= within_s + 1e-9 for v in shown.values())}
    return _naming(ttfn, within_s) | screen | {
        "entry_delays_s": delays, "entries_named_within_s": sum(d is not None and d <= within_s + 1e-9 for d in delays),
        "entry_delay_max_s": max((d for d in delays if d is not None), default=None),
        "truth_faces": visible, "missed": missed, "missed_small": missed_small, "small_px": small_px,
        "boxed_fraction_min_px": big_boxed / big if big else None, "min_face_px": min_face_px,
        "wrong_names": wrong,
    }


def reference_metrics(log: FrameLog, ref: FrameLog, fps: float, within_s: float = 1.0) -> dict:
    """Missed faces and time-to-first-name of ``log`` against a reference pass (module doc)."""
    missed = total = 0
    first_named: dict[str, tuple[int, np.ndarray]] = {}
    for index in sorted(log.frames):
        boxes, names = log.frames[index]
        for k, name in enumerate(names):
            if name is not None and name not in first_named:
                first_named[name] = (index, boxes[k])
        if index not in ref.frames:
            continue
        rboxes = ref.frames[index][0]
        total += len(rboxes)
        if len(rboxes):
            hit = iou_matrix(rboxes, boxes).max(axis=1) >= MATCH_IOU if len(boxes) else np.zeros(len(rboxes), bool)
            missed += int(np.count_nonzero(~hit))
    ttfn = {}
    for name, (index, box) in sorted(first_named.items()):
        start, cur = index, box
        while start - 1 in ref.frames and len(ref.frames[start - 1][0]):
            iou = iou_matrix(cur[None], ref.frames[start - 1][0])[0]
            if iou.max() < MATCH_IOU:
                break
            start, cur = start - 1, ref.frames[start - 1][0][int(np.argmax(iou))]
        ttfn[name] = (index - start) / fps
    return _naming(ttfn, within_s) | {"reference_faces": total, "missed": missed}


def _naming(ttfn: dict[str, float | None], within_s: float) -> dict:
    done = [v for v in ttfn.values() if v is not None]
    return {"time_to_first_name_s": ttfn,
            "time_to_first_name_max_s": max(done) if done else None,
            "time_to_first_name_mean_s": float(np.mean(done)) if done else None,
            "named_within_s": sum(v <= within_s + 1e-9 for v in done), "named_of": len(ttfn), "within_s": within_s}


def pass_stats(pipeline, cpu: CpuClock | None, frames: int) -> dict:
    """CPU use and detector calls of one pipeline pass (``pipeline.gate``'s counts)."""
    gate = pipeline.gate
    total = gate.detections + gate.counts.get("skipped", 0)
    return {**(cpu.summary(frames) if cpu is not None else {"cpu_ms_per_frame": None, "cores_used": None}),
            "gate_mode": gate.config.mode, "detector_calls": gate.detections,
            "detect_fraction": gate.detections / total if total else None,
            "gate_reasons": dict(sorted(gate.counts.items()))}


def timing_summary(log: FrameLog, truth: dict | None, source: str, ref: FrameLog | None = None,
                   cpu_ms_per_frame: float | None = None) -> dict:
    """``timing`` (ours) and ``baseline_timing`` figures for the bench JSON: against the truth
    when there is one, else against the reference pass ``ref`` (None: nothing to compare with).
    ``cores_at_native_fps``: ``cpu_ms_per_frame`` (the fast pass, where every frame is processed)
    times the file's frame rate -- the cost of the source paced like a camera, robust to a busy
    machine, where a paced pass drops frames and measures less work."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 25.0)
    cap.release()
    out: dict = {"native_fps": fps}
    if cpu_ms_per_frame is not None:
        out["cores_at_native_fps"] = cpu_ms_per_frame * fps / 1000.0
    if truth is not None:
        out["timing"] = truth_metrics(log, truth)
        if ref is not None and ref.frames:
            out["baseline_timing"] = truth_metrics(ref, truth)
    elif ref is not None and ref.frames:
        out.update({"timing": reference_metrics(log, ref, fps), "timing_reference": "baseline opencv-zoo boxes"})
    return out


def print_timing(r: dict) -> None:
    """The lines ``facescope bench`` prints for the figures above."""
    if r.get("detector_calls") is not None:
        print(f"  detector: {r['detector_calls']} calls on {r['frames'] + 1} frames ({r['gate_mode']}; "
              f"reasons {r['gate_reasons']}); CPU {r['cpu_ms_per_frame']:.1f} ms/frame, {r['cores_used']:.2f} cores "
              f"(fast pass) = {r.get('cores_at_native_fps', float('nan')):.2f} cores at the file's "
              f"{r.get('native_fps', float('nan')):g} fps")
    split = r.get("engine_thread_cpu_ms") or {}
    if split.get("skipped") is not None or split.get("detected") is not None:
        def ms(v):
            return "-" if v is None else f"{v:.1f} ms"
        print(f"  engine thread CPU: {ms(split.get('detected'))} a detected frame ({split.get('detected_frames')}), "
              f"{ms(split.get('skipped'))} a skipped one ({split.get('skipped_frames')}; no model runs on it)")
    if r.get("realtime_cores_used") is not None:
        print(f"  paced like a camera: {r['realtime_cores_used']:.2f} cores, "
              f"CPU {r['realtime_cpu_ms_per_frame']:.1f} ms per processed frame ({r['realtime_dropped']} dropped), "
              "detector on "
              f"{100 * r['realtime_detect_fraction']:.0f} % of processed frames")
    for key, who in (("timing", "ours"), ("baseline_timing", "baseline")):
        t = r.get(key)
        if not t:
            continue
        ttfn = ", ".join(f"{k} {'never' if v is None else f'{v:.2f} s'}" for k, v in t["time_to_first_name_s"].items())
        line = (f"  {who}: time to first name {ttfn}; named within {t['within_s']:g} s: "
                f"{t['named_within_s']}/{t['named_of']}")
        if "truth_faces" in t:
            frac = t["boxed_fraction_min_px"]
            line += (f"; entries (first, back in view) named within {t['within_s']:g} s: "
                     f"{t['entries_named_within_s']}/{len(t['entry_delays_s'])}, slowest {t['entry_delay_max_s']} s"
                     f"; missed {t['missed']} of {t['truth_faces']} truth faces (under {t['small_px']:g} px: "
                     f"{t['missed_small']}); faces >= {t['min_face_px']:g} px boxed "
                     f"{'n/a' if frac is None else f'{100 * frac:.1f} %'}; wrong names {t['wrong_names']}")
        else:
            line += f"; missed {t['missed']} of {t['reference_faces']} reference (baseline) boxes"
        print(line)
