"""Re-embedding the people tables (schema v3) with the faces (``Gallery.reembed``).

Sightings and negatives keep their crops, so they are re-embedded from them in the same
transaction as the faces; a negative stored without a crop cannot be, and is dropped (it
would never match anything in the new embedding space). Unknown groups lose their centroids
except ignored ones, whose anchor is recomputed from their sightings (an ignored group with
no sighting left loses its anchor); the next regroup rebuilds the rest.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable

import numpy as np

from .codec import decode_crop, embedding_to_blob


def _reembed_rows(conn: sqlite3.Connection, table: str, embed_fn: Callable[[np.ndarray], np.ndarray], dim: int,
                  batch: int) -> int:
    ids = [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE crop_jpeg IS NOT NULL ORDER BY id")]
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        marks = ",".join("?" * len(chunk))
        jpegs = dict(conn.execute(f"SELECT id, crop_jpeg FROM {table} WHERE id IN ({marks})", chunk).fetchall())
        emb = np.asarray(embed_fn(np.stack([decode_crop(jpegs[i]) for i in chunk])), np.float32)
        if emb.shape != (len(chunk), dim):
            raise ValueError(f"embed_fn returned {emb.shape} for {len(chunk)} {table} crops, expected ({len(chunk)}, "
                             f"{dim})")
        conn.executemany(f"UPDATE {table} SET embedding = ? WHERE id = ?",
                         [(embedding_to_blob(e), i) for e, i in zip(emb, chunk, strict=True)])
    return len(ids)


def reembed_people(conn: sqlite3.Connection, embed_fn: Callable[[np.ndarray], np.ndarray], dim: int,
                   batch: int) -> dict:
    """Call inside the re-embedding's write transaction; returns counts for its audit entry."""
    sightings = _reembed_rows(conn, "sightings", embed_fn, dim, batch)
    dropped = conn.execute("DELETE FROM negatives WHERE crop_jpeg IS NULL").rowcount
    negatives = _reembed_rows(conn, "negatives", embed_fn, dim, batch)
    conn.execute("UPDATE unknown_groups SET centroid = NULL")
    for (gid,) in conn.execute("SELECT id FROM unknown_groups WHERE status = 'ignored'").fetchall():
        blobs = [r[0] for r in conn.execute("SELECT embedding FROM sightings WHERE group_id = ?", [gid])]
        if blobs:
            x = np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), dim)
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            c = x.mean(axis=0)
            conn.execute("UPDATE unknown_groups SET centroid = ? WHERE id = ?",
                         [embedding_to_blob(c / max(float(np.linalg.norm(c)), 1e-12)), gid])
    return {"sightings": sightings, "negatives": negatives, "negatives_dropped": dropped}
