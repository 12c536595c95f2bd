"""Two subsetting algorithms to compare Ringsteady with, behind the same interface.

* :class:`ClassicSubsetting`: *deterministic subsetting* as Google ran it for a decade
  (B. Beyer et al., *Site Reliability Engineering*, O'Reilly 2016, chapter 20, "A Subset
  Selection Algorithm: Deterministic Subsetting"). Frontends are grouped into rounds of
  ``subset_count = backends // subset_size``; each round shuffles the backends with its own
  seed and cuts the shuffle into ``subset_count`` subsets, one per frontend of the round.
  Within a round every backend is used at most once, so connections are very even; but any
  backend change reshuffles every round, so almost every subset changes.
* :class:`RendezvousSubsetting`: *random subsetting* made deterministic with highest random
  weight (rendezvous) hashing: frontend ``f`` ranks the backends by
  ``murmur3(f as 8 big-endian bytes + canonical id bytes of the backend, seed)`` and takes the
  ``subset_size`` highest. Churn is minimal (a backend change moves at most one member of any
  subset), but the load per backend is as uneven as random choice: binomial.

Both number their backends with :class:`~lbkit.subsetting.StableIndices`, so "the order of the
backends" survives membership changes the same way as in Ringsteady.

>>> classic = ClassicSubsetting(range(6), subset_size=3, frontends=4, seed=1)
>>> sorted(classic.subset_for(0) + classic.subset_for(1))
[0, 1, 2, 3, 4, 5]
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable

from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.forwarding._servers import ServerId, check_server, server_key
from lbkit.hashing import MAX_SEED, hash_many
from lbkit.subsetting._common import (
    check_backends,
    check_frontends,
    check_subset_size,
    frontend_error,
    removal_error,
)
from lbkit.subsetting.indices import StableIndices

__all__ = ["ClassicSubsetting", "RendezvousSubsetting"]

#: Rounds whose shuffle ClassicSubsetting keeps; older ones are recomputed when asked for.
_ROUND_CACHE = 1024


class _Baseline:
    """Membership, frontends and validation, shared by the baselines."""

    def __init__(
        self,
        backends: Iterable[ServerId],
        *,
        subset_size: int,
        frontends: int,
        seed: int = 0,
    ) -> None:
        checked = check_backends(backends)
        if not checked:
            raise ConfigError("backends is empty; at least one backend is needed")
        self._subset_size = check_subset_size(subset_size, len(checked))
        self._frontends = check_frontends(frontends)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ArgumentTypeError(f"seed is {type(seed).__name__}; it must be an int")
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed is {seed}; it must be in 0..{MAX_SEED}")
        self._seed = seed
        self._indices = StableIndices(checked)
        self._changed()

    @property
    def backends(self) -> tuple[ServerId, ...]:
        """The backend ids in stable-index order."""
        return self._backends

    @property
    def frontends(self) -> int:
        """How many frontends there are; they are numbered ``0 .. frontends - 1``."""
        return self._frontends

    @property
    def subset_size(self) -> int:
        """How many backends each frontend connects to."""
        return self._subset_size

    @property
    def seed(self) -> int:
        """The seed of the shuffles (classic) or of the hash (rendezvous)."""
        return self._seed

    def subset_for(self, frontend: int) -> tuple[ServerId, ...]:
        """The backends one frontend connects to."""
        if type(frontend) is not int or not 0 <= frontend < self._frontends:
            raise frontend_error(frontend, self._frontends)
        return self._subset(frontend)

    def subsets(self) -> list[tuple[ServerId, ...]]:
        """Every frontend's subset, by frontend number."""
        return [self._subset(frontend) for frontend in range(self._frontends)]

    def connection_counts(self) -> dict[ServerId, int]:
        """How many frontends connect to each backend, in stable-index order."""
        counts = Counter(backend for subset in self.subsets() for backend in subset)
        return {backend: counts[backend] for backend in self._backends}

    def add_backend(self, backend: ServerId) -> None:
        """Add a backend at the lowest free stable index."""
        self._indices.add(check_server(backend, "backend"))
        self._changed()

    def remove_backend(self, backend: ServerId) -> None:
        """Remove a backend, freeing its stable index."""
        self._indices.index_of(backend)
        if len(self._indices) <= self._subset_size:
            raise removal_error(backend, len(self._indices), self._subset_size)
        self._indices.remove(backend)
        self._changed()

    def set_frontends(self, frontends: int) -> None:
        """Change the number of frontends."""
        self._frontends = check_frontends(frontends)

    def _changed(self) -> None:
        self._backends: tuple[ServerId, ...] = tuple(self._indices)

    def _subset(self, frontend: int) -> tuple[ServerId, ...]:
        raise NotImplementedError

    def _check(self) -> None:
        """Assert every structural invariant (for randomized tests)."""
        self._indices._check()
        assert self._backends == tuple(self._indices)
        assert 1 <= self._subset_size <= len(self._backends)
        assert self._frontends >= 1


