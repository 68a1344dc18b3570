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


def _pick_people(rng, root: Path, faces: int, unknown: int, gallery_images: int) -> list[dict]:
    people = _people(str(root))
    need = max(4, 1 + gallery_images)
    eligible = [i for i, (_, f) in enumerate(people) if len(f) >= need]
    if len(eligible) < faces or len(people) < faces + unknown:
        raise ValueError(f"{root}: {len(eligible)} people with >= {need} images, need {faces} (+{unknown} unknown)")
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


def _sprite(path: str, box: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(BGRA sprite, half face-box size / face height): the image scaled to a FACE_H-high face box
    centred as FACE_BOX, with a soft elliptical alpha (0.5 at the ellipse's edge) over face and hair."""
    x1, y1, x2, y2 = box
    k = FACE_H / (y2 - y1)
    m = np.array([[k, 0, _CENTRE[0] - k * (x1 + x2) / 2], [0, k, _CENTRE[1] - k * (y1 + y2) / 2]])
    crop = cv2.warpAffine(read_lfw(path), m, (CROP[2] - CROP[0], CROP[3] - CROP[1]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    alpha = np.zeros(crop.shape[:2], np.float32)
    cv2.ellipse(alpha, (round(_CENTRE[0]), round(_CENTRE[1] - 6)), (69, 82), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 4.0)
    return np.dstack([crop, np.round(alpha * 255).astype(np.uint8)]), np.array([(x2 - x1) / (y2 - y1), 1.0]) / 2


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


def _plan(rng, n: int, frames: int, fps: float, w: int, h: int, crossings: bool) -> tuple[dict, list[dict]]:
    rows = max(1, round(math.sqrt(n * h / w)))
    cols = math.ceil(n / rows)
    cw, ch = w / cols, h / rows
    smax = min(220 * h / 720, 0.62 * ch)
    smin = min(90 * h / 720, 0.6 * smax)
    t = np.arange(frames) / fps
    ph = lambda: rng.uniform(0, 2 * np.pi, (n, 1))  # noqa: E731
    fr = lambda lo, hi: rng.uniform(lo, hi, (n, 1))  # noqa: E731
    cell = rng.permutation(rows * cols)[:n]
    hx = np.repeat(((cell % cols + 0.5) * cw)[:, None], frames, 1)
    hy = np.repeat(((cell // cols + 0.5) * ch)[:, None], frames, 1)
    base = rng.uniform(smin + 0.25 * (smax - smin), smax - 0.2 * (smax - smin), (n, 1))
    size = np.clip(base + 0.2 * (smax - smin) * np.sin(2 * np.pi * fr(0.05, 0.15) * t + ph()), smin, smax)
    ax, ay = max(0.0, 0.5 * (cw - 1.1 * smax)), max(0.0, 0.5 * (ch - 1.25 * smax))
    fx, fy = fr(0.08, 0.25), fr(0.08, 0.25)
    wx = ax * (0.75 * np.sin(2 * np.pi * fx * t + ph()) + 0.25 * np.sin(2 * np.pi * 2.3 * fx * t + ph()))
    wy = ay * (0.75 * np.sin(2 * np.pi * fy * t + ph()) + 0.25 * np.sin(2 * np.pi * 1.7 * fy * t + ph()))
    calm, dy = np.zeros((n, frames)), np.zeros((n, frames))  # calm 1 = no wander (during an event)
    events: list[dict] = []
    length, gap = min(frames, round(2.6 * fps)), round(0.8 * fps)
    if crossings and n >= 2 and frames >= round(1.2 * fps):  # shorter clips: too fast to be real
        kinds = ["occlude", "cross", "exit"]
        for k, s in enumerate(range(min(gap // 2, frames - length), frames - length + 1, length + gap)):
            kind, sl = kinds[k % 3], slice(s, s + length)
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
            for i, p, q in ((a, pa, pb), (b, pb, pa)):
                hx[i, sl], hy[i, sl] = p[0] + (q[0] - p[0]) * u, p[1] + (q[1] - p[1]) * u
                hx[i, s + length:], hy[i, s + length:] = q
                calm[i, sl] = wgt
            if kind == "occlude":
                size[a, sl] += (max(smin, smax / OCC_RATIO) - size[a, sl]) * wgt
                size[b, sl] += (smax - size[b, sl]) * wgt
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




def _paste(frame: np.ndarray, sprite: tuple, cx: float, cy: float, size: float, theta: float, gain: float):
    """Draw a sprite, face centre at (cx, cy), face height ``size``, rolled by ``theta``, on ``frame``.
    Returns (face box xyxy, (x0, y0, opaque mask of the drawn region) or None when off-frame)."""
    (sprite, half), (h, w) = sprite, frame.shape[:2]
    a = size / FACE_H * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = np.array([cx, cy])
    tr = centre - a @ _CENTRE
    box = np.concatenate([centre - half * size, centre + half * size])
    pts = _CORNERS @ a.T + tr
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
              unknown_faces: int = 1, quality: int = 90) -> ClipInfo:
    """Write an MJPG video (``.avi``; read back to check) of ``faces`` enrolled people plus
    ``unknown_faces`` impostors (never to be enrolled), and its truth ``<out_path>.json``.

    ``lfw_dir``: LFW (``.../lfw`` or its ``lfw-deepfunneled``). Enrolled people have >= max(4,
    1 + gallery_images) images: one is the sprite, ``gallery_images`` others are ``enrol_images``.
    ``quality``: MJPG quality (0-100). Same arguments and LFW -> the same clip and truth."""
    w, h = (int(v) for v in size)
    if faces < 1 or unknown_faces < 0 or frames < 1 or gallery_images < 0 or fps <= 0 or min(w, h) < 64:
        raise ValueError(f"bad clip parameters: faces={faces} unknown={unknown_faces} frames={frames} "
                         f"gallery_images={gallery_images} fps={fps} size={size}")
    lfw_dir = Path(lfw_dir)
    root = lfw_dir / "lfw-deepfunneled" if (lfw_dir / "lfw-deepfunneled").is_dir() else lfw_dir
    if not root.is_dir():
        raise ValueError(f"LFW folder not found: {lfw_dir}")
    out_path = Path(out_path)
    truth_path = out_path.with_name(out_path.name + ".json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    people = _pick_people(rng, root, faces, unknown_faces, gallery_images)
    sprites = [_sprite(p["sprite_image"], p["sprite_box"]) for p in people]
    plan, events = _plan(rng, len(people), frames, fps, w, h, crossings)
    pad = max(8, round(0.03 * w))
    bg = _background(rng, w + 2 * pad, h + 2 * pad)
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
    if not writer.isOpened():
        raise ValueError(f"cannot write an MJPG video to {out_path} (use a .avi name)")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    truth_frames = []
    try:
        for f in range(frames):
            ox, oy = (pad * (1 + 0.8 * plan["pan"][f])).round().astype(int)
            frame = bg[oy:oy + h, ox:ox + w].copy()
            drawn = [_paste(frame, sprites[i], plan["cx"][i, f], plan["cy"][i, f], plan["size"][i, f],
                            plan["theta"][i, f], plan["gain"][i, f]) for i in range(len(people))]
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
             "events": events, "frames": truth_frames}
    truth_path.write_text(json.dumps(truth, separators=(",", ":")))
    return ClipInfo(out_path, truth_path, frames, float(fps), (w, h), people, events)
