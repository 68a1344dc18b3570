"""``facescope gallery encrypt | decrypt | rekey``: rewrite a gallery file under a new key, in place, atomically.

One procedure for all three (``change_key``):

1. Take the gallery for ourselves: switch it out of WAL (``journal_mode = DELETE``, which SQLite
   refuses while any other process has the file open: GalleryBusyError, nothing changed; it
   also checkpoints the -wal into the file and removes -wal/-shm), then hold an EXCLUSIVE lock
   (``locking_mode = EXCLUSIVE``) until the file has been swapped.
2. ``sqlcipher_export`` the whole database into a private temp file beside it, under the new
   key (none for decrypt); copy the header's application_id and user_version, which export
   does not carry; append the audit entry there.
3. Verify the copy with a fresh connection and the new key: ``integrity_check``, the person
   and face counts, the audit chain. Any failure removes the temp file: the gallery is as before.
4. Write the new key description to ``<gallery>.fskey-new``, rename the copy over the gallery
   (atomic), then promote ``.fskey-new`` to ``.fskey`` (or, for decrypt, delete both).

A kill between the renames of step 4 leaves ``.fskey-new`` behind; ``keys.settle`` (called by every
open) then tries the pending description first and the committed one second, keeps whichever
decrypts the file and drops the other: the gallery is always either the old or the new one.
Limit: for a keyring gallery being re-keyed to another keyring key, the keyring holds one entry,
so a kill in that window loses the old key (use a passphrase rekey if that matters).

What this cannot do: the old plaintext file's blocks are unlinked, not overwritten; on SSDs
and copy-on-write file systems overwriting in place is not reliable anyway. Encrypt a gallery
before enrolling real people (``facescope enroll`` into an encrypted empty gallery), or rely on
full-disk encryption for the old blocks.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from engine.util.fsio import atomic_path

from . import audit, crypto
from .crypto import KeyInfo
from .errors import GalleryBusyError, GalleryError, GalleryNotFoundError
from .keys import pending, settle, write_plain_marker


def change_key(path: str | Path, target: str | None, *, frontend: str = "cli",
               new_passphrase: str | None = None) -> str:
    """Encrypt (plain -> ``target``), rekey (encrypted -> ``target``) or decrypt (``target`` None) ``path``.

    ``target``: "passphrase" or "keyring". The current passphrase comes from FACESCOPE_GALLERY_PASSPHRASE
    (else a prompt on a terminal); the new one is ``new_passphrase``, else FACESCOPE_GALLERY_PASSPHRASE for
    an encrypt and FACESCOPE_GALLERY_NEW_PASSPHRASE for a rekey, else a prompt (asked twice).
    Returns the action done ("encrypt", "decrypt", "rekey"). Errors leave the gallery as it was.
    """
    from .schema import SCHEMA_VERSION, probe
    from .store import Gallery

    path = Path(path)
    if target not in (None, "passphrase", "keyring"):
        raise ValueError(f"key target must be 'passphrase', 'keyring' or None, got {target!r}")
    crypto.module()  # "needs the secure extra" before anything else
    meta = probe(path)  # wrong/missing current key, not a gallery: one clear error here
    if meta is None:
        raise GalleryNotFoundError(f"gallery {path} does not exist or is empty")
    if meta.schema_version < SCHEMA_VERSION:  # bring it up to date first (the audit entry needs the trail)
        Gallery.open(path, meta.embedder_id, meta.embedding_dim, create=False, frontend=frontend).close()
    old_key = settle(path) if crypto.is_encrypted(path) else None
    if old_key is None and target is None:
        raise GalleryError(f"gallery {path} is not encrypted; nothing to decrypt")
    action = "encrypt" if old_key is None else ("decrypt" if target is None else "rekey")
    info, new_key = _new_key(path, target, action, new_passphrase)
    new_file = pending(path)
    conn = crypto.connect(str(path), old_key)
    try:
        _take(conn, path)
        with atomic_path(path, private=True) as tmp:
            persons, faces = _export(conn, tmp, new_key)
            _finish_copy(tmp, new_key, action, frontend, target, persons, faces)
            try:
                if info is None:
                    write_plain_marker(new_file)
                else:
                    crypto.write_info(new_file, info)
                if target == "keyring":
                    crypto.keyring_set(path, new_key)
            except BaseException:
                new_file.unlink(missing_ok=True)
                raise
    finally:
        conn.close()
    # The file is the new one from here on (or, if the swap itself failed, still the old one): whatever
    # happens below, .fskey-new stays until it is promoted, and keys.settle sorts out either case.
    if info is None:
        crypto.sidecar(path).unlink(missing_ok=True)
        new_file.unlink()
    else:
        os.replace(new_file, crypto.sidecar(path))
    if old_key is not None and target != "keyring" and _was_keyring(path, old_key):
        crypto.keyring_set(path, None)
    return action


def _was_keyring(path: Path, old_key: bytes) -> bool:
    try:
        return crypto.keyring_get(path) == old_key
    except GalleryError:
        return False


def _new_key(path: Path, target: str | None, action: str,
             phrase: str | None) -> tuple[KeyInfo | None, bytes | None]:
    if target is None:
        return None, None
    if target == "keyring":
        crypto.keyring_check(path)  # before the file is touched: no keyring here is one clear error
        return KeyInfo("keyring"), secrets.token_bytes(32)
    info = crypto.new_passphrase_info()
    env = crypto.NEW_PASSPHRASE_ENV if action == "rekey" else crypto.PASSPHRASE_ENV
    if phrase is None:
        phrase = crypto.passphrase_from_user(path, env, confirm=True, what="new" if action == "rekey" else "")
    return info, crypto.derive(info, path, crypto.check_passphrase(phrase))


def _take(conn, path: Path) -> None:
    mod = crypto.module()
    try:
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")  # the lock is kept after COMMIT, until close (exclusive locking mode)
        conn.execute("COMMIT")
    except mod.OperationalError as exc:
        mode = str(exc)
    if mode != "delete":
        raise GalleryBusyError(f"gallery {path} is open in another program ({mode}); close it and try again")


def _export(conn, tmp: Path, new_key: bytes | None) -> tuple[int, int]:
    counts = conn.execute("SELECT (SELECT count(*) FROM persons), (SELECT count(*) FROM faces)").fetchone()
    crypto.copy_to(conn, tmp, new_key)  # we hold the exclusive lock: the counts are those of the copy
    return int(counts[0]), int(counts[1])


def _finish_copy(tmp: Path, key: bytes | None, action: str, frontend: str, target: str | None, persons: int,
                 faces: int) -> None:
    """Audit entry into the copy, then check it with a fresh connection (anything wrong: the copy is dropped)."""
    out = crypto.connect(str(tmp), key)
    try:
        out.execute("BEGIN IMMEDIATE")
        audit.append(out, action, frontend, cipher="sqlcipher4" if key else None, key_source=target)
        out.execute("COMMIT")
    finally:
        out.close()
    check = crypto.connect(str(tmp), key)
    try:
        problems = [r[0] for r in check.execute("PRAGMA integrity_check").fetchall() if r[0] != "ok"]
        got = check.execute("SELECT (SELECT count(*) FROM persons), (SELECT count(*) FROM faces)").fetchone()
        trail = audit.verify(check)
    finally:
        check.close()
    if problems or tuple(got) != (persons, faces) or not trail.ok:
        raise GalleryError(f"the re-keyed copy failed its check ({problems[:3]}, counts {tuple(got)} vs "
                           f"{(persons, faces)}, audit {trail.problems[:1]}); the gallery is unchanged")
