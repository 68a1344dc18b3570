"""The bad-input corpus: files a user might hand facescope by mistake, made on the fly.

``make_corpus(out, shared)`` writes every input into ``out`` and returns one :class:`Input`
per file, saying what it is and whether it is VALID (must be accepted: trailing data after a
JPEG, EXIF-rotated photos, 16-bit / float / RGBA / grey / CMYK images, an AVI named .mp4) or
not (must be refused with one clear line, nothing written). Images are made from a real LFW
photo and videos from the real megamind clip in ``../shared``; model files from the shipped
models; galleries from a real facescope gallery (the newer-schema one) or plain sqlite3
(another application's database). Kinds: ``image``, ``video``, ``model`` (an embedder spec: a card
path or an ``.onnx`` beside one), ``gallery``.

Nothing here is random at run time: random bytes come from a fixed seed, so two runs make
the same corpus.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

FACE_IMAGE = "data/lfw/lfw-deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
VIDEO = "data/video/megamind.avi"
BOMB_SIDE = 20_000  # px: a valid 20000x20000 PNG, 400 MP (1.2 GB as BGR) from ~0.4 MB of file


@dataclass(frozen=True)
class Input:
    """One corpus file. ``valid``: facescope must accept it (else: refuse it clearly)."""

    name: str
    kind: str  # image | video | model | gallery
    path: Path
    valid: bool
    what: str


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _grey_png(width: int, height: int, rows: int | None = None) -> bytes:
    """An 8-bit grey PNG of zeros, ``rows`` rows of data present (None: all: a valid file)."""
    comp = zlib.compressobj(9)
    line = b"\x00" * (width + 1)  # filter byte + pixels
    body = b"".join(comp.compress(line) for _ in range(height if rows is None else rows)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def _exif_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG whose stored pixels are turned so that applying ``orientation`` shows ``upright``."""
    stored = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    upright.transpose(stored[orientation]).save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


def _images(out: Path, shared: Path) -> list[Input]:
    src = shared / FACE_IMAGE
    jpeg = src.read_bytes()
    bgr = cv2.imread(str(src), cv2.IMREAD_COLOR)
    pil = Image.open(src).convert("RGB")
    rng = np.random.default_rng(16)
    d = out / "images"
    d.mkdir(parents=True, exist_ok=True)
    items: list[tuple[str, bytes | None, bool, str]] = [
        ("empty.jpg", b"", False, "empty file"),
        ("text.jpg", b"this is not an image, just text named .jpg\n" * 20, False, "text file named .jpg"),
        ("truncated.jpg", jpeg[: len(jpeg) // 2], False, "JPEG cut in half"),
        ("trailing.jpg", jpeg + rng.bytes(20_000), True, "complete JPEG + 20 kB after its end (Motion Photo)"),
        ("exif3.jpg", _exif_jpeg(pil, 3), True, "stored upside down, EXIF orientation 3"),
        ("exif6.jpg", _exif_jpeg(pil, 6), True, "stored sideways, EXIF orientation 6 (phone portrait)"),
        ("exif8.jpg", _exif_jpeg(pil, 8), True, "stored sideways, EXIF orientation 8"),
        ("png_as.jpg", cv2.imencode(".png", bgr)[1].tobytes(), True, "a PNG named .jpg"),
        ("noface.jpg", cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))[1].tobytes(), False,
         "valid grey picture without a face"),
        ("1px.png", cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), False, "1x1 px"),
        ("png16.png", cv2.imencode(".png", bgr.astype(np.uint16) * 257)[1].tobytes(), True, "16-bit PNG"),
        ("rgba.png", cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))[1].tobytes(), True, "RGBA PNG"),
        ("grey.jpg", cv2.imencode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[1].tobytes(), True,
         "greyscale JPEG"),
        ("huge_header.png", _grey_png(100_000, 100_000, rows=4), False,
         "PNG header claiming 100000x100000 px, 4 rows of data"),
        ("bomb.png", None, False, f"decompression bomb: valid {BOMB_SIDE}x{BOMB_SIDE} PNG"),
    ]
    inputs = []
    for name, data, valid, what in items:
        path = d / name
        if name == "bomb.png":
            data = _grey_png(BOMB_SIDE, BOMB_SIDE)
        path.write_bytes(data)
        inputs.append(Input(name, "image", path, valid, what))
    float_tiff = d / "float.tiff"
    cv2.imwrite(str(float_tiff), bgr.astype(np.float32) / 255.0)
    inputs.append(Input("float.tiff", "image", float_tiff, True, "32-bit float TIFF (0..1)"))
    cmyk = d / "cmyk.jpg"
    pil.convert("CMYK").save(cmyk, "JPEG", quality=92)
    inputs.append(Input("cmyk.jpg", "image", cmyk, True, "CMYK JPEG"))
    return inputs


