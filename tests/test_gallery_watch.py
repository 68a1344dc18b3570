"""engine.gallery.watch on real SQLite files: a long run's gallery follows commits made by other
connections (other processes), people renumbered by an import lose their tracks' votes, and a
gallery that can no longer be read the same way keeps the loaded index with one message."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from engine.gallery import Gallery
from engine.gallery.watch import GalleryWatch
from engine.pipeline import Pipeline

EMB, DIM = "watch-emb", 8


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def people(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "people.db"
    with Gallery.open(path, EMB, DIM) as g:
        g.enroll("Ann", unit(rng, 2))
        g.enroll("Bob", unit(rng, 2))
    other = tmp_path / "other.db"
    with Gallery.open(other, EMB, DIM) as g:
        g.enroll("Cy", unit(rng, 1))  # person 1 of ITS file
    return path, other


def test_a_deletion_elsewhere_is_seen_at_the_next_poll(people):
    path, _ = people
    clock, said = Clock(), []
    with Gallery.open(path, EMB, DIM, create=False) as mine, Gallery.open(path, EMB, DIM, create=False) as theirs:
        ann = {n: p for p, n in mine.index.names.items()}["Ann"]
        watch = GalleryWatch(mine, every_s=1.0, say=said.append, clock=clock)
        assert watch.poll() is None  # nothing changed, and not yet time
        theirs.delete_person("Ann")
        clock.now += 0.5
        assert watch.poll() is None and "Ann" in mine.index.names.values()  # polled at most once a second
        clock.now += 0.6
        assert watch.poll() == {ann} and watch.names_gone == {"Ann"}  # what a run published under her goes too
        assert "Ann" not in mine.index.names.values() and len(mine.index) == 2
        assert set(mine.index.person_ids.tolist()) == {p for p, n in mine.index.names.items() if n == "Bob"}
        clock.now += 1.1
        assert watch.poll() is None and watch.reloads == 1  # our own connection's view is current
        theirs.enroll("Dee", unit(np.random.default_rng(3), 1))
        clock.now += 1.1
        assert watch.poll() == set() and "Dee" in mine.index.names.values()  # added: nobody's votes change
        assert watch.names_gone == set()
        theirs.rename_person("Bob", "Robert")
        clock.now += 1.1
        assert watch.poll() == set() and watch.names_gone == {"Bob"}  # a rename keeps votes, not the old name
    assert said == []


def test_people_renumbered_by_an_import_restart_their_tracks_identity(people):
    path, other = people
    clock = Clock()
    with Gallery.open(path, EMB, DIM, create=False) as mine, Gallery.open(path, EMB, DIM, create=False) as theirs:
        ids = {n: p for p, n in mine.index.names.items()}
        pipe = Pipeline(None, mine.index)  # votes and names only: no model runs here
        pipe._alive = {1, 2, 3}  # three live tracks (normally the tracker's)
        pipe.assign_identity(1, ids["Ann"])
        pipe.assign_identity(2, ids["Bob"])
        watch = GalleryWatch(mine, every_s=1.0, say=pytest.fail, clock=clock)
        theirs.import_from(other, mode="replace")  # the file becomes a copy of other.db: Cy is person 1 now
        clock.now += 1.0
        gone = watch.poll()
        assert gone == {ids["Ann"], ids["Bob"]} and mine.index.names == {1: "Cy"}
        assert watch.names_gone == {"Ann", "Bob"}
        assert sorted(pipe.forget_people(gone)) == [1, 2]
        assert pipe.book.label(1)[0] == pipe.book.label(2)[0] == -1  # undecided again: not shown as Cy
        assert pipe.policy.embedded(1) is None  # embedded again at the next detected frame, as new


def test_a_gallery_that_cannot_be_reloaded_keeps_the_loaded_people(people):
    path, _ = people
    clock, said = Clock(), []
    with Gallery.open(path, EMB, DIM, create=False) as mine:
        before = mine.index.names
        watch = GalleryWatch(mine, every_s=1.0, say=said.append, clock=clock)
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("UPDATE meta SET embedder_id = 'someone-else'")  # e.g. another embedder's import
        conn.close()
        for _ in range(3):
            clock.now += 1.0
            assert watch.poll() is None
        assert mine.index.names == before and len(mine.index) == 4  # recognition goes on with what it had
        assert len(said) == 1 and "still using the people loaded before" in said[0]  # said once, not every second
    with pytest.raises(ValueError, match="interval"):
        GalleryWatch(mine, every_s=0)


def test_a_rename_keeps_the_tracks_and_an_own_import_restarts_them(people):
    """Through the session's own connection (the desktop's gallery panel): a rename is shown on
    the next frame with the votes kept; an import with --replace renumbers people, whose tracks
    start over (``LiveSession.gallery_edited``)."""
    from engine.live import LiveSession

    path, other = people
    with Gallery.open(path, EMB, DIM, create=False) as g:
        ids = {n: p for p, n in g.index.names.items()}
        s = LiveSession(gallery=g, sightings=None)
        s.pipeline = Pipeline(None, g.index)
        s.pipeline._alive = {1, 2}
        s.pipeline.assign_identity(1, ids["Ann"])
        s.pipeline.assign_identity(2, ids["Bob"])
        assert s.gallery_edited() == set()  # nothing changed since the watch's first look
        g.rename_person("Ann", "Ann Smith")
        assert s.gallery_edited() == set() and s.pipeline.book.label(1)[0] == ids["Ann"]
        g.import_from(other, mode="replace")  # Cy takes person id 1 and face id 1
        assert s.gallery_edited() == {ids["Ann"], ids["Bob"]}
        assert s.pipeline.book.label(1)[0] == s.pipeline.book.label(2)[0] == -1
