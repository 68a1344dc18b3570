"""Synthetic multi-face test clips from real LFW faces, with per-frame ground truth.

Test and benchmark tooling, not product data. ``make_clip`` picks people from LFW
deterministically (seed), pastes one image of each as a soft-edged elliptical sprite that moves,
scales, rolls slightly and changes brightness over a procedural background, and keeps *other*
images of the same people for enrolment, so identifying them is a real recognition test.

Layout: every face has a home cell in a grid and wanders smoothly (Lissajous) inside it, so
faces do not overlap by chance; overlaps come from scripted events, one at a time:
``occlude`` (two neighbours swap places, the one behind shrinks and is fully hidden by the
one in front for a few frames), ``cross`` (a swap with a vertical offset: partial overlap) and
``exit`` (an edge face leaves the frame and comes back). At most one face is hidden at a time.
Optional (``event_kinds``): ``swap``, two neighbours of equal size trading places so close that
the one behind is ~3/4 hidden mid-way, slowest there, and ``meet``, two neighbours of equal size
meeting in the middle (the one behind ~90 % hidden) and going back where they came from, which a
constant-velocity tracker mistakes for a crossing: both are where a tracker can swap ids.
Optional (``cuts``): shot cuts, where the whole scene changes at once: a new background, and
each place (a face's trajectory: position, size, roll, brightness) taken by another person, some
people leaving the shot -- where a face was, another face is, as when a film cuts from one
speaker to the other; a tracker that follows boxes carries the track (and its name) over.

Truth per face and frame: ``box_full`` = the face box (YuNet's box on the sprite's LFW image,
forehead to chin) carried through the sprite's transform, ``box`` = it clipped to the frame,
both xyxy pixels; ``visible_fraction`` = pixels of ``box_full`` inside the frame and not covered
by a face drawn later (alpha >= 0.5), over all its pixels, counted exactly from the masks;
``occluded_fraction`` = the covered part alone; ``occluded`` = occluded_fraction >= 0.5.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from engine.synth.truth import FACE_BOX, TRUTH_VERSION, choose_sprite, frame_objects, read_lfw

CROP = (34, 36, 218, 220)              # sprite crop of the 250x250 image (face box + hair)
FACE_H = FACE_BOX[3] - FACE_BOX[1]     # 124 px: a sprite's "size" is its face-box height
OCC_RATIO = 1.6  # front/back face size when one hides the other
_CENTRE = np.array([(FACE_BOX[0] + FACE_BOX[2]) / 2 - CROP[0], (FACE_BOX[1] + FACE_BOX[3]) / 2 - CROP[1]])
_CORNERS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float) * [CROP[2] - CROP[0], CROP[3] - CROP[1]]


@dataclass
class ClipInfo:
    path: Path
    truth_path: Path
    frames: int
    fps: float
    size: tuple[int, int]
    identities: list[dict]  # {id, name, enrolled, sprite_image, sprite_box, enrol_images}; id = draw order
    events: list[dict] = field(default_factory=list)

    @property
    def enrolled(self) -> list[dict]:
        return [p for p in self.identities if p["enrolled"]]


@lru_cache(maxsize=4)
def _people(root: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(name, sorted .jpg names) of every person folder with images, sorted by name."""
    dirs = sorted((p for p in Path(root).iterdir() if p.is_dir()), key=lambda p: p.name)
    found = ((d.name, tuple(sorted(f.name for f in d.iterdir() if f.suffix.lower() == ".jpg"))) for d in dirs)
    return tuple((name, files) for name, files in found if files)


