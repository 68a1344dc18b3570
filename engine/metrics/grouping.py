"""Scoring a grouping of unknown sightings against who they really are (pure Python, no I/O).

A group's *owner* is the identity most of its sightings belong to (ties: the first in sorted
order); its purity is the owner's share. Sightings without a known identity (a track that
matched no true face) carry the label None and count against purity like any other intruder.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping


def group_owners(truth: Mapping[int, str | None], group: Mapping[int, int | None]) -> dict[int, tuple[str | None, int,
                                                                                                         int]]:
    """{group id: (owner, owner's sightings, all sightings)} over the sightings in ``group``
    (sighting id -> group id or None) that ``truth`` (sighting id -> identity or None) labels."""
    members: dict[int, Counter] = {}
    for sid, gid in group.items():
        if gid is not None and sid in truth:
            members.setdefault(gid, Counter())[truth[sid]] += 1
    out = {}
    for gid, c in members.items():
        owner, n = sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))[0]
        out[gid] = (owner, n, sum(c.values()))
    return out


def score_grouping(truth: Mapping[int, str | None], group: Mapping[int, int | None],
                   strangers: Iterable[str]) -> dict:
    """How well ``group`` (unknown sighting id -> group id or None) sorts ``strangers``.

    ``truth``: sighting id -> identity (None: no true face) for the unknown sightings.
    Returns ``strangers`` (how many), ``covered`` (strangers owning at least one group),
    ``groups_per_stranger`` (groups owned by strangers / strangers covered; 1.0 = one each),
    ``purity`` (owners' sightings / grouped sightings, over every group), ``mixed_groups``,
    ``grouped`` (a stranger's unknown sightings that are in a group owned by that stranger, as
    a fraction of all their unknown sightings), ``other_groups`` (groups owned by someone who
    is not a stranger, e.g. an enrolled person not recognised, or by None), and
    ``per_stranger`` {name: {sightings, grouped, groups}}.
    """
    strangers = list(strangers)
    owners = group_owners(truth, group)
    per = {s: {"sightings": 0, "grouped": 0, "groups": sorted(g for g, o in owners.items() if o[0] == s)}
           for s in strangers}
    for sid, who in truth.items():
        if who in per:
            per[who]["sightings"] += 1
            gid = group.get(sid)
            if gid is not None and gid in owners and owners[gid][0] == who:
                per[who]["grouped"] += 1
    covered = [s for s in strangers if per[s]["groups"]]
    owned = sum(len(per[s]["groups"]) for s in strangers)
    n_in, n_owner = sum(o[2] for o in owners.values()), sum(o[1] for o in owners.values())
    seen = sum(p["sightings"] for p in per.values())
    return {"strangers": len(strangers), "covered": len(covered),
            "groups_per_stranger": owned / len(covered) if covered else None,
            "purity": n_owner / n_in if n_in else None,
            "groups": len(owners), "mixed_groups": sum(o[1] < o[2] for o in owners.values()),
            "grouped": sum(p["grouped"] for p in per.values()) / seen if seen else None,
            "other_groups": sum(o[0] not in per for o in owners.values()), "per_stranger": per}
