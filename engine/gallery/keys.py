"""Which key opens a gallery file: none (plaintext), or the one its key file describes, finishing
a key change (rekey.py) that a kill interrupted between swapping the file and its key file."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from engine.util.fsio import atomic_write_json

from . import crypto
from .crypto import KeyInfo
from .errors import GalleryKeyError

_PLAIN = {"format": "facescope-gallery-key/1", "source": "none"}  # pending marker of a decrypt
_log = logging.getLogger(__name__)


def key_for(path: Path, passphrase: str | None = None) -> bytes | None:
    """The key of the gallery at ``path``; None when it is not encrypted (no key file beside it)."""
    if not crypto.is_encrypted(path):
        return None
    return settle(path, passphrase)


def pending(path: Path) -> Path:
    return Path(f"{path}{crypto.PENDING_SUFFIX}")


def settle(path: Path, passphrase: str | None = None) -> bytes | None:
    """The key of gallery ``path`` (None: plaintext), finishing a key change a kill interrupted.

    Without a pending file this is just the committed key (no extra open). With one, each
    candidate (pending, committed, plaintext) is tried on the file; the one that reads it wins
    and the stale description is removed. GalleryKeyError when none does (wrong passphrase).
    """
    committed, new = crypto.sidecar(path), pending(path)
    if not new.is_file():
        return crypto.derive(crypto.read_info(committed), path, passphrase)
    candidates: list[tuple[Path, KeyInfo | None]] = []
    if crypto.is_plain_marker(new):
        candidates.append((new, None))
    else:
        candidates.append((new, crypto.read_info(new)))
    if committed.is_file():
        candidates.append((committed, crypto.read_info(committed)))
    if any(info is not None and info.source == "passphrase" for _, info in candidates) and passphrase is None:
        passphrase = crypto.passphrase_from_user(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    first_error: GalleryKeyError | None = None
    for file, info in candidates:
        try:
            key = None if info is None else crypto.derive(info, path, passphrase)
            crypto.connect(uri, key, uri=True, label=str(path)).close()
        except GalleryKeyError as exc:
            first_error = first_error or exc
            continue
        if file == new and info is None:  # an interrupted decrypt: the file is plaintext now
            committed.unlink(missing_ok=True)
            new.unlink()
        elif file == new:
            os.replace(new, committed)
        else:
            new.unlink()
        _log.warning("gallery %s: finished a key change that was interrupted", path)
        return key
    assert first_error is not None
    raise first_error


def write_plain_marker(file: Path) -> None:
    atomic_write_json(file, _PLAIN, private=True)
