"""Model cards, shipped files, dequantization and the prepared-model cache."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.backends import create_session
from engine.errors import ModelError
from engine.models import find_card, load_card, prepared_model_path, shipped_cards
from engine.models.card import sha256_file
from engine.models.dequant import dequantize_model, dequantize_value


def test_shipped_cards_verify_and_carry_licences():
    cards = shipped_cards()
    assert {"yunet", "sface", "hourglass68", "yolo11p-face"} <= set(cards)
    for card in cards.values():
        assert card.verify() == card.path
        assert (card.directory / card.licence_file).is_file()
        assert (card.directory / "NOTICE").is_file()
    sface = cards["sface"]
    assert sface.embedding_size == 128 and sface.alignment_template == "arcface_112"
    assert sface.color_order == "RGB" and sface.input_size == (112, 112)
    assert cards["yunet"].keypoints == 5 and cards["yunet"].color_order == "BGR"
    hg = cards["hourglass68"]
    assert hg.family == "landmarks" and hg.keypoints == 68 and hg.input_size == (128, 128)
    assert {"stride", "crop_scale", "shift_y"} <= set(hg.extra) and hg.path.stat().st_size <= 10 * 2 ** 20
    yolo = cards["yolo11p-face"]
    assert yolo.architecture == "yolo" and yolo.keypoints == 0 and "AGPL" in yolo.licence
    # research-use training data (300-W, LFW) and AGPL training code: both cards say so
    assert not yolo.commercial_use and not hg.commercial_use


def _copy_card(tmp_path, name="sface"):
    card = find_card(name)
    dst = tmp_path / name
    shutil.copytree(card.directory, dst)
    return dst


def test_wrong_model_file_is_refused_by_sha(tmp_path):
    folder = _copy_card(tmp_path, "yunet")
    model = folder / "face_detection_yunet_2023mar_int8bq.onnx"
    model.write_bytes(model.read_bytes()[:5000])  # truncated download
    card = load_card(folder)
    with pytest.raises(ModelError, match="does not match its card"):
        prepared_model_path(card, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_garbage_model_with_matching_card_gives_clear_error(tmp_path):
    folder = _copy_card(tmp_path, "yunet")
    model = folder / "face_detection_yunet_2023mar_int8bq.onnx"
    model.write_bytes(b"this is not an onnx file" * 100)
    data = json.loads((folder / "card.json").read_text())
    data["sha256"] = sha256_file(model)
    (folder / "card.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        prepared_model_path(load_card(folder), cache=tmp_path / "cache")
    with pytest.raises(ModelError, match="cannot load"):
        create_session(model)


def test_invalid_cards_fail_loudly(tmp_path):
    folder = _copy_card(tmp_path)
    data = json.loads((folder / "card.json").read_text())
    for key, value, msg in [("color_order", "BRG", "color_order"), ("threshold", 3.0, "threshold"),
                            ("embedding_size", 0, "embedding_size"), ("bogus", 1, "unknown keys")]:
        bad = dict(data, **{key: value})
        (folder / "card.json").write_text(json.dumps(bad))
        with pytest.raises(ModelError, match=msg):
            load_card(folder)
    (folder / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_card(folder)
    with pytest.raises(ModelError, match="unknown model"):
        find_card("no-such-model")
    with pytest.raises(ModelError, match="not a detector"):
        find_card("sface", family="detector")


def test_dequantize_matches_onnxruntime_block_dequantize():
    """Our folding reproduces ONNX DequantizeLinear(block_size) as ONNX Runtime runs it."""
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 127, size=(6, 10), dtype=np.int8)
    scale = rng.uniform(0.01, 0.1, size=(6, 3)).astype(np.float32)   # blocks of 4 along axis 1 (last short)
    zp = rng.integers(-5, 5, size=(6, 3), dtype=np.int8)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, block_size=4)
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 10])],
                              [numpy_helper.from_array(q, "q"), numpy_helper.from_array(scale, "s"),
                               numpy_helper.from_array(zp, "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})[0]
    ours = dequantize_value(q, scale, zp, axis=1, block_size=4)
    np.testing.assert_array_equal(ours, expected)
    folded, n = dequantize_model(model)
    assert n == 1 and not any(nd.op_type == "DequantizeLinear" for nd in folded.graph.node)


def test_prepared_models_are_fp32_cached_and_dynamic(tmp_path):
    for name, dynamic in (("yunet", {2, 3}), ("sface", {0})):
        card = find_card(name)
        path = prepared_model_path(card, cache=tmp_path)
        mtime = path.stat().st_mtime_ns
        assert prepared_model_path(card, cache=tmp_path) == path and path.stat().st_mtime_ns == mtime
        model = onnx.load(str(path))
        assert not any(n.op_type == "DequantizeLinear" for n in model.graph.node)
        assert all(t.data_type != TensorProto.INT8 for t in model.graph.initializer)
        assert [i.name for i in model.graph.input] == [model.graph.input[0].name]
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert {i for i, d in enumerate(dims) if d.dim_param} == dynamic
    assert card.sha256[:16] in path.name
