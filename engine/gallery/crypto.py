"""Encryption at rest of a gallery (opt-in): SQLCipher 4 through ``sqlcipher3`` (the ``secure`` extra).

Why SQLCipher rather than field encryption (AES-GCM per column): it encrypts every page of the
.db AND of its -wal (names, embeddings, crops, audit details, indexes, free pages) with
AES-256 plus a per-page HMAC, so nothing new can leak by being forgotten in a column list, and
the gallery code stays plain SQL. The cost is one C library (wheel) and ~3x the time of a raw
insert; measured numbers are in README "Privacy and data at rest".

Where the key comes from (``KeyInfo.source``), never from a file beside the gallery:

* ``keyring``: a random 256-bit key kept in the OS keyring, service ``facescope``, user name
  the gallery's absolute path (so a moved gallery needs ``gallery rekey`` from its old place,
  or its passphrase).
* ``passphrase``: ``FACESCOPE_GALLERY_PASSPHRASE`` or, for the CLI on a terminal, a prompt;
  stretched by scrypt (memory-hard: n=2^15, r=8, p=1, 32 MiB, ~0.1 s) with a random salt.

The salt and KDF parameters live in a small JSON sidecar, ``<gallery>.fskey``. It holds no
secret (a salt only stops precomputed guessing) and it must exist for both sources: the
keyring is often absent (headless machines, containers, CI), and the sidecar is how facescope
knows a file is encrypted at all without reading its bytes (an encrypted file has no header;
reading it with ``open()`` would drop this process's SQLite locks, see ``schema.probe``).
Losing the sidecar of a passphrase gallery loses the salt, hence the data: back it up with the
gallery (``gallery export`` of an encrypted gallery writes both).

SQLCipher is given the derived key raw (``x'...'``), so it runs no KDF of its own: opening costs
one scrypt per process (cached here), not one per connection.

Every connection to an encrypted gallery comes from ``sqlcipher3`` (probe, writer, readers):
mixing two SQLite libraries on one file in one process breaks POSIX locking, since each
library only tracks its own descriptors. sqlcipher3's exceptions do not derive from sqlite3's,
so callers catch ``errors("OperationalError")`` and friends.
"""
from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import secrets
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.util.fsio import atomic_write_json

from .errors import GalleryError, GalleryFormatError, GalleryKeyError

SIDECAR_SUFFIX = ".fskey"
PENDING_SUFFIX = ".fskey-new"  # written before an encrypt/rekey swaps the file; see keys.py
PASSPHRASE_ENV = "FACESCOPE_GALLERY_PASSPHRASE"
NEW_PASSPHRASE_ENV = "FACESCOPE_GALLERY_NEW_PASSPHRASE"
KEYRING_SERVICE = "facescope"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # 32 MiB and ~0.1 s per derivation
MIN_PASSPHRASE = 8
_FORMAT = "facescope-gallery-key/1"
_SECURE_HINT = "pip install 'facescope[secure]'"


@dataclass(frozen=True)
class KeyInfo:
    """What the sidecar says: where the key comes from and, for a passphrase, how to stretch it."""

    source: str  # "passphrase" | "keyring"
    salt: bytes = b""
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": _FORMAT, "cipher": "sqlcipher4", "source": self.source}
        if self.source == "passphrase":
            out.update(kdf="scrypt", salt=self.salt.hex(), n=self.n, r=self.r, p=self.p)
        return out


def sidecar(path: Path) -> Path:
    return Path(f"{path}{SIDECAR_SUFFIX}")


def is_encrypted(path: Path) -> bool:
    """True if ``path`` is an encrypted gallery (its sidecar exists; the file is not read)."""
    return sidecar(path).is_file() or Path(f"{path}{PENDING_SUFFIX}").is_file()


