"""Reading user images: every bad input is a clear ImageError; odd formats are normalised;
photos come out upright (EXIF orientation) and JPEGs with appended data are accepted."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from engine.errors import ImageError
from engine.imageio import decode_image, read_image


def _photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (5, 5), 0)


def test_reads_jpeg_png_as_bgr8(tmp_path):
    img = _photo()
    cv2.imwrite(str(tmp_path / "a.png"), img)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), img)
    cv2.imwrite(str(tmp_path / "a.jpg"), img)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == img.shape and out.dtype == np.uint8


def test_grayscale_rgba_and_16bit_are_normalised(tmp_path):
    img = _photo()
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (120, 160, 3) and np.array_equal(out[..., 0], gray)
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), img)
    sixteen = img.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "s.png"), sixteen)
    np.testing.assert_array_equal(read_image(tmp_path / "s.png"), img)


@pytest.mark.parametrize("name,data,message", [
    ("empty.jpg", b"", "empty"),
    ("junk.jpg", b"\x00\x01garbage" * 50, "not a readable image"),
    ("text.png", b"hello world, not a png", "not a readable image"),
])
def test_corrupt_files(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageError, match=message):
        read_image(tmp_path / name)


def test_truncated_jpeg(tmp_path):
    ok, buf = cv2.imencode(".jpg", _photo())
    (tmp_path / "t.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    with pytest.raises(ImageError, match="truncated"):
        read_image(tmp_path / "t.jpg")


def test_missing_directory_and_tiny(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ImageError, match="too small"):
        read_image(tmp_path / "one.png")


def _exif_file(img_bgr: np.ndarray, fmt: str, orientation: int, **save) -> bytes:
    """``img_bgr`` saved by Pillow as ``fmt`` with the EXIF orientation tag set (pixels as stored)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(img_bgr[:, :, ::-1]).save(buf, fmt, exif=exif, **save)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_exif_orientation_matches_pillow(fmt, orientation):
    """All eight orientations, lossless formats: exactly the pixels PIL.ImageOps.exif_transpose gives."""
    img = _photo()[:, :150]  # 120x150: not square, so a transpose shows in the shape
    data = _exif_file(img, fmt, orientation, **({"lossless": True} if fmt == "WEBP" else {}))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))[:, :, ::-1]
    out = decode_image(data, f"o{orientation}.{fmt.lower()}")
    assert out.shape == expected.shape == ((120, 150, 3) if orientation < 5 else (150, 120, 3))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_jpeg(tmp_path, orientation):
    """A phone JPEG (orientation 6 = portrait held upright) comes out as a viewer shows it."""
    img = _photo()[:, :150]
    (tmp_path / "p.jpg").write_bytes(_exif_file(img, "JPEG", orientation, quality=95))
    out = read_image(tmp_path / "p.jpg").astype(int)
    pil = Image.open(tmp_path / "p.jpg")
    stored = np.asarray(pil.convert("RGB"))[:, :, ::-1].astype(int)
    upright = np.asarray(ImageOps.exif_transpose(pil).convert("RGB"))[:, :, ::-1].astype(int)
    assert out.shape == upright.shape == ((120, 150, 3) if orientation == 3 else (150, 120, 3))
    assert np.abs(out - upright).mean() < 1.5  # two JPEG decoders: rounding only
    if orientation == 3:
        assert np.abs(out - stored).mean() > 10  # as stored (upside down) would be far off


def test_jpeg_with_appended_data_is_accepted(tmp_path):
    """Motion Photos append a video after the JPEG's end marker: the photo is still read."""
    img = _photo()
    ok, buf = cv2.imencode(".jpg", img)
    rng = np.random.default_rng(1)
    video = b"\x00\x00\x00\x18ftypmp42" + rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes().replace(
        b"\xff\xd9", b"\xff\x00")  # no stray end marker near the end: the slow path decides
    (tmp_path / "motion.jpg").write_bytes(buf.tobytes() + video)
    plain = decode_image(buf.tobytes(), "plain.jpg")
    np.testing.assert_array_equal(read_image(tmp_path / "motion.jpg"), plain)


@pytest.mark.parametrize("keep", [0.5, 0.98, -2])
def test_truncated_jpeg_refused_wherever_cut(tmp_path, keep):
    """Cut in the middle, just before the end, or only the end marker missing: all refused."""
    ok, buf = cv2.imencode(".jpg", _photo())
    data = buf.tobytes()
    cut = data[:keep] if isinstance(keep, int) else data[: int(len(data) * keep)]
    (tmp_path / "t.jpg").write_bytes(cut)
    with pytest.raises(ImageError, match="truncated"):
        read_image(tmp_path / "t.jpg")


def test_progressive_jpeg_with_appended_data_and_truncated(tmp_path):
    img = _photo()
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    data = buf.tobytes()
    assert decode_image(data + b"\x00\x01" * 1000, "p.jpg").shape == img.shape
    with pytest.raises(ImageError, match="truncated"):
        decode_image(data[: len(data) * 3 // 4], "p.jpg")


def test_orientation_keeps_16bit_and_alpha(tmp_path):
    """EXIF orientation is applied before 16-bit scaling and alpha compositing (PNG with eXIf)."""
    img = _photo()[:, :150]
    rgba16 = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)]).astype(np.uint16) * 257
    ok, buf = cv2.imencode(".png", rgba16)
    # add an eXIf chunk before IDAT with Pillow's own writer is not possible for 16-bit RGBA, so
    # splice one in: PNG chunk = length, type, data, CRC
    import struct
    import zlib
    exif = Image.Exif()
    exif[0x0112] = 6
    payload = exif.tobytes()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    data = buf.tobytes()
    at = data.index(b"IDAT") - 4
    out = decode_image(data[:at] + chunk + data[at:], "rgba16.png")
    np.testing.assert_array_equal(out, np.rot90(img, -1))


def test_reading_is_unaffected_by_ultralytics_patching_pillow(tmp_path):
    """Ultralytics (train extra; YOLO .pt loading) replaces PIL.Image.open process-wide with a
    wrapper that tries to install pi-heif on any unidentified file. Reading images must not go
    through it: a corrupt file still gets our one clear error, EXIF is still applied."""
    pytest.importorskip("ultralytics", reason="needs the train extra (ultralytics)")
    import ultralytics.utils.patches  # noqa: F401 - importing it is what patches Pillow

    assert Image.open.__module__ != "PIL.Image"  # the patch this test is about is in place
    for name, data in (("junk.jpg", b"\xff\xd8" + b"garbage" * 40), ("junk.tif", b"II*\x00" + b"x" * 100),
                       ("junk.webp", b"RIFF\x00\x00\x00\x00WEBP" + b"x" * 50), ("junk.png", b"\x89PNG" + b"x" * 50)):
        (tmp_path / name).write_bytes(data)  # Pillow cannot identify these: the wrapper's pi-heif path
        with pytest.raises(ImageError, match="not a readable image|truncated or corrupt"):
            read_image(tmp_path / name)
    img = _photo()[:, :150]
    (tmp_path / "p.jpg").write_bytes(_exif_file(img, "JPEG", 6, quality=95))
    assert read_image(tmp_path / "p.jpg").shape == (150, 120, 3)
