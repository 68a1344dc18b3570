"""Training toolkit (needs the ``train`` extra: torch, torchvision, ultralytics).

Nothing under ``engine.train`` is imported by the app at run time; the app runs the exported
ONNX files through ``engine.backends``.
"""
