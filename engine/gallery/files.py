"""Private gallery files: folders created 0700, files 0600, looser existing modes tightened (with a notice)."""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from engine.util.fsio import PRIVATE_MODE, make_private_dirs

_log = logging.getLogger(__name__)


def prepare_files(path: Path) -> None:
    """Make ``path`` private before SQLite opens it: missing folders 0700, a new file 0600,
    an existing gallery (and its -wal/-shm) tightened to 0600 with one warning.

    Pre-creating the empty file is what makes the -wal/-shm private too: SQLite gives them
    the main file's permission bits (it would create the main file 0644 minus the umask).
    A file we may not chmod (another owner) is left as it is, with a warning.
    """
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    loose: list[str] = []
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(p.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(p, mode & 0o700)
                loose.append(f"{p.name} {mode:o}")
            except OSError as exc:
                _log.warning("gallery file %s is readable by other users (mode %o) and could not be made private: "
                             "%s", p, mode, exc.strerror or exc)
    if loose:
        _log.warning("gallery %s was readable by other users (%s); restricted to its owner (0600)", path,
                     ", ".join(loose))
