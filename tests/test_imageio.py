"""Reading user images: every bad input is a clear ImageError; odd formats are normalised."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.errors import ImageError
from engine.imageio import read_image


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
