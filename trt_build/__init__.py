"""ONNX export and TensorRT engine building: small functions, file in, file out.

- :func:`trt_build.export.export_onnx`: a PyTorch module -> ONNX (dynamic batch), parity-checked
  against PyTorch with ONNX Runtime.
- :func:`trt_build.prepare.prepare_onnx`: ONNX -> ONNX that TensorRT parses well (block-quantized
  weights dequantized, onnxslim folding, input dims fixed or made dynamic), parity-checked.
- :func:`trt_build.build.build_engine`: ONNX -> serialized TensorRT plan (FP32/FP16/INT8,
  optimisation profile), parity-checked against ONNX Runtime (:mod:`trt_build.parity`).
- :func:`trt_build.engines.ensure_engine`: the cached path the runtime backend and
  ``facescope trt build`` share.

Everything that needs TensorRT imports it inside the function, so this package imports on
CPU-only machines.
"""
