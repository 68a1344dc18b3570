"""Gallery exceptions. All derive from ``GalleryError`` (a ``FacescopeError``), so the CLI
prints them as one line; lookups of unknown names/ids are also ``KeyError``s."""
from __future__ import annotations

from engine.errors import FacescopeError


class GalleryError(FacescopeError):
    """A gallery operation failed; the gallery is unchanged (every write is one transaction)."""


class _KeyLookupError(GalleryError, KeyError):
    # KeyError.__str__ returns repr(arg) ("'no person ...'"); users should see plain text.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownPersonError(_KeyLookupError):
    """No person with that name (names compare trimmed and case-insensitively)."""


class UnknownFaceError(_KeyLookupError):
    """No face with that id."""


class DuplicatePersonError(GalleryError, ValueError):
    """A person with that name (case-insensitively) already exists."""


class GalleryNotFoundError(GalleryError, FileNotFoundError):
    """``Gallery.open(..., create=False)`` on a path that does not exist."""


class GalleryFormatError(GalleryError):
    """The file is not a facescope gallery this version can read: not SQLite, another
    application's database, a newer schema version, or damaged. The file is left untouched."""


class GalleryKeyError(GalleryError):
    """The gallery is encrypted and its key is missing or wrong (nothing was read or changed)."""


class GalleryBusyError(GalleryError):
    """Another process held the write lock for longer than the busy timeout."""


class MissingCropError(GalleryError):
    """Re-embedding needs the stored crop of every face; ``face_ids`` lists those without."""

    def __init__(self, message: str, face_ids: list[int]) -> None:
        super().__init__(message)
        self.face_ids = face_ids


class EmbedderMismatchError(GalleryError):
    """The gallery's embeddings come from another embedder (id or dimension) than the caller's.

    Embeddings of different models are not comparable, so the gallery refuses to mix them;
    ``facescope gallery reembed`` recomputes every embedding from the stored crops.
    """

    def __init__(self, path: str, stored_id: str, stored_dim: int, wanted_id: str, wanted_dim: int,
                 what: str = "gallery") -> None:
        self.path, self.stored_id, self.stored_dim = path, stored_id, stored_dim
        self.wanted_id, self.wanted_dim = wanted_id, wanted_dim
        super().__init__(
            f"{what} {path} holds embeddings of embedder {stored_id!r} ({stored_dim}-d), but the current "
            f"embedder is {wanted_id!r} ({wanted_dim}-d); run `facescope gallery reembed --gallery {path}` "
            f"to re-embed its stored face crops with {wanted_id!r}")


_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 10, 11, 13, 26


def database_failure(exc: BaseException, path: object = None) -> GalleryError | None:
    """The one-line GalleryError for a SQLite error that is not a bug of ours (disk full, I/O error, a
    damaged file); None for the rest. ``exc`` from sqlite3 or sqlcipher3 (both carry ``sqlite_errorcode``)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    what = f"gallery {path}" if path is not None else "the gallery"
    if code == _SQLITE_FULL:
        return GalleryError(f"cannot write {what}: the disk is full ({exc}); the change was rolled back")
    if code == _SQLITE_IOERR:
        return GalleryError(f"cannot write {what}: {exc} (disk full, file size limit or a failing disk); the change "
                            "was rolled back")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return GalleryFormatError(f"{what} is damaged: SQLite says {exc}; nothing was changed (restore it from an "
                                  "export or pick another file)")
    return None
