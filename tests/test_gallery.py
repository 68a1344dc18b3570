"""engine.gallery on real SQLite files: round trips, index sync, format checks, crash safety."""
from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.gallery import (
    SCHEMA_VERSION,
    DuplicatePersonError,
    EmbedderMismatchError,
    Gallery,
    GalleryError,
    GalleryFormatError,
    GalleryIndex,
    GalleryNotFoundError,
    MissingCropError,
    UnknownFaceError,
    UnknownPersonError,
)
from engine.gallery.kernel import KERNEL_MAX_QUERIES

REPO = Path(__file__).resolve().parents[1]
EMB, DIM = "test-emb", 8


# ----------------------------------------------------------------- helpers
def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def crops_of(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    # Smooth images survive JPEG nearly unchanged (noise would not, and is no face either).
    base = rng.integers(40, 216, (n, 1, 1, 3)).astype(np.float32)
    ramp = np.linspace(-20, 20, 112, dtype=np.float32)
    image = base + ramp[None, :, None, None] + ramp[None, None, :, None]
    return list(np.clip(image, 0, 255).astype(np.uint8))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(path: Path) -> dict:
    """Every row of every table, blobs included, read with plain sqlite3 (independent of Gallery)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("meta", "persons", "faces")}
    finally:
        conn.close()


def assert_index_in_sync(g: Gallery) -> None:
    """The live (incrementally edited) index equals one freshly loaded from the file."""
    with Gallery.open(g.path, g.embedder_id, g.dim, create=False) as fresh:
        live, disk = g.index, fresh.index
        order_live, order_disk = np.argsort(live.face_ids), np.argsort(disk.face_ids)
        np.testing.assert_array_equal(live.face_ids[order_live], disk.face_ids[order_disk])
        np.testing.assert_array_equal(live.person_ids[order_live], disk.person_ids[order_disk])
        np.testing.assert_array_equal(live.vectors()[order_live], disk.vectors()[order_disk])
        assert live.names == disk.names


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def gallery(tmp_path: Path):
    with Gallery.open(tmp_path / "people.db", EMB, DIM) as g:
        yield g


@pytest.fixture
def filled(gallery: Gallery, rng: np.random.Generator):
    """Ada (3 faces with crops), Bob (2 faces with crops), Cy (1 face, no crop)."""
    data = {name: unit(rng, k) for name, k in (("Ada", 3), ("Bob", 2), ("Cy", 1))}
    for name in ("Ada", "Bob"):
        k = len(data[name])
        gallery.enroll(name, data[name], crops=crops_of(rng, k), qualities=np.linspace(0.5, 0.9, k),
                       sources=[f"{name}_{i}.jpg" for i in range(k)])
    gallery.enroll("Cy", data["Cy"], sources=["camera"])
    return gallery, data


# ------------------------------------------------------------ file format
def test_new_gallery_schema_and_pragmas(gallery: Gallery):
    meta = Gallery.inspect(gallery.path)
    assert (meta.schema_version, meta.embedder_id, meta.embedding_dim, meta.persons, meta.faces) == \
        (SCHEMA_VERSION, EMB, DIM, 0, 0)
    assert meta.created_at.endswith("+00:00")
    q = lambda sql: gallery.db.execute(sql).fetchone()[0]  # noqa: E731
    assert q("PRAGMA journal_mode") == "wal" and q("PRAGMA foreign_keys") == 1
    assert q("PRAGMA synchronous") == 1 and q("PRAGMA busy_timeout") == 5000
    assert q("PRAGMA secure_delete") == 1 and q("PRAGMA temp_store") == 2  # MEMORY
    assert {"meta", "persons", "faces"} <= set(gallery.db.table_names())
    assert any(ix.columns == ["person_id"] for ix in gallery.db["faces"].indexes)
    fks = gallery.db["faces"].foreign_keys
    assert len(fks) == 1 and fks[0].other_table == "persons" and fks[0].on_delete == "CASCADE"
    assert len(gallery.index) == 0 and gallery.persons() == []


def test_open_missing_without_create(tmp_path: Path):
    with pytest.raises(GalleryNotFoundError, match="does not exist"):
        Gallery.open(tmp_path / "nope.db", EMB, DIM, create=False)
    assert not (tmp_path / "nope.db").exists()


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("kind", ["random", "jpeg", "foreign_sqlite", "newer_schema", "truncated"])
def test_not_a_gallery_is_refused_and_untouched(tmp_path: Path, rng: np.random.Generator, kind: str):
    path = tmp_path / f"{kind}.db"
    if kind == "random":
        path.write_bytes(rng.bytes(10_000))
    elif kind == "jpeg":
        path.write_bytes(cv2.imencode(".jpg", crops_of(rng, 1)[0])[1].tobytes())
    elif kind == "foreign_sqlite":
        _foreign_sqlite(path)
    else:
        with Gallery.open(path, EMB, DIM) as g:
            g.enroll("Ada", unit(rng, 2), crops=crops_of(rng, 2))
        if kind == "newer_schema":
            conn = sqlite3.connect(path)
            conn.execute("UPDATE meta SET schema_version = 99")
            conn.commit()
            conn.close()
        else:
            path.write_bytes(path.read_bytes()[:200])  # valid header, missing pages
    before = sha(path)
    with pytest.raises(GalleryFormatError) as err:
        Gallery.open(path, EMB, DIM)
    assert str(path) in str(err.value)
    expected = {"random": "not a SQLite", "jpeg": "JPEG", "foreign_sqlite": "not a facescope gallery",
                "newer_schema": "newer facescope", "truncated": "not a readable"}[kind]
    assert expected in str(err.value)
    assert sha(path) == before


@pytest.mark.parametrize("other", [("other-emb", DIM), (EMB, DIM * 2)])
def test_embedder_mismatch_on_open(tmp_path: Path, rng: np.random.Generator, other: tuple[str, int]):
    path = tmp_path / "g.db"
    with Gallery.open(path, EMB, DIM) as g:
        g.enroll("Ada", unit(rng, 2), crops=crops_of(rng, 2))
    before = sha(path)
    with pytest.raises(EmbedderMismatchError) as err:
        Gallery.open(path, *other)
    msg = str(err.value)
    assert EMB in msg and other[0] in msg and "facescope gallery reembed" in msg
    assert sha(path) == before


# ------------------------------------------------------------ round trips
def test_enroll_round_trip(filled, tmp_path: Path, rng: np.random.Generator):
    g, data = filled
    assert [(p.name, p.face_count) for p in g.persons()] == [("Ada", 3), ("Bob", 2), ("Cy", 1)]
    faces = g.faces("ada")
    assert [f.source for f in faces] == ["Ada_0.jpg", "Ada_1.jpg", "Ada_2.jpg"]
    assert faces[0].quality == pytest.approx(0.5) and faces[0].has_crop and faces[0].person_name == "Ada"
    assert not g.faces("Cy")[0].has_crop and g.face_crop(g.faces("Cy")[0].id) is None
    ids, emb = g.embeddings("Bob")
    assert emb.tobytes() == data["Bob"].tobytes()  # stored bitwise, float32 little-endian
    crop = g.face_crop(faces[1].id)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    with pytest.raises(UnknownFaceError, match="no face with id 999"):
        g.face_crop(999)
    with pytest.raises(UnknownPersonError) as err:
        g.faces("Zed")
    assert isinstance(err.value, KeyError) and str(err.value).startswith("no person named 'Zed'")
    # Reopen: same content, same search results.
    g.close()
    with Gallery.open(g.path, EMB, DIM, create=False) as again:
        assert [p.name for p in again.persons()] == ["Ada", "Bob", "Cy"]
        person_ids, names, sims = again.index.search(data["Bob"])
        assert names == ["Bob", "Bob"] and np.allclose(sims, 1.0, atol=1e-5)
    with pytest.raises(GalleryError, match="closed"):
        g.persons()


def test_crop_survives_jpeg(gallery: Gallery, rng: np.random.Generator):
    crop = crops_of(rng, 1)[0]
    (fid,) = gallery.enroll("Ada", unit(rng, 1), crops=[crop])
    assert np.abs(gallery.face_crop(fid).astype(int) - crop).mean() < 2.0


def test_names_trimmed_and_case_insensitive(gallery: Gallery, rng: np.random.Generator):
    pid = gallery.add_person("  Émile   Zola ")
    assert gallery.persons()[0].name == "Émile Zola"
    with pytest.raises(DuplicatePersonError, match="already exists"):
        gallery.add_person("émile zola")
    ids = gallery.enroll("ÉMILE ZOLA", unit(rng, 2))
    assert [p.face_count for p in gallery.persons()] == [2] and gallery.faces()[0].person_id == pid
    for bad in ("", "   ", "a\nb\x00"):
        with pytest.raises(ValueError):
            gallery.add_person(bad)
    assert gallery.index.search(gallery.embeddings()[1])[1] == ["Émile Zola"] * len(ids)


def test_rename(filled, rng: np.random.Generator):
    g, data = filled
    g.rename_person("ada", "Ada Lovelace")
    assert g.index.search(data["Ada"][:1])[1] == ["Ada Lovelace"]
    before = snapshot(g.path)
    with pytest.raises(DuplicatePersonError, match="merge"):
        g.rename_person("Ada Lovelace", " bob ")
    assert snapshot(g.path) == before
    with pytest.raises(UnknownPersonError):
        g.rename_person("Zed", "Zedd")
    g.rename_person("bob", "BOB")  # a change of case only is a rename, not a clash
    assert [p.name for p in g.persons()] == ["Ada Lovelace", "BOB", "Cy"]
    assert_index_in_sync(g)


def test_merge_delete_and_index_sync(filled):
    g, data = filled
    bob_id = next(p.id for p in g.persons() if p.name == "Bob")
    assert g.merge_persons("ada", "bob") == 3
    assert [(p.name, p.face_count) for p in g.persons()] == [("Bob", 5), ("Cy", 1)]
    person_ids, names, _ = g.index.search(data["Ada"])
    assert names == ["Bob"] * 3 and (person_ids == bob_id).all()
    assert_index_in_sync(g)
    with pytest.raises(ValueError, match="itself"):
        g.merge_persons("Bob", "bob")

    victim = g.faces("Bob")[0].id
    g.delete_face(victim)
    assert victim not in g.index.face_ids and len(g.faces("Bob")) == 4
    with pytest.raises(UnknownFaceError):
        g.delete_face(victim)
    assert_index_in_sync(g)

    assert g.delete_person("bob") == 4
    assert g.db["faces"].count == 1 and [p.name for p in g.persons()] == ["Cy"]  # cascade
    assert g.index.search(data["Bob"])[1] == ["Cy", "Cy"]  # only Cy is left to match
    assert_index_in_sync(g)
    assert g.delete_person("Cy") == 1
    person_ids, names, sims = g.index.search(data["Cy"])
    assert person_ids.tolist() == [-1] and names == [None] and sims[0] == -np.inf
    assert_index_in_sync(g)


# -------------------------------------------------------------- validation
def test_invalid_enrolments_change_nothing(filled, rng: np.random.Generator):
    g, _ = filled
    before, live = snapshot(g.path), g.index.face_ids
    good = unit(rng, 2)
    nan, zero = good.copy(), good.copy()
    nan[1, 3] = np.nan
    zero[1] = 0
    bad_calls = [
        dict(embeddings=unit(rng, 2, DIM + 1)),                       # wrong dim
        dict(embeddings=good[0]),                                    # 1-D
        dict(embeddings=nan),
        dict(embeddings=zero),
        dict(embeddings=np.ones((2, DIM), np.int64)),                 # not floating point
        dict(embeddings=np.zeros((0, DIM), np.float32)),              # K = 0
        dict(embeddings=good, crops=crops_of(rng, 1)),               # K mismatch
        dict(embeddings=good, crops=[np.zeros((112, 112), np.uint8)] * 2),
        dict(embeddings=good, crops=[np.zeros((112, 112, 3), np.float32)] * 2),
        dict(embeddings=good, qualities=[0.5]),
        dict(embeddings=good, qualities=[0.5, np.inf]),
        dict(embeddings=good, sources="one string"),
    ]
    for kwargs in bad_calls:
        for name in ("Ada", "New Person"):
            with pytest.raises(ValueError):
                g.enroll(name, **kwargs)
    assert snapshot(g.path) == before
    np.testing.assert_array_equal(g.index.face_ids, live)


# -------------------------------------------------------- export / import
def test_export_then_import_replace_is_identical(filled, tmp_path: Path, rng: np.random.Generator):
    g, _ = filled
    out = tmp_path / "export" / "copy.db"
    out.parent.mkdir()
    g.export(out)
    assert sorted(os.listdir(out.parent)) == ["copy.db"]  # self-contained: no -wal / -shm / temp file
    conn = sqlite3.connect(out)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert snapshot(out) == snapshot(g.path)
    with pytest.raises(GalleryError, match="already exists"):
        g.export(out)

    with Gallery.open(tmp_path / "other.db", EMB, DIM) as other:
        other.enroll("Zed", unit(rng, 4), crops=crops_of(rng, 4))
        summary = other.import_from(out, mode="replace")
        assert (summary.persons_created, summary.faces_added) == (3, 6)
        mine, theirs = snapshot(other.path), snapshot(g.path)
        assert mine["persons"] == theirs["persons"] and mine["faces"] == theirs["faces"]  # ids, blobs, times
        assert [p.name for p in other.persons()] == ["Ada", "Bob", "Cy"]
        for face in g.faces():
            a, b = other.face_crop(face.id), g.face_crop(face.id)
            assert (a is None and b is None) or np.array_equal(a, b)
        assert_index_in_sync(other)
        assert sorted(other.index.face_ids) == sorted(g.index.face_ids)


def test_import_merge(filled, tmp_path: Path, rng: np.random.Generator):
    g, data = filled
    src_path = tmp_path / "src.db"
    with Gallery.open(src_path, EMB, DIM) as src:
        new_ada = unit(rng, 2)
        src.enroll("ADA", new_ada, crops=crops_of(rng, 2))
        src.enroll("Dee", unit(rng, 1))
    src_hash = sha(src_path)
    summary = g.import_from(src_path)  # merge is the default
    assert (summary.persons_created, summary.persons_merged, summary.faces_added) == (1, 1, 3)
    assert [(p.name, p.face_count) for p in g.persons()] == [("Ada", 5), ("Bob", 2), ("Cy", 1), ("Dee", 1)]
    assert g.index.search(new_ada)[1] == ["Ada", "Ada"]
    assert len(set(f.id for f in g.faces())) == 9
    assert_index_in_sync(g)
    assert sha(src_path) == src_hash
    with pytest.raises(ValueError, match="mode"):
        g.import_from(src_path, mode="append")


def test_import_refuses_other_embedder_and_damaged_source(filled, tmp_path: Path, rng: np.random.Generator):
    g, _ = filled
    before = snapshot(g.path)
    other = tmp_path / "other.db"
    with Gallery.open(other, "other-emb", DIM) as o:
        o.enroll("Eve", unit(rng, 1))
    other_hash = sha(other)
    with pytest.raises(EmbedderMismatchError, match="other-emb"):
        g.import_from(other)
    assert sha(other) == other_hash
    # A source whose 1003rd face is damaged: the first 1000 are already inserted when it is
    # found, so this checks that the whole import rolls back, not just validation order.
    damaged = tmp_path / "damaged.db"
    with Gallery.open(damaged, EMB, DIM) as d:
        d.enroll("Ada", unit(rng, 1005))
    conn = sqlite3.connect(damaged)
    conn.execute("UPDATE faces SET embedding = x'0000' WHERE id = 1003")
    conn.commit()
    conn.close()
    with pytest.raises(GalleryFormatError, match="damaged"):
        g.import_from(damaged, mode="replace")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\xff\xd8\xff" + rng.bytes(3000))
    with pytest.raises(GalleryFormatError):
        g.import_from(junk)
    assert snapshot(g.path) == before
    assert_index_in_sync(g)


# ---------------------------------------------------------------- reembed
def mean_colour_embedder(dim: int = 6):
    """Deterministic stand-in for a model: mean BGR colour -> fixed projection -> dim-d."""
    proj = np.random.default_rng(7).standard_normal((3, dim)).astype(np.float32)

    def embed(crops: np.ndarray) -> np.ndarray:
        assert crops.dtype == np.uint8 and crops.shape[1:] == (112, 112, 3)
        return (crops.reshape(len(crops), -1, 3).mean(axis=1).astype(np.float32) / 255 - 0.5) @ proj + 0.1

    return embed


def test_reembed(tmp_path: Path, rng: np.random.Generator):
    path = tmp_path / "g.db"
    with Gallery.open(path, EMB, DIM) as g:
        g.enroll("Ada", unit(rng, 3), crops=crops_of(rng, 3))
        g.enroll("Bob", unit(rng, 2), crops=crops_of(rng, 2))
        g.add_person("Nobody")
    embed = mean_colour_embedder()
    with pytest.raises(EmbedderMismatchError):
        Gallery.open(path, "colour-v1", 6)
    with Gallery.open_for_reembed(path) as g:
        with pytest.raises(GalleryError, match="re-embedding only"):
            g.enroll("Ada", unit(rng, 1))
        seen = []
        assert g.reembed(embed, "colour-v1", 6, batch=2, progress=lambda done, total: seen.append((done, total))) == 5
        assert seen == [(2, 5), (4, 5), (5, 5)]
        assert (g.embedder_id, g.dim, g.index.dim) == ("colour-v1", 6, 6)
        ids, emb = g.embeddings()
        crops = np.stack([g.face_crop(i) for i in ids])
        np.testing.assert_allclose(emb, embed(crops), rtol=1e-6)
        assert g.index.search(emb)[1] == ["Ada"] * 3 + ["Bob"] * 2
        g.enroll("Cy", embed(np.stack(crops_of(rng, 1))))  # writable again after the switch
        assert_index_in_sync(g)
    meta = Gallery.inspect(path)
    assert (meta.embedder_id, meta.embedding_dim) == ("colour-v1", 6)
    assert {r[3] for r in snapshot(path)["faces"]} == {"colour-v1"}
    with pytest.raises(EmbedderMismatchError):
        Gallery.open(path, EMB, DIM)


def test_reembed_failures_change_nothing(filled):
    g, _ = filled
    before = snapshot(g.path)
    with pytest.raises(MissingCropError) as err:
        g.reembed(mean_colour_embedder(), "colour-v1", 6)
    cy_face = g.faces("Cy")[0].id
    assert err.value.face_ids == [cy_face] and str(cy_face) in str(err.value)
    g.delete_person("Cy")
    before = snapshot(g.path)
    for bad_fn in (lambda c: np.zeros((len(c), 6), np.float32), lambda c: np.ones((len(c), 5), np.float32),
                   lambda c: np.ones((1, 6), np.float32)):
        with pytest.raises(ValueError):
            g.reembed(bad_fn, "colour-v1", 6)
    assert snapshot(g.path) == before and g.embedder_id == EMB and g.index.dim == DIM


# ------------------------------------------------------------------- index
def test_index_search_semantics(rng: np.random.Generator):
    ix = GalleryIndex(DIM, capacity=4)
    q = unit(rng, 3)
    assert ix.search(q)[0].tolist() == [-1] * 3 and ix.search(q)[1] == [None] * 3
    assert np.isneginf(ix.search(q)[2]).all()
    faces = unit(rng, 600)  # grows from capacity 4 geometrically
    ix.add(np.arange(600) + 1, np.arange(600) % 7, faces * 3.0)  # not normalised: the index normalises
    for p in range(7):
        ix.set_name(p, f"p{p}")
    assert ix.capacity >= 600 and len(ix) == 600
    np.testing.assert_allclose(np.linalg.norm(ix.vectors(), axis=1), 1, atol=1e-6)
    queries = unit(rng, 100)
    ref = np.argmax(queries @ faces.T, axis=1)
    for chunk in (queries[:1], queries[:KERNEL_MAX_QUERIES], queries):  # kernel and BLAS paths
        pids, names, sims = ix.search(chunk)
        np.testing.assert_array_equal(pids, ref[: len(chunk)] % 7)
        np.testing.assert_allclose(sims, (chunk @ faces.T).max(axis=1), atol=1e-5)
        assert names == [f"p{p}" for p in pids]
    pids, names, sims = ix.match(queries, threshold=float(np.median(sims)))
    assert set(names[i] for i in np.flatnonzero(pids == -1)) == {None} and 0 < (pids == -1).sum() < 100
    nan_query = np.full((1, DIM), np.nan, np.float32)
    assert ix.search(nan_query)[0][0] == -1 and ix.search(np.zeros(DIM))[0][0] == -1
    with pytest.raises(ValueError):
        ix.search(np.ones((1, DIM + 1)))
    assert ix.remove_person(3) == sum(np.arange(600) % 7 == 3) and 3 not in ix.search(queries)[0]


def test_bench_search_small():
    from engine.bench.search import bench_search

    out = bench_search(size=3000, dim=32, queries=40)
    assert {"gallery_size", "dim", "ms_per_query", "ms_per_query_p95", "batched_ms_per_query", "build_s"} <= set(out)
    assert out["gallery_size"] == 3000 and out["match_rate"] == 1.0
    assert 0 < out["ms_per_query"] < 50 and 0 < out["batched_ms_per_query"] < 50, out  # measured ~0.07 ms


def test_refresh_sees_other_writers(gallery: Gallery, rng: np.random.Generator):
    gallery.enroll("Bob", unit(rng, 1))
    assert gallery.refresh() is False  # our own commits are already in the index
    with Gallery.open(gallery.path, EMB, DIM) as other:
        other.enroll("Ada", unit(rng, 2))
    assert gallery.refresh() is True and sorted(gallery.index.names.values()) == ["Ada", "Bob"]
    assert len(gallery.index) == 3 and gallery.refresh() is False


# ------------------------------------------------------------ crash safety
def test_sigkill_during_enrolment_loses_no_commit(tmp_path: Path):
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "gallery_writer.py"), str(path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported, deadline = 0, time.monotonic() + 25
    try:
        while reported < 600 and time.monotonic() < deadline:  # 200 commits of 3 faces
            line = proc.stdout.readline()
            if not line:
                break
            reported = int(line)
        assert proc.poll() is None, f"writer exited early: {proc.stderr.read()}"
        assert reported >= 600, "writer too slow"
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: it is committing continuously
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
    conn.close()
    assert count >= reported and count % 3 == 0  # nothing committed is lost; no half enrolment
    with Gallery.open(path, "writer-test", 16, create=False) as g:
        assert len(g.index) == count == sum(p.face_count for p in g.persons())


# ------------------------------------------------- other processes writing
# One CLI-like step per process (`facescope gallery ...` runs while the app keeps the gallery open).
_OTHER_PROCESS = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from engine.gallery import Gallery
path, op, arg = sys.argv[2], sys.argv[3], sys.argv[4]
rng = np.random.default_rng(len(op) + len(arg))
def crops(n):
    return list(rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8))
if op == "enroll":
    with Gallery.open(path, "test-emb", 8) as g:
        for i in range(int(arg)):
            g.enroll(f"p{i}", rng.standard_normal((4, 8)).astype(np.float32), crops=crops(4))
elif op == "export":
    with Gallery.open(path, "test-emb", 8) as g:
        g.export(arg)
elif op == "delete_face":
    with Gallery.open(path, "test-emb", 8) as g:
        g.delete_face(g.faces()[0].id)
elif op == "delete_person":
    with Gallery.open(path, "test-emb", 8) as g:
        g.delete_person(arg)
elif op == "import_replace":
    with Gallery.open(path, "test-emb", 8) as g:
        g.import_from(arg, mode="replace")
elif op == "reembed":
    with Gallery.open_for_reembed(path) as g:
        g.reembed(lambda c: c.reshape(len(c), -1)[:, :4].astype(np.float32) + 1, arg, 4)
"""


def test_gallery_kept_open_while_other_processes_write(tmp_path: Path):
    """The app keeps a Gallery open and calls inspect/refresh while CLI processes change the file.

    Regression: ``probe`` used to read the header with a plain ``open()``/``close()``. Closing
    ANY descriptor of a file drops every POSIX lock this process holds on it, including the
    shared lock of the app's own SQLite connection; the next writer process then believed it
    was the last connection, checkpointed and deleted the -wal/-shm under the app, and the
    app's stale wal-index made reads fail with "database disk image is malformed".
    """
    path, exported = tmp_path / "g.db", tmp_path / "export.db"

    def other(op: str, arg: str = "") -> None:
        proc = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(REPO), str(path), op, arg], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{op}: {proc.stderr[-2000:]}"

    other("enroll", "3")
    with Gallery.open(path, EMB, DIM, create=False) as g:
        for op, arg, persons, faces in [("enroll", "6", 6, 36), ("export", str(exported), 6, 36),
                                        ("delete_face", "", 6, 35), ("delete_person", "p5", 5, 31),
                                        ("import_replace", str(exported), 6, 36)]:
            Gallery.inspect(path)  # the app looks at the file before the next command runs
            other(op, arg)
            assert Path(f"{path}-wal").exists(), f"{op}: another process removed the WAL of our open connection"
            meta = Gallery.inspect(path)
            assert (meta.persons, meta.faces) == (persons, faces), op
            g.refresh()
            assert len(g.index) == faces and len(g.persons()) == persons, op
            assert_index_in_sync(g)
        other("reembed", "other-emb")
        meta = Gallery.inspect(path)
        assert (meta.embedder_id, meta.embedding_dim, meta.persons, meta.faces) == ("other-emb", 4, 6, 36)
        with pytest.raises(EmbedderMismatchError):
            g.refresh()
        with Gallery.open(path, "other-emb", 4, create=False) as fresh:
            assert len(fresh.index) == 36
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
