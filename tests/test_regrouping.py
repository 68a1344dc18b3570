"""Regrouping off the owner thread: the DBSCAN rule unchanged by the faster neighbour search, a
snapshot / compute / apply split whose apply refuses a stale plan, and the live session's
background regroup. Real SQLite and real LFW faces (the fixtures of test_unknowns)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.test_unknowns import PEOPLE, faces, gallery, group_of, sighting  # noqa: F401 (fixtures)


def reference_dbscan(x: np.ndarray, max_distance: float, min_samples: int) -> np.ndarray:
    """Textbook DBSCAN on the full similarity matrix (labels as sets, for comparison)."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    near = x @ x.T >= 1.0 - max_distance
    core = near.sum(1) >= min_samples
    labels, c = np.full(len(x), -1), 0
    for p in np.flatnonzero(core):
        if labels[p] >= 0:
            continue
        stack, labels[p] = [p], c
        while stack:
            q = stack.pop()
            for r in np.flatnonzero(near[q] & core & (labels < 0)):
                labels[r] = c
                stack.append(r)
        c += 1
    sims = x @ x.T
    for p in np.flatnonzero(~core):  # a border point joins its most similar core neighbour
        cand = np.flatnonzero(near[p] & core)
        if len(cand):
            labels[p] = labels[cand[np.argmax(sims[p, cand])]]
    return labels


def partition(labels: np.ndarray) -> set:
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in set(labels.tolist()) - {-1}}


