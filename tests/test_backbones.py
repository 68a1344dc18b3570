"""Face-recognition backbones: shapes, gradients, factory checks, and the MobileFaceNet y1 rebuild's parity."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.conftest import shared_path

torch = pytest.importorskip("torch", reason="backbone tests need the train extra (torch)")

from engine.train.backbones import BACKBONES, create_backbone, input_normalisation
from engine.train.backbones.mobilefacenet_y1 import MobileFaceNetY1, from_ir
from engine.train.openvino_ir import load_ir

SMALL = {  # (kwargs, D): narrow ResNets keep the forward/backward checks fast on 2 CPU cores
    "resnet18": ({"embedding_size": 64, "width": 0.25}, 64),
    "resnet34": ({"embedding_size": 32, "width": 0.25, "dropout": 0.2}, 32),
    "se_resnet18": ({"embedding_size": 64, "width": 0.25}, 64),
    "se_resnet34": ({"embedding_size": 48, "width": 0.25}, 48),
    "mobilefacenet": ({"embedding_size": 96}, 96),
    "mobilefacenet_y1": ({}, 128),
}
PARAMS_M = {"resnet18": (22, 26), "resnet34": (32, 36), "se_resnet18": (22, 26), "se_resnet34": (32, 36),
            "mobilefacenet": (0.9, 1.2), "mobilefacenet_y1": (0.9, 1.1)}  # millions, full width, default D
N_FACES = 8


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_every_registered_backbone_is_covered():
    assert sorted(SMALL) == BACKBONES.names() == sorted(PARAMS_M)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backbone_maps_faces_to_embeddings_with_gradients(name):
    torch.manual_seed(0)
    kwargs, dim = SMALL[name]
    net = create_backbone(name, **kwargs).train()
    x = torch.randn(2, 3, 112, 112, requires_grad=True)
    out = net(x)
    assert out.shape == (2, dim) and out.dtype == torch.float32
    (out * torch.randn_like(out)).sum().backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in trainable)
    assert float(x.grad.abs().sum()) > 0  # the gradient reaches the input, through every layer

    net.eval()
    with torch.no_grad():
        a, b, single = net(x), net(x), net(x[:1])
    assert torch.equal(a, b)
    # eval BN uses running stats: a face's embedding does not depend on the rest of the batch
    assert torch.allclose(a[:1], single, rtol=1e-4, atol=1e-4 * float(a.abs().max()))


@pytest.mark.parametrize("name", sorted(PARAMS_M))
def test_parameter_counts_are_those_of_the_published_networks(name):
    lo, hi = PARAMS_M[name]
    count = sum(p.numel() for p in create_backbone(name).parameters()) / 1e6
    assert lo < count < hi


def test_create_backbone_rejects_bad_arguments():
    for bad in ({"name": "resnet50"}, {"name": ""}, {"name": "resnet18", "embedding_size": 0},
                {"name": "resnet18", "embedding_size": -8}, {"name": "resnet18", "embedding_size": 1.5},
                {"name": "mobilefacenet", "embedding_size": True},
                {"name": "mobilefacenet_y1", "embedding_size": 512},
                {"name": "resnet18", "dropout": 1.0}, {"name": "se_resnet34", "width": 0.0}):
        with pytest.raises(ValueError):
            create_backbone(**bad)
    assert create_backbone("mobilefacenet").embedding_size == 128
    assert create_backbone("resnet18", width=0.125).embedding_size == 512


def test_input_normalisation_is_stated_per_backbone():
    for name in SMALL:
        norm = input_normalisation(name)
        assert norm["color_order"] == "BGR" and len(norm["mean"]) == len(norm["std"]) == 3
    assert input_normalisation("resnet18")["mean"] == (127.5,) * 3 == input_normalisation("mobilefacenet")["std"]
    assert input_normalisation("mobilefacenet_y1") == {"mean": (0.0,) * 3, "std": (1.0,) * 3, "color_order": "BGR"}
    with pytest.raises(ValueError, match="unknown backbone"):
        input_normalisation("vgg")


# --- MobileFaceNet y1 from the OpenVINO IR ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def y1_xml():
    return shared_path("models", "mobilefacenet_y1", "model-y1-0000.xml")


@pytest.fixture(scope="module")
def y1(y1_xml) -> MobileFaceNetY1:
    return from_ir(y1_xml).eval()


@pytest.fixture(scope="module")
def aligned_faces() -> np.ndarray:
    """(8, 3, 112, 112) float32 raw BGR 0-255: YuNet + the SFace aligner on 8 LFW people."""
    from engine.detectors import create_detector
    from engine.embedders import create_embedder
    from engine.imageio import read_image

    root = shared_path("data", "lfw", "lfw-deepfunneled")
    det, emb = create_detector("yunet"), create_embedder("sface")
    crops = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        img = read_image(min(person.glob("*.jpg")))  # the first image of each person
        faces = det(img)
        if len(faces):
            best = int(np.argmax(faces.scores))
            crops.append(emb.aligned_crops(img, faces.keypoints[best : best + 1])[0])
        if len(crops) == N_FACES:
            break
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2), np.float32)


def test_ir_structure(y1_xml):
    graph = load_ir(y1_xml)
    counts = graph.type_counts()
    assert counts["Convolution"] == 32 and counts["GroupConvolution"] == 17 and counts["PReLU"] == 33
    assert counts["MatMul"] == 1 and "BatchNormInference" not in counts  # BN folded into conv biases
    assert graph.cli_parameters["reverse_input_channels"] == "True"  # hence BGR input
    scale = [graph.constants[c] for c in graph.producers(graph.of_type("Multiply")[0].id) if c in graph.constants]
    assert float(scale[0].ravel()[0]) == 1 / 128


def test_from_ir_refuses_other_structures(y1_xml, tmp_path):
    text = y1_xml.read_text()
    shutil.copy(y1_xml.with_suffix(".bin"), tmp_path / "m.bin")
    changed = text.replace('strides="2,2"', 'strides="1,1"', 1)
    assert changed != text
    (tmp_path / "m.xml").write_text(changed)
    with pytest.raises(ValueError, match="strides"):
        from_ir(tmp_path / "m.xml")
    flag = '<reverse_input_channels value="True"'
    assert flag in text
    (tmp_path / "rgb.xml").write_text(text.replace(flag, flag.replace("True", "False")))
    shutil.copy(tmp_path / "m.bin", tmp_path / "rgb.bin")
    with pytest.raises(ValueError, match="RGB"):
        from_ir(tmp_path / "rgb.xml")
    with pytest.raises(ValueError, match="no such file"):
        from_ir(tmp_path / "missing.xml")
    (tmp_path / "short.xml").write_text(text)
    (tmp_path / "short.bin").write_bytes((tmp_path / "m.bin").read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated"):
        load_ir(tmp_path / "short.xml")


def test_y1_matches_openvino_on_aligned_lfw_faces(y1, y1_xml, aligned_faces):
    ov = pytest.importorskip("openvino", reason="parity needs the reference runtime (train extra)")
    core = ov.Core()
    # CPUs with bf16 units default to bf16 inference; the reference must run the IR's own FP32
    compiled = core.compile_model(core.read_model(y1_xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    expected = np.concatenate([compiled(face[None])[0] for face in aligned_faces])  # the IR is batch 1
    with torch.no_grad():
        got = y1(torch.from_numpy(aligned_faces)).numpy()
    cos = _cosine(got, expected)
    assert cos.min() >= 0.9999, f"min cosine vs OpenVINO {cos.min():.7f}"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # dynamo=False is the legacy exporter, on purpose
def test_y1_exports_to_onnx_and_onnxruntime_agrees(y1, aligned_faces, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "y1.onnx"
    torch.onnx.export(y1, torch.from_numpy(aligned_faces[:1]), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        reference = y1(torch.from_numpy(aligned_faces)).numpy()
    for batch in (1, N_FACES):
        out = session.run(None, {"input": aligned_faces[:batch]})[0]
        assert out.shape == (batch, 128)
        assert _cosine(out, reference[:batch]).min() >= 0.9999
