"""The bad-input corpus (issue 16, item 8): generated from the real photo and clip in ../shared, run
through the real commands (subprocesses) and the window's open paths (an offscreen Qt process).

``test_quick_corpus`` runs the reduced corpus for real on every run; ``test_full_corpus`` (slow)
runs every input through every command, as ``facescope bench corpus`` does for docs/bad_input.md.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.bench import corpus_report, corpus_run
from engine.bench.corpus_make import FACE_IMAGE, make_corpus
from engine.errors import ImageError
from engine.imageio import read_image
from engine.resources import resources_dir
from tests.conftest import shared_path

HAS_GUI = importlib.util.find_spec("PySide6") is not None and importlib.util.find_spec("pyqtgraph") is not None


@pytest.fixture(scope="module")
def shared() -> Path:
    shared_path(FACE_IMAGE)
    shared_path("data", "video", "megamind.avi")
    return shared_path()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared):
    """The corpus files (no commands run), on a real gallery enrolled with the real CLI."""
    from engine.cli.main import main

    out = tmp_path_factory.mktemp("corpus")
    base = out / "base.db"
    assert main(["enroll", "--gallery", str(base), "--name", "Ada", str(shared / FACE_IMAGE)]) == 0
    return {i.name: i for i in make_corpus(out / "inputs", shared, resources_dir(), base)}


def test_corpus_images_are_what_they_claim(corpus, shared):
    """Every image input is read (valid) or refused with an ImageError naming it (invalid), in
    process; the EXIF-rotated ones come out upright: equal to the original photo."""
    upright = read_image(shared / FACE_IMAGE).astype(np.int16)
    images = [i for i in corpus.values() if i.kind == "image"]
    assert len(images) >= 16
    for item in images:
        if item.name == "noface.jpg":  # a valid picture; refused later, by enrolment (no face)
            assert read_image(item.path).shape == (240, 320, 3)
            continue
        if item.valid:
            image = read_image(item.path)
            assert image.shape == upright.shape and image.dtype == np.uint8, item.name
            if item.name.startswith("exif"):  # JPEG re-encoding: close, not equal; a wrong turn is far off
                assert np.abs(image.astype(np.int16) - upright).mean() < 6, item.name
        else:
            with pytest.raises(ImageError, match=item.name.replace(".", r"\.")):
                read_image(item.path)


def test_decompression_bomb_is_refused_before_decoding(corpus):
    """400 MP would be 1.2 GB as BGR: refused from the header (Pillow's bomb limit), fast."""
    import time

    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        read_image(corpus["bomb.png"].path)
    with pytest.raises(ImageError, match="too large"):
        read_image(corpus["huge_header.png"].path)
    assert time.perf_counter() - t0 < 5.0
    with pytest.raises(cv2.error):  # OpenCV alone refuses it only with an assertion error (was a traceback)
        cv2.imread(str(corpus["huge_header.png"].path))


def test_judge_fails_tracebacks_noise_and_changes(corpus):
    """The runner's verdict can fail: a traceback, two stderr lines, a message not naming the input,
    a changed gallery, or exit 0 on an invalid input each fail the case."""
    bad = corpus["truncated.jpg"]
    line = f"facescope: error: {bad.path}: truncated or corrupt JPEG"
    same = (False, [])

    def verdict(rc, err, changed=same, item=bad):
        return corpus_run._judge(item, "enroll", rc, "", err, changed, 0.0).passed

    assert verdict(2, line + "\n")
    assert not verdict(2, "Traceback (most recent call last):\n  ...\nValueError: x\n")
    assert not verdict(2, "[mov @ 0x1] moov atom not found\n" + line + "\n")
    assert not verdict(2, "facescope: error: something failed\n")
    assert not verdict(2, line + "\n", (True, []))
    assert not verdict(0, "")
    assert verdict(0, "", item=corpus["trailing.jpg"])
    assert not verdict(2, line, item=corpus["trailing.jpg"])
    before = {"db": ("a", 10)}
    assert corpus_run.compare(before, {"db": ("a", 10), "-shm": ("s", 32768), "-wal": ("w", 0)}) == (
        False, ["-shm", "-wal"])
    assert corpus_run.compare(before, {"db": ("a", 10), "-wal": ("w", 4152)})[0]
    assert corpus_run.compare(before, {})[0]


def _check(results, expected_cases: set | None = None) -> dict:
    failed = [(r.input, r.command, r.rc, r.message, r.traceback, r.gallery_changed) for r in results if not r.passed]
    assert failed == []
    s = corpus_report.summary(results)
    assert s["tracebacks"] == 0 and s["gallery_changed_on_failure"] == 0
    # not even SQLite's empty -wal/-shm beside a gallery a refused command looked at (e.g. a newer schema's)
    assert [(r.input, r.command, r.side_files) for r in results if r.expected == "error" and r.side_files] == []
    assert s["clear_errors"] == s["expected_errors"] > 0 and s["accepted"] == s["expected_accepted"] > 0
    if expected_cases is not None:
        assert {(r.input, r.command) for r in results} == expected_cases
    return s


@pytest.mark.timeout(900)
def test_quick_corpus(tmp_path, shared):
    """One refusal per kind of input and front end, plus accepted inputs, for real."""
    results = corpus_run.run_corpus(tmp_path / "corpus", shared, resources_dir(), quick=True, gui=HAS_GUI)
    expected = corpus_run.QUICK if HAS_GUI else {c for c in corpus_run.QUICK if not c[1].startswith("gui")}
    _check(results, expected)
    md = corpus_report.markdown(results, "facescope bench corpus --quick")
    assert "| `truncated.jpg` |" in md and "FAIL" not in md


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_full_corpus(tmp_path, shared):
    """Every input through every command that takes it, via the CLI that writes docs/bad_input.md."""
    import subprocess

    doc, js = tmp_path / "bad_input.md", tmp_path / "corpus.json"
    argv = [sys.executable, "-m", "engine.cli.main", "bench", "corpus", "--out", str(tmp_path / "corpus"),
            "--shared", str(shared), "--doc", str(doc), "--json", str(js)] + ([] if HAS_GUI else ["--no-gui"])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    cases = [corpus_run.Outcome(**c) for c in json.loads(js.read_text())["cases"]]
    s = _check(cases)
    assert s["distinct_inputs"] >= 30 and s["inputs_tried"] >= 90
    assert f"**{s['inputs_tried']} inputs tried**" in doc.read_text()
