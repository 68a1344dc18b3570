"""Pieces shared by the people panels (unknowns, history): crops decoded off the GUI thread,
times shown in local time, and the "who is this?" name prompt.

Crops are read as JPEG bytes on the GUI thread (its SQLite connection; ~20 us a row) and
decoded to QImages on a pool thread (:func:`desktop.pool.run_in_pool`); only the QPixmap
conversion, which Qt allows on the GUI thread only, happens there.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QInputDialog, QWidget

from desktop.pool import run_in_pool

CROP = 56  # tile and row thumbnail size, px


def decode_jpegs(jpegs: Mapping) -> dict:
    """Any thread: {key: JPEG bytes} -> {key: QImage} (a key whose bytes do not decode is left out)."""
    out = {}
    for key, data in jpegs.items():
        img = QImage.fromData(data, "JPG")
        if not img.isNull():
            out[key] = img
    return out


def decode_in_pool(jpegs: Mapping, on_done: Callable[[dict], None],
                   on_error: Callable[[str], None]) -> None:
    """Decode ``jpegs`` on a pool thread; ``on_done({key: QImage})`` runs on the GUI thread."""
    jpegs = dict(jpegs)
    run_in_pool(lambda: decode_jpegs(jpegs), on_done, on_error)


def thumb(image: QImage, size: int = CROP) -> QPixmap:
    """GUI thread: a QPixmap of ``image`` scaled to ``size`` px (aspect kept)."""
    return QPixmap.fromImage(image).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation)


def when(epoch: float | None, with_date: bool = True) -> str:
    """Epoch seconds -> local 'YYYY-MM-DD HH:MM:SS' ('HH:MM:SS' for today, or without the date)."""
    if epoch is None:
        return "?"
    t = time.localtime(epoch)
    if not with_date or time.strftime("%Y-%m-%d", t) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", t)
    return time.strftime("%Y-%m-%d %H:%M:%S", t)


def short_source(source: str) -> str:
    """A file source by its name only (rows stay narrow); URLs and webcams as they are (already masked)."""
    if "://" in source or source.startswith("webcam"):
        return source
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def ask_person(parent: QWidget, title: str, label: str, names: list[str], default: str = "") -> str | None:
    """An editable list of the gallery's names (pick one or type a new name); None if cancelled."""
    items = sorted(set(names), key=str.casefold)
    current = items.index(default) if default in items else -1
    if current < 0:
        items.insert(0, default)
        current = 0
    value, ok = QInputDialog.getItem(parent, title, label, items, current, True)
    value = value.strip() if ok else ""
    return value or None
