"""PRelu rewrite (engine/models/prelu.py): same values as ONNX Runtime's PRelu, only where it is safe.

Real-face parity of the rewritten SFace with OpenCV's own runtime: tests/test_embedder.py.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from engine.models import find_card, prepared_model_path
from engine.models.dequant import dequantize_model
from engine.models.prelu import rewrite_prelu

C = 8


def _model(slopes: dict[str, np.ndarray], fed: tuple[str, ...] = (), rank: int = 4) -> onnx.ModelProto:
    """A graph x -> Conv(C) -> PRelu(slope_1) -> PRelu(slope_2) ... -> y; ``fed`` slopes are graph inputs too."""
    rng = np.random.default_rng(1)
    shape = [2, 3, 9, 11] if rank == 4 else [2, 3, 9]
    inits = [numpy_helper.from_array(rng.normal(size=(C, 3) + (3,) * (rank - 2)).astype(np.float32), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["h0"], pads=[1] * (2 * (rank - 2)))]
    for k, (name, slope) in enumerate(slopes.items()):
        inits.append(numpy_helper.from_array(slope.astype(np.float32), name))
        nodes.append(helper.make_node("PRelu", [f"h{k}", name], [f"h{k + 1}"], name=f"act{k}"))
    nodes.append(helper.make_node("Identity", [f"h{len(slopes)}"], ["y"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(slopes[n].shape)) for n in fed]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, C, *shape[2:]])
    graph = helper.make_graph(nodes, "g", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_per_channel_and_scalar_slopes_rewritten_with_the_same_values():
    rng = np.random.default_rng(0)
    slopes = {"a": rng.uniform(-0.5, 1.5, (C, 1, 1)),       # > 1 and < 0 too: no max(x, a x) shortcut
              "b": np.array([0.25]),                        # scalar -> LeakyRelu
              "c": rng.uniform(0, 1, (1, C, 1, 1))}
    model = _model(slopes)
    x = rng.normal(size=(2, 3, 9, 11)).astype(np.float32)
    expected = _run(model, x)
    assert (expected < 0).any() and (expected > 0).any()
    rewritten, n = rewrite_prelu(onnx.load_from_string(model.SerializeToString()))
    assert n == 3 and "PRelu" not in _ops(rewritten) and _ops(rewritten).count("LeakyRelu") == 1
    onnx.checker.check_model(rewritten)
    np.testing.assert_allclose(_run(rewritten, x), expected, rtol=1e-5, atol=1e-5)
    # the old slope tensors are gone, the new depthwise weights are there
    names = {t.name for t in rewritten.graph.initializer}
    assert not {"a", "b", "c"} & names and len(names) == 1 + 4


def test_unsafe_prelus_are_left_alone():
    rng = np.random.default_rng(2)
    x4 = rng.normal(size=(2, 3, 9, 11)).astype(np.float32)
    # a slope fed as a graph input may change at run time; a full (C, H, W) slope is not per-channel
    for model in (_model({"a": rng.uniform(0, 1, (C, 1, 1))}, fed=("a",)),
                  _model({"a": rng.uniform(0, 1, (C, 9, 11))})):
        before = model.SerializeToString()
        rewritten, n = rewrite_prelu(model)
        assert n == 0 and _ops(rewritten).count("PRelu") == 1
        if not model.graph.input[1:]:
            np.testing.assert_array_equal(_run(rewritten, x4), _run(onnx.load_from_string(before), x4))
    # a 3-D input: (C, 1) would broadcast over channels, but there is no depthwise 2-D Conv rewrite
    model = _model({"a": rng.uniform(0, 1, (C, 1))}, rank=3)
    rewritten, n = rewrite_prelu(model)
    assert n == 0 and "PRelu" in _ops(rewritten)


def test_prepared_sface_has_no_prelu_and_matches_the_plain_graph(tmp_path):
    card = find_card("sface")
    prepared = onnx.load(str(prepared_model_path(card, cache=tmp_path)))
    assert "PRelu" not in _ops(prepared)
    plain, _ = dequantize_model(onnx.load(str(card.path)))
    assert _ops(plain).count("PRelu") == 27
    x = np.random.default_rng(3).uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)  # the source's fixed batch
    a = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]
    b = ort.InferenceSession(prepared.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.99999