def _videos(out: Path, shared: Path) -> list[Input]:
    src = shared / VIDEO
    d = out / "videos"
    d.mkdir(parents=True, exist_ok=True)
    mp4 = d / "clip.mp4"  # a real .mp4 (its index, the moov atom, is written last: a cut loses it)
    cap = cv2.VideoCapture(str(src))
    writer = None
    for _ in range(48):
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), 24, frame.shape[1::-1])
        writer.write(frame)
    cap.release()
    if writer is not None:
        writer.release()
    data = mp4.read_bytes()
    avi = src.read_bytes()
    rng = np.random.default_rng(17)
    items = [
        ("empty.mp4", b"", False, "empty file"),
        ("truncated.mp4", data[: len(data) * 2 // 3], False, "MP4 cut at 2/3 (its index is lost)"),
        ("garbage.mp4", b"\x00\x00\x00\x18ftypisom" + rng.bytes(200_000), False,
         "MP4 file type box, then random bytes (no decodable stream)"),
        ("text.mp4", b"not a video\n" * 100, False, "text file named .mp4"),
        ("avi_as.mp4", avi, True, "an AVI (the megamind clip) named .mp4"),
    ]
    inputs = []
    for name, payload, valid, what in items:
        path = d / name
        path.write_bytes(payload)
        inputs.append(Input(name, "video", path, valid, what))
    mp4.unlink()
    return inputs


def _card(directory: Path, base: dict, model: Path, **changes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    card = {**base, "file": model.name, "sha256": hashlib.sha256(model.read_bytes()).hexdigest(), **changes}
    (directory / "card.json").write_text(json.dumps(card, indent=2))
    return directory / "card.json"


def _models(out: Path, resources: Path) -> list[Input]:
    sface_dir = resources / "models" / "sface"
    base = json.loads((sface_dir / "card.json").read_text())
    sface = (sface_dir / base["file"]).read_bytes()
    d = out / "models"
    inputs = []

    t = d / "truncated"
    t.mkdir(parents=True, exist_ok=True)
    (t / "model.onnx").write_bytes(sface[: len(sface) // 3])
    card = _card(t, base, t / "model.onnx", name="sface-truncated")
    inputs.append(Input("truncated.onnx", "model", t / "model.onnx", False,
                        "ONNX cut at 1/3, beside a card with its (matching) sha256"))
    inputs.append(Input("truncated/card.json", "model", card, False, "card of the truncated ONNX"))

    w = d / "wrong_kind"
    w.mkdir(parents=True, exist_ok=True)
    hg = resources / "models" / "hourglass68"
    shutil.copyfile(hg / json.loads((hg / "card.json").read_text())["file"], w / "model.onnx")
    card = _card(w, base, w / "model.onnx", name="not-an-embedder", quantization="fp32")
    inputs.append(Input("wrong_kind/card.json", "model", card, False,
                        "valid ONNX of another kind (the 68-point landmark model) behind an embedder card"))

    s = d / "bad_sha"
    s.mkdir(parents=True, exist_ok=True)
    (s / base["file"]).write_bytes(sface)
    card = _card(s, base, s / base["file"], name="sface-badsha", sha256="0" * 64)
    inputs.append(Input("bad_sha/card.json", "model", card, False, "the real SFace file, card with a wrong sha256"))

    j = d / "not_json"
    j.mkdir(parents=True, exist_ok=True)
    (j / "card.json").write_text('{"name": "sface", "family": ')
    inputs.append(Input("not_json/card.json", "model", j / "card.json", False, "card.json cut mid-way (not JSON)"))
    return inputs


def _galleries(out: Path, base_gallery: Path) -> list[Input]:
    d = out / "galleries"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(18)
    inputs = []
    (d / "random.db").write_bytes(rng.bytes(64 * 1024))
    inputs.append(Input("random.db", "gallery", d / "random.db", False, "64 kB of random bytes"))
    (d / "empty.db").write_bytes(b"")
    inputs.append(Input("empty.db", "gallery", d / "empty.db", False, "empty file"))
    (d / "text.db").write_text("name,embedding\nada,0.1 0.2\n")
    inputs.append(Input("text.db", "gallery", d / "text.db", False, "a CSV file named .db"))

    other = d / "other_app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT, title TEXT)")
        conn.executemany("INSERT INTO moz_places (url, title) VALUES (?, ?)",
                         [(f"https://example.org/{i}", f"page {i}") for i in range(50)])
    conn.close()
    inputs.append(Input("other_app.db", "gallery", other, False, "another application's SQLite database"))

    newer = d / "newer_schema.db"  # a real gallery (one person), its schema version raised
    shutil.copy2(base_gallery, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET schema_version = schema_version + 7 WHERE id = 1")
    conn.close()
    inputs.append(Input("newer_schema.db", "gallery", newer, False, "a facescope gallery from a newer schema version"))
    return inputs


def make_corpus(out: str | Path, shared: str | Path, resources: str | Path,
                base_gallery: str | Path) -> list[Input]:
    """Write the corpus under ``out`` (emptied first); return its inputs, images first.

    ``shared``: the ``../shared`` folder (the real photo and clip); ``resources``: the shipped
    ``resources/`` folder (models); ``base_gallery``: a real facescope gallery (checkpointed, no
    ``-wal``), copied with its schema version raised for the newer-schema input."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shared, resources = Path(shared), Path(resources)
    return [*_images(out, shared), *_videos(out, shared), *_models(out, resources),
            *_galleries(out, Path(base_gallery))]
