"""ONNX export and TensorRT engine building: small functions, file in, file out.

This package sits *above* the engine: it imports the stages (to calibrate and check parity
with their own preprocessing) and the runtime's plan definitions, and nothing in the engine's
run-time path imports it (import-linter contracts in pyproject.toml). Front ends call it:
``facescope trt build`` and the background :class:`trt_build.background.EngineBuilder`.

- :func:`trt_build.export.export_onnx`: a PyTorch module -> ONNX (dynamic batch), parity-checked
  against PyTorch with ONNX Runtime.
- :func:`trt_build.prepare.prepare_onnx`: ONNX -> ONNX that TensorRT parses well (block-quantized
  weights dequantized, onnxslim folding, input dims fixed or made dynamic), parity-checked.
- :func:`trt_build.build.build_engine`: ONNX -> serialized TensorRT plan (FP32/FP16/INT8,
  optimisation profile, progress and cancellation through TensorRT's IProgressMonitor).
- :mod:`trt_build.parity`: a plan against ONNX Runtime on real inputs at the profile's
  minimum, optimal and maximum shapes, with per-precision thresholds.
- :func:`trt_build.engines.ensure_engine`: request -> cached, parity-checked plan.
- :class:`trt_build.background.EngineBuilder`: the missing plans, built on a thread with progress.

Everything that needs TensorRT imports it inside the function, so this package imports on
CPU-only machines.
"""
