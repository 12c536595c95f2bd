"""How good a subsetting is: connection balance, churn, diversity, and a side-by-side report.

The measures follow "Reinventing Backend Subsetting at Google" (Ward, Wankadia and Guliani,
ACM Queue 2022), where each frontend keeps one connection to every backend of its subset:

* **Balance**: connections per backend against their mean ``frontends * subset_size /
  backends``. *Utilisation* is ``mean / max``: backends are provisioned for the busiest one,
  so this is the share of that provision the average backend uses.
* **Backend churn**: the connections a change of one backend makes frontends open. The least
  possible is the load one backend should carry, ``frontends * subset_size / backends``
  (``ideal`` below); the report gives the total relative to it.
* **Frontend churn**: how many of the frontends present before and after a frontend resize
  saw their subset change.
* **Diversity**: how many distinct subsets there are, and the most frontends sharing one (a
  backend failure hurts most where many frontends share a subset).

:func:`~lbkit.subsetting.compare` puts the algorithms side by side on the same sizes:

>>> report = compare(32, frontends=96, subset_sizes=[4])
>>> [row.algorithm for row in report.rows]
['ringsteady', 'ringsteady-rank', 'classic', 'rendezvous']
>>> report.row("ringsteady", 4).added.max_members_changed
1
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.forwarding._servers import ServerId
from lbkit.subsetting._common import Subsetter, check_backends, check_count
from lbkit.subsetting.baselines import ClassicSubsetting, RendezvousSubsetting
from lbkit.subsetting.ring import Ringsteady

__all__ = [
    "ALGORITHMS",
    "Balance",
    "Churn",
    "Comparison",
    "ComparisonRow",
    "Diversity",
    "Subsetter",
    "balance",
    "churn",
    "compare",
    "connection_counts",
    "diversity",
]

Subsets = Sequence[Sequence[ServerId]]
#: Builds one algorithm: ``factory(backends, subset_size=k, frontends=f, seed=s)``.
Factory = Callable[..., Subsetter]


def _ringsteady_rank(
    backends: Iterable[ServerId], *, subset_size: int, frontends: int, seed: int
) -> Ringsteady:
    return Ringsteady(
        backends, subset_size=subset_size, frontends=frontends, seed=seed, scaling="rank"
    )


def _ringsteady(
    backends: Iterable[ServerId], *, subset_size: int, frontends: int, seed: int
) -> Ringsteady:
    return Ringsteady(backends, subset_size=subset_size, frontends=frontends, seed=seed)


#: The algorithms :func:`~lbkit.subsetting.compare` knows, by name.
ALGORITHMS: Mapping[str, Factory] = {
    "ringsteady": _ringsteady,
    "ringsteady-rank": _ringsteady_rank,
    "classic": ClassicSubsetting,
    "rendezvous": RendezvousSubsetting,
}


@attrs.frozen
class Balance:
    """Connections per backend: the spread around their mean."""

    backends: int
    frontends: int
    subset_size: int
    #: ``frontends * subset_size / backends``.
    mean: float
    maximum: int
    minimum: int

    @property
    def max_over_mean(self) -> float:
        """The busiest backend's connections over the mean (1.0 is perfect)."""
        return self.maximum / self.mean

    @property
    def min_over_mean(self) -> float:
        """The idlest backend's connections over the mean (1.0 is perfect)."""
        return self.minimum / self.mean

    @property
    def spread(self) -> int:
        """``maximum - minimum``."""
        return self.maximum - self.minimum

    @property
    def utilisation(self) -> float:
        """``mean / maximum``: the share of a busiest-backend provision the average uses."""
        return self.mean / self.maximum if self.maximum else 1.0


@attrs.frozen
class Churn:
    """What one change did to the subsets of the frontends present before and after it."""

    #: Frontends whose subset changed.
    frontends_changed: int
    #: Connections opened: backends in a frontend's new subset and not in its old one.
    connections_created: int
    #: Connections closed: backends in a frontend's old subset and not in its new one.
    connections_closed: int
    #: The most members any one subset changed by (created for that frontend).
    max_members_changed: int
    #: The least churn possible for the change (see :func:`churn`), or 0 if not given.
    ideal: float

    @property
    def relative(self) -> float:
        """``connections_created / ideal`` (1.0 is the least possible); 0.0 without an ideal."""
        return self.connections_created / self.ideal if self.ideal else 0.0


@attrs.frozen
class Diversity:
    """How many different subsets the frontends use."""

    frontends: int
    #: Distinct subsets (as sets of backends).
    distinct: int
    #: The most frontends that share one subset.
    max_sharing: int


@attrs.frozen
class ComparisonRow:
    """One algorithm at one subset size, in :class:`Comparison`."""

    algorithm: str
    subset_size: int
    balance: Balance
    diversity: Diversity
    #: A new backend added.
    added: Churn
    #: The backend at the middle stable index removed.
    removed: Churn
    #: One more frontend: how many existing frontends changed subset.
    frontend_grown: Churn
    #: One frontend fewer (when there are at least two).
    frontend_shrunk: Churn


