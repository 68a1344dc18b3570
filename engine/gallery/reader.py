"""Read side of a gallery: records, lookups and listings (``Gallery`` adds opening and writes).

Listings query SQLite (they are UI actions); per-frame matching goes through ``index``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
from sqlite_utils import Database

from .codec import blobs_to_matrix, clean_name, decode_crop, name_key
from .errors import GalleryError, UnknownFaceError, UnknownPersonError
from .index import GalleryIndex


@dataclass(frozen=True)
class PersonInfo:
    id: int
    name: str
    face_count: int
    created_at: str  # UTC ISO-8601
    updated_at: str


@dataclass(frozen=True)
class FaceInfo:
    """One stored face, without its blobs (see ``face_crop`` / ``embeddings``)."""

    id: int
    person_id: int
    person_name: str
    quality: float | None
    source: str | None
    created_at: str
    updated_at: str
    has_crop: bool


class GalleryReader:
    """State and read-only API shared by every ``Gallery``; not constructed directly."""

    _db: Database | None
    _path: Path
    _embedder_id: str
    _dim: int
    _index: GalleryIndex

    # -------------------------------------------------------- properties
    @property
    def db(self) -> Database:
        if self._db is None:
            raise GalleryError(f"gallery {self._path} is closed")
        return self._db

    @property
    def path(self) -> Path:
        return self._path

    @property
    def embedder_id(self) -> str:
        return self._embedder_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def index(self) -> GalleryIndex:
        """The live search index (same object for the gallery's lifetime, kept in sync)."""
        return self._index

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._db is None else f"{len(self._index)} faces"
        return f"Gallery({str(self._path)!r}, {self._embedder_id!r}, dim={self._dim}, {state})"

    # ------------------------------------------------------------ lookups
    def _find_person(self, name: str) -> dict | None:
        return next(self.db["persons"].rows_where("name_key = ?", [name_key(name)], limit=1), None)

    def _person(self, name: str) -> dict:
        row = self._find_person(name)
        if row is None:
            raise UnknownPersonError(f"no person named {clean_name(name)!r} in gallery {self._path}")
        return row

    def persons(self) -> list[PersonInfo]:
        """Everyone, sorted by name (case-insensitively), with their face counts."""
        sql = ("SELECT p.id, p.name, count(f.id) AS face_count, p.created_at, p.updated_at FROM persons p "
               "LEFT JOIN faces f ON f.person_id = p.id GROUP BY p.id ORDER BY p.name_key")
        return [PersonInfo(**row) for row in self.db.query(sql)]

    def faces(self, name: str | None = None) -> list[FaceInfo]:
        """Every face (or one person's), oldest first; UnknownPersonError for an unknown name."""
        where, params = ("WHERE f.person_id = ?", [self._person(name)["id"]]) if name is not None else ("", [])
        sql = ("SELECT f.id, f.person_id, p.name AS person_name, f.quality, f.source, f.created_at, f.updated_at, "
               f"f.crop_jpeg IS NOT NULL AS has_crop FROM faces f JOIN persons p ON p.id = f.person_id {where} "
               "ORDER BY f.id")
        return [FaceInfo(**{**row, "has_crop": bool(row["has_crop"])}) for row in self.db.query(sql, params)]

    def face_crop(self, face_id: int) -> np.ndarray | None:
        """The stored (112, 112, 3) uint8 BGR crop, or None if the face was enrolled without one."""
        row = next(self.db["faces"].rows_where("id = ?", [int(face_id)], select="crop_jpeg"), None)
        if row is None:
            raise UnknownFaceError(f"no face with id {face_id} in gallery {self._path}")
        return None if row["crop_jpeg"] is None else decode_crop(row["crop_jpeg"])

    def embeddings(self, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stored (not normalised) embeddings: face ids (K,) int64 and (K, D) float32, by face id."""
        where, params = ("person_id = ?", [self._person(name)["id"]]) if name is not None else (None, [])
        rows = list(self.db["faces"].rows_where(where, params, select="id, embedding", order_by="id"))
        ids = np.array([r["id"] for r in rows], np.int64)
        return ids, blobs_to_matrix([r["embedding"] for r in rows], self._dim)
