"""Pure helpers of the gallery: names, timestamps, blob codecs and enrolment validation.

Nothing here touches SQLite, so ``Gallery`` can validate a whole enrolment before it opens a
transaction (a bad input raises ``ValueError`` with the database untouched).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import numpy as np

CROP_SHAPE = (112, 112, 3)  # aligned face crop, uint8 BGR (what embedders consume)
# 95 keeps re-embedding from stored crops within JPEG noise of the original crops; a
# 112x112 face is ~5-7 KB at this quality, small next to the per-row overhead we avoid.
JPEG_QUALITY = 95
MAX_NAME_LENGTH = 200
_MIN_NORM = 1e-12  # an embedding shorter than this has no direction to compare


def utc_now() -> str:
    """UTC ISO-8601 timestamp with microseconds, e.g. ``2024-05-01T12:00:00.123456+00:00``."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def clean_name(name: str) -> str:
    """The stored form of a person's name: NFC, whitespace runs collapsed, trimmed.

    ValueError for an empty name, control characters or more than MAX_NAME_LENGTH characters.
    """
    if not isinstance(name, str):
        raise TypeError(f"a person's name must be a str, got {type(name).__name__}")
    cleaned = " ".join(unicodedata.normalize("NFC", name).split())
    if not cleaned:
        raise ValueError("a person's name must not be empty or only whitespace")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in cleaned):
        raise ValueError(f"a person's name must not contain control characters: {cleaned!r}")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValueError(f"a person's name is limited to {MAX_NAME_LENGTH} characters, got {len(cleaned)}")
    return cleaned


def name_key(name: str) -> str:
    """Case-insensitive identity of a name (Unicode casefold, unlike SQLite's ASCII NOCASE)."""
    return clean_name(name).casefold()


def embedding_to_blob(vector: np.ndarray) -> bytes:
    """(D,) floats -> 4*D bytes, float32 little-endian (the on-disk format on every platform)."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def blobs_to_matrix(blobs: Sequence[bytes], dim: int, *, copy: bool = True) -> np.ndarray:
    """K blobs of 4*dim bytes -> (K, dim) float32. ValueError names a bad row.

    ``copy=False`` may return a read-only view of one joined buffer (no second (K, D) copy).
    """
    joined = b"".join(blobs)
    if len(joined) != 4 * dim * len(blobs):
        bad = next(i for i, b in enumerate(blobs) if len(b) != 4 * dim)
        raise ValueError(f"row {bad}: embedding has {len(blobs[bad])} bytes, expected {4 * dim} ({dim} float32)")
    return np.frombuffer(joined, dtype="<f4").reshape(len(blobs), dim).astype(np.float32, copy=copy)


def encode_crop(crop: np.ndarray) -> bytes:
    """(112, 112, 3) uint8 BGR -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("could not JPEG-encode a face crop")
    return buf.tobytes()


def decode_crop(jpeg: bytes) -> np.ndarray:
    """JPEG bytes -> (112, 112, 3) uint8 BGR; ValueError when the bytes are not such an image."""
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.shape != CROP_SHAPE:
        raise ValueError(f"stored crop is not a decodable {CROP_SHAPE} JPEG")
    return img


def check_embeddings(embeddings: np.ndarray, dim: int, what: str = "embeddings") -> np.ndarray:
    """(K, dim) real floats, finite, non-zero rows -> (K, dim) float32; ValueError otherwise."""
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[1] != dim:
        raise ValueError(f"{what} must have shape (K, {dim}), got {emb.shape} (pass (1, {dim}) for one face)")
    if emb.shape[0] == 0:
        raise ValueError(f"{what} is empty: nothing to store")
    if emb.dtype.kind != "f":
        raise ValueError(f"{what} must be floating point (float32), got {emb.dtype}")
    emb = emb.astype(np.float32)  # copy: the caller's array may change after we validated it
    bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
    if bad.size:
        raise ValueError(f"{what} rows {bad.tolist()[:10]} contain NaN or inf")
    zero = np.flatnonzero(np.linalg.norm(emb.astype(np.float64), axis=1) < _MIN_NORM)
    if zero.size:
        raise ValueError(f"{what} rows {zero.tolist()[:10]} are zero vectors (no direction to compare)")
    return emb


@dataclass(frozen=True)
class Enrolment:
    """A validated enrolment of K faces, ready to write: no more checks inside the transaction."""

    embeddings: np.ndarray          # (K, D) float32
    jpegs: list[bytes | None]       # K JPEG crops or None
    qualities: list[float | None]   # K detector/quality scores or None
    sources: list[str | None]       # K origins ("camera", a file path, ...) or None


def check_enrolment(embeddings: np.ndarray, crops: Sequence[np.ndarray] | None, qualities: Sequence[float] | None,
                    sources: Sequence[str | None] | None, dim: int) -> Enrolment:
    """Validate every input of ``Gallery.enroll`` and encode the crops; ValueError on the first problem."""
    emb = check_embeddings(embeddings, dim)
    k = emb.shape[0]
    jpegs: list[bytes | None] = [None] * k
    if crops is not None:
        crops = list(crops)
        if len(crops) != k:
            raise ValueError(f"got {len(crops)} crops for {k} embeddings")
        for i, crop in enumerate(crops):
            arr = np.asarray(crop)
            if arr.shape != CROP_SHAPE or arr.dtype != np.uint8:
                raise ValueError(f"crop {i} must be a {CROP_SHAPE} uint8 BGR image, got {arr.dtype} {arr.shape}")
        jpegs = [encode_crop(np.ascontiguousarray(c)) for c in crops]
    quals: list[float | None] = [None] * k
    if qualities is not None:
        q = np.asarray(qualities, dtype=np.float64)
        if q.shape != (k,):
            raise ValueError(f"qualities must have shape ({k},), got {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("qualities contain NaN or inf")
        quals = [float(v) for v in q]
    srcs: list[str | None] = [None] * k
    if sources is not None:
        if isinstance(sources, (str, bytes)):
            raise ValueError("sources must be a list of K strings, not one string")
        srcs = list(sources)
        if len(srcs) != k or not all(s is None or isinstance(s, str) for s in srcs):
            raise ValueError(f"sources must be {k} strings (or None), got {srcs!r:.200}")
    return Enrolment(emb, jpegs, quals, srcs)
