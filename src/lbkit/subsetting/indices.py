"""Stable indices: dense integer indices for backend ids that survive membership changes.

Ringsteady places a backend on its ring by its index, so a backend must keep its index while
others come and go, and a newcomer should fill the hole a departed backend left: removing a
backend frees its index, and the next backend added takes the **lowest** free index (a fresh
one only when none is free). A backend that leaves and is replaced therefore hands its ring
position to its replacement, and subsets do not reshuffle.

The initial backends take indices ``0, 1, 2, ...`` in the order given, or, with a ``seed``, in
the order ``random.Random(seed).shuffle`` leaves them. Netflix's Zuul shuffles before building
its ring so that instances given the same list in the same order do not all load the same
backends first ("Curbing Connection Churn in Zuul", Netflix Technology Blog, 2023). The
shuffle is deterministic: CPython's ``random.Random`` gives the same permutation for the same
integer seed on every platform.

>>> indices = StableIndices(["a", "b", "c"])
>>> indices.remove("b")
>>> indices.add("d")
1
>>> list(indices)
['a', 'd', 'c']
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, UnknownServer
from lbkit.forwarding._servers import ServerId, check_server
from lbkit.hashing import MAX_SEED
from lbkit.subsetting._common import MAX_BACKENDS, check_backends

__all__ = ["StableIndices"]


class StableIndices:
    """Dense, stable integer indices for backend ids (see the module docs).

    Args:
        backends: the initial ids (``str`` of 1..255 bytes of UTF-8, or signed 64-bit
            ``int``), each once.
        seed: if given (``0..2**32 - 1``), the initial ids are shuffled with
            ``random.Random(seed)`` before they take indices ``0, 1, 2, ...``.

    Raises:
        ConfigError: an id given twice, a seed out of range, more than ``2**28`` ids.
        ArgumentTypeError: an id or the seed of the wrong type.

    Runtime complexity: O(n) to build; :meth:`add` and :meth:`remove` are O(log n) amortised.

    >>> StableIndices(["a", "b", "c", "d"], seed=7).index_of("a") in range(4)
    True
    """

    def __init__(self, backends: Iterable[ServerId] = (), *, seed: int | None = None) -> None:
        ids = check_backends(backends)
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ArgumentTypeError(f"seed is {type(seed).__name__}; it must be an int or None")
            if not 0 <= seed <= MAX_SEED:
                raise ConfigError(f"seed is {seed}; it must be in 0..{MAX_SEED}")
            random.Random(seed).shuffle(ids)
        self._seed = seed
        # Index -> id (None for a free index); id -> index; a min-heap of free indices. The heap
        # may also hold stale entries (indices trimmed off the end, or taken again since), which
        # add() discards when they reach the top.
        self._slots: list[ServerId | None] = list(ids)
        self._index: dict[ServerId, int] = {backend: i for i, backend in enumerate(ids)}
        self._free: list[int] = []

    @property
    def seed(self) -> int | None:
        """The seed the initial order was shuffled with, or ``None``.

        >>> StableIndices(["a"], seed=3).seed
        3
        """
        return self._seed

    @property
    def capacity(self) -> int:
        """One more than the highest index in use (0 when empty): the indices in use are all
        below it.

        >>> indices = StableIndices(["a", "b", "c"])
        >>> indices.remove("b")
        >>> indices.capacity, len(indices)
        (3, 2)
        """
        return len(self._slots)

    def add(self, backend: ServerId) -> int:
        """Give a new backend the lowest free index, and return it.

        Raises:
            ConfigError: ``backend`` already has an index, or ``2**28`` backends are in use.
            ArgumentTypeError: ``backend`` is not a valid id type.

        Runtime complexity: O(log n).

        >>> indices = StableIndices(["a", "b", "c"])
        >>> indices.remove("a"); indices.remove("b")
        >>> indices.add("x"), indices.add("y"), indices.add("z")
        (0, 1, 3)
        """
        backend = check_server(backend, "backend")
        if backend in self._index:
            raise ConfigError(f"backend {backend!r} already has index {self._index[backend]}")
        free = self._free
        while free and (free[0] >= len(self._slots) or self._slots[free[0]] is not None):
            heapq.heappop(free)
        if free:
            index = heapq.heappop(free)
            self._slots[index] = backend
        else:
            if len(self._slots) >= MAX_BACKENDS:
                raise ConfigError(f"there are {MAX_BACKENDS} backends; no index is left")
            index = len(self._slots)
            self._slots.append(backend)
        self._index[backend] = index
        return index

    def remove(self, backend: ServerId) -> None:
        """Free a backend's index for the next :meth:`add`.

        Raises:
            UnknownServer: ``backend`` has no index.

        Runtime complexity: O(log n) (amortised: trailing free indices are trimmed).

        >>> indices = StableIndices(["a", "b"])
        >>> indices.remove("a")
        >>> "a" in indices, len(indices)
        (False, 1)
        """
        index = self.index_of(backend)
        del self._index[backend]
        self._slots[index] = None
        heapq.heappush(self._free, index)
        # Keep capacity tight, so a ring over these indices never walks a long empty tail; the
        # heap entries of the trimmed indices go stale.
        while self._slots and self._slots[-1] is None:
            self._slots.pop()

    def index_of(self, backend: ServerId) -> int:
        """The index of a backend id.

        Raises:
            UnknownServer: ``backend`` has no index.

        Runtime complexity: O(1).

        >>> StableIndices(["a", "b"]).index_of("b")
        1
        """
        try:
            return self._index[backend]
        except (KeyError, TypeError):
            raise UnknownServer(f"backend {backend!r} has no index") from None

    def backend_at(self, index: int) -> ServerId:
        """The backend id holding an index.

        Raises:
            ArgumentTypeError: ``index`` is not an ``int``.
            InvalidArgument: no backend holds ``index``.

        Runtime complexity: O(1).

        >>> StableIndices(["a", "b"]).backend_at(1)
        'b'
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise ArgumentTypeError(f"index is {type(index).__name__}; it must be an int")
        backend = self._slots[index] if 0 <= index < len(self._slots) else None
        if backend is None:
            raise InvalidArgument(f"index is {index}; no backend holds it")
        return backend

    def items(self) -> list[tuple[int, ServerId]]:
        """``(index, backend)`` pairs in index order.

        Runtime complexity: O(capacity).

        >>> StableIndices(["a", "b"]).items()
        [(0, 'a'), (1, 'b')]
        """
        return [(i, backend) for i, backend in enumerate(self._slots) if backend is not None]

    def slots(self) -> list[ServerId | None]:
        """The id at each index below :attr:`capacity`, ``None`` where the index is free; a copy.

        Runtime complexity: O(capacity).

        >>> indices = StableIndices(["a", "b", "c"])
        >>> indices.remove("b")
        >>> indices.slots()
        ['a', None, 'c']
        """
        return list(self._slots)

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[ServerId]:
        """The ids in index order."""
        return (backend for backend in self._slots if backend is not None)

    def __contains__(self, backend: object) -> bool:
        try:
            return backend in self._index
        except TypeError:
            return False

    def __repr__(self) -> str:
        """A summary.

        >>> StableIndices(["a", "b"])
        StableIndices(backends=2, capacity=2)
        """
        return f"StableIndices(backends={len(self)}, capacity={self.capacity})"

    def _check(self) -> None:
        """Assert every structural invariant (for randomized tests)."""
        used = [i for i, backend in enumerate(self._slots) if backend is not None]
        assert len(used) == len(self._index)
        for i in used:
            backend = self._slots[i]
            assert backend is not None
            assert self._index[backend] == i
        free = {i for i, backend in enumerate(self._slots) if backend is None}
        live = {i for i in self._free if i < len(self._slots) and self._slots[i] is None}
        assert live == free
        assert not self._slots or self._slots[-1] is not None
