"""``facescope run --events FILE``: one JSON object per line, written as each event happens.

The file is private (0600; a regular file that existed with another mode is made 0600, a
device or pipe such as ``/dev/stdout`` is left as it is), opened for appending, and every line
goes out in ONE ``write`` of its bytes, so a killed run leaves whole lines only. A write that
fails (a full disk, a file-size limit) must not end a camera run that lasts days: the part of a
line that made it is cut off again (the file keeps whole lines), the event is dropped and
counted, the problem is said once, and writing resumes with the next event that fits (said
too). Recognition, MQTT and webhooks go on meanwhile.
"""
from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from engine.util.fsio import PRIVATE_MODE, make_private_dirs

log = logging.getLogger(__name__)


class JsonlFile:
    """``write(line)`` per event dict (on the thread that owns it); ``close()`` at the end."""

    def __init__(self, path: str | Path, say: Callable[[str], None] | None = None) -> None:
        """OSError as ``os.open`` raises it when ``path`` cannot be opened (the caller says it)."""
        self.path = Path(path)
        self._say = say or log.warning
        make_private_dirs(self.path.parent)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_MODE)
        try:
            self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
            if self._regular:
                os.fchmod(self._fd, PRIVATE_MODE)
        except OSError:
            os.close(self._fd)
            raise
        self.written = self.dropped = 0
        self._failing: str | None = None

    def write(self, line: dict) -> bool:
        """Append ``line`` as one JSON line; False when it could not be written (dropped)."""
        data = (json.dumps(line) + "\n").encode("utf-8")
        start = os.fstat(self._fd).st_size if self._regular else None
        try:
            n = os.write(self._fd, data)
            if n != len(data):
                raise OSError(f"{n} of {len(data)} bytes written: disk full or file size limit")
        except OSError as exc:
            self._cut(start)
            self.dropped += 1
            reason = exc.strerror or str(exc)
            if self._failing != reason:
                self._say(f"events file {self.path}: cannot write ({reason}); events are dropped until it can be "
                          f"written again")
                self._failing = reason
            return False
        if self._failing is not None:
            self._say(f"events file {self.path}: writing again ({self.dropped} events dropped so far)")
            self._failing = None
        self.written += 1
        return True

    def _cut(self, start: int | None) -> None:
        """Remove a partial line a failed write left at the end (the file keeps whole lines)."""
        if start is None:
            return
        try:
            if os.fstat(self._fd).st_size > start:
                os.ftruncate(self._fd, start)
        except OSError as exc:  # nothing more to do: the next line still starts after it
            log.warning("events file %s: a partial line stays: %s", self.path, exc.strerror or exc)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            if self.dropped:
                self._say(f"events file {self.path}: {self.dropped} of {self.dropped + self.written} events could "
                          "not be written")

    def __enter__(self) -> JsonlFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
