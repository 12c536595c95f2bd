"""Ringsteady subsetting: each frontend connects to a small subset of the backends, the
connections spread evenly over the backends, and almost nothing moves when either side
resizes.

Source: P. Ward, P. Wankadia and K. Guliani, "Reinventing Backend Subsetting at Google",
ACM Queue 20(5), 2022 (CACM 66(5), 2023): *consistent subsetting* puts frontends and backends
on a ring and gives each frontend the backends that follow it; *Ringsteady* takes the ring
positions from the binary Van der Corput sequence instead of a hash, which keeps the
connections balanced. The linear-time ring order is from P. Ward, "Ringsteady Sorting in
Linear Time" (blog.flowblok.id.au, 2023).

**The ring.** Every backend has a stable index (:class:`~lbkit.subsetting.StableIndices`: a
new backend takes the lowest free index) and sits at the Van der Corput position of its
index, ``bit_reverse(index, 32) / 2**32`` of a turn. Frontends are the integers
``0 .. frontends - 1``; frontend ``f`` sits at ``bit_reverse(f, 32) / 2**32``.

**The walk.** A frontend's subset is ``subset_size`` backends in ring order, wrapping around,
starting with

* ``scaling="backend"`` (the default): the first backend **at or after** the frontend's
  position. Backends keep their own positions, so adding or removing one inserts or deletes one
  point of the ring: every subset changes by **at most one member** (the walk gains or loses
  that backend and loses or gains the backend at its end), and the connections created equal
  the added backend's load, or the removed one's. Frontend positions depend on nothing but the
  frontend's own number, so resizing the frontends changes **no other frontend's subset**.
* ``scaling="rank"``, for when frontends outnumber backends: **both sides count as evenly
  spaced by rank**. The backend ``r``-th in ring order sits at ``r / n`` of a turn; the
  frontend ``j``-th in Van der Corput order among ``0 .. frontends - 1`` sits at
  ``j / frontends``; the walk starts at rank ``ceil(j * n / frontends)``. The starts then
  spread over the backends as evenly as integers can, so every window of ``subset_size``
  ranks collects ``floor`` or ``ceil`` of ``frontends * subset_size / n`` frontends: **no
  backend has more than one connection above the mean**, whatever the counts (backend
  scaling inherits the unevenness of Van der Corput gaps, which alternate between one and two
  units when ``n`` is not a power of two, and of the frontends' own positions). The price is
  churn on **both** sides. A new backend moves every rank after it, so a backend change opens
  several times the ideal number of connections (measured: one or two members per subset). A
  frontend resize moves every frontend's position: one more or one fewer frontend changes about a
  quarter to a third of the other frontends' subsets, by one member each when there are at
  least as many frontends as backends (the start moves by less than one rank); larger
  resizes can change more. Measured against the plain ring in ``tests/test_subsetting.py``
  (``test_rank_scaling_pays_in_churn``) and by :func:`~lbkit.subsetting.compare`.
  With a power of two frontends, a power of two backends and no holes in the indices, the two
  scalings give the same subsets.

**Balance**, measured by ``tests/test_subsetting.py`` (the connections of a backend against
their mean, ``frontends * subset_size / backends``):

* frontends == backends (with indices ``0 .. n - 1``): every backend has exactly
  ``subset_size`` connections with either scaling; frontend ``f`` starts at backend ``f``
  with backend scaling.
* rank scaling: the busiest backend has less than one connection above the mean, so
  ``max / mean < 1 + n / (frontends * subset_size)``: at most 1.034 with
  ``frontends >= 3 * n`` and ``subset_size >= 10``, 1.017 with ``subset_size >= 20``.
* backend scaling, frontends >= 3 * backends: ``max / mean`` up to 1.17 for
  ``subset_size >= 10`` and 1.10 for ``subset_size >= 20`` (measured 1.1685 and 1.1036 over
  every count of 10..400 backends and 3..12 times as many frontends: the bars of 1.15 and
  1.08 are not met everywhere under this reading of the article, and the tests pin the worst
  cases); a power of two backends differ by at most 3 connections up to 64 backends, by a
  few more beyond.
* Small subsets on the plain ring are uneven: see :func:`~lbkit.subsetting.compare`.

>>> ring = Ringsteady(range(8), subset_size=3, frontends=8)
>>> ring.subset_for(0), ring.subset_for(1)
((0, 4, 2), (1, 5, 3))
>>> sorted(ring.connection_counts().values())
[3, 3, 3, 3, 3, 3, 3, 3]
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Literal

from lbkit import _kernels
from lbkit.errors import ConfigError
from lbkit.forwarding._servers import ServerId, check_server
from lbkit.subsetting._common import (
    MAX_BACKENDS,
    MAX_FRONTENDS,
    check_backends,
    check_frontends,
    check_subset_size,
    frontend_error,
    removal_error,
)
from lbkit.subsetting.indices import StableIndices

__all__ = ["MAX_BACKENDS", "MAX_FRONTENDS", "SCALINGS", "Ringsteady", "Scaling"]

Scaling = Literal["backend", "rank"]
#: The ways a frontend's position maps onto the backends (see the module docs).
SCALINGS: tuple[Scaling, ...] = ("backend", "rank")


class Ringsteady:
    """Ringsteady subsets of a set of backends for frontends ``0 .. frontends - 1`` (see the
    module docs).

    Args:
        backends: the backend ids (``str`` of 1..255 bytes of UTF-8, or signed 64-bit ``int``),
            each once; they take stable indices in this order (after the ``seed`` shuffle).
        subset_size: how many backends each frontend connects to, ``1..len(backends)``.
        frontends: how many frontends there are, ``1..2**32``.
        seed: if given, the initial backends are shuffled with ``random.Random(seed)`` before
            they take their indices (as :class:`~lbkit.subsetting.StableIndices` documents).
        scaling: ``"backend"`` (the default: minimal churn) or ``"rank"`` (better balance when
            frontends outnumber backends, more churn when either side changes).

    Raises:
        ConfigError: no backends, a duplicate id, a subset size outside ``1..len(backends)``,
            a frontend count outside ``1..2**32``, an unknown scaling, a seed out of range.
        ArgumentTypeError: an argument (or a backend id) of the wrong type.

    Runtime complexity: O(n) to build (the ring order is linear, no sort);
    :meth:`subset_for` is O(k + log n) (O(k + log frontends) with rank scaling).

    >>> ring = Ringsteady(["a", "b", "c", "d", "e"], subset_size=2, frontends=10)
    >>> ring.subset_for(3)
    ('d', 'a')
    """

    def __init__(
        self,
        backends: Iterable[ServerId],
        *,
        subset_size: int,
        frontends: int,
        seed: int | None = None,
        scaling: Scaling = "backend",
    ) -> None:
        checked = check_backends(backends)
        if not checked:
            raise ConfigError("backends is empty; at least one backend is needed")
        self._subset_size = check_subset_size(subset_size, len(checked))
        self._frontends = check_frontends(frontends)
        if scaling not in SCALINGS:
            raise ConfigError(f"scaling is {scaling!r}; it must be one of {list(SCALINGS)}")
        self._scaling: Scaling = scaling
        self._indices = StableIndices(checked, seed=seed)
        self._rebuild()

    # -- lookups -------------------------------------------------------------------------

    def subset_for(self, frontend: int) -> tuple[ServerId, ...]:
        """The backends one frontend connects to, in ring order.

        Raises:
            ArgumentTypeError: ``frontend`` is not an ``int``.
            InvalidArgument: ``frontend`` is outside ``0..frontends - 1``.

        Runtime complexity: O(k + log n): a binary search of the ring (with rank scaling,
        O(log frontends) arithmetic for the frontend's rank), then ``k`` ids.

        >>> Ringsteady(range(10), subset_size=3, frontends=4).subset_for(1)
        (1, 9, 5)
        """
        if type(frontend) is not int or not 0 <= frontend < self._frontends:
            raise frontend_error(frontend, self._frontends)
        return self._walk(frontend)  # type: ignore[return-value]

    def subsets(self) -> list[tuple[ServerId, ...]]:
        """Every frontend's subset, by frontend number.

        Runtime complexity: O(frontends * (k + log n)).

        >>> Ringsteady(["a", "b", "c"], subset_size=2, frontends=3).subsets()
        [('a', 'c'), ('b', 'a'), ('c', 'b')]
        """
        walk = self._walk
        return [walk(frontend) for frontend in range(self._frontends)]  # type: ignore[misc]

    def connection_counts(self) -> dict[ServerId, int]:
        """How many frontends connect to each backend, in ring order, without materialising
        the subsets.

        Runtime complexity: O(frontends * log n + n) (O(frontends + n) with rank scaling).

        >>> Ringsteady(["a", "b", "c"], subset_size=2, frontends=6).connection_counts()
        {'a': 4, 'c': 5, 'b': 3}
        """
        loads = self._ring.loads()
        return dict(zip(self._members, loads, strict=True))

    # -- membership ----------------------------------------------------------------------

    def add_backend(self, backend: ServerId) -> None:
        """Add a backend at the lowest free stable index.

        With backend scaling, every subset changes by at most one member.

        Raises:
            ConfigError: ``backend`` is already present, or ``2**28`` backends are.
            ArgumentTypeError: ``backend`` is not a valid id type.

        Runtime complexity: O(n) (the ring snapshot is rebuilt, in linear time).

        >>> ring = Ringsteady(["a", "b"], subset_size=1, frontends=4)
        >>> ring.add_backend("c")
        >>> ring.subsets()
        [('a',), ('b',), ('c',), ('a',)]
        """
        self._indices.add(check_server(backend, "backend"))
        self._rebuild()

    def remove_backend(self, backend: ServerId) -> None:
        """Remove a backend, freeing its stable index for the next one added.

        Raises:
            UnknownServer: ``backend`` is not present.
            ConfigError: fewer backends than ``subset_size`` would be left.

        Runtime complexity: O(n).

        >>> ring = Ringsteady(["a", "b", "c"], subset_size=2, frontends=3)
        >>> ring.remove_backend("b")
        >>> ring.subsets()
        [('a', 'c'), ('a', 'c'), ('c', 'a')]
        """
        self._indices.index_of(backend)
        if len(self._indices) <= self._subset_size:
            raise removal_error(backend, len(self._indices), self._subset_size)
        self._indices.remove(backend)
        self._rebuild()

    def set_frontends(self, frontends: int) -> None:
        """Change the number of frontends; with backend scaling no remaining frontend's subset
        changes (with rank scaling some do: see the module docs).

        Raises:
            ConfigError: ``frontends`` is outside ``1..2**32``.
            ArgumentTypeError: ``frontends`` is not an ``int``.

        Runtime complexity: O(1).

        >>> ring = Ringsteady(range(6), subset_size=2, frontends=3)
        >>> before = ring.subset_for(2)
        >>> ring.set_frontends(40)
        >>> ring.subset_for(2) == before
        True
        """
        frontends = check_frontends(frontends)
        # A reader checks a frontend against the count, then walks: publish the walker for the
        # larger count first, so every frontend a reader accepts is one the walker it finds
        # knows about.
        if frontends > self._frontends:
            self._swap_walker(frontends)
            self._frontends = frontends
        else:
            self._frontends = frontends
            self._swap_walker(frontends)

    # -- inspection ----------------------------------------------------------------------

    @property
    def backends(self) -> tuple[ServerId, ...]:
        """The backend ids in stable-index order.

        >>> Ringsteady(["x", "y"], subset_size=1, frontends=1).backends
        ('x', 'y')
        """
        return tuple(self._indices)

    @property
    def ring(self) -> tuple[ServerId, ...]:
        """The backend ids in ring order (by Van der Corput position of their indices).

        >>> Ringsteady(range(6), subset_size=1, frontends=1).ring
        (0, 4, 2, 1, 5, 3)
        """
        return self._members

    @property
    def frontends(self) -> int:
        """How many frontends there are; they are numbered ``0 .. frontends - 1``.

        >>> Ringsteady(range(4), subset_size=2, frontends=9).frontends
        9
        """
        return self._frontends

    @property
    def subset_size(self) -> int:
        """How many backends each frontend connects to.

        >>> Ringsteady(range(4), subset_size=2, frontends=9).subset_size
        2
        """
        return self._subset_size

    @property
    def scaling(self) -> Scaling:
        """``"backend"`` or ``"rank"`` (see the module docs).

        >>> Ringsteady(range(4), subset_size=2, frontends=9, scaling="rank").scaling
        'rank'
        """
        return self._scaling

    def index_of(self, backend: ServerId) -> int:
        """A backend's stable index, which fixes its ring position.

        Raises:
            UnknownServer: ``backend`` is not present.

        Runtime complexity: O(1).

        >>> Ringsteady(["a", "b"], subset_size=1, frontends=1).index_of("b")
        1
        """
        return self._indices.index_of(backend)

    def __repr__(self) -> str:
        """A summary.

        >>> Ringsteady(range(4), subset_size=2, frontends=9)
        Ringsteady(backends=4, subset_size=2, frontends=9, scaling='backend')
        """
        return (
            f"Ringsteady(backends={len(self._indices)}, subset_size={self._subset_size}, "
            f"frontends={self._frontends}, scaling={self._scaling!r})"
        )

    # -- internals -----------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Lay the ring out again: backends in Van der Corput order of their indices."""
        slots = self._indices.slots()
        order = _kernels.subsetting.vdc_order(len(slots))
        indices = array("I", [index for index in order if slots[index] is not None])
        members = tuple([slots[index] for index in indices])
        positions = _kernels.subsetting.ring_positions(indices)
        # Readers take these attributes one at a time; each assignment swaps a whole snapshot.
        self._members: tuple[ServerId, ...] = members  # type: ignore[assignment]
        self._positions = positions
        self._swap_walker(self._frontends)

    def _swap_walker(self, frontends: int) -> None:
        """Build the walker for the current ring and a frontend count (O(1): it keeps
        references to the ring's arrays) and publish it."""
        ring = _kernels.subsetting.Ring(
            self._positions, self._members, self._subset_size, self._scaling == "rank", frontends
        )
        self._ring = ring
        self._walk = ring.walk

    def _check(self) -> None:
        """Assert every structural invariant (for randomized tests)."""
        self._indices._check()
        count = len(self._indices)
        assert 1 <= self._subset_size <= count <= MAX_BACKENDS
        assert 1 <= self._frontends <= MAX_FRONTENDS
        assert len(self._members) == len(self._positions) == count
        for rank in range(count):
            if rank:
                assert self._positions[rank - 1] < self._positions[rank]
            index = _kernels.subsetting.bit_reverse(self._positions[rank], 32)
            assert self._indices.backend_at(index) == self._members[rank]
