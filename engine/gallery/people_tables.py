"""Tables of the people features (schema v3): sightings, unknown-people groups, negatives.

* ``sightings``       one row per track (or per ``SightingConfig.max_span_s`` of a long track):
  person_id -> persons ON DELETE CASCADE (NULL = unknown), group_id -> unknown_groups ON DELETE
  SET NULL, source (display text, URL passwords masked), first_seen / last_seen (UTC epoch
  seconds), frames, crop_jpeg (aligned 112x112 BGR JPEG of the best frame), embedding (D float32
  little-endian) and quality of that frame, similarity (best gallery score when recorded).
* ``unknown_groups``  persistent ids of groups of unknown sightings; status 'active' or
  'ignored' (an ignored group stays as an anchor so its people do not form a new group);
  centroid (D float32, the unit mean of its members when last regrouped).
* ``negatives``       "not this person" examples: person_id -> persons ON DELETE CASCADE,
  embedding, optional crop_jpeg, created_at.

Erasing a person removes their sightings and negatives with them (the cascades), and
``secure_delete`` + ``scrub`` clear the bytes as for faces (index entries included).

``sightings_vectors`` is a covering index of what the searches read (person, group, quality,
embedding): in a row the embedding comes after the ~5 KB crop, so reading embeddings from the
table walks every crop's overflow pages. ``sightings_group_cover`` (group, quality, first/last
seen, source; it replaces v3's first ``sightings_group`` on group alone) answers the
unknown-people list without reading a row. Measured with ``facescope bench sightings`` (README,
"Sightings"). A v3 file made before them gets them when next opened for writing
(:func:`missing_indexes`); that is no schema change (older versions use such a file as it is).
"""
from __future__ import annotations

import sqlite3

SINCE_VERSION = 3
ADDED_INDEXES = ("sightings_vectors", "sightings_group_cover")  # added to v3 files later (missing_indexes)
_DDL = (
    "CREATE TABLE unknown_groups (id INTEGER PRIMARY KEY, status TEXT NOT NULL DEFAULT 'active' "
    "CHECK (status IN ('active', 'ignored')), centroid BLOB, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE TABLE sightings (id INTEGER PRIMARY KEY, "
    "person_id INTEGER REFERENCES persons(id) ON DELETE CASCADE, "
    "group_id INTEGER REFERENCES unknown_groups(id) ON DELETE SET NULL, "
    "source TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL, "
    "frames INTEGER NOT NULL CHECK (frames >= 1), crop_jpeg BLOB NOT NULL, embedding BLOB NOT NULL, "
    "quality REAL NOT NULL, similarity REAL, CHECK (last_seen >= first_seen))",
    "CREATE INDEX sightings_last_seen ON sightings (last_seen)",
    "CREATE INDEX sightings_person ON sightings (person_id, last_seen)",
    "CREATE INDEX sightings_group_cover ON sightings (group_id, quality, first_seen, last_seen, source)",
    "CREATE INDEX sightings_vectors ON sightings (person_id, group_id, quality, embedding)",
    "CREATE TABLE negatives (id INTEGER PRIMARY KEY, "
    "person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE, "
    "embedding BLOB NOT NULL, crop_jpeg BLOB, created_at TEXT NOT NULL)",
    "CREATE INDEX negatives_person ON negatives (person_id)",
)
REQUIRED_COLUMNS = {
    "sightings": {"id", "person_id", "group_id", "source", "first_seen", "last_seen", "frames", "crop_jpeg",
                  "embedding", "quality", "similarity"},
    "unknown_groups": {"id", "status", "centroid", "created_at", "updated_at"},
    "negatives": {"id", "person_id", "embedding", "crop_jpeg", "created_at"},
}


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the v3 tables; call inside the caller's write transaction."""
    for sql in _DDL:
        conn.execute(sql)


def missing_indexes(conn: sqlite3.Connection) -> list[str]:
    """``CREATE INDEX IF NOT EXISTS`` of the indexes added after v3 that ``conn``'s file lacks (run
    them in a write transaction); reads sqlite_master only, so a file that has them is not written."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return [sql.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1) for sql in _DDL
            for name in ADDED_INDEXES if sql.startswith(f"CREATE INDEX {name} ") and name not in have]
