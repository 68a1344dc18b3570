"""Durable face gallery (one SQLite file, via sqlite-utils) and its in-memory search index.

Typical use::

    with Gallery.open("people.db", embedder.id, embedder.dim) as gallery:
        gallery.enroll("Ada Lovelace", embeddings, crops=crops)
        person_ids, names, sims = gallery.index.match(frame_embeddings, threshold)
"""
from __future__ import annotations

from . import audit
from .codec import CROP_SHAPE
from .errors import (
    DuplicatePersonError,
    EmbedderMismatchError,
    GalleryBusyError,
    GalleryError,
    GalleryFormatError,
    GalleryNotFoundError,
    MissingCropError,
    UnknownFaceError,
    UnknownPersonError,
)
from .index import NO_MATCH, GalleryIndex, decide
from .schema import SCHEMA_VERSION, GalleryMeta
from .store import FaceInfo, Gallery, PersonInfo
from .transfer import ImportSummary

__all__ = [
    "CROP_SHAPE", "NO_MATCH", "SCHEMA_VERSION", "audit", "decide",
    "DuplicatePersonError", "EmbedderMismatchError", "FaceInfo", "Gallery", "GalleryBusyError", "GalleryError",
    "GalleryFormatError", "GalleryIndex", "GalleryMeta", "GalleryNotFoundError", "ImportSummary",
    "MissingCropError", "PersonInfo", "UnknownFaceError", "UnknownPersonError",
]
