"""Every CLI command, run for real in a child process on real files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, shared_path


def facescope(*args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "engine.cli.main", *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"facescope {' '.join(map(str, args))} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def lfw():
    return shared_path("data", "lfw", "lfw-deepfunneled")


def test_help_for_every_command():
    for cmd in ([], ["enroll"], ["identify"], ["gallery"], ["eval", "lfw"], ["eval", "ident"], ["calibrate"],
                ["bench", "warp"], ["bench", "search"], ["models"], ["demo"], ["run"], ["bench"], ["synth-clip"], ["gui"], ["bench", "gui"]):
        out = facescope(*cmd, "--help")
        assert "usage: facescope" in out.stdout


def test_models_verify():
    out = facescope("models", "--verify").stdout
    assert "yunet" in out and "sface" in out and out.count("[sha256 ok]") >= 2


def test_enroll_identify_and_refusals(tmp_path, lfw):
    db = tmp_path / "g.db"
    aaron = sorted((lfw / "Aaron_Peirsol").glob("*.jpg"))
    out = facescope("enroll", "--gallery", db, "--name", "Aaron Peirsol", *aaron[:2]).stdout
    assert "enrolled 2 face(s)" in out

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    before = db.read_bytes()
    bad = facescope("enroll", "--gallery", db, "--name", "Other", aaron[2], blank, corrupt, check=False)
    assert bad.returncode == 2
    assert "blank.png: no face found" in bad.stderr and "corrupt.jpg" in bad.stderr and "nothing enrolled" in bad.stderr
    assert "Traceback" not in bad.stderr
    listing = facescope("gallery", "list", "--gallery", db).stdout
    assert "Other" not in listing and "Aaron Peirsol" in listing
    skipped = facescope("enroll", "--gallery", db, "--name", "Aaron Peirsol", aaron[2], blank, "--skip-bad").stdout
    assert "skipped" in skipped and "enrolled 1 face(s)" in skipped

    res = tmp_path / "ident.json"
    other = sorted((lfw / "Abdullah_Gul").glob("*.jpg"))[0]
    out = facescope("identify", "--gallery", db, aaron[3], other, "--json", res, "--annotate", tmp_path / "ann").stdout
    data = json.loads(res.read_text())
    names = {Path(f["image"]).name: f["name"] for f in data["faces"]}
    assert names[aaron[3].name] == "Aaron Peirsol"
    assert names[other.name] is None and "unknown" in out
    assert len(list((tmp_path / "ann").glob("*.jpg"))) == 2
    del before


def test_identify_without_gallery_is_a_clear_error(tmp_path, lfw):
    out = facescope("identify", "--gallery", tmp_path / "none.db", next(lfw.glob("*/*.jpg")), check=False)
    assert out.returncode == 2 and "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_eval_lfw_smoke(tmp_path):
    data = shared_path("data", "lfw")
    js, roc = tmp_path / "lfw.json", tmp_path / "roc.png"
    out = facescope("eval", "lfw", "--data", data, "--limit", "4", "--json", js, "--roc", roc).stdout
    result = json.loads(js.read_text())
    assert result["pairs"] == 80 and 0.5 < result["accuracy"] <= 1.0
    assert {"accuracy", "accuracy_std", "tar_at_far_1e-3", "pairs"} <= set(result)
    assert roc.stat().st_size > 1000 and "LFW 10-fold accuracy" in out


def test_eval_ident_smoke(tmp_path):
    js = tmp_path / "ident.json"
    out = facescope("eval", "ident", "--data", shared_path("data", "lfw"), "--max-identities", "15",
                    "--max-impostors", "15", "--json", js).stdout
    result = json.loads(js.read_text())
    assert set(result["tpr_at_fpr"]) == {"0.5", "0.2", "0.1", "0.05", "0.01"}
    assert result["rank1"] > 0.8 and "rank-1" in out


def test_calibrate_smoke(tmp_path):
    js = tmp_path / "cal.json"
    facescope("calibrate", "--data", shared_path("data", "lfw"), "--limit", "3", "--far", "0.01", "--json", js)
    result = json.loads(js.read_text())
    assert result["far_measured"] <= 0.01 and -1 <= result["threshold"] <= 1 and result["impostor_pairs"] > 1000


def test_bench_commands(tmp_path):
    w, s = tmp_path / "w.json", tmp_path / "s.json"
    facescope("bench", "warp", "--batch", "4", "--repeats", "5", "--json", w)
    assert json.loads(w.read_text())["speedup"] > 0
    facescope("bench", "search", "--size", "3000", "--queries", "20", "--json", s)
    result = json.loads(s.read_text())
    assert result["gallery_size"] == 3000 and result["ms_per_query"] > 0


def test_demo_writes_annotated_video(tmp_path):
    out = facescope("demo", "--frames", "12", "--out", tmp_path).stdout
    assert "enrolled 'Roxanne'" in out and "enrolled 'Bernard'" in out and "identified" in out
    cap = cv2.VideoCapture(str(tmp_path / "demo_annotated.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 12
    again = facescope("demo", "--frames", "5", "--out", tmp_path).stdout  # reuses the gallery
    assert "enrolled" not in again


def test_demo_on_another_source_enrols_first_face(tmp_path):
    clip = tmp_path / "clip.avi"
    cap = cv2.VideoCapture(str(REPO / "resources" / "demo" / "megamind.avi"))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 24, (720, 528))
    for _ in range(20):
        writer.write(cap.read()[1])
    writer.release()
    out = facescope("demo", "--source", clip, "--name", "First", "--out", tmp_path / "o").stdout
    assert "enrolled 'First'" in out and "20 frames" in out


def test_demo_bad_source(tmp_path):
    out = facescope("demo", "--source", tmp_path / "missing.mp4", "--out", tmp_path, check=False)
    assert out.returncode == 2 and "missing.mp4" in out.stderr and "Traceback" not in out.stderr


def test_gallery_management_commands(tmp_path, lfw):
    import shutil

    from engine.gallery import Gallery
    from engine.models import find_card

    db = tmp_path / "g.db"
    for name in ("Abdullah_Gul", "Adam_Sandler", "Alejandro_Toledo"):
        facescope("enroll", "--gallery", db, "--name", name.replace("_", " "), *sorted((lfw / name).glob("*.jpg"))[:2])
    listing = facescope("gallery", "list", "--gallery", db).stdout
    assert "3 persons, 6 faces" in listing and "Adam Sandler" in listing
    faces = facescope("gallery", "list", "--gallery", db, "--faces", "--search", "gul").stdout
    assert faces.count("Abdullah Gul") == 2 and "Sandler" not in faces

    facescope("gallery", "rename", "--gallery", db, "Adam Sandler", "Adam S.")
    clash = facescope("gallery", "rename", "--gallery", db, "Adam S.", "abdullah gul", check=False)
    assert clash.returncode == 2 and "Traceback" not in clash.stderr
    facescope("gallery", "merge", "--gallery", db, "Adam S.", "Alejandro Toledo")
    meta = Gallery.inspect(db)
    assert (meta.persons, meta.faces) == (2, 6)

    exported = tmp_path / "export.db"
    facescope("gallery", "export", "--gallery", db, exported)
    with Gallery.open_for_reembed(db) as g:
        face_id = g.faces("Abdullah Gul")[0].id
    facescope("gallery", "delete", "--gallery", db, "--face", face_id)
    facescope("gallery", "delete", "--gallery", db, "Alejandro Toledo")
    assert (Gallery.inspect(db).persons, Gallery.inspect(db).faces) == (1, 1)
    missing = facescope("gallery", "delete", "--gallery", db, "Nobody", check=False)
    assert missing.returncode == 2 and "Nobody" in missing.stderr

    facescope("gallery", "import", "--gallery", db, exported, "--replace")
    assert (Gallery.inspect(db).persons, Gallery.inspect(db).faces) == (2, 6)

    # Re-embedding: a second card for the same weights stands in for "another embedder".
    other = tmp_path / "sface-copy"
    shutil.copytree(find_card("sface").directory, other)
    card = json.loads((other / "card.json").read_text())
    (other / "card.json").write_text(json.dumps(dict(card, name="sface-copy")))
    out = facescope("gallery", "reembed", "--gallery", db, "--embedder", other / "card.json").stdout
    assert "re-embedded 6 face(s)" in out
    assert Gallery.inspect(db).embedder_id.startswith("sface-copy@")
    refused = facescope("identify", "--gallery", db, sorted((lfw / "Abdullah_Gul").glob("*.jpg"))[3], check=False)
    assert refused.returncode == 2 and "reembed" in refused.stderr
    ok = facescope("identify", "--gallery", db, "--embedder", other / "card.json",
                   sorted((lfw / "Abdullah_Gul").glob("*.jpg"))[3]).stdout
    assert "Abdullah Gul" in ok


def test_synth_clip_command(tmp_path):
    out = tmp_path / "clip.avi"
    stdout = facescope("synth-clip", "--lfw", shared_path("data", "lfw"), "--out", out, "--frames", "12",
                       "--size", "640x360", "--faces", "5").stdout
    truth = json.loads(Path(f"{out}.json").read_text())
    assert "not enrolled" in stdout and len(truth["frames"]) == 12
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640


def test_bench_gui_probe(tmp_path):
    """The GUI responsiveness benchmark runs the real window offscreen and writes its JSON."""
    import os

    pytest.importorskip("PySide6")
    js = tmp_path / "gui.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-m", "engine.cli.main", "bench", "gui", "--seconds", "3", "--json",
                             str(js)], cwd=REPO, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(js.read_text())
    assert data["ticks"] > 50 and data["event_loop_p95_ms"] >= 0 and data["display_fps"] > 1