@attrs.frozen
class Comparison:
    """Algorithms side by side on the same backends and frontends (see
    :func:`~lbkit.subsetting.compare`)."""

    backends: int
    frontends: int
    rows: tuple[ComparisonRow, ...]

    def row(self, algorithm: str, subset_size: int) -> ComparisonRow:
        """The row of one algorithm at one subset size.

        Raises:
            KeyError: no such row.

        Runtime complexity: O(rows).

        >>> compare(8, frontends=8, subset_sizes=[2]).row("classic", 2).subset_size
        2
        """
        for row in self.rows:
            if row.algorithm == algorithm and row.subset_size == subset_size:
                return row
        raise KeyError((algorithm, subset_size))

    def render(self) -> str:
        """A plain-text table, one line per algorithm and subset size.

        Runtime complexity: O(rows).

        >>> print(compare(8, frontends=8, subset_sizes=[4], algorithms=["ringsteady"]).render())
        ... # doctest: +NORMALIZE_WHITESPACE
        8 backends, 8 frontends; churn is connections created relative to the ideal F*k/B;
        frontend churn counts frontends changed
        algorithm   k  max/mean  min/mean  max-min   util  distinct  max shared  +1 backend
          -1 backend  +1 frontend  -1 frontend
        ringsteady  4     1.000     1.000        0  1.000         8           1        0.84
                1.00            0            0
        """
        header = (
            "algorithm",
            "k",
            "max/mean",
            "min/mean",
            "max-min",
            "util",
            "distinct",
            "max shared",
            "+1 backend",
            "-1 backend",
            "+1 frontend",
            "-1 frontend",
        )
        cells = [
            (
                row.algorithm,
                str(row.subset_size),
                f"{row.balance.max_over_mean:.3f}",
                f"{row.balance.min_over_mean:.3f}",
                str(row.balance.spread),
                f"{row.balance.utilisation:.3f}",
                str(row.diversity.distinct),
                str(row.diversity.max_sharing),
                f"{row.added.relative:.2f}",
                f"{row.removed.relative:.2f}",
                str(row.frontend_grown.frontends_changed),
                str(row.frontend_shrunk.frontends_changed),
            )
            for row in self.rows
        ]
        widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
        lines = [
            f"{self.backends} backends, {self.frontends} frontends; churn is connections "
            "created relative to the ideal F*k/B; frontend churn counts frontends changed"
        ]
        for line in [header, *cells]:
            first = line[0].ljust(widths[0])
            rest = "  ".join(cell.rjust(widths[i + 1]) for i, cell in enumerate(line[1:]))
            lines.append(f"{first}  {rest}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def connection_counts(subsets: Subsets, backends: Iterable[ServerId]) -> dict[ServerId, int]:
    """How many subsets contain each backend, for every backend listed (0 included).

    Runtime complexity: O(frontends * k + backends).

    >>> connection_counts([("a", "b"), ("b", "c")], ["a", "b", "c", "d"])
    {'a': 1, 'b': 2, 'c': 1, 'd': 0}
    """
    counts = Counter(backend for subset in subsets for backend in subset)
    return {backend: counts[backend] for backend in backends}


def balance(algorithm: Subsetter) -> Balance:
    """The connection balance of an algorithm's current subsets.

    Runtime complexity: that of ``algorithm.connection_counts()``.

    >>> balance(Ringsteady(range(10), subset_size=3, frontends=10))
    Balance(backends=10, frontends=10, subset_size=3, mean=3.0, maximum=3, minimum=3)
    """
    counts = list(algorithm.connection_counts().values())
    return Balance(
        backends=len(counts),
        frontends=algorithm.frontends,
        subset_size=algorithm.subset_size,
        mean=algorithm.frontends * algorithm.subset_size / len(counts),
        maximum=max(counts),
        minimum=min(counts),
    )


def churn(before: Subsets, after: Subsets, *, ideal: float = 0.0) -> Churn:
    """Compare the subsets of the frontends present both before and after a change.

    ``ideal`` is the least churn possible, for :attr:`Churn.relative`: for one backend added
    or removed, the load one backend should carry, ``frontends * subset_size / backends``
    with the larger of the two backend counts.

    Runtime complexity: O(frontends * k).

    >>> change = churn([("a", "b"), ("c", "d")], [("a", "e"), ("c", "d")], ideal=1.0)
    >>> change.frontends_changed, change.connections_created, change.relative
    (1, 1, 1.0)
    """
    changed = created = closed = worst = 0
    for old, new in zip(before, after, strict=False):  # frontends present in both
        old_set, new_set = set(old), set(new)
        gained = len(new_set - old_set)
        lost = len(old_set - new_set)
        if gained or lost:
            changed += 1
        created += gained
        closed += lost
        worst = max(worst, gained)
    return Churn(
        frontends_changed=changed,
        connections_created=created,
        connections_closed=closed,
        max_members_changed=worst,
        ideal=float(ideal),
    )


def diversity(subsets: Subsets) -> Diversity:
    """How many distinct subsets (as sets) there are, and the most frontends sharing one.

    Runtime complexity: O(frontends * k).

    >>> diversity([("a", "b"), ("b", "a"), ("c", "d")])
    Diversity(frontends=3, distinct=2, max_sharing=2)
    """
    shared = Counter(frozenset(subset) for subset in subsets)
    return Diversity(
        frontends=len(subsets),
        distinct=len(shared),
        max_sharing=max(shared.values(), default=0),
    )


def compare(
    backends: int | Iterable[ServerId],
    *,
    frontends: int,
    subset_sizes: Iterable[int],
    algorithms: Iterable[str] = tuple(ALGORITHMS),
    seed: int = 0,
) -> Comparison:
    """Measure each algorithm on the same backends and frontends, for each subset size.

    ``backends`` is a count (ids ``0 .. n - 1``) or the ids. For each algorithm (a name in
    :data:`ALGORITHMS`) and subset size it builds a fresh instance and measures balance,
    diversity, the churn of adding one backend and of removing the backend at the middle
    stable index, and how many frontends change subset when one frontend is added or the last
    one removed.

    Raises:
        ConfigError: an unknown algorithm, no subset sizes, or a count or size the algorithms
            refuse (a subset size must leave room to remove a backend: ``k < backends``).
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(algorithms * sizes * frontends * n) (rendezvous hashes every backend
    for every frontend).

    >>> report = compare(64, frontends=192, subset_sizes=[3, 16])
    >>> report.row("ringsteady", 16).balance.max_over_mean <= 1.0 + 1e-9
    True
    >>> report.row("classic", 3).added.relative > 10
    True
    """
    if isinstance(backends, int) and not isinstance(backends, bool):
        ids: list[ServerId] = list(range(check_count(backends, "backends", 2, 2**20)))
    else:
        ids = check_backends(backends)
    check_count(frontends, "frontends", 1, 2**20)
    if isinstance(subset_sizes, (str, bytes)) or not isinstance(subset_sizes, Iterable):
        raise ArgumentTypeError(
            f"subset_sizes is {type(subset_sizes).__name__}; pass an iterable of ints"
        )
    sizes = [check_count(k, "subset_sizes item", 1, max(len(ids) - 1, 1)) for k in subset_sizes]
    if not sizes:
        raise ConfigError("subset_sizes is empty; give at least one subset size")
    names = list(algorithms)
    for name in names:
        if name not in ALGORITHMS:
            raise ConfigError(f"algorithm {name!r} is unknown; choose from {list(ALGORITHMS)}")
    added_id = _fresh_id(ids)
    rows = []
    for name in names:
        factory = ALGORITHMS[name]
        for k in sizes:
            rows.append(_measure(name, factory, ids, added_id, frontends, k, seed))
    return Comparison(backends=len(ids), frontends=frontends, rows=tuple(rows))


def _measure(
    name: str,
    factory: Factory,
    ids: list[ServerId],
    added_id: ServerId,
    frontends: int,
    k: int,
    seed: int,
) -> ComparisonRow:
    def build() -> Subsetter:
        return factory(ids, subset_size=k, frontends=frontends, seed=seed)

    algorithm = build()
    before = algorithm.subsets()
    count = len(ids)
    grown = build()
    grown.add_backend(added_id)
    added = churn(before, grown.subsets(), ideal=frontends * k / (count + 1))
    shrunk = build()
    shrunk.remove_backend(shrunk.backends[count // 2])
    removed = churn(before, shrunk.subsets(), ideal=frontends * k / count)
    more = build()
    more.set_frontends(frontends + 1)
    frontend_grown = churn(before, more.subsets())
    if frontends >= 2:
        fewer = build()
        fewer.set_frontends(frontends - 1)
        frontend_shrunk = churn(before, fewer.subsets())
    else:
        frontend_shrunk = Churn(0, 0, 0, 0, 0.0)
    return ComparisonRow(
        algorithm=name,
        subset_size=k,
        balance=balance(algorithm),
        diversity=diversity(before),
        added=added,
        removed=removed,
        frontend_grown=frontend_grown,
        frontend_shrunk=frontend_shrunk,
    )


def _fresh_id(ids: list[ServerId]) -> ServerId:
    """An id not among ``ids``: one past the largest int id, or a new name."""
    present = set(ids)
    if all(isinstance(backend, int) for backend in ids):
        return max((backend for backend in ids if isinstance(backend, int)), default=-1) + 1
    candidate = "added-backend"
    suffix = 0
    while candidate in present:
        suffix += 1
        candidate = f"added-backend-{suffix}"
    return candidate
