"""Run the bad-input corpus (:mod:`engine.bench.corpus_make`) through every command that takes
each input, as real ``facescope`` subprocesses, and through the desktop window's open paths
(open a gallery, drop an image to enrol, open a video) in one offscreen Qt process
(``python -m desktop.corpus_probe``, started by module name: the engine never imports Qt).

For every (input, command) it records the exit code, whether any output holds a Python
traceback, whether the user saw exactly one clear line (an error: one line on stderr naming
the input; the window: one message naming it), and whether any gallery byte changed (SHA-256
of every gallery file, ``-wal``/``-shm``/``-journal`` included, before and after). A case
passes when an invalid input is refused that way with nothing changed, and a valid one is
accepted (exit 0, no traceback).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from engine.bench.corpus_make import FACE_IMAGE, VIDEO, Input, make_corpus

_SIDE_FILES = ("", "-wal", "-shm", "-journal")
# Inputs that also go through the commands sharing a code path with ones already run for every input (the
# photo search reads images like identify; run loads models like enroll): a sample, to keep the corpus short.
SEARCHED = {"empty.jpg", "truncated.jpg", "bomb.png", "exif6.jpg", "cmyk.jpg"}
RUN_MODELS = {"truncated/card.json", "wrong_kind/card.json"}
TIMEOUT_S = 180  # per command: a hang is a failure, not a stuck suite

# The reduced corpus (tests, --quick): one refusal per kind of input and front end, plus accepted inputs.
QUICK = {
    ("truncated.jpg", "enroll"), ("trailing.jpg", "enroll"), ("bomb.png", "identify"),
    ("exif6.jpg", "sightings search"), ("garbage.mp4", "run"), ("bad_sha/card.json", "enroll"),
    ("other_app.db", "enroll"), ("newer_schema.db", "gallery list"), ("random.db", "gallery import"),
    ("random.db", "gui: open gallery"), ("text.jpg", "gui: drop image"), ("truncated.mp4", "gui: open video"),
}


@dataclass
class Case:
    """One input through one command (``argv`` after ``facescope``; GUI cases have none)."""

    input: Input
    command: str
    argv: list[str] = field(default_factory=list)
    watch: Path | None = None  # the gallery whose bytes must not change on failure


@dataclass
class Outcome:
    """What happened (see the module docstring for ``passed``)."""

    input: str
    kind: str
    what: str
    command: str
    expected: str  # "accepted" | "error"
    rc: int
    message: str  # the line the user saw (first stderr line, or the window's message)
    lines: int  # non-empty stderr lines (CLI) / messages shown (GUI)
    traceback: bool
    one_clear_line: bool
    gallery_changed: bool
    side_files: list[str]  # empty -wal / -shm SQLite left beside the gallery (see compare)
    passed: bool
    seconds: float


def gallery_digest(path: Path | None) -> dict[str, tuple[str, int]]:
    """SHA-256 and size of a gallery and of each of its side files that exists (absent ones left out)."""
    if path is None:
        return {}
    out = {}
    for suffix in _SIDE_FILES:
        p = Path(f"{path}{suffix}")
        if p.exists():
            data = p.read_bytes()
            out[suffix or "db"] = (hashlib.sha256(data).hexdigest(), len(data))
    return out


def compare(before: dict, after: dict) -> tuple[bool, list[str]]:
    """(changed, side files created). Changed: a file that was there is gone or has other bytes, or a
    new ``-wal``/``-journal`` holds data. SQLite creates an empty ``-wal`` and a ``-shm`` (its WAL
    index: no table data) beside a WAL-mode database that any connection opens, read-only too, and
    only a writer's clean close removes them: listed, not counted as a change."""
    changed = any(after.get(k) != v for k, v in before.items())
    created = sorted(k for k in after if k not in before)
    changed |= any(k != "-shm" and after[k][1] > 0 for k in created)
    return changed, created


def _names_input(message: str, item: Input) -> bool:
    return item.path.name in message or (item.kind == "model" and item.path.parent.name in message)


def _judge(item: Input, command: str, rc: int, stdout: str, stderr: str, changed: tuple[bool, list[str]],
           seconds: float) -> Outcome:
    err_lines = [line for line in stderr.splitlines() if line.strip()]
    traceback = "Traceback (most recent call last)" in stdout + stderr
    message = err_lines[0] if err_lines else ""
    if not err_lines and rc == 1:  # `identify` reports an unreadable image on stdout and goes on
        errors = [line for line in stdout.splitlines() if line.startswith("error: ")]
        message = errors[0] if len(errors) == 1 else ""
    one_line = len(err_lines) <= 1 and bool(message) and _names_input(message, item) and len(message) < 400
    expected = "accepted" if item.valid else "error"
    passed = (rc == 0 and not traceback) if item.valid else (rc != 0 and not traceback and one_line and not changed[0])
    return Outcome(item.name, item.kind, item.what, command, expected, rc, message, len(err_lines), traceback,
                   one_line, changed[0], changed[1], passed, round(seconds, 2))


