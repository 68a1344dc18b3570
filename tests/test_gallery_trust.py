"""Biometric data at rest: private file modes, erasure that leaves no bytes, the audit trail and its
migration, and source-URL passwords kept out of every output. Real SQLite files, real LFW faces,
the real CLI in child processes, a real (fake-credential) RTSP exchange over TCP."""
from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import socket
import sqlite3
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.gallery import SCHEMA_VERSION, DuplicatePersonError, Gallery, audit
from tests.conftest import shared_path
from tests.test_cli import facescope

EMB, DIM = "test-emb", 8


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def crops_of(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    return list(rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def companions(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm")]


def all_bytes(db: Path) -> bytes:
    """Every byte of every gallery file (.db, -wal, -shm) that exists.

    Plain ``open()`` on a file this process may hold open through SQLite drops that
    connection's POSIX locks (see ``schema.probe``): callers close their connections right after.
    """
    return b"".join(p.read_bytes() for p in companions(db) if p.exists())


@pytest.fixture
def umask022():
    old = os.umask(0o022)  # the usual desktop umask: files 0644, folders 0755 unless we say otherwise
    yield
    os.umask(old)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(99)


@pytest.fixture(scope="module")
def lfw():
    return shared_path("data", "lfw", "lfw-deepfunneled")


# ------------------------------------------------------------------- 1. file modes
def test_new_gallery_wal_shm_and_export_are_private(tmp_path: Path, rng, umask022):
    db = tmp_path / "new" / "deep" / "people.db"
    os.chmod(tmp_path, 0o755)
    with Gallery.open(db, EMB, DIM) as g:
        g.enroll("Ada", unit(rng, 2), crops=crops_of(rng, 2))
        assert all(p.exists() for p in companions(db))  # WAL mode: -wal and -shm exist while open
        # SQLite creates -wal/-shm with the main file's mode: pre-creating it 0600 makes them private
        assert {p.name: mode(p) for p in companions(db)} == {p.name: 0o600 for p in companions(db)}
        g.export(tmp_path / "out" / "sub" / "copy.db")
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "deep") == 0o700
    assert mode(tmp_path / "out") == mode(tmp_path / "out" / "sub") == 0o700
    assert mode(tmp_path / "out" / "sub" / "copy.db") == 0o600
    assert mode(tmp_path) == 0o755  # an existing folder is left as it was


def test_loose_gallery_is_tightened_on_open_with_one_notice(tmp_path: Path, rng, caplog):
    db = tmp_path / "people.db"
    with Gallery.open(db, EMB, DIM) as g:
        g.enroll("Ada", unit(rng, 1))
    holder = sqlite3.connect(db)  # keeps -wal/-shm on disk, as another open app would
    holder.execute("SELECT count(*) FROM faces").fetchone()
    try:
        for p in companions(db):
            os.chmod(p, 0o644)
        with caplog.at_level(logging.WARNING, logger="engine.gallery"):
            Gallery.open(db, EMB, DIM).close()
            notices = [r for r in caplog.records if r.name.startswith("engine.gallery")]
            assert len(notices) == 1, [r.getMessage() for r in notices]
            assert "people.db" in notices[0].getMessage() and "0600" in notices[0].getMessage()
            assert all(mode(p) == 0o600 for p in companions(db))
            caplog.clear()
            Gallery.open(db, EMB, DIM).close()  # already private: silent
            assert not [r for r in caplog.records if r.name.startswith("engine.gallery")]
    finally:
        holder.close()


# ------------------------------------------------------- 3. erasure (byte scan), real faces
def entropy_fragments(jpeg: bytes, n: int = 4, size: int = 48) -> list[bytes]:
    """Pieces of a JPEG's compressed image data (after the SOS header): unique to that image,
    unlike its headers and tables, which every crop at the same quality shares."""
    sos = jpeg.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(jpeg[sos + 2: sos + 4], "big")
    body = jpeg[start:-2]
    assert len(body) > n * size
    return [body[i: i + size] for i in np.linspace(0, len(body) - size, n).astype(int)]


def face_fragments(conn: sqlite3.Connection, where: str, params: list) -> dict[int, list[bytes]]:
    """Face id -> its whole embedding blob, four 64-byte pieces of it and four pieces of its crop."""
    out = {}
    for fid, emb, jpeg in conn.execute(f"SELECT id, embedding, crop_jpeg FROM faces WHERE {where}", params):
        out[fid] = [emb] + [emb[i: i + 64] for i in (0, 128, 256, len(emb) - 64)] + entropy_fragments(jpeg)
    return out


@pytest.fixture(scope="module")
def real_gallery(lfw, tmp_path_factory):
    """A gallery of five LFW people (3 faces each: real crops, real SFace embeddings), built once."""
    from engine.config import RecognizerConfig
    from engine.enrolment import prepare_enrolment
    from engine.recognizer import Recognizer

    rec = Recognizer.from_config(RecognizerConfig())
    # Two-word names: the stored sources (file paths) hold "First_Last", never "First Last", so a
    # name found by the scan can only come from the persons table or its indexes.
    people = [d for d in sorted(lfw.iterdir()) if d.name.count("_") == 1 and len(list(d.glob("*.jpg"))) >= 4][:5]
    db = tmp_path_factory.mktemp("erasure") / "people.db"
    with Gallery.open(db, rec.embedder.id, rec.embedder.dim) as g:
        for d in people:
            batch = prepare_enrolment(rec, sorted(d.glob("*.jpg"))[:4])
            assert len(batch) >= 3, batch.problems
            batch.enroll_into(g, d.name.replace("_", " "))
    return db, [d.name.replace("_", " ") for d in people]


def test_scan_finds_what_plain_sqlite_delete_leaves(real_gallery, tmp_path: Path):
    """Control: without secure_delete and a checkpoint, a deleted person's bytes stay in the files,
    so the byte scan below is able to fail."""
    src, names = real_gallery
    db = tmp_path / "control.db"
    shutil.copy(src, db)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("PRAGMA journal_mode = WAL")
    pid = conn.execute("SELECT id FROM persons WHERE name = ?", [names[0]]).fetchone()[0]
    gone = face_fragments(conn, "person_id = ?", [pid])
    with conn:
        conn.execute("DELETE FROM faces WHERE person_id = ?", [pid])
        conn.execute("DELETE FROM persons WHERE id = ?", [pid])
    data = all_bytes(db)
    conn.close()
    found = sum(frag in data for frags in gone.values() for frag in frags)
    assert found > 0 and names[0].encode() in data


@pytest.mark.timeout(400)
def test_erasure_leaves_no_bytes_in_any_gallery_file(real_gallery, tmp_path: Path):
    """delete, forget, delete --face, merge and rename through the CLI, while another connection
    (the app) holds the gallery open; then every byte of .db, -wal and -shm is scanned."""
    src, (p0, p1, p2, p3, p4) = real_gallery
    db = tmp_path / "people.db"
    shutil.copy(src, db)
    conn = sqlite3.connect(db)
    ids = {n: conn.execute("SELECT id FROM persons WHERE name = ?", [n]).fetchone()[0] for n in (p0, p1, p2, p3, p4)}
    frags = {n: face_fragments(conn, "person_id = ?", [ids[n]]) for n in ids}
    conn.close()
    one_face = min(frags[p2])

    holder = Gallery.open_for_reembed(db)  # the desktop app, still running
    try:
        facescope("gallery", "delete", "--gallery", db, p0)
        facescope("gallery", "forget", "--gallery", db, p1)
        facescope("gallery", "delete", "--gallery", db, "--face", one_face)
        facescope("gallery", "merge", "--gallery", db, p3, p2)
        facescope("gallery", "rename", "--gallery", db, p2, "Zed Quux")
        assert holder.refresh() and sorted(p.name for p in holder.persons()) == sorted([p4, "Zed Quux"])
        wal = Path(f"{db}-wal")
        assert wal.exists() and wal.stat().st_size == 0  # checkpointed and truncated, although held open
        data = all_bytes(db)
    finally:
        holder.close()

    def found(fragments: list[bytes]) -> int:
        return sum(f in data for f in fragments)

    for name in (p0, p1):  # erased people: no embedding piece, no crop piece, no name
        assert [found(f) for f in frags[name].values()] == [0] * len(frags[name]), name
    for erased_name in (p0, p1, p2, p3):  # deleted, forgotten, renamed away, merged away
        assert erased_name.encode() not in data and erased_name.casefold().encode() not in data, erased_name
    assert found(frags[p2][one_face]) == 0
    kept = {fid: f for n in (p2, p3, p4) for fid, f in frags[n].items() if fid != one_face}
    assert len(kept) >= 8
    # The scan finds what is there: every kept face, nearly every piece (a piece may straddle the
    # boundary where SQLite continues a long row on an overflow page, so it is not contiguous).
    hits = {fid: found(f) for fid, f in kept.items()}
    assert min(hits.values()) >= 6 and sum(hits.values()) >= 0.9 * sum(map(len, kept.values())), hits
    assert b"Zed Quux" in data and p4.encode() in data

    trail = json.loads(facescope("gallery", "audit", "--gallery", db, "--verify", "--json").stdout)
    assert trail["verified"] is True
    cli = [(e["action"], e["person_id"]) for e in trail["entries"] if e["frontend"] == "cli"]
    assert cli == [("delete_person", ids[p0]), ("delete_person", ids[p1]), ("delete_face", ids[p2]),
                   ("merge", ids[p3]), ("rename", ids[p2])]
    text = json.dumps(trail)
    assert not any(n in text for n in (p0, p1, p2, p3, p4, "Zed Quux"))  # ids and counts, never names


def test_cli_enroll_creates_private_folders(lfw, tmp_path: Path):
    db = tmp_path / "new" / "folder" / "people.db"
    images = sorted((lfw / "Abdullah_Gul").glob("*.jpg"))[:2]
    facescope("enroll", "--gallery", db, "--name", "Abdullah Gul", *images)
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "folder") == 0o700 and mode(db) == 0o600
    entries = json.loads(facescope("gallery", "audit", "--gallery", db, "--json").stdout)["entries"]
    assert [(e["action"], e["frontend"], e["details"].get("faces")) for e in entries] == \
        [("create", "cli", None), ("enroll", "cli", 2)]


# ------------------------------------------------------------------------ 4. audit trail
def test_audit_records_every_change_in_its_transaction(tmp_path: Path, rng):
    db = tmp_path / "g.db"
    with Gallery.open(db, EMB, DIM, frontend="gui") as g:
        g.enroll("Ada", unit(rng, 3), crops=crops_of(rng, 3))
        g.enroll("Bob", unit(rng, 2))
        bob = next(p.id for p in g.persons() if p.name == "Bob")
        g.add_person("Cy")
        with pytest.raises(DuplicatePersonError):
            g.rename_person("Cy", "ada")  # refused: rolled back, so no entry either
        g.rename_person("Cy", "Cyd")
        g.merge_persons("Bob", "Ada")
        g.delete_face(g.faces("Ada")[0].id)
        g.delete_person("Cyd")
        g.export(tmp_path / "copy.db")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            g.db.execute("UPDATE audit SET action = 'enroll' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            g.db.execute("DELETE FROM audit WHERE seq = 2")
        entries = g.audit_entries()
        assert g.verify_audit().ok
    assert [(e.seq, e.action) for e in entries] == list(enumerate(
        ["create", "enroll", "enroll", "add_person", "rename", "merge", "delete_face", "delete_person", "export"],
        start=1))
    assert {e.frontend for e in entries} == {"gui"}
    assert entries[5].person_id == bob and entries[5].details == {"faces": 2, "into": entries[1].person_id}
    assert entries[1].details["faces"] == 3 and entries[8].details == {"persons": 1, "faces": 4}
    raw = sqlite3.connect(db).execute("SELECT * FROM audit").fetchall()
    assert not any(n in repr(raw) for n in ("Ada", "Bob", "Cy")), "names must not enter the audit trail"
    with Gallery.open(tmp_path / "copy.db", EMB, DIM) as copy:  # the export carries the trail, export included
        assert [e.action for e in copy.audit_entries()][-1] == "export" and copy.verify_audit().ok
    with pytest.raises(ValueError, match="frontend"):
        Gallery.open(db, EMB, DIM, frontend="web")


def test_read_only_gallery_refuses_changes_with_one_clear_error(tmp_path: Path, rng):
    from engine.gallery import GalleryError

    db = tmp_path / "g.db"
    with Gallery.open(db, EMB, DIM) as g:
        g.enroll("Ada", unit(rng, 1))
        g.db.execute("PRAGMA query_only = ON")  # what SQLite reports for a file or medium it may not write
        for change in (lambda: g.enroll("Bob", unit(rng, 1)), lambda: g.export(tmp_path / "copy.db")):
            with pytest.raises(GalleryError, match="read-only here"):
                change()
        assert [e.action for e in g.audit_entries()] == ["create", "enroll"] and not (tmp_path / "copy.db").exists()


def tamper(db: Path, *sql: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for trigger in ("audit_no_update", "audit_no_delete"):
            conn.execute(f"DROP TRIGGER {trigger}")
        for statement in sql:
            conn.execute(statement)
    conn.close()


def test_audit_verify_names_the_removed_or_edited_entry(tmp_path: Path, rng):
    db = tmp_path / "g.db"
    with Gallery.open(db, EMB, DIM) as g:
        for name in ("Ada", "Bob", "Cy", "Dee"):
            g.enroll(name, unit(rng, 1))
        g.delete_person("Bob")  # entries: 1 create, 2-5 enroll, 6 delete_person
    cases = {
        "edited": ("UPDATE audit SET details = '{\"faces\":9}' WHERE seq = 3", "entry 3 was edited"),
        "removed": ("DELETE FROM audit WHERE seq = 4", "entry 4 is missing"),
        "tail": ("DELETE FROM audit WHERE seq = 6", "entry 6 was removed from the end"),
    }
    for case, (sql, message) in cases.items():
        copy = tmp_path / f"{case}.db"
        shutil.copy(db, copy)
        tamper(copy, sql)
        out = facescope("gallery", "audit", "--gallery", copy, "--verify", check=False)
        assert out.returncode == 1 and message in out.stdout, (case, out.stdout, out.stderr)
    out = facescope("gallery", "audit", "--gallery", tmp_path / "edited.db", "--verify", "--json", check=False)
    report = json.loads(out.stdout)
    assert out.returncode == 1 and (report["verified"], report["first_bad_entry"]) == (False, 3)
    ok = facescope("gallery", "audit", "--gallery", db, "--verify")
    assert "verified: 6 entries" in ok.stdout and "delete_person" in ok.stdout

    # An editor who also recomputes that entry's hash still breaks the link to the next entry.
    rehashed = tmp_path / "rehashed.db"
    shutil.copy(db, rehashed)
    conn = sqlite3.connect(rehashed)
    seq, at, action, frontend, user, pid, _, prev = conn.execute(
        "SELECT seq, at, action, frontend, user, person_id, details, prev FROM audit WHERE seq = 3").fetchone()
    forged = audit.entry_hash(prev, seq, at, action, frontend, user, pid, '{"faces":9}')
    conn.close()
    tamper(rehashed, f"UPDATE audit SET details = '{{\"faces\":9}}', hash = '{forged}' WHERE seq = 3")
    with Gallery.open(rehashed, EMB, DIM) as g:
        check = g.verify_audit()
    assert not check.ok and check.first_bad == 4 and "entry 4 does not follow" in check.problems[0]


# --------------------------------------------------------------------- schema migration
V1_SCHEMA = """
CREATE TABLE [meta] ([id] INTEGER PRIMARY KEY, [schema_version] INTEGER NOT NULL, [embedder_id] TEXT NOT NULL,
    [embedding_dim] INTEGER NOT NULL, [created_at] TEXT NOT NULL, [updated_at] TEXT);
CREATE TABLE [persons] ([id] INTEGER PRIMARY KEY, [name] TEXT NOT NULL, [name_key] TEXT NOT NULL,
    [created_at] TEXT NOT NULL, [updated_at] TEXT NOT NULL);
CREATE UNIQUE INDEX [persons_name_unique] ON [persons] ([name]);
CREATE UNIQUE INDEX [persons_name_key_unique] ON [persons] ([name_key]);
CREATE TABLE [faces] ([id] INTEGER PRIMARY KEY, [person_id] INTEGER NOT NULL REFERENCES [persons]([id])
    ON DELETE CASCADE, [embedding] BLOB NOT NULL, [embedder_id] TEXT NOT NULL, [crop_jpeg] BLOB, [quality] FLOAT,
    [source] TEXT, [created_at] TEXT NOT NULL, [updated_at] TEXT NOT NULL);
CREATE INDEX [faces_person_id] ON [faces] ([person_id]);
PRAGMA application_id = 1179861840;
"""  # schema v1 as the committed code (sqlite-utils) wrote it; 1179861840 = 0x46534350 "FSCP"


def make_v1_gallery(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A v1 gallery (Ada 2 faces, Bob 1) in WAL mode, plus a person deleted the v1 way (no secure_delete)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    # v1 never set it; Debian's SQLite defaults it ON, Python's own Windows/macOS builds do not
    conn.execute("PRAGMA secure_delete = OFF")
    conn.executescript(V1_SCHEMA)
    now = "2025-01-01T00:00:00.000000+00:00"
    data = {"Ada": unit(rng, 2), "Bob": unit(rng, 1), "Gone Person": unit(rng, 3)}
    with conn:
        conn.execute("INSERT INTO meta VALUES (1, 1, ?, ?, ?, ?)", [EMB, DIM, now, now])
        for pid, (name, emb) in enumerate(data.items(), start=1):
            conn.execute("INSERT INTO persons VALUES (?, ?, ?, ?, ?)", [pid, name, name.casefold(), now, now])
            for vec in emb:
                conn.execute("INSERT INTO faces (person_id, embedding, embedder_id, created_at, updated_at) "
                             "VALUES (?, ?, ?, ?, ?)", [pid, vec.astype("<f4").tobytes(), EMB, now, now])
    with conn:
        conn.execute("DELETE FROM faces WHERE person_id = 3")
        conn.execute("DELETE FROM persons WHERE id = 3")
    conn.close()
    return data


def test_v1_gallery_migrates_in_one_step_and_loses_nothing(tmp_path: Path, rng):
    db = tmp_path / "old.db"
    data = make_v1_gallery(db, rng)
    gone = [v.astype("<f4").tobytes() for v in data["Gone Person"]]
    before = db.read_bytes()
    assert any(b in before for b in gone) and b"Gone Person" in before  # v1 left the deleted person behind
    meta = Gallery.inspect(db)
    assert (meta.schema_version, meta.persons, meta.faces) == (1, 2, 3)
    assert db.read_bytes() == before  # inspecting never writes
    refused = facescope("gallery", "audit", "--gallery", db, check=False)
    assert refused.returncode == 2 and "without an audit trail" in refused.stderr and db.read_bytes() == before

    with Gallery.open(db, EMB, DIM) as g:
        assert Gallery.inspect(db).schema_version == SCHEMA_VERSION == 3
        assert [(e.seq, e.action, e.details) for e in g.audit_entries()] == \
            [(1, "migrate", {"from_version": 1, "to_version": 3})]
        assert g.verify_audit().ok
        assert sorted(p.name for p in g.persons()) == ["Ada", "Bob"]
        _, ada = g.embeddings("Ada")
        np.testing.assert_array_equal(ada, data["Ada"])
        g.enroll("Cy", unit(rng, 1))  # and it keeps working as a v2 gallery
        assert [e.action for e in g.audit_entries()] == ["migrate", "enroll"]
    after = all_bytes(db)
    assert not any(b in after for b in gone) and b"Gone Person" not in after  # the one-off VACUUM cleared it
    with Gallery.open(db, EMB, DIM) as g:  # a second open does not migrate again
        assert [e.action for e in g.audit_entries()] == ["migrate", "enroll"]


def test_newer_schema_is_refused_untouched(tmp_path: Path, rng):
    db = tmp_path / "g.db"
    with Gallery.open(db, EMB, DIM) as g:
        g.enroll("Ada", unit(rng, 1))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET schema_version = ?", [SCHEMA_VERSION + 1])
    conn.close()
    before = db.read_bytes()
    from engine.gallery import GalleryFormatError
    with pytest.raises(GalleryFormatError, match="newer facescope"):
        Gallery.open(db, EMB, DIM)
    assert db.read_bytes() == before


# ------------------------------------------------------------------- 5. URL passwords
PASSWORD, TOKEN = "S3cretPw0rd", "T0kenXyz42"


def secret_forms() -> list[str]:
    """The password and token as they could leak: plain, percent-encoded, base64 in a Basic header."""
    return [PASSWORD, TOKEN, base64.b64encode(f"alice:{PASSWORD}".encode()).decode()]


class Fake401Rtsp:
    """A TCP server speaking just enough RTSP to refuse every request with 401 Unauthorized, so
    FFmpeg goes through its whole credential exchange (and gets the password) before failing."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while chunk := conn.recv(4096):
                buf += chunk
                while b"\r\n\r\n" in buf:
                    request, buf = buf.split(b"\r\n\r\n", 1)
                    self.requests.append(request)
                    cseq = [line for line in request.split(b"\r\n") if line.lower().startswith(b"cseq")]
                    conn.sendall(b"RTSP/1.0 401 Unauthorized\r\n" + b"".join(c + b"\r\n" for c in cseq[:1])
                                 + b'WWW-Authenticate: Basic realm="cam"\r\n\r\n')

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def rtsp401():
    server = Fake401Rtsp()
    yield server
    server.close()


def test_mask_and_redact_helpers():
    from engine.capture.source import mask_url, parse_source, redact

    url = f"rtsp://alice:{PASSWORD}@cam.local:554/live?token={TOKEN}&ch=1"
    assert mask_url(url) == "rtsp://alice:***@cam.local:554/live?token=***&ch=1"
    spec = parse_source(url)
    assert not any(s in text for s in secret_forms() for text in (repr(spec), str(spec), spec.display))
    message = f"ffmpeg: could not open '{url}' (auth {PASSWORD}, tok%3D{TOKEN})"
    assert redact(message, url) == ("ffmpeg: could not open 'rtsp://alice:***@cam.local:554/live?token=***&ch=1' "
                                    "(auth ***, tok%3D***)")
    assert redact("nothing secret", "rtsp://cam/live") == "nothing secret"


def test_failing_password_source_in_process(rtsp401, caplog, capfd):
    """Capture of a URL whose password the server refuses: log records (all levels), FFmpeg's and
    OpenCV's own stderr, the state reason and the reprs never contain the secrets."""
    from engine.capture import Capture, CaptureConfig
    from engine.capture.reader import open_capture
    from engine.capture.source import SourceError

    url = f"rtsp://alice:{PASSWORD}@127.0.0.1:{rtsp401.port}/live?token={TOKEN}"
    cfg = CaptureConfig(open_timeout_s=3, backoff_initial_s=0.2, backoff_max_s=0.4, max_reconnect_s=1.0)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(SourceError) as err:
            open_capture(url, 3, 3)
        cap = Capture(url, cfg)
        cap.start()
        deadline = time.monotonic() + 60
        while cap.stats().state.value != "failed" and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = cap.stats()
        cap.stop()
    assert stats.state.value == "failed"
    assert any(b"Authorization" in r for r in rtsp401.requests)  # FFmpeg really sent the credentials
    out, errout = capfd.readouterr()
    texts = [str(err.value), stats.reason, repr(stats), repr(cap.spec), out, errout,
             *(r.getMessage() for r in caplog.records), *(str(r.args) for r in caplog.records)]
    leaks = [t for t in texts for s in secret_forms() if s in t]
    assert not leaks, leaks
    assert "alice:***@" in stats.reason and "alice:***@" in str(err.value)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cli_run_with_password_url_leaks_nothing(rtsp401, tmp_path: Path):
    """``facescope run`` on a password URL the server refuses: it reconnects for a minute, then
    fails with one error line. stdout, stderr and every file it wrote are grepped."""
    url = f"rtsp://alice:{PASSWORD}@127.0.0.1:{rtsp401.port}/live?token={TOKEN}"
    result = facescope("run", "--source", url, "--events", tmp_path / "events.jsonl", "--out", tmp_path / "out.avi",
                       "--frames", "5", check=False, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "rtsp://alice:***@127.0.0.1" in result.stderr and "token=***" in result.stderr
    outputs = {"stdout": result.stdout, "stderr": result.stderr}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            outputs[str(path)] = path.read_bytes().decode("latin-1")
    leaks = [(where, s) for where, text in outputs.items() for s in secret_forms() if s in text]
    assert not leaks, leaks


def test_cli_main_in_process_leaves_the_default_frontend_as_it_was():
    """`main()` records "cli" for the galleries it opens, and only for its own run: a script or a
    test calling it in-process keeps its own front end ("api") afterwards."""
    from engine.cli.main import main

    assert audit.default_frontend() == "api"
    assert main(["models"]) == 0
    assert audit.default_frontend() == "api"
