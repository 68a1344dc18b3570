"""The status bar's backend label, and TensorRT plans built in the background (NVIDIA GPUs).

With ``--backend auto`` a stage whose TensorRT plan is not built yet opens on ONNX Runtime at
once and its request is remembered (``engine.backends.missing_plans``). This widget then starts
``trt_build.background.EngineBuilder`` on its own thread, shows its progress in the label, and
emits :attr:`plans_ready` when plans were built: the window rebuilds its recognizer, whose
stages now open on TensorRT. The builder's callbacks arrive on its thread and are forwarded
through queued signals, so the label only changes on the GUI thread.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel


def describe(backends: dict[str, object]) -> tuple[str, str]:
    """(short text, tooltip) for ``Recognizer.backends()``: e.g. ("onnxruntime", "detector: ...")."""
    names, lines = [], []
    for stage, sel in backends.items():
        backend = getattr(sel, "backend", str(sel))
        if backend not in names:
            names.append(backend)
        lines.append(f"{stage}: {sel.summary() if hasattr(sel, 'summary') else sel}")
    return " + ".join(names) or "–", "\n".join(lines)


class BackendStatus(QLabel):
    """Which backend runs the models (tooltip: per stage and why), or the TensorRT build's progress."""

    plans_ready = Signal()       # plans were built: rebuild the recognizer to run on them
    _progress = Signal(str)      # from the builder's thread
    _finished = Signal(object)   # list[BuildResult], from the builder's thread

    def __init__(self, parent=None) -> None:
        super().__init__("–", parent)
        self.builder = None
        self._progress.connect(self.setText)
        self._finished.connect(self._on_finished)
        self._shown = "–"
        self._last_build = ""  # what the last background build did (kept in the tooltip)

    def show_recognizer(self, recognizer) -> None:
        text, tip = describe(recognizer.backends())
        self._shown = text
        if self.builder is None or not self.builder.running:
            self.setText(text)
        self.setToolTip(tip + (f"\n{self._last_build}" if self._last_build else ""))

    def build_missing(self, requests=None, build=None) -> bool:
        """Start building the plans the runtime found missing (or ``requests``); False when there
        is nothing to build or a build runs already. ``build``: see EngineBuilder."""
        from trt_build.background import EngineBuilder

        if self.builder is not None and self.builder.running:
            return False
        builder = EngineBuilder(requests, progress=lambda p: self._progress.emit(p.text()),
                                done=self._finished.emit, build=build)
        if not builder.requests:
            return False
        self.builder = builder.start()
        return True

    def stop(self) -> None:
        """Cancel a running build (the window closes) and wait briefly for its thread."""
        if self.builder is not None and self.builder.running:
            self.builder.cancel()
            self.builder.wait(5.0)

    def _on_finished(self, results) -> None:
        built = [r for r in results if r.plan is not None]
        failed = [r for r in results if r.plan is None]
        note = f"TensorRT: {len(built)} plan(s) built" + (f", {len(failed)} not ({failed[0].error})" if failed else "")
        self._last_build = note
        self.setText(self._shown)
        self.setToolTip(self.toolTip().split("\nTensorRT: ")[0] + "\n" + note)
        if built:
            self.plans_ready.emit()