def run_cli(case: Case, env: dict[str, str]) -> Outcome:
    """One real ``facescope`` subprocess (``python -m engine.cli.main``)."""
    before = gallery_digest(case.watch)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.cli.main", *case.argv], capture_output=True,
                              text=True, env=env, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, stdout, stderr = -9, str(exc.stdout or ""), f"timed out after {TIMEOUT_S} s"
    changed = compare(before, gallery_digest(case.watch))
    return _judge(case.input, case.command, rc, stdout, stderr, changed, time.perf_counter() - t0)


def cli_cases(inputs: list[Input], work: Path, base_gallery: Path, face: Path, clip: Path) -> list[Case]:
    """Every command that takes each input, each on its own copy of the base gallery."""
    cases: list[Case] = []
    n = 0
    G = "{gallery}"  # where the copy's path goes

    def copy() -> Path:
        nonlocal n
        n += 1
        path = work / f"g{n:03d}" / "people.db"
        path.parent.mkdir(parents=True)
        shutil.copy2(base_gallery, path)  # 0600, like the gallery it copies
        return path

    def add(item: Input, command: str, argv: list[str]) -> None:
        """``argv`` on a fresh copy of the base gallery (written where ``G`` stands)."""
        g = str(copy())
        cases.append(Case(_expected(item, command), command, [g if a == G else a for a in argv], Path(g)))

    for item in inputs:
        p = str(item.path)
        if item.kind == "image":
            add(item, "enroll", ["enroll", "--gallery", G, "--name", "Corpus", p])
            add(item, "identify", ["identify", "--gallery", G, p])
            if item.name in SEARCHED:
                add(item, "sightings search", ["sightings", "search", "--gallery", G, "--image", p])
        elif item.kind == "video":
            add(item, "run", ["run", "--source", p, "--gallery", G, "--frames", "8"])
            add(item, "bench", ["bench", "--source", p, "--gallery", G, "--frames", "8", "--no-latency-pass"])
        elif item.kind == "model":
            add(item, "enroll", ["enroll", "--gallery", G, "--name", "Corpus", "--embedder", p, str(face)])
            add(item, "identify", ["identify", "--gallery", G, "--embedder", p, str(face)])
            if item.name in RUN_MODELS:
                add(item, "run", ["run", "--source", str(clip), "--gallery", G, "--frames", "4", "--embedder", p])
        elif item.kind == "gallery":
            B = "{bad}"  # where this case's own copy of the input goes: a case that writes changes only its copy
            for command, argv in (
                ("gallery list", ["gallery", "list", "--gallery", B]),
                ("gallery audit", ["gallery", "audit", "--verify", "--gallery", B]),
                ("gallery rename", ["gallery", "rename", "--gallery", B, "Ada", "Bea"]),
                ("gallery export", ["gallery", "export", "--gallery", B, str(work / f"export-{item.path.stem}.db")]),
                ("sightings list", ["sightings", "list", "--gallery", B]),
                ("unknowns list", ["unknowns", "list", "--gallery", B]),
                ("enroll", ["enroll", "--gallery", B, "--name", "Corpus", str(face)]),
                ("identify", ["identify", "--gallery", B, str(face)]),
                ("run", ["run", "--source", str(clip), "--gallery", B, "--frames", "4"]),
            ):
                own = _own_copy(item, work / f"b{len(cases):03d}")
                cases.append(Case(_expected(own, command), command, [str(own.path) if a == B else a for a in argv],
                                  own.path))
            add(item, "gallery import", ["gallery", "import", "--gallery", G, p])
    return cases


def _own_copy(item: Input, folder: Path) -> Input:
    """``item`` copied (same file name, same mode) into ``folder``."""
    folder.mkdir(parents=True)
    shutil.copy2(item.path, folder / item.path.name)
    return dataclasses.replace(item, path=folder / item.path.name)


def _expected(item: Input, command: str) -> Input:
    """``item`` with its validity for this command, where that differs from the file's own.

    * a 0-byte gallery file is "nothing there yet" (engine.gallery.schema.probe): where a gallery
      is created if missing (enroll, the window) a new one goes in it, the right outcome;
    * a picture without a face is a fine input to ``identify`` ("no face found", exit 0: a photo
      of nobody is an answer, not an error); enrolment and the photo search refuse it.
    """
    if item.name == "empty.db" and command in ("enroll", "gui: open gallery"):
        return dataclasses.replace(item, valid=True, what=item.what + " (a new gallery is created in it)")
    if item.name == "noface.jpg" and command == "identify":
        return dataclasses.replace(item, valid=True, what=item.what + " (identify: 'no face found')")
    return item