class ClassicSubsetting(_Baseline):
    """Deterministic subsetting from the SRE book, chapter 20 (see the module docs).

    Frontend ``f`` is in round ``f // subset_count`` and takes subset ``f % subset_count`` of
    that round: positions ``[s * k, (s + 1) * k)`` of the backends (in stable-index order)
    shuffled by ``random.Random(seed * 2**32 + round)``. When ``subset_size`` does not divide
    the backend count, the last ``backends % subset_size`` backends of each round's shuffle
    get no connection in that round, as in the book's listing.

    Args:
        backends: the backend ids, each once.
        subset_size: ``1..len(backends)``.
        frontends: ``1..2**32``.
        seed: ``0..2**32 - 1``; picks every round's shuffle.

    Raises:
        ConfigError, ArgumentTypeError: as :class:`~lbkit.subsetting.Ringsteady`.

    Runtime complexity: O(n) per round to shuffle (the last 1,024 rounds are cached);
    :meth:`subset_for` is then O(k).

    >>> classic = ClassicSubsetting(["a", "b", "c", "d"], subset_size=2, frontends=4)
    >>> [len(classic.subset_for(f)) for f in range(4)]
    [2, 2, 2, 2]
    """

    def _changed(self) -> None:
        super()._changed()
        self._rounds: dict[int, list[ServerId]] = {}

    def _subset(self, frontend: int) -> tuple[ServerId, ...]:
        size = self._subset_size
        subset_count = len(self._backends) // size
        round_number, subset_id = divmod(frontend, subset_count)
        shuffled = self._rounds.get(round_number)
        if shuffled is None:
            if len(self._rounds) >= _ROUND_CACHE:
                self._rounds.clear()
            shuffled = list(self._backends)
            random.Random(self._seed * 2**32 + round_number).shuffle(shuffled)
            self._rounds[round_number] = shuffled
        return tuple(shuffled[subset_id * size : (subset_id + 1) * size])

    def __repr__(self) -> str:
        """A summary.

        >>> ClassicSubsetting(range(4), subset_size=2, frontends=9)
        ClassicSubsetting(backends=4, subset_size=2, frontends=9, seed=0)
        """
        return (
            f"ClassicSubsetting(backends={len(self._backends)}, subset_size={self._subset_size}, "
            f"frontends={self._frontends}, seed={self._seed})"
        )


class RendezvousSubsetting(_Baseline):
    """Random subsetting by highest random weight (see the module docs).

    Args:
        backends: the backend ids, each once.
        subset_size: ``1..len(backends)``.
        frontends: ``1..2**32``.
        seed: the murmur3 seed, ``0..2**32 - 1``.

    Raises:
        ConfigError, ArgumentTypeError: as :class:`~lbkit.subsetting.Ringsteady`.

    Runtime complexity: :meth:`subset_for` is O(n log k): one hash per backend.

    >>> hrw = RendezvousSubsetting(["a", "b", "c", "d"], subset_size=2, frontends=3)
    >>> hrw.subset_for(0) == hrw.subset_for(0) and len(set(hrw.subset_for(0)))
    2
    """

    def _changed(self) -> None:
        super()._changed()
        self._keys = [server_key(backend) for backend in self._backends]

    def _subset(self, frontend: int) -> tuple[ServerId, ...]:
        prefix = frontend.to_bytes(8, "big")
        weights = hash_many([prefix + key for key in self._keys], seed=self._seed)
        # Highest weight first; equal weights go to the lower stable index.
        best = heapq.nlargest(
            self._subset_size, range(len(self._keys)), key=lambda i: (weights[i], -i)
        )
        backends = self._backends
        return tuple(backends[i] for i in best)

    def __repr__(self) -> str:
        """A summary.

        >>> RendezvousSubsetting(range(4), subset_size=2, frontends=9)
        RendezvousSubsetting(backends=4, subset_size=2, frontends=9, seed=0)
        """
        return (
            f"RendezvousSubsetting(backends={len(self._backends)}, "
            f"subset_size={self._subset_size}, frontends={self._frontends}, seed={self._seed})"
        )
