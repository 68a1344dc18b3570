"""Reading user images robustly: every failure becomes an ImageError that names the file.

Accepted: anything OpenCV decodes (JPEG, PNG, BMP, WebP, TIFF). Grayscale is expanded to
3 channels, alpha is dropped (composited on black), 16-bit images are scaled to 8 bits.
Refused with a clear message: missing or unreadable files, undecodable or truncated data,
images too small to hold a face.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine.errors import ImageError

MIN_SIDE = 16  # px; YuNet's smallest anchor is 8 px at stride 8, a face needs more than that


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to (H, W, 3) uint8 BGR."""
    if len(data) == 0:
        raise ImageError(f"{name}: file is empty")
    # libjpeg decodes a truncated JPEG into a grey-padded image with only a warning; a
    # missing End-Of-Image marker is the reliable sign, so refuse it rather than embed junk.
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        raise ImageError(f"{name}: truncated or corrupt JPEG (no end-of-image marker)")
    buf = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"{name}: not a readable image (corrupt data or unsupported format)")
    return to_bgr8(image, name)


def to_bgr8(image: np.ndarray, name: str = "<array>") -> np.ndarray:
    """Normalise any decoded image to (H, W, 3) uint8 BGR, refusing tiny ones."""
    if image.size == 0 or image.ndim not in (2, 3):
        raise ImageError(f"{name}: image has no pixels")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.uint16)
        image = (image[:, :, :3].astype(np.uint16) * alpha // 255).astype(np.uint8)
    elif image.shape[2] != 3:
        raise ImageError(f"{name}: unsupported channel count {image.shape[2]}")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{name}: image is {w}x{h} px, too small to contain a face (min {MIN_SIDE} px)")
    return np.ascontiguousarray(image)


def read_image(path: str | Path) -> np.ndarray:
    """Read a file to (H, W, 3) uint8 BGR, or raise ImageError saying why not."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(path))