@pytest.mark.parametrize("k", [1, 513, 1500])  # one row, a block and one more, several blocks
def test_dbscan_matches_the_textbook_rule(k):
    from engine.sightings.grouping import dbscan

    rng = np.random.default_rng(k)
    centres = rng.standard_normal((max(1, k // 6), 64))
    x = (centres[rng.integers(0, len(centres), k)] + 0.55 * rng.standard_normal((k, 64))).astype(np.float32)
    got, want = dbscan(x, 0.4, 3), reference_dbscan(x, 0.4, 3)
    assert partition(got) == partition(want)
    assert (got >= 0).sum() == (want >= 0).sum()
    if k > 1:
        assert 0 < (got >= 0).sum() < k  # the data has both clustered and noise points


def test_a_plan_made_stale_by_an_edit_is_refused_and_nothing_is_written(gallery):  # noqa: F811
    from engine.sightings import regrouping, unknowns

    g, ids = gallery
    unknowns.regroup(g)
    gid = {n: next(iter(group_of(g, ids[n]))) for n in PEOPLE}
    # new faces come in; a regroup is computed from a snapshot; meanwhile the user merges two groups
    store_rows = g.db.execute("SELECT id, group_id FROM sightings ORDER BY id").fetchall()
    with g.db.conn:  # as if Blair's first sighting had come after the last regroup
        g.db.conn.execute("UPDATE sightings SET group_id = NULL WHERE id = ?", [ids["Tony_Blair"][0]])
    plan = regrouping.compute(regrouping.snapshot(g))
    audit_n = len(g.audit_entries())
    unknowns.merge_groups(g, gid["Colin_Powell"], gid["Donald_Rumsfeld"])
    before = g.db.execute("SELECT id, group_id FROM sightings ORDER BY id").fetchall()
    assert regrouping.apply(g, plan) is None
    assert g.db.execute("SELECT id, group_id FROM sightings ORDER BY id").fetchall() == before
    assert len(g.audit_entries()) == audit_n + 1  # the merge's entry only
    # computed again, it applies, keeps the merge, and regroups Blair's first sighting
    summary = regrouping.apply(g, regrouping.compute(regrouping.snapshot(g)))
    assert summary is not None and summary["moved"] == 1
    assert group_of(g, ids["Colin_Powell"] + ids["Donald_Rumsfeld"]) == {gid["Colin_Powell"]}
    assert group_of(g, ids["Tony_Blair"]) == {gid["Tony_Blair"]}
    assert len(store_rows) == len(before)


def test_sightings_recorded_while_it_computes_wait_for_the_next_regroup(gallery, faces):  # noqa: F811
    from engine.sightings import regrouping, store

    g, ids = gallery
    _, per = faces
    plan = regrouping.compute(regrouping.snapshot(g))
    late = store.record(g, [sighting(per["Colin_Powell"][6], time.time())])
    store.delete(g, ids["Tony_Blair"][:1])  # and one is purged meanwhile
    summary = regrouping.apply(g, plan)
    assert summary is not None and summary["groups"] == 3 and summary["unknown_sightings"] == 6 * 3
    assert group_of(g, late) == {None}
    regrouping.regroup(g)
    assert group_of(g, late) == group_of(g, ids["Colin_Powell"]) != {None}


def test_the_live_session_regroups_on_a_worker_and_applies_on_poll(gallery):  # noqa: F811
    from engine.live import LiveSession
    from engine.sightings import unknowns

    g, ids = gallery
    session = LiveSession(gallery=g, recognizer=object())
    assert session.request_regroup() is True
    assert session.regrouping and session.request_regroup() is False  # one at a time
    summary = session.wait_regroup(timeout=60)
    assert not session.regrouping and summary["groups"] == 3 and summary["new"] == 3
    assert all(len(group_of(g, ids[n]) - {None}) == 1 for n in PEOPLE)
    assert 0 < session.regroup_blocked_s < 5.0
    # an edit while it computes: the stale result is dropped and computed again
    gid = next(iter(group_of(g, ids["Tony_Blair"])))
    assert session.request_regroup()
    unknowns.ignore_group(g, gid)
    session.wait_regroup(timeout=60)
    assert group_of(g, ids["Tony_Blair"]) == {gid}
    assert gid not in {x.id for x in unknowns.groups(g)} and len(unknowns.groups(g)) == 2


def test_an_incremental_regroup_equals_a_full_one():
    """Keeping the last grouping's neighbour pairs and comparing only the new sightings gives the
    same groups and centroids as computing every pair again, with sightings gone and come."""
    from engine.sightings import regrouping
    from engine.sightings.grouping import GroupingConfig, unit_rows

    rng = np.random.default_rng(3)
    n, d = 1400, 64
    centres = unit_rows(rng.standard_normal((200, d)).astype(np.float32))
    x = unit_rows(centres[rng.integers(0, 200, n)] + 0.09 * rng.standard_normal((n, d)).astype(np.float32))
    quality = rng.uniform(0.1, 1.0, n).astype(np.float32)

    def snap(ids, prev):
        return regrouping.Snapshot(ids, prev, quality[ids], x[ids], {}, {}, np.zeros(0, np.int64),
                                   np.zeros((0, d), np.float32), 1)

    first = regrouping.compute(snap(np.arange(1000), np.full(1000, -1)))
    ids = np.concatenate([np.arange(40, 700), np.arange(720, n)])  # 60 gone, 400 new
    prev = np.where(ids < 1000, np.pad(first.group, (0, n - 1000), constant_values=-1)[ids], -1)
    full = regrouping.compute(snap(ids, prev))
    incremental = regrouping.compute(snap(ids, prev), pairs=first.pairs)
    assert np.array_equal(full.group, incremental.group) and full.new == incremental.new
    assert 50 < len(set(full.group[full.group >= 0].tolist())) < 400 and (full.group < 0).any()  # real work
    assert full.centroids.keys() == incremental.centroids.keys()
    assert all(np.allclose(full.centroids[g], incremental.centroids[g], atol=1e-6) for g in full.centroids)
    other = regrouping.compute(snap(ids, prev), GroupingConfig(max_distance=0.3), pairs=first.pairs)
    assert not np.array_equal(other.group, full.group)  # other settings: the cached pairs are not used


def test_the_second_background_regroup_is_incremental(gallery, faces):  # noqa: F811
    from engine.live import LiveSession
    from engine.sightings import store, unknowns

    g, ids = gallery
    _, per = faces
    session = LiveSession(gallery=g, recognizer=object())
    session.request_regroup()
    session.wait_regroup(timeout=60)
    kept = session._pairs[1]
    late = store.record(g, [sighting(per["Tony_Blair"][6], time.time())])
    assert session.request_regroup()
    summary = session.wait_regroup(timeout=60)
    assert summary["moved"] == 1 and group_of(g, late) == group_of(g, ids["Tony_Blair"])
    assert session._pairs[1] is not kept and set(late) <= set(session._pairs[1].ids.tolist())
    assert unknowns.regroup(g)["moved"] == 0  # a full regroup agrees


def test_earlier_pairs_uncapped_are_every_pair_of_the_matrix():
    from engine.sightings.grouping import earlier_pairs, unit_rows

    rng = np.random.default_rng(5)
    x = unit_rows(rng.standard_normal((40, 8)).astype(np.float32)[rng.integers(0, 40, 1100)]
                  + 0.3 * rng.standard_normal((1100, 8)).astype(np.float32))
    a = sorted(zip(*[v.tolist() for v in earlier_pairs(x, 0.6, None)[:2]], strict=True))
    i, j = np.nonzero(np.triu(x @ x.T >= 0.6, k=1))  # every pair i < j of the full matrix
    b = sorted(zip(i.tolist(), j.tolist(), strict=True))
    assert a == b and len(a) > 10_000


def test_one_stranger_seen_thousands_of_times_keeps_a_bounded_number_of_pairs():
    """Every sighting of one frequent stranger is a neighbour of every other: all pairs grow with
    the square (2,000 sightings: 2 million pairs); capped, at most 32 per sighting, the groups stay
    those of the exact rule, and the incremental regroup keeps the bound."""
    from engine.sightings import regrouping
    from engine.sightings.grouping import GroupingConfig, unit_rows

    rng = np.random.default_rng(8)
    d, n = 64, 2000
    centres = unit_rows(rng.standard_normal((3, d)).astype(np.float32))
    who = np.r_[np.zeros(n - 60, int), np.ones(30, int), np.full(30, 2)]  # one frequent stranger, two rare
    rng.shuffle(who)
    x = unit_rows(centres[who] + 0.05 * rng.standard_normal((n, d)).astype(np.float32))
    ids = np.arange(n)

    def snap(k):
        return regrouping.Snapshot(ids[:k], np.full(k, -1), np.ones(k, np.float32), x[:k], {}, {},
                                   np.zeros(0, np.int64), np.zeros((0, d), np.float32), 1)

    exact = regrouping.compute(snap(n), GroupingConfig(max_neighbours=None))
    capped = regrouping.compute(snap(n))
    assert len(exact.pairs.a) > n * (n - 60) // 2 * 0.9  # quadratic without the cap
    assert len(capped.pairs.a) <= 32 * n
    assert partition(capped.group) == partition(exact.group) and len(partition(exact.group)) == 3
    first = regrouping.compute(snap(1500))
    step = regrouping.compute(snap(n), pairs=first.pairs)
    assert len(step.pairs.a) <= 32 * n and partition(step.group) == partition(exact.group)
    with pytest.raises(ValueError, match="max_neighbours"):
        GroupingConfig(max_neighbours=2)
