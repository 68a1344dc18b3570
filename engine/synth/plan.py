"""Where each face of a synthetic clip is on every frame: home cells, smooth wandering, the
scripted events (occlude, cross, exit, swap, meet) and shot cuts (see :mod:`engine.synth.clip`).

``plan_motion`` returns per-face, per-frame rows (``cx``, ``cy``, ``size``, ``theta``, ``gain``,
...) and the list of events; ``cut_scenes`` applies shot cuts to them in place.
"""
from __future__ import annotations

import math

import numpy as np

OCC_RATIO = 1.6  # front/back face size when one hides the other


def _progress(n: int, dip: float = 0.25) -> np.ndarray:
    """0 -> 1 over n frames: eased start and end, slowed to ``dip`` of full speed mid-way."""
    x = (np.arange(n) + 0.5) / n
    v = np.sin(np.pi * x) ** 2 * (1 - (1 - dip) * np.exp(-(((x - 0.5) / 0.1) ** 2)))
    u = np.concatenate([[0.0], np.cumsum(v)])
    return (u / u[-1])[1:]


def plan_motion(rng, n: int, frames: int, fps: float, w: int, h: int, crossings: bool,
                face_px: tuple[float, float] | None = None,
                kinds: tuple[str, ...] = ("occlude", "cross", "exit")) -> tuple[dict, list[dict]]:
    rows = max(1, round(math.sqrt(n * h / w)))
    cols = math.ceil(n / rows)
    cw, ch = w / cols, h / rows
    if face_px is None:
        smax = min(220 * h / 720, 0.62 * ch)
        smin = min(90 * h / 720, 0.6 * smax)
    else:
        smin, smax = (float(v) for v in face_px)
    t = np.arange(frames) / fps
    ph = lambda: rng.uniform(0, 2 * np.pi, (n, 1))  # noqa: E731
    fr = lambda lo, hi: rng.uniform(lo, hi, (n, 1))  # noqa: E731
    cell = rng.permutation(rows * cols)[:n]
    hx = np.repeat(((cell % cols + 0.5) * cw)[:, None], frames, 1)
    hy = np.repeat(((cell // cols + 0.5) * ch)[:, None], frames, 1)
    base = rng.uniform(smin + 0.25 * (smax - smin), smax - 0.2 * (smax - smin), (n, 1))
    size = np.clip(base + 0.2 * (smax - smin) * np.sin(2 * np.pi * fr(0.05, 0.15) * t + ph()), smin, smax)
    ax, ay = max(0.0, 0.5 * (cw - 1.1 * smax)), max(0.0, 0.5 * (ch - 1.25 * smax))
    if face_px is not None:  # small faces in big cells: wander at most one face height each way (~people
        ax, ay = min(ax, smax), min(ay, smax)  # milling about), not across a 10-face-wide cell
    fx, fy = fr(0.08, 0.25), fr(0.08, 0.25)
    wx = ax * (0.75 * np.sin(2 * np.pi * fx * t + ph()) + 0.25 * np.sin(2 * np.pi * 2.3 * fx * t + ph()))
    wy = ay * (0.75 * np.sin(2 * np.pi * fy * t + ph()) + 0.25 * np.sin(2 * np.pi * 1.7 * fy * t + ph()))
    calm, dy = np.zeros((n, frames)), np.zeros((n, frames))  # calm 1 = no wander (during an event)
    events: list[dict] = []
    length, gap = min(frames, round(2.6 * fps)), round(0.8 * fps)
    if crossings and n >= 2 and frames >= round(1.2 * fps):  # shorter clips: too fast to be real
        for k, s in enumerate(range(min(gap // 2, frames - length), frames - length + 1, length + gap)):
            kind, sl = kinds[k % len(kinds)], slice(s, s + length)
            u = _progress(length)
            wgt = np.sin(np.pi * u)
            col, row = cell % cols, cell // cols
            if kind == "exit":
                edge = [i for i in range(n) if col[i] in (0, cols - 1)] or list(range(n))
                i = int(rng.choice(edge))
                out_x = -0.8 * smax if hx[i, s] < w / 2 else w + 0.8 * smax
                hx[i, sl] += (out_x - hx[i, s]) * wgt
                calm[i, sl] = wgt
                events.append({"kind": kind, "start": s, "end": s + length - 1, "ids": [i]})
                continue
            pairs = [(a, b) for a in range(n) for b in range(a + 1, n)
                     if row[a] == row[b] and abs(col[a] - col[b]) == 1]
            if not pairs:
                d = np.hypot(hx[:, s, None] - hx[:, s], hy[:, s, None] - hy[:, s]) + np.eye(n) * 1e9
                pairs = [tuple(sorted(np.unravel_index(int(np.argmin(d)), d.shape)))]
            a, b = (int(v) for v in pairs[int(rng.integers(len(pairs)))])  # a behind (drawn first), b in front
            pa, pb = (hx[a, s], hy[a, s]), (hx[b, s], hy[b, s])
            if kind == "meet":  # both to the middle, slowest there, then back where they came from
                mx, my = (pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2
                mean = 0.5 * (size[a, sl] + size[b, sl])
                for i, p in ((a, pa), (b, pb)):
                    hx[i, sl], hy[i, sl] = p[0] + (mx - p[0]) * wgt, p[1] + (my - p[1]) * wgt
                    size[i, sl] += (mean - size[i, sl]) * wgt
                    calm[i, sl] = wgt
                dy[a, sl] = (1 if pa[1] < h / 2 else -1) * 0.15 * size[b, sl] * wgt
                events.append({"kind": kind, "start": s, "end": s + length - 1, "ids": [a, b]})
                continue
            for i, p, q in ((a, pa, pb), (b, pb, pa)):
                hx[i, sl], hy[i, sl] = p[0] + (q[0] - p[0]) * u, p[1] + (q[1] - p[1]) * u
                hx[i, s + length:], hy[i, s + length:] = q
                calm[i, sl] = wgt
            if kind == "occlude":
                size[a, sl] += (max(smin, smax / OCC_RATIO) - size[a, sl]) * wgt
                size[b, sl] += (smax - size[b, sl]) * wgt
            elif kind == "swap":  # same size, passing close: only the motion tells them apart
                mean = 0.5 * (size[a, sl] + size[b, sl])
                size[a, sl] += (mean - size[a, sl]) * wgt
                size[b, sl] += (mean - size[b, sl]) * wgt
                dy[a, sl] = (1 if pa[1] < h / 2 else -1) * 0.3 * size[b, sl] * wgt
            else:
                dy[a, sl] = (1 if pa[1] < h / 2 else -1) * 0.65 * size[b, sl] * wgt  # ~half hidden
            cell[a], cell[b] = cell[b], cell[a]
            events.append({"kind": kind, "start": s, "end": s + length - 1, "ids": [a, b]})
    plan = {
        "cx": hx + wx * (1 - calm), "cy": hy + wy * (1 - calm) + dy, "size": size,
        "theta": np.deg2rad(fr(2, 6) * np.sin(2 * np.pi * fr(0.1, 0.3) * t + ph())),
        "gain": 1 + 0.12 * np.sin(2 * np.pi * fr(0.05, 0.2) * t + ph()),
        "global_gain": 1 + 0.07 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 2 * np.pi)),
        "pan": np.stack([np.sin(2 * np.pi * 0.03 * t + rng.uniform(0, 6.3)),
                         np.sin(2 * np.pi * 0.04 * t + rng.uniform(0, 6.3))], 1),
    }
    return plan, events


EVENT_KINDS = ("occlude", "cross", "exit", "swap", "meet")
_TRACKS = ("cx", "cy", "size", "theta", "gain")  # per-face plan rows a cut hands to another person


def cut_scenes(rng, plan: dict, events: list[dict], n: int, frames: int, cuts: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``cuts`` shot cuts, evenly spaced, to ``plan`` and ``events`` (in place).

    Each segment after a cut shows ceil(2n/3)..n people; each shown person takes the trajectory
    (``_TRACKS`` rows) of a face of the first segment, and where possible no trajectory keeps
    the person it had before the cut. Returns (shown (n, frames) bool, segment index per frame);
    scripted events keep the people on their trajectories at their start (a trajectory nobody
    has then drops out), and a ``cut`` event (start = end = the first frame after it, ids = who is
    shown) is added per cut."""
    starts = [round(frames * k / (cuts + 1)) for k in range(1, cuts + 1)]
    seg_of = np.searchsorted(np.array(starts), np.arange(frames), side="right")
    shown = np.ones((n, frames), bool)
    owner = [np.arange(n)]  # owner[k][trajectory] = person (-1 nobody) in segment k
    for k, c in enumerate(starts, 1):
        m = n if n <= 2 else int(rng.integers(math.ceil(2 * n / 3), n + 1))
        for _ in range(50):
            who, where = rng.choice(n, m, replace=False), rng.choice(n, m, replace=False)
            cur = np.full(n, -1)
            cur[where] = who
            if not np.any((cur >= 0) & (cur == owner[-1])):
                break
        owner.append(cur)
        sl = slice(c, starts[k] if k < cuts else frames)
        src = {key: plan[key][:, sl].copy() for key in _TRACKS}
        shown[:, sl] = False
        for traj, person in enumerate(cur):
            if person >= 0:
                shown[person, sl] = True
                for key in _TRACKS:
                    plan[key][person, sl] = src[key][traj]
    for e in events:
        cur = owner[seg_of[e["start"]]]
        e["ids"] = [int(cur[t]) for t in e["ids"] if cur[t] >= 0]
    events.extend({"kind": "cut", "start": c, "end": c, "ids": sorted(int(p) for p in owner[k + 1] if p >= 0)}
                  for k, c in enumerate(starts))
    events.sort(key=lambda e: e["start"])
    return shown, seg_of
