"""Faults, with real processes on real gallery files: SIGKILL in the middle of ``gallery import``,
``gallery merge`` and ``gallery reembed`` (the file opens, passes integrity_check, holds the old or the
new state and never a mix, the audit chain verifies); two processes writing one gallery at once; a
full disk (RLIMIT_FSIZE in the child: writes past the limit fail with EFBIG); a damaged gallery given
to ``facescope enroll`` / ``identify``."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.gallery import Gallery
from tests.conftest import shared_path
from tests.test_cli import REPO, facescope

BIG_DIM = 512  # 2 KiB per embedding: large transactions spill to the WAL long before they commit


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "engine.cli.main", *map(str, args)]


def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))


def state(db: Path) -> tuple:
    """What the gallery holds, read with plain sqlite3 after checking the file: persons with face
    counts, faces, embedder, the sum of every embedding (a mix of old and new rows changes it)."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        persons = conn.execute("SELECT p.name, count(f.id) FROM persons p LEFT JOIN faces f ON f.person_id = p.id "
                               "GROUP BY p.id ORDER BY p.name_key").fetchall()
        emb = conn.execute("SELECT embedder_id, embedding_dim FROM meta").fetchone()
        blobs = [r[0] for r in conn.execute("SELECT embedding FROM faces ORDER BY id")]
        total = float(np.frombuffer(b"".join(blobs), np.float32).astype(np.float64).sum()) if blobs else 0.0
        return tuple(persons), len(blobs), tuple(emb), round(total, 3)
    finally:
        conn.close()


def audit_ok(db: Path) -> bool:
    out = facescope("gallery", "audit", "--gallery", db, "--verify", check=False)
    return out.returncode == 0 and "verified" in out.stdout


def big_gallery(db: Path, people: dict[str, int], seed: int, embedder: str = "fault-emb", dim: int = BIG_DIM,
                crops: bool = False) -> None:
    rng = np.random.default_rng(seed)
    with Gallery.open(db, embedder, dim) as g:
        for name, k in people.items():
            emb = rng.standard_normal((k, dim)).astype(np.float32)
            c = list(rng.integers(0, 256, (k, 112, 112, 3), dtype=np.uint8)) if crops else None
            g.enroll(name, emb, crops=c)


