"""Per-track identity voting: a stable name per track from a stream of noisy gallery matches.

Every time a track's face is embedded and matched, :meth:`IdentityBook.vote` records a vote
``(person_id or NO_ID, similarity, quality)``. The book stores person ids only: names are
looked up from the gallery when a result is labelled (:meth:`IdentityBook.apply`), so a rename
or a delete shows on the next frame. Votes live in a sliding window (the last
``window`` votes of the track) and their weights decay exponentially with age (half-life
``half_life_s``), so old evidence fades and a name can change after sustained contrary
evidence. A vote for a person weighs ``similarity * quality``. An *unknown* vote (best match
below the threshold) weighs ``unknown_weight * quality``: its similarity measures how far the
face is from everyone, not how sure the vote is, so a fixed stand-in is used.

Decision, re-evaluated at each vote (no votes, no change: a name survives misses and
occlusions as long as the tracker keeps the track):

* **attach** -- the leading person has at least ``min_votes`` votes in the window and weighs
  more than ``dominance`` x (everyone else + unknown);
* **switch** -- while named, another person passes the same test (it must out-weigh the
  current name by ``dominance``, so a few noisy votes never flip it);
* **release** -- while named, the last ``release_votes`` votes all went elsewhere *and* the
  name no longer out-weighs the rest of the window: the track becomes unknown again
  (it keeps its track id).

A track is *one person* (issue #15): :meth:`IdentityBook.contradicts` tells, before a vote,
whether the new embedding belongs to someone else -- then the caller ends the track and starts
a new one (:meth:`engine.track.Tracker.split`, a new id, hence a new sighting) instead of letting
the votes relabel it slowly. The check is on the embedding itself (no other appearance model):
each track keeps its last ``split_memory`` embeddings, and the new one contradicts the track when

* its best cosine similarity to them is below ``split_similarity`` (the face changed: works for
  unknown people too), or
* it is a confident match (above the gallery threshold) of a person other than the track's
  name, and its best similarity to the track's embeddings is below ``split_other_similarity``
  (another enrolled person took the track's place: at a shot cut the two faces can still be
  ~0.45 alike -- cartoon faces, same lighting -- while a face compared with itself a second
  earlier is > 0.7).

A track is *decided* when its state is backed by its latest vote: named and the last vote
agrees, or unknown by the same dominance test and the last vote was unknown.
:class:`engine.track.EmbedPolicy` re-embeds undecided tracks more often, so a contested or
new track resolves quickly and a settled one costs an embedding every few seconds.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.records import NO_ID, Faces
from engine.util.check import check as _check


@dataclass(frozen=True)
class IdentityConfig:
    """Voting settings.

    ``min_votes``: votes in the window the leader needs before a name is attached.
    ``dominance``: the leader's weight must exceed this many times the weight of all other
    votes (runner-up persons + unknown) -- to attach, and to switch to another person.
    ``release_votes``: consecutive contrary votes (other persons or unknown) that, together with
    the name losing its majority of weight, release the name.
    ``window``: votes remembered per track. ``half_life_s``: vote weights halve every this many
    seconds. ``unknown_weight``: similarity credited to an unknown vote.
    ``near_miss``: an unknown vote whose best gallery match came within this (cosine) of the
    gallery's unknown threshold (the caller says so: ``vote(near=True)``) does not settle a track
    as unknown on its own: a second unknown vote must follow. A first look at a face entering at
    an angle often scores just under the threshold (measured: 0.449 against 0.461, then 0.54-0.62
    a few frames later); settled at once, it waited for the settled-unknown refresh (2 s). Costs
    one more embedding per near miss, none for faces far from everyone (0 = off).
    ``split``: split a track whose new embedding contradicts it (see the module docstring);
    ``split_similarity`` / ``split_other_similarity``: the two cosine-similarity bounds there
    (-1 turns a rule off); ``split_memory``: embeddings kept per track for the check.
    """

    min_votes: int = 2
    dominance: float = 2.5
    release_votes: int = 3
    window: int = 12
    half_life_s: float = 5.0
    unknown_weight: float = 0.4
    near_miss: float = 0.1
    split: bool = True
    split_similarity: float = 0.3
    split_other_similarity: float = 0.6
    split_memory: int = 8

    def __post_init__(self) -> None:
        _check(self.min_votes >= 1, f"identity min_votes must be >= 1, got {self.min_votes}")
        _check(math.isfinite(self.dominance) and self.dominance >= 1.0,
               f"identity dominance must be >= 1, got {self.dominance}")
        _check(self.release_votes >= 1, f"identity release_votes must be >= 1, got {self.release_votes}")
        _check(self.window >= max(self.min_votes, self.release_votes),
               f"identity window ({self.window}) must hold min_votes and release_votes")
        _check(math.isfinite(self.half_life_s) and self.half_life_s > 0,
               f"identity half_life_s must be > 0, got {self.half_life_s}")
        _check(0.0 <= self.unknown_weight <= 1.0,
               f"identity unknown_weight must be in [0, 1], got {self.unknown_weight}")
        _check(math.isfinite(self.near_miss) and 0.0 <= self.near_miss <= 1.0,
               f"identity near_miss must be in [0, 1], got {self.near_miss}")
        for key in ("split_similarity", "split_other_similarity"):
            value = getattr(self, key)
            _check(math.isfinite(value) and -1.0 <= value <= 1.0, f"identity {key} must be in [-1, 1], got {value}")
        _check(self.split_memory >= 1, f"identity split_memory must be >= 1, got {self.split_memory}")


@dataclass(frozen=True)
class Vote:
    person_id: int
    similarity: float
    weight: float
    timestamp: float
    confirmed: bool = True  # graded confirmed by the open-set decision (else probable or unknown)
    near: bool = False  # an unknown vote whose best match came within near_miss of the threshold


class _TrackVotes:
    __slots__ = ("votes", "person_id", "similarity", "last_similarity", "settled_unknown", "latest", "embeddings")

    def __init__(self, window: int, memory: int = 8) -> None:
        self.votes: deque[Vote] = deque(maxlen=window)
        self.embeddings: deque[np.ndarray] = deque(maxlen=memory)  # unit vectors, for contradicts()
        self.person_id = NO_ID
        self.similarity = float("nan")       # weighted mean similarity of the votes for the name
        self.last_similarity = float("nan")  # of the latest vote, shown while unknown
        self.settled_unknown = False
        self.latest = -float("inf")


class IdentityBook:
    """Identity votes and the resulting label of every live track."""

    def __init__(self, config: IdentityConfig | None = None) -> None:
        self.config = config or IdentityConfig()
        self._tracks: dict[int, _TrackVotes] = {}

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._tracks

    def vote(self, track_id: int, person_id: int, similarity: float, quality: float,
             timestamp: float, embedding: np.ndarray | None = None, confirmed: bool = True,
             near: bool = False) -> tuple[int, float]:
        """Record one gallery match of the track's face; returns the track's label after it.

        ``person_id`` < 0 (``NO_ID``) is an unknown vote;
        ``similarity`` may be NaN for an unknown vote (empty gallery); ``quality`` in [0, 1].
        ``embedding``: the (D,) embedding voted with, remembered for :meth:`contradicts`.
        ``near``: an unknown vote that came within ``near_miss`` of the gallery's threshold
        (see :class:`IdentityConfig`; ignored for a vote for a person or with ``near_miss`` 0).
        """
        cfg = self.config
        track_id, person_id = int(track_id), int(person_id)
        _check(track_id >= 0, f"identity votes need a tracked face, got track id {track_id}")
        _check(0.0 <= quality <= 1.0, f"identity vote quality must be in [0, 1], got {quality}")
        sim = float(similarity)
        if person_id < 0:
            person_id = NO_ID
            weight = cfg.unknown_weight * quality
        else:
            _check(math.isfinite(sim), f"identity vote for person {person_id} needs a finite similarity")
            weight = max(sim, 0.0) * quality
        state = self._tracks.get(track_id)
        if state is None:
            state = self._tracks[track_id] = _TrackVotes(cfg.window, cfg.split_memory)
        if embedding is not None:
            state.embeddings.append(_unit(embedding))
        state.latest = max(state.latest, float(timestamp))
        near = bool(near) and person_id == NO_ID and cfg.near_miss > 0
        state.votes.append(Vote(person_id, sim, weight, float(timestamp), bool(confirmed), near))
        state.last_similarity = sim
        self._decide(state)
        return self._label(state)

    def memory_similarity(self, track_id: int, embedding: np.ndarray) -> float:
        """Best cosine similarity of ``embedding`` (D,) to the track's remembered embeddings;
        NaN when it has none."""
        state = self._tracks.get(int(track_id))
        if state is None or not state.embeddings:
            return float("nan")
        return float(np.max(np.stack(state.embeddings) @ _unit(embedding)))

    def contradicts(self, track_id: int, embedding: np.ndarray, person_id: int) -> bool:
        """True when ``embedding`` (D,), matched to ``person_id`` (``NO_ID`` = unknown, after the
        gallery threshold), is not the person the track has been so far (module docstring): the
        caller should split the track rather than vote. Never True without remembered
        embeddings or with ``split`` off. Records nothing."""
        cfg = self.config
        sim = self.memory_similarity(track_id, embedding) if cfg.split else float("nan")
        if not math.isfinite(sim):
            return False
        if sim < cfg.split_similarity:
            return True
        named, pid = self._tracks[int(track_id)].person_id, int(person_id)
        return named >= 0 and pid >= 0 and pid != named and sim < cfg.split_other_similarity

    def label(self, track_id: int) -> tuple[int, float]:
        """``(person_id, similarity)``; ``(NO_ID, sim of the latest vote or NaN)`` while unknown."""
        state = self._tracks.get(int(track_id))
        return (NO_ID, float("nan")) if state is None else self._label(state)

    def confirmed(self, track_ids: Iterable[int]) -> np.ndarray:
        """(N,) bool: the track is named and its latest vote for that person was graded
        confirmed (``vote(confirmed=...)``, from engine.gallery.index.classify); a named track
        whose latest vote for its person was probable is shown as probable ("Name?")."""
        out = []
        for t in track_ids:
            s = self._tracks.get(int(t))
            last = None if s is None or s.person_id < 0 else next(
                (v for v in reversed(s.votes) if v.person_id == s.person_id), None)
            out.append(last is not None and last.confirmed)
        return np.array(out, bool)

    def assign(self, track_id: int, person_id: int, similarity: float, quality: float, timestamp: float) -> None:
        """Give the track a person now (an enrolment of this very track): its earlier votes are
        dropped, since unknown votes must not outweigh the identity the user just gave it."""
        self.forget([track_id])
        self.vote(track_id, person_id, similarity, quality, timestamp)
        state = self._tracks[int(track_id)]
        if person_id != NO_ID:
            state.person_id = int(person_id)  # attach even where min_votes asks for more votes
            state.similarity = float(similarity)

    def decided(self, track_ids: Iterable[int]) -> np.ndarray:
        """(N,) bool: the track's label is backed by its latest vote (see module docstring)."""
        out = []
        for t in track_ids:
            s = self._tracks.get(int(t))
            if s is None or not s.votes:
                out.append(False)
            elif s.person_id >= 0:
                out.append(s.votes[-1].person_id == s.person_id)
            else:
                out.append(s.settled_unknown and s.votes[-1].person_id == NO_ID)
        return np.array(out, bool)

    def named(self, track_ids: Iterable[int]) -> np.ndarray:
        """(N,) bool: the track's label is a person (not unknown)."""
        return np.array([self.label(t)[0] >= 0 for t in track_ids], bool)

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop removed tracks."""
        for t in track_ids:
            self._tracks.pop(int(t), None)

    def reset(self) -> None:
        self._tracks.clear()

    def apply(self, faces: Faces, names_of: Callable[[Sequence[int]], list[str | None]] | None = None) -> Faces:
        """Fill identities/names/similarities of every tracked face (track id >= 0) from the
        book; untracked faces keep their values. ``names_of(person_ids) -> names`` is the
        gallery's current names (``GalleryIndex.names_of``); a person it no longer knows
        (deleted) is shown as unknown (``NO_ID``, None). Without it every name is None."""
        if len(faces) == 0:
            return faces
        ids = faces.identities.copy()
        sims = faces.similarities.copy()
        names = list(faces.names)
        tracked = [k for k, t in enumerate(faces.track_ids) if t >= 0]
        for k in tracked:
            ids[k], sims[k] = self.label(int(faces.track_ids[k]))
        looked = names_of([int(ids[k]) for k in tracked]) if names_of is not None else [None] * len(tracked)
        for k, name in zip(tracked, looked, strict=True):
            names[k] = name
            if name is None:
                ids[k] = NO_ID  # unknown, or a person deleted from the gallery since the votes
        return faces.replace(identities=ids, names=tuple(names), similarities=sims)

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _label(state: _TrackVotes) -> tuple[int, float]:
        if state.person_id >= 0:
            return state.person_id, state.similarity
        return NO_ID, state.last_similarity

    def _decide(self, state: _TrackVotes) -> None:
        cfg = self.config
        weight: dict[int, float] = {}
        count: dict[int, int] = {}
        wsim: dict[int, float] = {}
        for v in state.votes:
            w = v.weight * 0.5 ** (max(state.latest - v.timestamp, 0.0) / cfg.half_life_s)
            weight[v.person_id] = weight.get(v.person_id, 0.0) + w
            count[v.person_id] = count.get(v.person_id, 0) + 1
            if v.person_id >= 0:
                wsim[v.person_id] = wsim.get(v.person_id, 0.0) + w * v.similarity
        total = sum(weight.values())

        def dominates(pid: int) -> bool:
            w = weight.get(pid, 0.0)
            return count.get(pid, 0) >= cfg.min_votes and w > 0 and w > cfg.dominance * (total - w)

        persons = [p for p in weight if p >= 0]
        # leader: the heaviest person (an exact tie goes to the person who appeared last)
        leader = max(reversed(persons), key=lambda p: weight[p], default=None)
        current = state.person_id
        if leader is not None and leader != current and dominates(leader):
            state.person_id = leader                                      # attach or switch
        elif current >= 0:
            streak = 0
            for v in reversed(state.votes):
                if v.person_id == current:
                    break
                streak += 1
            w_cur = weight.get(current, 0.0)
            if streak >= cfg.release_votes and w_cur <= total - w_cur:
                state.person_id = NO_ID                                   # release
        if state.person_id >= 0:
            w = weight.get(state.person_id, 0.0)
            if w > 0:
                state.similarity = wsim[state.person_id] / w
        # a near miss alone settles nothing (IdentityConfig.near_miss): a second unknown vote must follow
        state.settled_unknown = (state.person_id < 0 and dominates(NO_ID)
                                 and (count.get(NO_ID, 0) >= 2 or not state.votes[-1].near))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def renumber(track_ids: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``track_ids`` with every id in ``mapping`` replaced by its value (split tracks' new ids)."""
    ids = np.asarray(track_ids, np.int64)
    return np.array([mapping.get(int(t), int(t)) for t in ids], np.int64).reshape(ids.shape)