def read_info(file: Path) -> KeyInfo:
    try:
        raw = json.loads(file.read_text("utf-8"))
        if raw.get("format") != _FORMAT or raw.get("source") not in ("passphrase", "keyring"):
            raise ValueError(f"unknown format {raw.get('format')!r} / source {raw.get('source')!r}")
        if raw["source"] == "keyring":
            return KeyInfo("keyring")
        info = KeyInfo("passphrase", bytes.fromhex(raw["salt"]), int(raw["n"]), int(raw["r"]), int(raw["p"]))
        if len(info.salt) < 16 or info.n < 2**14 or info.r < 1 or info.p < 1:
            raise ValueError("salt or scrypt parameters too weak")
        return info
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GalleryFormatError(f"the key file {file} of an encrypted gallery is damaged ({exc})") from exc


def is_plain_marker(file: Path) -> bool:
    """A pending description saying "no key" (an interrupted decrypt, see rekey.py)."""
    try:
        return json.loads(file.read_text("utf-8")).get("source") == "none"
    except (OSError, ValueError, AttributeError):
        return False


def write_info(file: Path, info: KeyInfo) -> None:
    atomic_write_json(file, info.to_json(), private=True)


def new_passphrase_info() -> KeyInfo:
    return KeyInfo("passphrase", secrets.token_bytes(16))


# ---------------------------------------------------------------- the library
def module():
    """``sqlcipher3.dbapi2``, imported on first use; GalleryError naming the extra when it is missing."""
    try:
        from sqlcipher3 import dbapi2
    except ImportError as exc:
        raise GalleryError(f"encrypted galleries need the secure extra ({exc.name or 'sqlcipher3'} is not "
                           f"installed): {_SECURE_HINT}") from exc
    return dbapi2


def errors(name: str = "Error") -> tuple[type[BaseException], ...]:
    """``sqlite3.<name>`` plus sqlcipher3's class of that name when sqlcipher3 is loaded (for ``except``)."""
    mod = sys.modules.get("sqlcipher3.dbapi2")
    return (getattr(sqlite3, name),) if mod is None else (getattr(sqlite3, name), getattr(mod, name))


# ------------------------------------------------------------------- the key
@functools.lru_cache(maxsize=8)
def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=32)


def check_passphrase(passphrase: str) -> str:
    if len(passphrase) < MIN_PASSPHRASE:
        raise GalleryKeyError(f"a gallery passphrase needs at least {MIN_PASSPHRASE} characters")
    return passphrase


def passphrase_from_user(path: Path, env: str = PASSPHRASE_ENV, *, confirm: bool = False, what: str = "") -> str:
    """The passphrase from ``env``, else a prompt on a terminal (the CLI only: the GUI must not block on stdin)."""
    value = os.environ.get(env)
    if value:
        return value
    from . import audit

    if audit.default_frontend() != "cli" or not sys.stdin.isatty():
        raise GalleryKeyError(f"gallery {path} is encrypted with a passphrase: set {env} (or run facescope in a "
                              "terminal to be asked for it)" if not what else
                              f"set {env} to the {what} passphrase of gallery {path}")
    remembered = (str(Path(path).resolve()), env)
    if not confirm and remembered in _prompted:  # one prompt per process, though probe and connect both need it
        return _prompted[remembered]
    label = f"{what} passphrase" if what else "passphrase"
    value = getpass.getpass(f"{label} for gallery {path}: ")
    if confirm and getpass.getpass(f"repeat the {label}: ") != value:
        raise GalleryKeyError("the two passphrases differ; nothing was changed")
    if not confirm:
        _prompted[remembered] = value
    return value


_prompted: dict[tuple[str, str], str] = {}


def _keyring():
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError as exc:
        raise GalleryError(f"keyring galleries need the secure extra ({exc.name or 'keyring'} is not installed): "
                           f"{_SECURE_HINT}") from exc
    return keyring, KeyringError


def keyring_user(path: Path) -> str:
    return str(Path(path).resolve())


