"""Turn block-quantized ONNX weights back into FP32 initializers.

The OpenCV-Zoo builds of YuNet and SFace store weights as int8 with per-block scales
(``DequantizeLinear`` with ``block_size``, opset 21). OpenCV dequantizes them on load; ONNX
Runtime and TensorRT either refuse or run a slower graph. Folding each
``DequantizeLinear(int8 const, scale const, zero-point const)`` into a plain FP32 initializer
gives an ordinary FP32 graph with the exact values OpenCV computes.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from engine.errors import ModelError


def _block_expand(param: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int) -> np.ndarray:
    """Repeat per-block scales/zero-points along ``axis`` to the full tensor shape."""
    if param.ndim == 0 or param.size == 1:
        return np.broadcast_to(param.reshape(()), shape)
    if block_size:
        return np.repeat(param, block_size, axis=axis)[tuple(slice(0, n) for n in shape)]
    # per-axis (no blocks): one value per slice along axis
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return param.reshape(view)


def dequantize_value(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int,
                     block_size: int) -> np.ndarray:
    """ONNX DequantizeLinear semantics: ``(q - zero_point) * scale`` in float32."""
    axis = axis % max(q.ndim, 1)
    s = _block_expand(scale.astype(np.float32), q.shape, axis, block_size)
    x = q.astype(np.float32)
    if zero_point is not None:
        x = x - _block_expand(zero_point.astype(np.float32), q.shape, axis, block_size)
    return (x * s).astype(np.float32)


def dequantize_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Fold every constant DequantizeLinear into an FP32 initializer.

    Returns the new model and how many nodes were folded. Graph inputs that merely
    duplicate initializers (old exporters list weights as inputs) are removed so that
    runtimes treat weights as constants.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    keep_nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(i in inits for i in node.input if i):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            q = numpy_helper.to_array(inits[node.input[0]])
            scale = numpy_helper.to_array(inits[node.input[1]])
            zp = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
            folded[node.output[0]] = dequantize_value(q, scale, zp, attrs.get("axis", 1), attrs.get("block_size", 0))
        else:
            keep_nodes.append(node)
    if not folded:
        return model, 0
    used = {i for n in keep_nodes for i in n.input} | {o.name for o in graph.output}
    new_inits = [t for t in graph.initializer if t.name in used and t.name not in folded]
    new_inits += [numpy_helper.from_array(v, name) for name, v in folded.items()]
    init_names = {t.name for t in new_inits}
    real_inputs = [i for i in graph.input if i.name not in init_names and i.name in used]
    del graph.node[:]
    graph.node.extend(keep_nodes)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    del graph.input[:]
    graph.input.extend(real_inputs)
    return model, len(folded)


def set_dynamic_dims(model: onnx.ModelProto, input_dims: dict[int, str]) -> onnx.ModelProto:
    """Name some dims of the first input symbolic (e.g. {0: "batch"}) and drop stale output shapes."""
    if not model.graph.input:
        raise ModelError("ONNX model has no graph input")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for index, name in input_dims.items():
        dims[index].ClearField("dim_value")
        dims[index].dim_param = name
    # Output shapes were recorded for the old fixed input; keep the rank, forget the sizes.
    for out in model.graph.output:
        for i, dim in enumerate(out.type.tensor_type.shape.dim):
            dim.ClearField("dim_value")
            dim.dim_param = f"{out.name}_{i}"
    del model.graph.value_info[:]
    return model
