"""Encryption at rest (SQLCipher, the ``secure`` extra): nothing readable in any gallery file, a wrong
or missing key refused with the file untouched, rekey / decrypt round trips, an interrupted key change
settled on the next open, the plain install without sqlcipher3, and the CLI end to end with
FACESCOPE_GALLERY_PASSPHRASE. Real SQLCipher files, the real CLI in child processes, real LFW faces."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sqlcipher3", reason="encryption at rest needs the secure extra (sqlcipher3-binary)")

from engine.gallery import Gallery, crypto, keys, rekey
from engine.gallery.errors import GalleryBusyError, GalleryKeyError
from tests.conftest import shared_path
from tests.test_cli import REPO, facescope
from tests.test_gallery_trust import all_bytes, companions, crops_of, entropy_fragments, mode, unit

EMB, DIM = "test-emb", 8
PASS, NEW_PASS = "correct horse 1", "battery staple 2"
ENV = crypto.PASSPHRASE_ENV


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def passphrase(monkeypatch):
    monkeypatch.setenv(ENV, PASS)
    monkeypatch.delenv(crypto.NEW_PASSPHRASE_ENV, raising=False)
    return PASS


def plain_gallery(path: Path, rng, people=("Ada Lovelace", "Grace Hopper"), k: int = 3) -> list[bytes]:
    """A plaintext gallery; returns byte fragments (whole embeddings, crop pieces, names) a scan must not find."""
    frags: list[bytes] = []
    with Gallery.open(path, EMB, DIM) as g:
        for name in people:
            g.enroll(name, unit(rng, k), crops=crops_of(rng, k))
            frags.append(name.encode())
    conn = sqlite3.connect(path)
    for emb, jpeg in conn.execute("SELECT embedding, crop_jpeg FROM faces"):
        frags += [emb, *entropy_fragments(jpeg)]
    conn.close()
    return frags


def found(data: bytes, frags: list[bytes]) -> int:
    return sum(f in data for f in frags)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---------------------------------------------------------------------------------- at rest
def test_encrypted_gallery_files_hold_no_names_embeddings_or_crops(tmp_path: Path, rng, passphrase):
    db = tmp_path / "people.db"
    frags = plain_gallery(db, rng)
    assert found(all_bytes(db), frags) >= 0.9 * len(frags)  # control: the scan sees the plaintext

    out = facescope("gallery", "encrypt", "--gallery", db).stdout
    assert "encrypted" in out and mode(db) == 0o600 and mode(crypto.sidecar(db)) == 0o600
    assert found(all_bytes(db), frags) == 0 and not db.read_bytes().startswith(b"SQLite format 3")
    # new data, written through the WAL while the gallery is open, is encrypted too
    with Gallery.open(db, EMB, DIM) as g:
        new = unit(rng, 2)
        g.enroll("Katherine Johnson", new, crops=crops_of(rng, 2))
        assert all(p.exists() for p in companions(db)) and Path(f"{db}-wal").stat().st_size > 0
        data = all_bytes(db)
        assert len(g.index) == 8 and g.verify_audit().ok
    assert found(data, frags + [b"Katherine Johnson", new[0].tobytes(), new[1].tobytes()]) == 0
    # the key file holds the salt and KDF parameters, never the key
    side = crypto.sidecar(db).read_text()
    key = crypto.derive(crypto.read_info(crypto.sidecar(db)), db, PASS)
    assert key.hex() not in side and PASS not in side and json.loads(side)["kdf"] == "scrypt"


def test_wrong_or_missing_key_is_one_clear_error_and_changes_nothing(tmp_path: Path, rng, passphrase, monkeypatch):
    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    facescope("gallery", "encrypt", "--gallery", db)
    before = snapshot(tmp_path)
    monkeypatch.setenv(ENV, "not the passphrase")
    for args in (("gallery", "list", "--gallery", db), ("gallery", "delete", "--gallery", db, "Ada Lovelace"),
                 ("gallery", "decrypt", "--gallery", db), ("gallery", "audit", "--gallery", db, "--verify")):
        bad = facescope(*args, check=False)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert "wrong passphrase or key" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    with pytest.raises(GalleryKeyError, match="wrong passphrase"):
        Gallery.open(db, EMB, DIM)
    monkeypatch.delenv(ENV)  # no key at all; the child has no terminal to ask on
    bad = facescope("gallery", "list", "--gallery", db, check=False)
    assert bad.returncode == 2 and ENV in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert snapshot(tmp_path) == before  # byte-identical, and no -wal/-shm/-journal appeared


def test_rekey_then_decrypt_round_trip(tmp_path: Path, rng, passphrase, monkeypatch):
    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    with Gallery.open(db, EMB, DIM) as g:
        ids, emb = g.embeddings()
        names = [p.name for p in g.persons()]
    facescope("gallery", "encrypt", "--gallery", db)
    monkeypatch.setenv(crypto.NEW_PASSPHRASE_ENV, NEW_PASS)
    assert "re-keyed" in facescope("gallery", "rekey", "--gallery", db).stdout
    old = facescope("gallery", "list", "--gallery", db, check=False)
    assert old.returncode == 2 and "wrong passphrase" in old.stderr  # the old passphrase no longer opens it
    monkeypatch.setenv(ENV, NEW_PASS)
    assert "Grace Hopper" in facescope("gallery", "list", "--gallery", db).stdout
    assert "decrypted" in facescope("gallery", "decrypt", "--gallery", db).stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.db"]  # no key file, no leftovers
    monkeypatch.delenv(ENV)
    conn = sqlite3.connect(db)  # the standard library reads it again
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Gallery.open(db, EMB, DIM) as g:
        ids2, emb2 = g.embeddings()
        assert [p.name for p in g.persons()] == names and np.array_equal(ids, ids2) and np.array_equal(emb, emb2)
        assert [e.action for e in g.audit_entries()][-3:] == ["encrypt", "rekey", "decrypt"]
        assert g.verify_audit().ok
        assert {e.details.get("key_source") for e in g.audit_entries()[-3:]} == {"passphrase", None}


def test_encrypted_export_stays_encrypted_and_imports(tmp_path: Path, rng, passphrase):
    db, out, other = tmp_path / "people.db", tmp_path / "copy.db", tmp_path / "other.db"
    frags = plain_gallery(db, rng)
    facescope("gallery", "encrypt", "--gallery", db)
    facescope("gallery", "export", "--gallery", db, out)
    assert crypto.sidecar(out).is_file() and found(out.read_bytes(), frags) == 0
    plain_gallery(other, rng, people=("Alan Turing",))
    facescope("gallery", "import", "--gallery", other, out)  # an encrypted source into a plain gallery
    assert Gallery.inspect(other).persons == 3


# ------------------------------------------------------------------------- interruptions
def test_interrupted_key_changes_settle_to_old_or_new(tmp_path: Path, rng, passphrase):
    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    rekey.change_key(db, "passphrase")
    # killed after the file was swapped, before the key file was promoted: .fskey-new is the truth
    os.replace(crypto.sidecar(db), keys.pending(db))
    assert Gallery.inspect(db).faces == 6
    assert crypto.sidecar(db).is_file() and not keys.pending(db).exists()
    # killed after writing .fskey-new, before the swap: the committed key file is the truth
    crypto.write_info(keys.pending(db), crypto.new_passphrase_info())
    assert Gallery.inspect(db).faces == 6 and not keys.pending(db).exists()
    # a decrypt killed between the swap and the removal of the key file
    saved = crypto.sidecar(db).read_bytes()
    rekey.change_key(db, None)
    crypto.sidecar(db).write_bytes(saved)
    keys.write_plain_marker(keys.pending(db))
    assert Gallery.inspect(db).faces == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.db"]


def test_gallery_in_use_by_another_process_is_not_rekeyed(tmp_path: Path, rng, passphrase):
    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom engine.gallery import Gallery\n"
                               f"g = Gallery.open({str(db)!r}, {EMB!r}, {DIM})\nprint('open', flush=True)\n"
                               "sys.stdin.read()"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        t0 = time.monotonic()
        with pytest.raises(GalleryBusyError, match="open in another program"):
            rekey.change_key(db, "passphrase")
        assert time.monotonic() - t0 < 30
    finally:
        holder.communicate("", timeout=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.db"]  # no key file, no temp file
    assert Gallery.inspect(db).faces == 6


def test_plain_install_without_sqlcipher(tmp_path: Path, rng):
    """sqlcipher3 unimportable (no secure extra): plain galleries work, encrypt names what to install."""
    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    code = ("import sys\nsys.modules['sqlcipher3'] = None\nsys.argv = ['facescope'] + sys.argv[1:]\n"
            "from engine.cli.main import main\nsys.exit(main())")

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    assert "Ada Lovelace" in run("gallery", "list", "--gallery", db).stdout
    bad = run("gallery", "encrypt", "--gallery", db)
    assert bad.returncode == 2 and "facescope[secure]" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.db"]


def test_keyring_unavailable_is_a_clear_error(tmp_path: Path, rng, monkeypatch):
    """This headless machine has no keyring backend: --keyring refuses and changes nothing (with one, it stores
    a random key under service 'facescope' and the gallery's absolute path)."""
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    if not isinstance(keyring.get_keyring(), FailKeyring):
        pytest.skip("a real OS keyring is available here; this test is about its absence")
    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    before = snapshot(tmp_path)
    bad = facescope("gallery", "encrypt", "--gallery", db, "--keyring", check=False)
    assert bad.returncode == 2 and "keyring" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    after = snapshot(tmp_path)  # (the read-only probe may leave an empty -wal/-shm beside a WAL gallery)
    assert after["people.db"] == before["people.db"] and set(after) <= {"people.db", "people.db-wal", "people.db-shm"}
    assert not after.get("people.db-wal")


# -------------------------------------------------------------------------- CLI end to end
@pytest.mark.timeout(400)
def test_cli_enroll_identify_with_passphrase(tmp_path: Path, passphrase):
    lfw = shared_path("data", "lfw", "lfw-deepfunneled")
    db = tmp_path / "g.db"
    aaron = sorted((lfw / "Aaron_Peirsol").glob("*.jpg"))
    facescope("enroll", "--gallery", db, "--name", "Aaron Peirsol", *aaron[:2])
    facescope("gallery", "encrypt", "--gallery", db)
    gul = sorted((lfw / "Abdullah_Gul").glob("*.jpg"))
    assert "enrolled 2 face(s)" in facescope("enroll", "--gallery", db, "--name", "Abdullah Gul", *gul[:2]).stdout
    res = tmp_path / "ident.json"
    facescope("identify", "--gallery", db, aaron[3], gul[3], "--json", res)
    names = {Path(f["image"]).name: f["name"] for f in json.loads(res.read_text())["faces"]}
    assert names == {aaron[3].name: "Aaron Peirsol", gul[3].name: "Abdullah Gul"}
    assert b"Aaron" not in all_bytes(db) and b"Abdullah" not in all_bytes(db)
    trail = json.loads(facescope("gallery", "audit", "--gallery", db, "--verify", "--json").stdout)
    assert trail["verified"] and [e["action"] for e in trail["entries"]] == ["create", "enroll", "encrypt", "enroll"]


def test_gui_without_key_gets_the_one_error_and_no_prompt(tmp_path: Path, rng, passphrase, monkeypatch):
    """The desktop (front end "gui") never blocks on a terminal prompt: a missing key is the one clear
    error, which the window shows (MainWindow.ensure_engine catches it and stays usable)."""
    from engine.gallery import audit

    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    rekey.change_key(db, "passphrase")
    monkeypatch.delenv(ENV)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)  # even when started from a terminal
    monkeypatch.setattr("getpass.getpass", lambda *a: pytest.fail("the GUI must not prompt on stdin"))
    monkeypatch.setattr(audit, "_default_frontend", "gui")
    with pytest.raises(GalleryKeyError, match=ENV):
        Gallery.open(db, EMB, DIM)


