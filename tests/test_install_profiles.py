"""Install profiles: a plain install runs every run-time command, a command whose extra is missing
says so in one line, ``--help`` works everywhere, the shipped files are found from a checkout and
from an installed layout, and ``facescope gui`` explains a Qt platform plugin that cannot start.

A missing extra is real absence, not a stub: the child process gets a meta-path finder that
raises ModuleNotFoundError for the extra's top-level modules, exactly what Python does when the
package is not installed. (.ci/run also checks the real profiles in fresh venvs from a wheel.)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.platform_check import XCB_INSTALL, explain, missing_libraries, packages_for
from tests.conftest import REPO

# the top-level modules of every extra (gui, train, bench, trt, secure) and what they pull in
OPTIONAL = ("torch", "torchvision", "ultralytics", "PySide6", "shiboken6", "pyqtgraph", "dlib",
            "face_recognition_models", "tensorrt", "cuda", "openvino", "onnxslim", "sqlcipher3", "keyring", "paho")
DEMO = REPO / "resources" / "demo" / "megamind.avi"

ABSENT = """
import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    names = set(sys.argv.pop(1).split(","))
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Absent())
"""


def child(code: str, *args: str, absent: tuple[str, ...] = OPTIONAL, timeout: int = 300,
          env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where the ``absent`` modules cannot be imported."""
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", ABSENT + code, ",".join(absent) or "-", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def facescope(*args: str, absent: tuple[str, ...] = OPTIONAL, **kw) -> subprocess.CompletedProcess:
    return child("from engine.cli.main import main\nsys.argv[0] = 'facescope'\nsys.exit(main(sys.argv[1:]))",
                 *map(str, args), absent=absent, **kw)


def test_building_the_parser_imports_no_optional_package():
    r = child("from engine.cli.main import build_parser\nbuild_parser()\n"
              f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(OPTIONAL)!r}))", absent=())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_help_of_every_command_works_without_any_extra():
    # every command and sub-command of the real parser, each asked for --help in one child
    code = """
import argparse, contextlib, io
from engine.cli.main import build_parser, main

def commands(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,)
                yield from commands(sub, path + (name,))

paths = [()] + list(commands(build_parser()))
for path in paths:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*path, "--help"])
            code = "returned"
        except SystemExit as exc:
            code = exc.code
    print(repr((" ".join(path), code, out.getvalue().startswith("usage: facescope"))))
"""
    r = child(code)
    assert r.returncode == 0, r.stderr
    rows = [eval(line) for line in r.stdout.splitlines()]
    names = {name for name, _, _ in rows}
    # the commands of every profile are there (plain, gui, train), sub-commands included
    for name in ("demo", "run", "enroll", "identify", "gallery", "eval lfw", "eval ident", "eval landmarks",
                 "bench", "calibrate", "models", "doctor", "synth-clip", "gui", "train embedder",
                 "train landmarks", "train detector", "prepare", "export embedder", "experiment losses"):
        assert name in names, f"{name!r} missing from the parser"
    bad = [(name, code, usage) for name, code, usage in rows if code != 0 or not usage]
    assert not bad, f"--help failed without the extras: {bad}"


MISSING_EXTRA_CASES = [
    # (command line, missing module named in the message, extra, command named in the message)
    (["train", "embedder", "--data", "nowhere"], "torch", "train", "train embedder"),
    (["train", "landmarks", "--data", "nowhere"], "torch", "train", "train landmarks"),
    (["train", "detector"], "torch", "train", "train detector"),
    (["export", "embedder", "best.pt", "--out", "x"], "torch", "train", "export embedder"),
    (["experiment", "losses"], "torch", "train", "experiment losses"),
    (["gui", "--source", str(DEMO)], "PySide6", "gui", "gui"),
    ([], "PySide6", "gui", "facescope"),
    (["bench", "gui"], "PySide6", "gui", "bench gui"),
]


