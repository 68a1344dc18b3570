"""Corrections that stick: "not this person" examples (schema v3 ``negatives`` table).

A negative is an embedding (and, when known, its crop) that the user said is NOT person P.
Matching then refuses P for any face closer to P's negatives than to P's own faces
(:func:`engine.gallery.index.decide`), so one correction also covers the same stranger's
next visits. Negatives go with their person (ON DELETE CASCADE, erased like faces) and
follow a merge. Each change is one transaction with a ``not_person`` audit entry.
"""
from __future__ import annotations

import numpy as np

from .codec import CROP_SHAPE, embedding_to_blob, encode_crop, utc_now
from .schema import write_transaction


def add_negative(gallery, person: str, embedding: np.ndarray, crop: np.ndarray | None = None,
                 sighting_id: int | None = None) -> int:
    """Store one "not ``person``" example; returns its id. embedding (D,), crop (112, 112, 3)
    uint8 BGR or None. With ``sighting_id``, that sighting stops being labelled ``person``."""
    emb = np.asarray(embedding, np.float32).reshape(-1)
    if emb.shape != (gallery.dim,) or not np.isfinite(emb).all() or not np.any(emb):
        raise ValueError(f"a negative example needs a finite, non-zero {gallery.dim}-d embedding")
    jpeg = None
    if crop is not None:
        crop = np.asarray(crop)
        if crop.shape != CROP_SHAPE or crop.dtype != np.uint8:
            raise ValueError(f"a negative example's crop must be {CROP_SHAPE} uint8, got {crop.shape}")
        jpeg = encode_crop(crop)
    with write_transaction(gallery.db) as db:
        p = gallery._person(person)  # KeyError naming an unknown person
        nid = db.conn.execute("INSERT INTO negatives (person_id, embedding, crop_jpeg, created_at) "
                              "VALUES (?, ?, ?, ?)", [p["id"], embedding_to_blob(emb), jpeg, utc_now()]).lastrowid
        relabelled = 0
        if sighting_id is not None:
            relabelled = db.conn.execute("UPDATE sightings SET person_id = NULL, group_id = NULL, similarity = NULL "
                                         "WHERE id = ? AND person_id = ?", [int(sighting_id), p["id"]]).rowcount
        details = {"negative_id": int(nid), "sighting_relabelled": relabelled}
        if sighting_id is not None:
            details["sighting"] = int(sighting_id)
        gallery._audit("not_person", p["id"], **details)
    gallery.index.add_negatives([nid], [p["id"]], emb[None, :])
    return int(nid)


def not_person_sighting(gallery, sighting_id: int, person: str) -> int:
    """"Sighting ``sighting_id`` is not ``person``": its best crop and embedding become a negative."""
    from engine.gallery.codec import blobs_to_matrix, decode_crop

    row = gallery.db.execute("SELECT embedding, crop_jpeg FROM sightings WHERE id = ?", [int(sighting_id)]).fetchone()
    if row is None:
        raise KeyError(f"no sighting with id {sighting_id}")
    return add_negative(gallery, person, blobs_to_matrix([row[0]], gallery.dim)[0], decode_crop(row[1]),
                        sighting_id=int(sighting_id))


def face_to_negative(gallery, face_id: int) -> int:
    """"Enrolled face ``face_id`` is not its person": the face leaves the person and becomes a
    negative of that person (embedding and crop moved, one transaction, one ``not_person``
    audit entry); returns the negative's id. UnknownFaceError for an unknown face."""
    from .codec import blobs_to_matrix
    from .errors import UnknownFaceError

    fid = int(face_id)
    with write_transaction(gallery.db) as db:
        row = db.conn.execute("SELECT person_id, embedding, crop_jpeg FROM faces WHERE id = ?", [fid]).fetchone()
        if row is None:
            raise UnknownFaceError(f"no face with id {fid} in gallery {gallery.path}")
        pid, blob, jpeg = row
        nid = db.conn.execute("INSERT INTO negatives (person_id, embedding, crop_jpeg, created_at) "
                              "VALUES (?, ?, ?, ?)", [pid, blob, jpeg, utc_now()]).lastrowid
        db.conn.execute("DELETE FROM faces WHERE id = ?", [fid])
        gallery._audit("not_person", pid, negative_id=int(nid), face_id=fid)
    gallery.index.remove_faces([fid])
    gallery.index.add_negatives([nid], [pid], blobs_to_matrix([blob], gallery.dim))
    gallery.scrub()  # the face row is erased (its bytes live on only as the negative)
    return int(nid)


def count(gallery, person: str | None = None) -> int:
    if person is None:
        return gallery.db.execute("SELECT count(*) FROM negatives").fetchone()[0]
    p = gallery._person(person)
    return gallery.db.execute("SELECT count(*) FROM negatives WHERE person_id = ?", [p["id"]]).fetchone()[0]
