"""Reading user images robustly: every failure becomes an ImageError that names the file.

Accepted: anything OpenCV decodes (JPEG, PNG, BMP, WebP, TIFF). Grayscale is expanded to
3 channels, alpha is dropped (composited on black), 16-bit images are scaled to 8 bits.
The EXIF orientation tag (every phone portrait) is applied, so the pixels come out upright
as a photo viewer shows them. A JPEG followed by other data (Motion Photos append a video,
some cameras a second image) is accepted when the JPEG itself is complete.
Refused with a clear message: missing or unreadable files, undecodable or truncated data,
images too small to hold a face.

Who does what: OpenCV decodes (``IMREAD_UNCHANGED``, the only mode that keeps 16 bits and
alpha, and also the only one that ignores EXIF orientation); Pillow -- installed with
matplotlib -- reads the orientation tag from the header and, only for a JPEG whose end marker
is not where a complete file has it, decodes the data to tell trailing data from truncation.
"""
from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import ImageError

MIN_SIDE = 16  # px; YuNet's smallest anchor is 8 px at stride 8, a face needs more than that
EXIF_ORIENTATION = 0x0112
# The EXIF orientation values as array operations on (H, W[, C]) -- the same transposes as
# PIL.ImageOps.exif_transpose (tests/test_imageio.py checks all seven against it).
_ORIENT = {
    2: lambda a: a[:, ::-1],                       # mirrored
    3: lambda a: a[::-1, ::-1],                    # upside down
    4: lambda a: a[::-1],                          # mirrored vertically
    5: lambda a: a.swapaxes(0, 1),                 # transposed
    6: lambda a: np.rot90(a, -1),                  # phone held upright, camera sensor sideways: turn clockwise
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],     # transversed
    8: lambda a: np.rot90(a, 1),                   # turn counter-clockwise
}


# Formats whose EXIF orientation / completeness we read: JPEG, PNG, WebP, TIFF (by magic bytes).
_EXIF_MAGIC = (b"\xff\xd8", b"\x89PNG", b"II*\x00", b"MM\x00*")


def _has_exif_format(data: bytes) -> bool:
    return data.startswith(_EXIF_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _pillow_open():
    """``PIL.Image.open`` as Pillow wrote it. ultralytics (train extra, YOLO ``.pt`` loading)
    replaces it process-wide with a wrapper that, on an unidentified file, tries to pip-install
    and import ``pi-heif`` (offline: ModuleNotFoundError instead of Pillow's own error)."""
    opener = Image.open
    if getattr(opener, "__module__", "PIL.Image") != "PIL.Image":
        opener = getattr(sys.modules.get(opener.__module__), "_image_open", opener)
    return opener


def _pil_header(data: bytes, name: str = "<bytes>") -> Image.Image | None:
    """Pillow's lazily opened image (header parsed, pixels not decoded), or None when the data
    is not a format that carries the EXIF orientation we apply (OpenCV may still decode it).

    Raises ImageError for a header announcing more than Pillow's decompression-bomb limit
    (2 x ``Image.MAX_IMAGE_PIXELS``, ~179 MP): a few hundred bytes of PNG can announce
    100000x100000 px, and a valid 400 kB PNG decodes to 1.2 GB; refused before any decoding."""
    if not _has_exif_format(data):
        return None
    try:
        with warnings.catch_warnings():  # 89-179 MP (a big phone photo): read, without Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _pillow_open()(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: image too large to read safely ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def exif_orientation(header: Image.Image | None) -> int:
    """The EXIF orientation still to apply to what OpenCV decoded (1..8; 1 = nothing to do).

    A missing or unreadable EXIF block means 1: metadata that cannot be parsed does not make
    the pixels unreadable. PNG keeps its eXIf chunk anywhere; one after the pixel data would
    need a full second decode to find, so only a chunk before it counts (Pillow's ``info``).
    """
    if header is None or (header.format == "PNG" and "exif" not in header.info):
        return 1
    if header.format == "TIFF":
        return 1  # OpenCV's TIFF decoder turns the image itself, even with IMREAD_UNCHANGED
    try:
        value = header.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn/mirror a stored (H, W[, C]) image so that it is upright (EXIF orientation 1..8)."""
    op = _ORIENT.get(orientation)
    return image if op is None else np.ascontiguousarray(op(image))


def _jpeg_complete(data: bytes, header: Image.Image | None) -> bool:
    """Whether a JPEG's compressed data is all there.

    A complete JPEG ends with the end-of-image marker FFD9: when it is among the last bytes
    (zero padding after it is common) the file is complete, at no cost. Otherwise the marker is
    either missing (truncated file: libjpeg would pad it with grey and only warn) or followed
    by appended data (Motion Photo video, a second image); then Pillow decodes the JPEG at 1/8
    scale (``draft``: every coefficient is still entropy-decoded, so a cut is still found, at
    about half the cost of a full decode) and raises when the data ends early.
    """
    if b"\xff\xd9" in data[-1024:]:
        return True
    if header is None or header.format != "JPEG":
        return False
    try:
        header.draft(header.mode, (max(1, header.width // 8), max(1, header.height // 8)))
        header.load()
    except (OSError, ValueError, SyntaxError):
        return False
    return True


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to upright (H, W, 3) uint8 BGR."""
    if len(data) == 0:
        raise ImageError(f"{name}: file is empty")
    header = _pil_header(data, name)
    if data[:2] == b"\xff\xd8" and not _jpeg_complete(data, header):
        raise ImageError(f"{name}: truncated or corrupt JPEG (the data ends before the image does)")
    buf = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a header beyond OpenCV's own pixel limit (formats Pillow does not open)
        image = None
    if image is None:
        raise ImageError(f"{name}: not a readable image (corrupt data or unsupported format)")
    return to_bgr8(apply_orientation(image, exif_orientation(header)), name)


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
        image = cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[:2])), cv2.COLOR_GRAY2BGR)
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
    """Read a file to upright (H, W, 3) uint8 BGR, or raise ImageError saying why not."""
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
