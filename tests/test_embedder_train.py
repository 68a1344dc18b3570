"""Embedder toolkit: prepare -> dataset/sampler -> train (resume) -> export -> the app loads it,
and the loss experiment end to end on a miniature LFW (real faces, real files)."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path

torch = pytest.importorskip("torch")

from engine.train.embedder_eval import open_set_split
from engine.train.face_data import FaceAugment, FaceFolder, Normalisation, PKSampler, augment


def _people(n_people: int, per_person: int = 3):
    root = shared_path("data", "lfw", "lfw-deepfunneled")
    people = [p for p in sorted(root.iterdir()) if p.is_dir() and len(list(p.glob("*.jpg"))) >= per_person]
    return [(p.name, sorted(p.glob("*.jpg"))[:per_person]) for p in people[:n_people]]


@pytest.fixture(scope="module")
def mini_lfw(tmp_path_factory):
    """A miniature LFW: 12 people x 3 images, a pairs.txt with 10 folds of 1 same + 1 different
    pair, aligned by `facescope prepare` (plus one corrupt file and one face-less image)."""
    from engine.cli.main import main

    root = tmp_path_factory.mktemp("lfw")
    raw = root / "lfw-deepfunneled"
    people = _people(12)
    for name, files in people:
        (raw / name).mkdir(parents=True)
        for f in files:
            shutil.copy(f, raw / name / f.name)
    lines = ["10 1"]
    for k in range(10):
        a, b = people[k][0], people[(k + 1) % 12][0]
        lines += [f"{a} 1 2", f"{a} 3 {b} 1"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    (raw / people[0][0] / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(raw / people[1][0] / "blank.jpg"), np.full((120, 120, 3), 90, np.uint8))
    aligned = root / "aligned"
    assert main(["prepare", "--src", str(raw), "--out", str(aligned), "--no-progress"]) == 0
    return root, aligned, people


def test_prepare_aligns_reports_and_resumes(mini_lfw, capsys):
    from engine.cli.main import main

    root, aligned, people = mini_lfw
    report = json.loads((aligned / "prepare_report.json").read_text())
    assert report["written"] == 36 and report["unreadable"] == [f"{people[0][0]}/broken.jpg"]
    assert report["no_face"] == [f"{people[1][0]}/blank.jpg"]
    crop = cv2.imread(str(aligned / people[2][0] / f"{people[2][1][0].stem}.png"))
    assert crop.shape == (112, 112, 3)
    assert main(["prepare", "--src", str(root / "lfw-deepfunneled"), "--out", str(aligned), "--no-progress"]) == 0
    assert "aligned 0 new crops (36 already there)" in capsys.readouterr().out


def test_dataset_sampler_augmentation_and_open_set_split(mini_lfw):
    _, aligned, _ = mini_lfw
    ds = FaceFolder.from_root(aligned, norm=Normalisation(127.5, 127.5, "RGB"), seed=3)
    assert ds.num_classes == 12 and len(ds) == 36 and ds.labels.max() == 11
    x, y = ds[5]
    assert x.shape == (3, 112, 112) and x.dtype == torch.float32 and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert torch.equal(ds[5][0], x)                # same (seed, epoch, index): same draw
    ds.set_epoch(1)
    assert not torch.equal(ds[5][0], x)            # a new epoch draws again
    plain = augment(ds.crop(0), FaceAugment.none(), np.random.default_rng(0))
    assert np.array_equal(plain, ds.crop(0))
    sampler = PKSampler(ds.labels, p=4, k=2, seed=0)
    batches = list(sampler)
    assert len(batches) == 3 and all(len(b) == 8 for b in batches)
    for b in batches:
        labels = ds.labels[b]
        assert len(set(labels.tolist())) == 4 and all((labels == c).sum() == 2 for c in set(labels.tolist()))
    with pytest.raises(ValueError, match="p >= 2"):
        PKSampler(ds.labels, p=1, k=2)
    g, p, imp = open_set_split(np.repeat(np.arange(6), 3), seed=0)
    assert len(g) == 3 and len(p) == 6 and len(imp) == 9 and not set(g) & set(p) & set(imp)


@pytest.mark.slow
@pytest.mark.timeout(600)  # 110 s measured on a shared, loaded 2-core CPU
def test_train_resume_export_and_use_in_the_app(mini_lfw, tmp_path, capsys):
    """Every CLI step for real: train (LFW eval on folds 6-10, test people excluded), resume,
    export, then `eval lfw` and `run` through the embedder registry with the exported card."""
    from engine.cli.main import main

    root, aligned, _ = mini_lfw
    out = tmp_path / "run"
    base = ["train", "embedder", "--data", str(aligned), "--out", str(out), "--backbone", "mobilefacenet",
            "--loss", "arcface", "--batch-size", "8", "--batches-per-epoch", "2", "--lfw", str(root),
            "--lfw-aligned", str(aligned), "--lfw-folds", "6-10", "--exclude-lfw-test-people", "--no-progress"]
    assert main(base + ["--epochs", "1"]) == 0
    assert main(base + ["--epochs", "2", "--resume", str(out / "last.pt")]) == 0
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log] == [1, 2] and 0.0 <= log[-1]["lfw_accuracy"] <= 1.0
    assert (out / "curves.png").stat().st_size > 0 and (out / "log.csv").read_text().startswith("epoch,")
    capsys.readouterr()
    thr = log[-1]["lfw_threshold"]
    args = ["export", "embedder", str(out / "best.pt"), "--out", str(tmp_path / "model"), "--name", "mini"]
    assert main(args if -1 <= thr <= 1 else args + ["--threshold", "0.3"]) == 0
    card = tmp_path / "model" / "card.json"
    from engine.embedders import create_embedder

    emb = create_embedder("onnx", card=card)
    assert emb.dim == 128 and emb.id.startswith("mini@")
    js = tmp_path / "lfw.json"
    assert main(["eval", "lfw", "--data", str(root), "--embedder", str(card), "--json", str(js),
                 "--roc", str(tmp_path / "roc.png")]) == 0
    assert json.loads(js.read_text())["embedder"].startswith("mini@")
    # a gallery enrolled with the shipped SFace migrates to the new embedder, then runs with it
    gallery, video = str(tmp_path / "g.db"), shared_path("data", "video", "megamind.avi")
    face = str(sorted((root / "lfw-deepfunneled").glob("*/*.jpg"))[0])
    assert main(["enroll", "--gallery", gallery, "--name", "someone", face]) == 0
    assert main(["run", "--source", str(video), "--embedder", str(card), "--frames", "3", "--gallery", gallery]) == 2
    assert "reembed" in capsys.readouterr().err
    assert main(["gallery", "reembed", "--gallery", gallery, "--embedder", str(card)]) == 0
    assert main(["run", "--source", str(video), "--embedder", str(card), "--frames", "3", "--gallery", gallery]) == 0


@pytest.mark.slow
def test_loss_experiment_end_to_end_on_mini_lfw(mini_lfw, tmp_path, capsys):
    from engine.cli.main import main

    root, aligned, _ = mini_lfw
    out = tmp_path / "exp"
    assert main(["experiment", "losses", "--lfw", str(root), "--aligned", str(aligned), "--out", str(out),
                 "--epochs", "1", "--batches-per-epoch", "1", "--batch-size", "8", "--pk", "3,2",
                 "--losses", "arcface,triplet-semihard",
                 "--no-progress"]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert [r["loss"] for r in rows] == ["arcface", "triplet-semihard"]
    assert all(0 <= r["lfw_folds_6_10"] <= 1 and 0 <= r["dir@fpr0.1"] <= 1 for r in rows)
    assert "| arcface |" in (out / "results.md").read_text() and (out / "roc.png").stat().st_size > 0


def test_shipped_mobilefacenet_y1_is_opt_in_and_shows_its_licence(caplog):
    """The rebuilt InsightFace model ships as an opt-in embedder whose non-commercial notice is
    logged whenever it loads; it separates a same-person pair from a different-person one."""
    import logging

    from engine.config import RecognizerConfig
    from engine.embedders import create_embedder
    from engine.imageio import read_image
    from engine.models import find_card
    from engine.recognizer import Recognizer

    card = find_card("mobilefacenet_y1", family="embedder")
    assert not card.commercial_use and "non-commercial" in card.licence.lower()
    with caplog.at_level(logging.WARNING, logger="facescope.models"):
        emb = create_embedder("mobilefacenet_y1")
    assert "non-commercial" in caplog.text
    base = Recognizer.from_config(RecognizerConfig())
    rec = Recognizer(base.detector, emb, landmarker=base.landmarker)
    (a, files_a), (b, files_b) = _people(2, per_person=2)
    e = [rec.largest(read_image(f)).embeddings[0] for f in (*files_a, files_b[0])]
    assert float(e[0] @ e[1]) > emb.threshold > float(e[0] @ e[2])


def test_schedules_freezing_and_head_imprinting(mini_lfw):
    from types import SimpleNamespace

    from engine.train.backbones import create_backbone
    from engine.train.embedder_setup import build_scheduler, imprint_head, set_frozen
    from engine.train.losses import create_loss

    def lrs(schedule, epochs=6, steps=2, **kw):
        cfg = SimpleNamespace(epochs=epochs, warmup_epochs=0, schedule=schedule, milestones=(2, 4), gamma=0.1,
                              restart_epochs=1, **kw)
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched, out = build_scheduler(opt, cfg, steps), []
        for _ in range(epochs * steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return np.array(out)

    assert np.allclose(lrs("step"), [1, 1, 1, 1, .1, .1, .1, .1, .01, .01, .01, .01])
    restarts = lrs("cosine_restarts")      # SGDR: periods of 2, 4, 8 steps, back to the base lr
    assert restarts[0] == restarts[2] == restarts[6] == 1.0 and restarts[1] < 1 and restarts[5] < restarts[4]
    cos = lrs("warmup_cosine")
    assert cos[0] == 1.0 and np.all(np.diff(cos) <= 1e-12) and cos[-1] < 0.1

    _, aligned, _ = mini_lfw
    ds = FaceFolder.from_root(aligned, aug=FaceAugment.none())
    backbone = create_backbone("mobilefacenet", 128)
    loss = create_loss("arcface", 128, ds.num_classes)
    model = torch.nn.ModuleDict({"backbone": backbone, "loss": loss})
    assert set_frozen(model, ("backbone",), frozen=True) > 0
    assert not any(p.requires_grad for p in backbone.parameters()) and loss.head.weight.requires_grad
    set_frozen(model, ("backbone",), frozen=False)
    assert all(p.requires_grad for p in backbone.parameters())
    imprint_head(loss.head, backbone, ds, torch.device("cpu"))
    backbone.eval()
    with torch.no_grad():
        e = torch.nn.functional.normalize(backbone(torch.from_numpy(ds.norm.tensor(np.stack(
            [ds.crop(i) for i in np.flatnonzero(ds.labels == 3)])))), dim=1)
    assert torch.allclose(loss.head.weight[3], torch.nn.functional.normalize(e.sum(0), dim=0), atol=1e-5)


@pytest.mark.slow
def test_ddp_with_torchrun_on_two_cpu_processes(mini_lfw, tmp_path):
    """PyTorch's own DDP through torchrun (gloo on CPU here, NCCL on GPUs): two ranks train in
    step (each on its share of the batches) and rank 0 writes the checkpoint."""
    import subprocess
    import sys

    from tests.conftest import REPO

    _, aligned, _ = mini_lfw
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "engine.cli.main", "train", "embedder", "--data", str(aligned), "--out", str(out),
           "--backbone", "mobilefacenet", "--loss", "cosface", "--batch-size", "4", "--batches-per-epoch", "2",
           "--epochs", "1", "--no-progress"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert ck["epoch"] == 0 and any(k.startswith("backbone.") for k in ck["model"])
