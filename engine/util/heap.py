"""Handing the C heap's free pages back to the operating system (glibc's ``malloc_trim``).

Loading an ONNX model parses the whole protobuf (as big as the file: 39 MB for SFace) and copies
its weights into the session; the parsed copy is then freed, but glibc keeps freed pages that sit
below live allocations, so the process stays that much bigger for its whole life. ``malloc_trim(0)``
returns every free page (``madvise(MADV_DONTNEED)``, any arena). It takes a few milliseconds, so it
is called after a model loads, never per frame. Elsewhere (musl, macOS, Windows) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:  # no loadable C library under that name: nothing to trim with
        return None


def release_free_heap() -> bool:
    """Return the C heap's free pages to the OS; True if the C library can (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