def kill_when_wal_exceeds(cmd: list[str], db: Path, wal_bytes: int, timeout: float = 120) -> bool:
    """Run ``cmd``; SIGKILL it once ``db``'s -wal holds ``wal_bytes`` (a transaction spilling pages).
    True if it was killed, False if it finished first."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wal, end = Path(f"{db}-wal"), time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < end:
            try:
                if wal.stat().st_size >= wal_bytes:
                    proc.send_signal(signal.SIGKILL)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.002)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc == -signal.SIGKILL


def check_killed_runs(tmp_path: Path, original: Path, args_for, thresholds: list[int]) -> list[str]:
    """For each threshold: a fresh copy, the command killed there; the result must be old or new.
    The new state comes from one run left to finish. Returns which state each kill left."""
    done = tmp_path / "done.db"
    shutil.copy(original, done)
    facescope(*args_for(done))
    old, new = state(original), state(done)
    assert old != new
    seen = []
    for i, wal_bytes in enumerate(thresholds):
        db = tmp_path / f"kill{i}.db"
        shutil.copy(original, db)
        killed = kill_when_wal_exceeds(cli_cmd(*args_for(db)), db, wal_bytes)
        now = state(db)  # opens, integrity_check ok
        assert now in (old, new), f"a mix after a kill at {wal_bytes} B of WAL"
        assert audit_ok(db)
        seen.append(("killed " if killed else "finished ") + ("old" if now == old else "new"))
    print(f"kills at {thresholds} B of WAL: {seen}")
    return seen


# -------------------------------------------------------------------------------- SIGKILL
@pytest.mark.timeout(600)
def test_sigkill_during_import_leaves_old_or_new(tmp_path: Path):
    dst, src = tmp_path / "dst.db", tmp_path / "src.db"
    big_gallery(dst, {"Ada": 5, "Grace": 7}, seed=1)
    big_gallery(src, {f"person {i}": 400 for i in range(30)} | {"Ada": 3}, seed=2)  # 12,003 faces, ~30 MB
    seen = check_killed_runs(tmp_path, dst, lambda db: ("gallery", "import", "--gallery", db, src),
                             [256 << 10, 4 << 20, 16 << 20])
    assert "killed old" in seen, seen  # at least one kill really landed inside the transaction


@pytest.mark.timeout(600)
def test_sigkill_during_merge_leaves_old_or_new(tmp_path: Path):
    db0 = tmp_path / "g.db"
    big_gallery(db0, {"Src Person": 12000, "Dst Person": 5, "Other": 3}, seed=3)
    seen = check_killed_runs(tmp_path, db0, lambda db: ("gallery", "merge", "--gallery", db, "Src Person",
                                                        "Dst Person"), [256 << 10, 4 << 20, 12 << 20])
    assert "killed old" in seen, seen


@pytest.mark.timeout(600)
def test_sigkill_during_reembed_leaves_old_or_new(tmp_path: Path):
    """Killed while the crops are being embedded (the write lock is held, the new embeddings not written yet)."""
    db = tmp_path / "g.db"
    big_gallery(db, {"Ada": 60, "Grace": 60}, seed=4, embedder="old-emb", dim=64, crops=True)
    old = state(db)
    proc = subprocess.Popen(cli_cmd("gallery", "reembed", "--gallery", db), cwd=REPO, env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = ""

    def read() -> None:
        nonlocal seen
        while chunk := proc.stderr.read(1):
            seen += chunk

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    end, killed = time.monotonic() + 240, False
    while proc.poll() is None and time.monotonic() < end:
        m = re.findall(r"(\d+)/120", seen)
        if m and 0 < int(m[-1]) < 120:  # tqdm shows progress: mid-way through the embedding
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert killed, f"reembed finished before it could be killed: {seen[-300:]}"
    assert state(db) == old and audit_ok(db)
    facescope("gallery", "reembed", "--gallery", db)  # afterwards it runs to completion: the new state
    new = state(db)
    assert new[2] != old[2] and new[0] == old[0] and audit_ok(db)


# ------------------------------------------------------------------------- two writers
_ENROLL_LOOP = """
import sys, numpy as np
from engine.gallery import Gallery, GalleryBusyError
import os, time
db, emb_id, dim, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(5)
ok = busy = 0
with Gallery.open(db, emb_id, dim, frontend="api") as g:
    print("open", flush=True)
    i = 0
    while not os.path.exists(stop):  # enrol until the CLI loop is done, one small transaction at a time
        i += 1
        time.sleep(0.005)
        try:
            g.enroll(f"api person {i % 7}", rng.standard_normal((2, dim)).astype(np.float32),
                     crops=list(rng.integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)))
            ok += 1
        except GalleryBusyError as exc:
            busy += 1
            print("busy:", exc, file=sys.stderr)
