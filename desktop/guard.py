"""One way for a panel to run a gallery call: an engine or file error becomes a message box.

Panels (gallery, unknowns, history) mix :class:`GuardedPanel` in; tests replace ``_show_error``
to collect the messages instead of opening boxes.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QMessageBox

from engine.errors import FacescopeError

log = logging.getLogger(__name__)


class GuardedPanel:
    """``_guard(what, fn)``: run ``fn()``; on an engine/IO/value error log it, show "<what> failed"
    with the reason, and return None (the panel stays usable; nothing else is caught)."""

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (FacescopeError, ValueError, KeyError, OSError) as exc:
            log.warning("%s failed: %s", what, exc)
            self._show_error(f"{what} failed", str(exc))
            return None

    def _show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)
