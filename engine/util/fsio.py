"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

The data goes to a temp file in the target's own folder (same file system, so ``os.replace`` is
an atomic rename), is fsync'ed, then renamed over the target; the folder is fsync'ed too so the
rename itself survives a power cut (where the OS supports it). On any error, a crash included,
the temp file is removed (or left as a hidden ``.<name>.<random>.tmp<suffix>`` after a kill)
and the target is unchanged.

``private=True`` makes the file readable and writable by its owner only (0600): use it for user
data (face crops, embeddings, gallery exports, settings holding URLs); missing folders are then
created 0700 (:func:`make_private_dirs`). Otherwise a new file gets
the usual mode (0666 minus the umask) and an existing target keeps its permission bits, as an
in-place ``open(path, "w")`` would.

:func:`atomic_path` is for writers that insist on a path (``cv2.imwrite``, ``np.save``,
``torch.save``, ``onnx.save``, ``fig.savefig``): the temp name ends with the target's suffix, so
writers that pick the format by extension pick the right one.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PRIVATE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


@contextlib.contextmanager
def atomic_path(path: str | Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temp path to write; on a clean exit it replaces ``path`` atomically.

    The temp file already exists (empty) when yielded, created 0600 when ``private`` (never
    readable by others, not even while it is written); the final permission bits are set just
    before the rename. The parent folder is created if missing. If the block raises, the temp
    file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if private:
        make_private_dirs(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path, private)
    try:
        yield tmp
        if private:  # the writer may have re-created the file with its own mode
            os.chmod(tmp, PRIVATE_MODE)
        elif path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def make_private_dirs(folder: str | Path) -> Path:
    """Create ``folder`` and every missing parent 0700 (owner only); existing folders keep their mode.

    ``Path.mkdir(parents=True, mode=...)`` applies the mode to the last folder only, so a
    missing parent would get the usual 0777-minus-umask and list private file names to all.
    """
    folder = Path(folder)
    missing, d = [], folder
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE_DIR_MODE)
        except FileExistsError:  # made meanwhile by another process: keep its mode
            if not d.is_dir():
                raise
    return folder


def atomic_write_bytes(path: str | Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a Path."""
    with atomic_path(path, private=private) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, private: bool = False, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (``encoding``, default UTF-8; newlines as given)."""
    return atomic_write_bytes(path, text.encode(encoding), private=private)


def atomic_write_json(path: str | Path, obj: Any, *, private: bool = False, indent: int | None = 2,
                      **dumps_kwargs: Any) -> Path:
    """Write ``obj`` as JSON (plus a final newline) to ``path`` atomically.

    ``indent`` and ``dumps_kwargs`` (``sort_keys``, ``default``, ``separators``...) go to
    :func:`json.dumps`; an object it cannot serialise raises before anything is written.
    """
    return atomic_write_text(path, json.dumps(obj, indent=indent, **dumps_kwargs) + "\n", private=private)


def _create_temp(path: Path, private: bool) -> Path:
    mode = PRIVATE_MODE if private else 0o666  # the kernel applies the umask to 0666, as open() does
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        except FileExistsError:  # 32 random bits: a clash is rare, never endless
            continue
        return tmp


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable. Best effort: Windows cannot open a folder, and some file
    systems (network, FUSE) refuse fsync on one; the data itself was already synced."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