def keyring_get(path: Path) -> bytes:
    keyring, keyring_error = _keyring()
    try:
        value = keyring.get_password(KEYRING_SERVICE, keyring_user(path))
    except keyring_error as exc:  # no backend (headless), locked, refused
        raise GalleryKeyError(f"gallery {path} is encrypted with a key in the OS keyring, which is not available "
                              f"here ({exc})") from exc
    if not value:
        raise GalleryKeyError(f"gallery {path} is encrypted with a key in the OS keyring, but the keyring has no "
                              f"entry '{KEYRING_SERVICE}' / {keyring_user(path)} (moved gallery or another account?)")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise GalleryKeyError(f"the keyring entry of gallery {path} is not a facescope key") from exc


def keyring_check(path: Path) -> None:
    """GalleryKeyError unless an OS keyring is usable here (a read of this gallery's entry succeeds)."""
    keyring, keyring_error = _keyring()
    try:
        keyring.get_password(KEYRING_SERVICE, keyring_user(path))
    except keyring_error as exc:
        raise GalleryKeyError(f"no OS keyring is available here ({exc}); encrypt gallery {path} with a passphrase "
                              f"instead ({PASSPHRASE_ENV})") from exc


def keyring_set(path: Path, key: bytes | None) -> None:
    keyring, keyring_error = _keyring()
    try:
        if key is None:
            keyring.delete_password(KEYRING_SERVICE, keyring_user(path))
        else:
            keyring.set_password(KEYRING_SERVICE, keyring_user(path), key.hex())
    except keyring_error as exc:
        if key is not None:
            raise GalleryKeyError(f"cannot store the key of gallery {path} in the OS keyring ({exc}); use a "
                                  "passphrase instead") from exc


def derive(info: KeyInfo, path: Path, passphrase: str | None = None) -> bytes:
    """The 32-byte key for ``info``: from the keyring, or scrypt(passphrase given / from the user)."""
    if info.source == "keyring":
        return keyring_get(path)
    if passphrase is None:
        passphrase = passphrase_from_user(path)
    return _scrypt(passphrase, info.salt, info.n, info.r, info.p)


# ------------------------------------------------------------- connections
def key_sql(key: bytes) -> str:
    return f"x'{key.hex()}'"  # raw key: SQLCipher skips its own (PBKDF2) derivation


def connect(target: str, key: bytes | None, *, uri: bool = False, timeout: float = 5.0,
            label: str | None = None) -> Any:
    """A sqlcipher3 connection keyed with ``key`` (None: a plaintext file), key checked on page 1.

    GalleryKeyError on a wrong key; nothing is written to the file.
    """
    mod = module()
    conn = mod.connect(target, uri=uri, timeout=timeout)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")  # a wrong key is OUR one clear error, not SQLCipher's log
        if key is not None:
            conn.execute(f"PRAGMA key = \"{key_sql(key)}\"")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except mod.DatabaseError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise GalleryKeyError(f"cannot decrypt gallery {label or target}: wrong passphrase or key (or the "
                                  "file is damaged); nothing was changed") from exc
        raise
    return conn


def connect_ro(path: Path, key: bytes | None, timeout: float = 5.0) -> Any:
    """Read-only connection: the standard ``sqlite3`` for a plaintext gallery, sqlcipher3 with ``key`` otherwise."""
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    if key is None:
        return sqlite3.connect(uri, uri=True, timeout=timeout)
    return connect(uri, key, uri=True, timeout=timeout, label=str(path))


def copy_to(conn: Any, file: Path, key: bytes | None) -> None:
    """``sqlcipher_export`` the main database of sqlcipher3 connection ``conn`` into ``file`` under ``key``
    (None: plaintext), as one snapshot; the header's application_id and user_version are copied too
    (export does not carry them). ``file`` is left in rollback-journal mode: complete on its own."""
    conn.execute("ATTACH DATABASE ? AS fs_out KEY ?", (str(file), key_sql(key) if key else ""))
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT sqlcipher_export('fs_out')")
        for pragma in ("application_id", "user_version"):
            value = int(conn.execute(f"PRAGMA main.{pragma}").fetchone()[0])
            conn.execute(f"PRAGMA fs_out.{pragma} = {value}")
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("DETACH DATABASE fs_out")
