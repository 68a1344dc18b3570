"""Whole-gallery operations behind ``Gallery.export / import_from / reembed``.

Each one either completes or leaves both files as they were: export writes a temporary
file and renames it into place; import and reembed run in one write transaction and touch
the index only after the commit.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlite_utils import Database

from engine.util.fsio import atomic_path

from . import crypto, keys
from .codec import CROP_SHAPE, blobs_to_matrix, check_embeddings, decode_crop, embedding_to_blob, utc_now
from .errors import EmbedderMismatchError, GalleryError, GalleryFormatError, MissingCropError
from .people_reembed import reembed_people
from .schema import probe, write_transaction

if TYPE_CHECKING:
    from .store import Gallery

_IMPORT_BATCH = 1000  # faces read from the source per step: bounds memory with crops (~6 KB each)


@dataclass(frozen=True)
class ImportSummary:
    persons_created: int
    persons_merged: int  # source persons whose faces joined an existing same-named person
    faces_added: int


def next_face_id(db: Database) -> int:
    """First free face id; only meaningful inside a write transaction (we hold the lock)."""
    return db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM faces").fetchone()[0]


# ------------------------------------------------------------------ export
def export_gallery(gallery: Gallery, dst: Path, *, overwrite: bool) -> None:
    """SQLite online backup into a temp file, switched out of WAL, then renamed to ``dst``.

    The backup API copies a consistent snapshot page by page (no need to stop the app), and
    ``journal_mode=DELETE`` afterwards checkpoints and rewrites the header so the exported
    file is complete on its own: no -wal/-shm companion has to travel with it.
    """
    if dst.exists() and dst.resolve() == gallery.path.resolve():
        raise GalleryError(f"cannot export gallery {gallery.path} onto itself")
    if dst.exists() and not overwrite:
        raise GalleryError(f"{dst} already exists (pass overwrite=True to replace it)")
    # Recorded first, so the copy carries the record of its own making (an export that then
    # fails leaves an entry too: the trail errs on the side of recording).
    with write_transaction(gallery.db) as db:
        counts = db.execute("SELECT (SELECT count(*) FROM persons), (SELECT count(*) FROM faces)").fetchone()
        gallery._audit("export", persons=counts[0], faces=counts[1])
    key = keys.key_for(gallery.path)
    if key is not None:
        _export_encrypted(gallery, dst, key)
        return
    # private: an export holds faces and embeddings (biometric data), readable by its owner only
    with atomic_path(dst, private=True) as tmp:
        try:
            target = sqlite3.connect(str(tmp))
            try:
                gallery.db.conn.backup(target)
                target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                mode = target.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
                if mode.lower() != "delete":
                    raise GalleryError(f"could not finalise export {dst}: journal mode stayed {mode!r}")
            finally:
                target.close()
        finally:
            for leftover in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                leftover.unlink(missing_ok=True)


def _export_encrypted(gallery: Gallery, dst: Path, key: bytes) -> None:
    """An encrypted gallery exports encrypted, under the same key, with its key file (``<dst>.fskey``;
    a keyring key is stored for ``dst``'s path too): export never writes biometric data in clear."""
    info = crypto.read_info(crypto.sidecar(gallery.path))
    with atomic_path(dst, private=True) as tmp:
        crypto.copy_to(gallery.db.conn, tmp, key)
        crypto.write_info(crypto.sidecar(dst), info)
        if info.source == "keyring":
            crypto.keyring_set(dst, key)


# ------------------------------------------------------------------ import
def import_gallery(gallery: Gallery, src_path: Path, mode: str) -> ImportSummary:
    """Merge or replace ``gallery`` with the gallery file at ``src_path`` (see ``Gallery.import_from``)."""
    if mode not in ("merge", "replace"):
        raise ValueError(f"import mode must be 'merge' or 'replace', got {mode!r}")
    if src_path.exists() and src_path.resolve() == gallery.path.resolve():
        raise GalleryError(f"cannot import gallery {gallery.path} into itself")
    meta = probe(src_path)
    if meta is None:
        raise GalleryFormatError(f"{src_path} is missing or empty: nothing to import")
    if (meta.embedder_id, meta.embedding_dim) != (gallery.embedder_id, gallery.dim):
        raise EmbedderMismatchError(str(src_path), meta.embedder_id, meta.embedding_dim, gallery.embedder_id,
                                    gallery.dim, what="import source")
    src = Database(crypto.connect_ro(src_path, keys.key_for(src_path)), execute_plugins=False)
    new_ids: list[np.ndarray] = []
    new_pids: list[np.ndarray] = []
    new_emb: list[np.ndarray] = []
    names: dict[int, str] = {}
    created = merged = added = 0
    try:
        src.conn.execute("BEGIN")  # one snapshot of the source for the whole import
        with write_transaction(gallery.db) as db:
            if mode == "replace":
                db["faces"].delete_where()
                db["persons"].delete_where()
            person_map: dict[int, int] = {}
            for p in src["persons"].rows_where(order_by="id"):
                existing = None if mode == "replace" else next(
                    db["persons"].rows_where("name_key = ?", [p["name_key"]], limit=1), None)
                if existing is not None:
                    person_map[p["id"]] = existing["id"]
                    db["persons"].update(existing["id"], {"updated_at": utc_now()})
                    merged += 1
                    continue
                row = {k: p[k] for k in ("name", "name_key", "created_at", "updated_at")}
                if mode == "replace":
                    row["id"] = p["id"]  # replace keeps ids: the result is a copy of the source
                person_map[p["id"]] = db["persons"].insert(row).last_pk
                names[person_map[p["id"]]] = p["name"]
                created += 1
            next_id = next_face_id(db)
            first_face_id = next_id
            for rows in _batches(src, gallery.embedder_id):
                emb = _check_source_embeddings(src_path, rows, gallery.dim)
                ids = [r["id"] for r in rows] if mode == "replace" else list(range(next_id, next_id + len(rows)))
                next_id += len(rows)
                for r, fid in zip(rows, ids, strict=True):
                    r["id"], r["person_id"] = fid, person_map[r["person_id"]]
                db["faces"].insert_all(rows)
                new_ids.append(np.array(ids, np.int64))
                new_pids.append(np.array([r["person_id"] for r in rows], np.int64))
                new_emb.append(emb)
                added += len(rows)
            gallery._audit("import", mode=mode, persons_created=created, persons_merged=merged, faces_added=added,
                           first_face_id=first_face_id if mode == "merge" and added else None)
    finally:
        src.close()
    if mode == "replace":
        gallery.scrub()  # the replaced persons are erased
    fids, pids = np.concatenate(new_ids or [np.zeros(0, np.int64)]), np.concatenate(new_pids or [np.zeros(0, np.int64)])
    emb = np.concatenate(new_emb) if new_emb else np.zeros((0, gallery.dim), np.float32)
    if mode == "replace":
        gallery.index.reset(gallery.dim, fids, pids, emb, names)
    else:
        for pid, name in names.items():
            gallery.index.set_name(pid, name)
        gallery.index.add(fids, pids, emb)
    return ImportSummary(created, merged, added)


def _batches(src: Database, embedder_id: str) -> Iterator[list[dict]]:
    rows: list[dict] = []
    for row in src["faces"].rows_where(order_by="id"):
        if row["embedder_id"] != embedder_id:
            raise GalleryFormatError(f"face {row['id']} of the import source was embedded by "
                                     f"{row['embedder_id']!r}, not {embedder_id!r}: the source is damaged")
        rows.append(row)
        if len(rows) == _IMPORT_BATCH:
            yield rows
            rows = []
    if rows:
        yield rows


def _check_source_embeddings(src_path: Path, rows: list[dict], dim: int) -> np.ndarray:
    try:
        return check_embeddings(blobs_to_matrix([r["embedding"] for r in rows], dim), dim)
    except ValueError as exc:
        raise GalleryFormatError(f"import source {src_path} is damaged near face {rows[0]['id']}: {exc}") from exc


# ----------------------------------------------------------------- reembed
def reembed_gallery(gallery: Gallery, embed_fn: Callable[[np.ndarray], np.ndarray], new_embedder_id: str,
                    new_dim: int, batch: int, progress: Callable[[int, int], None] | None) -> int:
    """Re-embed every stored crop and switch the gallery to ``new_embedder_id``, atomically.

    Trade-off: the write lock is held while ``embed_fn`` runs (minutes for a large gallery);
    readers are not blocked (WAL) and no other writer can change faces between reading a
    crop and storing its new embedding, which keeps the switch exact and simple.
    """
    if not isinstance(new_embedder_id, str) or not new_embedder_id.strip():
        raise ValueError(f"new_embedder_id must be a non-empty string, got {new_embedder_id!r}")
    if new_dim < 1 or batch < 1:
        raise ValueError(f"new_dim and batch must be >= 1, got {new_dim} and {batch}")
    with write_transaction(gallery.db) as db:
        missing = [r["id"] for r in db["faces"].rows_where("crop_jpeg IS NULL", select="id", order_by="id")]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise MissingCropError(f"cannot re-embed gallery {gallery.path}: {len(missing)} face(s) have no stored "
                                   f"crop (ids {shown}); delete them or enrol them again", missing)
        rows = db.execute("SELECT id, person_id FROM faces ORDER BY id").fetchall()
        fids = np.array([r[0] for r in rows], np.int64)
        pids = np.array([r[1] for r in rows], np.int64)
        out = np.empty((len(fids), new_dim), np.float32)
        for start in range(0, len(fids), batch):
            chunk = fids[start : start + batch].tolist()
            marks = ",".join("?" * len(chunk))
            jpegs = dict(db.execute(f"SELECT id, crop_jpeg FROM faces WHERE id IN ({marks})", chunk).fetchall())
            try:
                crops = np.stack([decode_crop(jpegs[i]) for i in chunk])
            except ValueError as exc:
                raise GalleryFormatError(f"gallery {gallery.path} is damaged near face {chunk[0]}: {exc}") from exc
            assert crops.shape[1:] == CROP_SHAPE
            emb = check_embeddings(embed_fn(crops), new_dim, "embed_fn output")
            if len(emb) != len(chunk):
                raise ValueError(f"embed_fn returned {len(emb)} embeddings for {len(chunk)} crops")
            out[start : start + len(chunk)] = emb
            if progress is not None:
                progress(start + len(chunk), len(fids))
        now = utc_now()
        db.conn.executemany("UPDATE faces SET embedding = ?, embedder_id = ?, updated_at = ? WHERE id = ?",
                            ((embedding_to_blob(out[i]), new_embedder_id, now, int(fid)) for i, fid in enumerate(fids)))
        db["meta"].update(1, {"embedder_id": new_embedder_id, "embedding_dim": new_dim, "updated_at": now})
        people = reembed_people(db.conn, embed_fn, new_dim, batch)  # schema v3: sightings, negatives
        gallery._audit("reembed", faces=len(fids), from_embedder=gallery.embedder_id, to_embedder=new_embedder_id,
                       dim=new_dim, **people)
        names = dict(db.execute("SELECT id, name FROM persons").fetchall())
    gallery._embedder_id, gallery._dim = new_embedder_id, new_dim
    gallery.index.reset(new_dim, fids, pids, out, names)
    gallery._load_index()  # negatives too, in the new space
    return len(fids)
