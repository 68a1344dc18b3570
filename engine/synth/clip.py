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

from engine.synth.plan import EVENT_KINDS, cut_scenes, plan_motion
from engine.synth.truth import FACE_BOX, TRUTH_VERSION, choose_sprite, frame_objects, read_lfw

CROP = (34, 36, 218, 220)              # sprite crop of the 250x250 image (face box + hair)
FACE_H = FACE_BOX[3] - FACE_BOX[1]     # 124 px: a sprite's "size" is its face-box height
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
    plan, events = plan_motion(rng, len(people), frames, fps, w, h, crossings, face_px, event_kinds)
    pad = max(8, round(0.03 * w))
    bgs = [_background(rng, w + 2 * pad, h + 2 * pad)]
    shown, seg_of = np.ones((len(people), frames), bool), np.zeros(frames, int)
    if cuts:  # after every other draw from rng: clips without cuts stay as they were
        shown, seg_of = cut_scenes(rng, plan, events, len(people), frames, cuts)
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