def test_keyring_key_round_trip(tmp_path: Path, rng, monkeypatch):
    """The keyring path with keyring's own backend API; a dict stands in for the OS store, which this
    headless machine lacks. The key lives under service 'facescope' and the gallery's absolute path."""
    import keyring
    from keyring.backend import KeyringBackend
    from keyring.errors import PasswordDeleteError

    class MemoryKeyring(KeyringBackend):
        priority = 1
        store: dict = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            if self.store.pop((service, username), None) is None:
                raise PasswordDeleteError("no such entry")

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.delenv(ENV, raising=False)
    try:
        db = tmp_path / "people.db"
        frags = plain_gallery(db, rng)
        assert rekey.change_key(db, "keyring") == "encrypt"
        stored = MemoryKeyring.store[("facescope", str(db.resolve()))]
        assert json.loads(crypto.sidecar(db).read_text())["source"] == "keyring"
        assert stored not in crypto.sidecar(db).read_text() and found(all_bytes(db), frags) == 0
        with Gallery.open(db, EMB, DIM) as g:  # no passphrase needed
            assert len(g.index) == 6
        MemoryKeyring.store[("facescope", str(db.resolve()))] = "00" * 32
        with pytest.raises(GalleryKeyError, match="wrong passphrase or key"):
            Gallery.inspect(db)
        MemoryKeyring.store[("facescope", str(db.resolve()))] = stored
        assert rekey.change_key(db, None) == "decrypt"
        assert MemoryKeyring.store == {} and Gallery.inspect(db).faces == 6
    finally:
        keyring.set_keyring(previous)


def test_cli_on_a_terminal_asks_for_the_passphrase_once(tmp_path: Path, rng, passphrase, monkeypatch):
    """No FACESCOPE_GALLERY_PASSPHRASE, a real pseudo-terminal: one prompt, though probe and open both need the key."""
    import pty

    db = tmp_path / "people.db"
    plain_gallery(db, rng)
    rekey.change_key(db, "passphrase")
    monkeypatch.delenv(ENV)
    pid, fd = pty.fork()
    if pid == 0:  # the child: facescope on the terminal
        os.chdir(REPO)
        os.execv(sys.executable, [sys.executable, "-m", "engine.cli.main", "gallery", "list", "--gallery", str(db)])
    out, end = b"", time.monotonic() + 120
    answered = False
    while time.monotonic() < end:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if not answered and b"passphrase for gallery" in out:
            os.write(fd, PASS.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert text.count("passphrase for gallery") == 1 and "Grace Hopper" in text and PASS not in text
