"""ONNX export and TensorRT engine building (file in, file out). Built in milestone P5."""