def gui_cases(inputs: list[Input], work: Path, base_gallery: Path) -> list[Case]:
    """The window's open paths: open a gallery, drop an image to enrol, open a video."""
    cases = []
    for i, item in enumerate(inputs):
        if item.kind == "gallery":
            own = _own_copy(item, work / f"gui{i:03d}")
            cases.append(Case(_expected(own, "gui: open gallery"), "gui: open gallery", watch=own.path))
        elif item.kind in ("image", "video"):
            g = work / f"gui{i:03d}" / "people.db"
            g.parent.mkdir(parents=True)
            shutil.copy2(base_gallery, g)
            cases.append(Case(item, "gui: drop image" if item.kind == "image" else "gui: open video", watch=g))
    return cases


def run_gui(cases: list[Case], work: Path, env: dict[str, str]) -> list[Outcome]:
    """All GUI cases in one offscreen window process (``desktop.corpus_probe``)."""
    if not cases:
        return []
    spec = work / "gui_cases.json"
    result = work / "gui_result.json"
    spec.write_text(json.dumps([{"kind": c.input.kind, "path": str(c.input.path), "valid": c.input.valid,
                                 "gallery": str(c.watch)} for c in cases]))
    before = [gallery_digest(c.watch) for c in cases]
    gui_env = {**env, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(work / "gui_config"),
               "XDG_DATA_HOME": str(work / "gui_data")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "desktop.corpus_probe", "--cases", str(spec), "--json", str(result)],
                          capture_output=True, text=True, env=gui_env, timeout=TIMEOUT_S + 30 * len(cases),
                          stdin=subprocess.DEVNULL)
    seconds = (time.perf_counter() - t0) / len(cases)
    process_tb = "Traceback (most recent call last)" in proc.stdout + proc.stderr
    if proc.returncode != 0 or not result.is_file():
        raise RuntimeError(f"the GUI probe failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    reports = json.loads(result.read_text())
    out = []
    for case, b, rep in zip(cases, before, reports, strict=True):
        changed, created = compare(b, gallery_digest(case.watch))
        messages = rep["messages"]
        message = messages[0] if messages else ""
        tb = process_tb or rep["traceback"]
        one = len(messages) == 1 and "\n" not in message and _names_input(message, case.input) and len(message) < 400
        usable = rep["window_alive"]
        if case.input.valid:
            passed = rep["accepted"] and usable and not tb
        else:
            passed = not rep["accepted"] and usable and one and not tb and not changed
        out.append(Outcome(case.input.name, case.input.kind, case.input.what, case.command,
                           "accepted" if case.input.valid else "error", 0 if rep["accepted"] else 1, message,
                           len(messages), tb, one, changed, created, passed, round(seconds, 2)))
    return out


def run_corpus(out: str | Path, shared: str | Path, resources: str | Path, quick: bool = False, jobs: int = 2,
               gui: bool = True, progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Make the corpus under ``out`` and run it (``quick``: the :data:`QUICK` subset; ``gui``: also
    the window's open paths). ``progress`` is called with each outcome as it comes."""
    out, shared = Path(out), Path(shared)
    face, video = shared / FACE_IMAGE, shared / VIDEO
    for needed in (face, video):
        if not needed.is_file():
            from engine.errors import FacescopeError

            raise FacescopeError(f"the corpus needs the real data in {shared}: {needed} is missing")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    seed = out / "seed"
    if seed.exists():
        shutil.rmtree(seed)
    seed.mkdir(parents=True)
    base = seed / "people.db"  # a real gallery: one person enrolled from the real photo, by the real CLI
    proc = subprocess.run([sys.executable, "-m", "engine.cli.main", "enroll", "--gallery", str(base), "--name", "Ada",
                           str(face)], capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"could not make the base gallery: {proc.stderr.strip()}")
    inputs = make_corpus(out / "inputs", shared, resources, base)
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    cli = cli_cases(inputs, work, base, face, video)
    window = gui_cases(inputs, work, base) if gui else []
    if quick:
        cli = [c for c in cli if (c.input.name, c.command) in QUICK]
        window = [c for c in window if (c.input.name, c.command) in QUICK]
    results: list[Outcome] = []
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for outcome in pool.map(lambda c: run_cli(c, env), cli):
            results.append(outcome)
            if progress:
                progress(outcome)
    for outcome in run_gui(window, work, env):
        results.append(outcome)
        if progress:
            progress(outcome)
    return results