def _pick_people(rng, root: Path, faces: int, unknown: int, gallery_images: int,
                 names: tuple[str, ...] | None = None) -> list[dict]:
    people = _people(str(root))
    need = max(4, 1 + gallery_images)
    eligible = [i for i, (_, f) in enumerate(people) if len(f) >= need]
    if names is not None:  # the caller's people, e.g. the same strangers again in a second clip
        where = {name: i for i, (name, _) in enumerate(people)}
        bad = [n for k, n in enumerate(names) if n not in where or (k < faces and len(people[where[n]][1]) < need)]
        if len(names) != faces + unknown or len(set(names)) != len(names) or bad:
            raise ValueError(f"names: need {faces} + {unknown} distinct LFW people (the first {faces} with >= "
                             f"{need} images); not found or too few images: {bad}")
        chosen = [(where[n], k < faces) for k, n in enumerate(names)]
    elif len(eligible) < faces or len(people) < faces + unknown:
        raise ValueError(f"{root}: {len(eligible)} people with >= {need} images, need {faces} (+{unknown} unknown)")
    else:
        known = [eligible[i] for i in rng.choice(len(eligible), faces, replace=False)]
        rest = np.setdiff1d(np.arange(len(people)), known)
        chosen = [(i, True) for i in known] + [(int(i), False) for i in rng.choice(rest, unknown, replace=False)]
    persons = []
    for i, enrolled in chosen:
        name, files = people[i]
        order = [int(j) for j in rng.permutation(len(files))]
        sprite, box = choose_sprite(root / name, files, order)
        enrol = [files[j] for j in order if j != sprite][:gallery_images] if enrolled else []
        persons.append({"name": name, "enrolled": enrolled, "sprite_image": str(root / name / files[sprite]),
                        "sprite_box": box, "enrol_images": [str(root / name / f) for f in enrol]})
    draw = rng.permutation(len(persons))  # draw order = id: unknowns are not always on top
    return [dict(id=k, **persons[j]) for k, j in enumerate(draw)]