print(ok, busy, flush=True)
"""


@pytest.mark.timeout(600)
def test_cli_and_api_writers_at_once_lose_nothing(tmp_path: Path):
    lfw = shared_path("data", "lfw", "lfw-deepfunneled")
    db = tmp_path / "g.db"
    people = [d for d in sorted(lfw.iterdir()) if len(list(d.glob("*.jpg"))) >= 3][:4]
    facescope("enroll", "--gallery", db, "--name", people[0].name, *sorted(people[0].glob("*.jpg"))[:2])
    meta = Gallery.inspect(db)
    stop = tmp_path / "stop"
    api = subprocess.Popen([sys.executable, "-c", _ENROLL_LOOP, str(db), meta.embedder_id, str(meta.embedding_dim),
                            str(stop)], cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    assert api.stdout.readline().strip() == "open"
    cli_ok = cli_busy = 0
    for person in people[1:]:  # the CLI loop, while the API loop writes
        out = facescope("enroll", "--gallery", db, "--name", person.name, *sorted(person.glob("*.jpg"))[:2],
                        check=False)
        if out.returncode == 0:
            cli_ok += 1
        else:
            assert "busy" in out.stderr and "Traceback" not in out.stderr, out.stderr
            cli_busy += 1
    stop.touch()
    stdout, stderr = api.communicate(timeout=300)
    assert api.returncode == 0, stderr
    api_ok, api_busy = map(int, stdout.split())
    print(f"two writers: api {api_ok} ok / {api_busy} busy, cli {cli_ok} ok / {cli_busy} busy")
    assert cli_ok + cli_busy == 3 and api_ok > 0 and cli_ok > 0
    _persons, faces, _emb, _sum = state(db)
    assert faces == 2 + 2 * cli_ok + 2 * api_ok  # nothing lost, nothing doubled
    assert audit_ok(db)
    trail = Gallery.open(db, meta.embedder_id, meta.embedding_dim)
    try:
        actions = [(e.frontend, e.action) for e in trail.audit_entries()]
    finally:
        trail.close()
    assert actions.count(("api", "enroll")) == api_ok and actions.count(("cli", "enroll")) == 1 + cli_ok
    # they really wrote at the same time: API commits before and after the CLI's last one
    last_cli = max(i for i, a in enumerate(actions) if a == ("cli", "enroll"))
    assert ("api", "enroll") in actions[:last_cli] and ("api", "enroll") in actions[last_cli:]


# ---------------------------------------------------------------------------- full disk
_FSIZE_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us; ignored, write() fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.dont_write_bytecode = True
from engine.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.timeout(300)
def test_full_disk_is_one_clear_error_and_the_gallery_is_intact(tmp_path: Path):
    dst, src = tmp_path / "dst.db", tmp_path / "src.db"
    big_gallery(dst, {"Ada": 5, "Grace": 7}, seed=6)
    big_gallery(src, {f"person {i}": 200 for i in range(10)}, seed=7)  # ~4 MB to import
    old = state(dst)
    limit = dst.stat().st_size + (256 << 10)
    out = subprocess.run([sys.executable, "-c", _FSIZE_CHILD, str(limit), "gallery", "import", "--gallery", str(dst),
                          str(src)], cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=240)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0] and "rolled back" in lines[0], out.stderr
    assert state(dst) == old and audit_ok(dst)
    facescope("gallery", "import", "--gallery", dst, src)  # with room again, the same import works
    assert state(dst)[1] == old[1] + 2000


# ---------------------------------------------------------------------- damaged gallery
@pytest.mark.timeout(400)
def test_damaged_gallery_given_to_enroll_and_identify(tmp_path: Path):
    lfw = shared_path("data", "lfw", "lfw-deepfunneled")
    image = sorted((lfw / "Aaron_Peirsol").glob("*.jpg"))[0]
    noise = tmp_path / "noise.db"
    noise.write_bytes(np.random.default_rng(8).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    damaged = tmp_path / "damaged.db"
    big_gallery(damaged, {"Ada": 300, "Grace": 300}, seed=9, dim=128)
    conn = sqlite3.connect(damaged)
    conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, then garbage over its middle pages
    conn.close()
    data = bytearray(damaged.read_bytes())
    mid = len(data) // 2
    data[mid - 40_000: mid + 40_000] = np.random.default_rng(10).integers(0, 256, 80_000, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    for bad in (noise, damaged):
        before = bad.read_bytes()
        for args in (("enroll", "--gallery", bad, "--name", "Someone", image), ("identify", "--gallery", bad, image)):
            out = facescope(*args, check=False)
            assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1 and re.search(r"not a facescope gallery|damaged|not a readable gallery", lines[0]), \
                out.stderr
            assert bad.read_bytes() == before
            assert not Path(f"{bad}-wal").exists() or Path(f"{bad}-wal").stat().st_size == 0


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    """A 2 MiB tmpfs: a real ENOSPC (needs root, or CAP_SYS_ADMIN; skipped elsewhere)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or out.returncode}); "
                    "the RLIMIT_FSIZE test covers a full disk")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.timeout(300)
def test_no_space_left_is_one_clear_error_and_the_gallery_is_intact(tmp_path: Path, tiny_tmpfs: Path):
    dst, src = tiny_tmpfs / "dst.db", tmp_path / "src.db"
    big_gallery(dst, {"Ada": 5, "Grace": 7}, seed=11)
    big_gallery(src, {f"person {i}": 200 for i in range(10)}, seed=12)  # ~4 MB: more than the 2 MiB file system
    old = state(dst)
    out = facescope("gallery", "import", "--gallery", dst, src, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0] and "rolled back" in lines[0], out.stderr
    assert state(dst) == old and audit_ok(dst)
