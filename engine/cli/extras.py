"""Optional extras: one check that says which extra a command needs instead of an ImportError.

A plain ``pip install facescope`` runs every run-time command; ``gui`` (PySide6, pyqtgraph) and
``train`` (torch, torchvision, ultralytics) are the extras whole commands need.
Command modules import none of them while the parser is built; a command that needs one calls
:func:`need_extra` first, so a missing extra ends in one line (``facescope: error: 'train
embedder' needs the train extra: pip install 'facescope[train]'``) rather than a traceback.
"""
from __future__ import annotations

import importlib

from engine.errors import FacescopeError

# The modules each extra brings that commands import (names as imported, not as distributed).
# bench (dlib) and trt (TensorRT) say the same from where they are imported
# (engine/bench/dlib_landmarks.py, engine/backends/cuda_api.py), with what else to install.
EXTRAS: dict[str, tuple[str, ...]] = {
    "gui": ("PySide6", "pyqtgraph"),
    "train": ("torch", "torchvision", "ultralytics"),
    "mqtt": ("paho",),  # facescope run --mqtt (paho-mqtt)
}


class MissingExtraError(FacescopeError):
    """A command's optional dependencies are not installed."""


def need_extra(extra: str, command: str, modules: tuple[str, ...] | None = None) -> None:
    """Import ``modules`` (default: every module of ``extra``); raise :class:`MissingExtraError` naming
    the extra and the pip command when one is absent. Importing (rather than looking the module up)
    also catches an installed package that cannot load; only ImportError counts as absent — any
    other failure of an installed package keeps its traceback."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; extras: {', '.join(EXTRAS)}")
    for name in modules or EXTRAS[extra]:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing = exc.name or name
            raise MissingExtraError(f"'{command}' needs the {extra} extra ({missing} is not installed): "
                               f"pip install 'facescope[{extra}]'") from None