def _sprite(path: str, box: list[float], res: float = 1.0) -> tuple:
    """(BGRA sprite, half face-box size / face height, resolution, face centre in the sprite): the
    image scaled to a FACE_H-high face box centred as FACE_BOX, with a soft elliptical alpha (0.5 at
    the ellipse's edge) over face and hair. ``res`` < 1 pre-shrinks the sprite with INTER_AREA (for
    small faces: pasting a 124 px face at 40 px with the bilinear warp alone would alias)."""
    x1, y1, x2, y2 = box
    k = FACE_H / (y2 - y1)
    m = np.array([[k, 0, _CENTRE[0] - k * (x1 + x2) / 2], [0, k, _CENTRE[1] - k * (y1 + y2) / 2]])
    crop = cv2.warpAffine(read_lfw(path), m, (CROP[2] - CROP[0], CROP[3] - CROP[1]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    alpha = np.zeros(crop.shape[:2], np.float32)
    cv2.ellipse(alpha, (round(_CENTRE[0]), round(_CENTRE[1] - 6)), (69, 82), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 4.0)
    bgra, half = np.dstack([crop, np.round(alpha * 255).astype(np.uint8)]), np.array([(x2 - x1) / (y2 - y1), 1.0]) / 2
    if res == 1.0:
        return bgra, half, 1.0, _CENTRE
    # cv2.resize with fx=fy=res maps x_small = (x + 0.5) * res - 0.5 exactly
    small = cv2.resize(bgra, (0, 0), fx=res, fy=res, interpolation=cv2.INTER_AREA)
    return small, half, res, (_CENTRE + 0.5) * res - 0.5


def _background(rng, w: int, h: int) -> np.ndarray:
    """Procedural backdrop: colour gradient, low-frequency blotches, a few shapes, grain."""
    c0, c1, ang = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3), rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx * np.cos(ang) + yy * np.sin(ang)) / (w + h) + 0.5
    bg = c0 + (c1 - c0) * t[..., None]
    bg += cv2.resize(rng.normal(0, 25, (6, 10, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    bg = np.clip(bg, 0, 255).astype(np.uint8)
    overlay = bg.copy()
    for _ in range(14):
        col = tuple(int(v) for v in rng.uniform(30, 220, 3))
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        kind, s = rng.integers(3), int(rng.uniform(0.03, 0.2) * w)
        if kind == 0:
            cv2.rectangle(overlay, (x, y), (x + s, y + int(s * rng.uniform(0.3, 1.5))), col, -1)
        elif kind == 1:
            cv2.circle(overlay, (x, y), s // 2, col, int(rng.integers(3, 12)), cv2.LINE_AA)
        else:
            cv2.line(overlay, (x, y), (int(rng.uniform(0, w)), int(rng.uniform(0, h))), col, int(rng.integers(2, 10)))
    bg = cv2.add(cv2.addWeighted(bg, 0.45, overlay, 0.55, 0), rng.integers(0, 12, bg.shape, dtype=np.uint8))
    return cv2.GaussianBlur(bg, (0, 0), 1.2)


def _progress(n: int, dip: float = 0.25) -> np.ndarray:
    """0 -> 1 over n frames: eased start and end, slowed to ``dip`` of full speed mid-way."""
    x = (np.arange(n) + 0.5) / n
    v = np.sin(np.pi * x) ** 2 * (1 - (1 - dip) * np.exp(-(((x - 0.5) / 0.1) ** 2)))
    u = np.concatenate([[0.0], np.cumsum(v)])
    return (u / u[-1])[1:]


def _plan(rng, n: int, frames: int, fps: float, w: int, h: int, crossings: bool,
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


def _cut(rng, plan: dict, events: list[dict], n: int, frames: int, cuts: int) -> tuple[np.ndarray, np.ndarray]:
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


def _paste(frame: np.ndarray, sprite: tuple, cx: float, cy: float, size: float, theta: float, gain: float):
    """Draw a sprite, face centre at (cx, cy), face height ``size``, rolled by ``theta``, on ``frame``.
    Returns (face box xyxy, (x0, y0, opaque mask of the drawn region) or None when off-frame)."""
    (sprite, half, res, local), (h, w) = sprite, frame.shape[:2]
    a = size / FACE_H / res * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = np.array([cx, cy])
    tr = centre - a @ local
    box = np.concatenate([centre - half * size, centre + half * size])
    corners = _CORNERS if res == 1.0 else np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float) * sprite.shape[1::-1]
    pts = corners @ a.T + tr
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return box, None
    m = np.hstack([a, (tr - [x0, y0])[:, None]])
    warped = cv2.warpAffine(sprite, m, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3].astype(np.float32) * (1 / 255)
    fg = cv2.convertScaleAbs(cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR), alpha=gain)
    roi = frame[y0:y1, x0:x1]
    roi[:] = cv2.blendLinear(fg, roi, alpha, 1 - alpha)
    return box, (int(x0), int(y0), warped[..., 3] >= 128)


def make_clip(out_path: Path, lfw_dir: Path, *, faces: int = 6, frames: int = 300, size=(1280, 720),
              fps: float = 25.0, seed: int = 0, crossings: bool = True, gallery_images: int = 1,
              unknown_faces: int = 1, quality: int = 90, face_px: tuple[float, float] | None = None,
              names=None, cuts: int = 0, event_kinds: tuple[str, ...] = ("occlude", "cross", "exit")) -> ClipInfo:
    """Write an MJPG video (``.avi``; read back to check) of ``faces`` enrolled people plus
    ``unknown_faces`` impostors (never to be enrolled), and its truth ``<out_path>.json``.

    ``lfw_dir``: LFW (``.../lfw`` or its ``lfw-deepfunneled``). Enrolled people have >= max(4,
    1 + gallery_images) images: one is the sprite, ``gallery_images`` others are ``enrol_images``.
    ``quality``: MJPG quality (0-100). ``face_px``: (min, max) face-box height in pixels (default:
    90..220 scaled by the frame height and capped by the grid cell); small faces are drawn from a
    sprite pre-shrunk with INTER_AREA and wander at most one face height from their home.
    ``cuts``: shot cuts, evenly spaced (module docstring). ``event_kinds``: the scripted events,
    in turn, when ``crossings`` (any of ``EVENT_KINDS``; ``swap`` and ``meet`` are not in the default).
    ``names``: these LFW people instead of a random pick (the first ``faces`` enrolled, the others
    not); the seed still picks their images, layout and events.
    Same arguments and LFW -> the same clip and truth."""
    w, h = (int(v) for v in size)
    if faces < 1 or unknown_faces < 0 or frames < 1 or gallery_images < 0 or fps <= 0 or min(w, h) < 64:
        raise ValueError(f"bad clip parameters: faces={faces} unknown={unknown_faces} frames={frames} "
                         f"gallery_images={gallery_images} fps={fps} size={size}")
    event_kinds = tuple(event_kinds)
    if not event_kinds or set(event_kinds) - set(EVENT_KINDS) or not 0 <= cuts < frames:
        raise ValueError(f"bad clip parameters: event_kinds={event_kinds} (from {EVENT_KINDS}), "
                         f"cuts={cuts} (0 <= cuts < frames={frames})")
    if face_px is not None:
        face_px = tuple(float(v) for v in face_px)
        if len(face_px) != 2 or not 8 <= face_px[0] <= face_px[1] <= min(w, h) / 2:
            raise ValueError(f"face_px must be (min, max) face heights with 8 <= min <= max <= {min(w, h) / 2:g} "
                             f"(half the frame's smaller side), got {face_px}")
    lfw_dir = Path(lfw_dir)
    root = lfw_dir / "lfw-deepfunneled" if (lfw_dir / "lfw-deepfunneled").is_dir() else lfw_dir
    if not root.is_dir():
        raise ValueError(f"LFW folder not found: {lfw_dir}")
    out_path = Path(out_path)
    truth_path = out_path.with_name(out_path.name + ".json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    people = _pick_people(rng, root, faces, unknown_faces, gallery_images, None if names is None else tuple(names))
    # small faces: a sprite whose face is the sizes' geometric mean high, pasted at scales near 1
    res = 1.0 if face_px is None or math.sqrt(face_px[0] * face_px[1]) >= 0.7 * FACE_H else \
        math.sqrt(face_px[0] * face_px[1]) / FACE_H
    sprites = [_sprite(p["sprite_image"], p["sprite_box"], res) for p in people]
    plan, events = _plan(rng, len(people), frames, fps, w, h, crossings, face_px, event_kinds)
    pad = max(8, round(0.03 * w))
    bgs = [_background(rng, w + 2 * pad, h + 2 * pad)]
    shown, seg_of = np.ones((len(people), frames), bool), np.zeros(frames, int)
    if cuts:  # after every other draw from rng: clips without cuts stay as they were
        shown, seg_of = _cut(rng, plan, events, len(people), frames, cuts)
        bgs += [_background(rng, w + 2 * pad, h + 2 * pad) for _ in range(cuts)]
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
    if not writer.isOpened():
        raise ValueError(f"cannot write an MJPG video to {out_path} (use a .avi name)")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    truth_frames = []
    try:
        for f in range(frames):
            ox, oy = (pad * (1 + 0.8 * plan["pan"][f])).round().astype(int)
            frame = bgs[seg_of[f]][oy:oy + h, ox:ox + w].copy()
            drawn = [_paste(frame, sprites[i], plan["cx"][i, f], plan["cy"][i, f], plan["size"][i, f],
                            plan["theta"][i, f], plan["gain"][i, f]) if shown[i, f] else None
                     for i in range(len(people))]
            lut = np.clip(np.arange(256) * plan["global_gain"][f], 0, 255).astype(np.uint8)
            writer.write(cv2.LUT(frame, lut))
            truth_frames.append(frame_objects(people, drawn, w, h))
    finally:
        writer.release()
    cap = cv2.VideoCapture(str(out_path))
    props = (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)
    got = tuple(int(cap.get(k)) for k in props)
    cap.release()
    if got != (frames, w, h):
        raise RuntimeError(f"{out_path}: wrote {frames} frames of {w}x{h}, reads back as {got}")
    truth = {"version": TRUTH_VERSION, "video": out_path.name, "fps": float(fps), "size": [w, h],
             "num_frames": frames, "seed": seed, "crossings": crossings, "identities": people,
             **({} if face_px is None else {"face_px": list(face_px)}),
             **({} if not cuts else {"cuts": [int(e["start"]) for e in events if e["kind"] == "cut"]}),
             "events": events, "frames": truth_frames}
    truth_path.write_text(json.dumps(truth, separators=(",", ":")))
    return ClipInfo(out_path, truth_path, frames, float(fps), (w, h), people, events)
