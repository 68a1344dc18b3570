"""facescope desktop application (PySide6 + pyqtgraph). All Qt code lives in this package.

Modules: ``app`` (``main(argv)``, the ``facescope gui`` entry point), ``main_window``
(``MainWindow``: source bar, live view, status bar, ``add_dock`` for side panels,
``result_ready`` signal), ``worker`` (``EngineWorker`` on a QThread + ``Controller``; newest
result only), ``live_view`` (``LiveView``: frame + face overlays, clickable faces, snapshot),
``enrol_dialog`` (``EnrolDialog``). The headless engine never imports this package (import-linter
contracts in pyproject.toml).
"""