def test_missing_extra_is_one_line_naming_the_extra(tmp_path):
    # every case in one child (one interpreter start): main() as the console script calls it
    code = """
import contextlib, io, json
from engine.cli.main import main
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    print(json.dumps([rc, err.getvalue()]))
"""
    r = child(code, json.dumps([case[0] for case in MISSING_EXTRA_CASES]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(results) == len(MISSING_EXTRA_CASES)
    for (argv, missing, extra, command), (rc, stderr) in zip(MISSING_EXTRA_CASES, results, strict=True):
        assert rc == 2, (argv, stderr)
        assert stderr.splitlines() == [f"facescope: error: '{command}' needs the {extra} extra ({missing} is not "
                                       f"installed): pip install 'facescope[{extra}]'"], (argv, stderr)
    assert list(tmp_path.iterdir()) == []  # nothing was started, nothing written


def test_train_detector_without_ultralytics_names_the_train_extra(tmp_path):
    r = facescope("train", "detector", absent=("ultralytics",), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["facescope: error: 'train detector' needs the train extra (ultralytics is not "
                                     "installed): pip install 'facescope[train]'"]


def test_plain_install_runs_the_demo_and_models_without_any_extra(tmp_path):
    """The run-time path (models, detector, landmarks, embedder, tracker, gallery, video writer)
    needs no extra: the demo enrols its two characters and names them in the frames it plays."""
    r = facescope("models", absent=OPTIONAL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("yunet", "sface", "hourglass68"):
        assert name in r.stdout
    r = facescope("demo", "--out", tmp_path / "demo", "--frames", "40", "--threads", "1", absent=OPTIONAL,
                  cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    video = tmp_path / "demo" / "demo_annotated.mp4"
    assert video.is_file() and video.stat().st_size > 10_000
    assert "Traceback" not in r.stderr


def test_resources_are_found_in_a_checkout_and_in_an_installed_layout(tmp_path):
    code = "from engine.resources import resources_dir, models_dir, demo_dir\nprint(resources_dir())\n" \
           "import engine; print(engine.__file__)\nfrom engine.models.card import shipped_cards\n" \
           "print(sorted(shipped_cards()))\nprint((demo_dir() / 'megamind.avi').is_file())"
    # a checkout (this one)
    r = child(code, absent=(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.splitlines()[0]) == REPO / "resources"
    # an installed layout as a wheel lays it out: site/engine (no pyproject.toml beside it) and
    # site/facescope_resources (the repository's resources/ folder)
    site = tmp_path / "site"
    shutil.copytree(REPO / "engine", site / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "resources", site / "facescope_resources")
    env = dict(os.environ, PYTHONPATH=str(site))
    run = [sys.executable, "-c", code]
    r = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == str(site / "facescope_resources")
    assert lines[1] == str(site / "engine" / "__init__.py")
    assert "sface" in lines[2] and "yunet" in lines[2] and lines[3] == "True"
    # without the resources package the first use says what is wrong, in one line. The package is
    # also blocked by name: an editable install of this checkout maps it back to resources/ through
    # an import hook that PYTHONPATH does not remove.
    shutil.rmtree(site / "facescope_resources")
    r = subprocess.run([sys.executable, "-c", ABSENT + "from engine.models.card import find_card\nfind_card('sface')",
                        "facescope_resources"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    assert "the shipped models folder" in r.stderr and "is missing" in r.stderr


def test_qt_platform_that_cannot_start_says_what_to_install(tmp_path):
    """No X server to talk to (xcb, no DISPLAY): the real check runs, exit 1, one clear message."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    r = facescope("gui", "--source", DEMO, "--quit-after", "5", absent=(), env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "Aborted" not in r.stderr
    assert r.stderr.startswith("facescope: error: ")
    if "missing system libraries" in r.stderr:  # this machine lacks the xcb plugin's libraries
        assert "sudo apt-get install " in r.stderr
    else:                                       # the libraries are there; the display is not
        assert "no display to open the window on (DISPLAY is not set" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_qt_diagnosis_maps_missing_libraries_to_debian_packages():
    ldd = ("\tlibQt6XcbQpa.so.6 => /x/libQt6XcbQpa.so.6 (0x1)\n\tlibxcb-icccm.so.4 => not found\n"
           "\tlibxcb-keysyms.so.1 => not found\n\tlibxcb-icccm.so.4 => not found\n")
    assert missing_libraries(ldd) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    loader = 'Cannot load library /x/libqxcb.so: (libxcb-cursor.so.0: cannot open shared object file: No such file'
    assert missing_libraries(loader) == ["libxcb-cursor.so.0"]
    assert packages_for(["libxcb-cursor.so.0", "libEGL.so.1", "libunknown.so.3"]) == ["libxcb-cursor0", "libegl1"]
    message = explain("xcb", "", ldd, env={})
    install = message.splitlines()[1].split("apt-get install ")[1].split()
    assert install[:2] == ["libxcb-icccm4", "libxcb-keysyms1"]          # the missing ones first
    assert set(XCB_INSTALL) <= set(install)                              # then the rest of Qt's list
    no_display = explain("xcb", "qt.qpa.xcb: could not connect to display :99", "", env={"DISPLAY": ":99"})
    assert "no display to open the window on (DISPLAY=:99" in no_display


@pytest.mark.timeout(180)
def test_gui_opens_the_demo_clip_and_quits_after_n_seconds(tmp_path):
    pytest.importorskip("PySide6", reason="the gui extra is not installed")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    r = facescope("gui", "--source", DEMO, "--gallery", tmp_path / "people.db", "--quit-after", "3", absent=(),
                  env=env, cwd=tmp_path, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert (tmp_path / "people.db").is_file()


def test_every_source_folder_is_a_package_the_wheel_will_carry():
    """setup.py lists packages with find_packages: a folder of modules without __init__.py would be
    left out of the wheel silently (and work in a checkout)."""
    folders = {p.parent for top in ("engine", "desktop", "trt_build") for p in (REPO / top).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert folders
    assert sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").is_file()) == []
