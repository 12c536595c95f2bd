"""lbkit.subsetting: the Van der Corput kernels, stable indices, Ringsteady's churn and balance
bars, the baselines and the metrics, on both kernel paths, against golden vectors and naive
models, and every rejected input."""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from types import ModuleType
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgument,
    LbkitError,
    UnknownServer,
)
from lbkit.subsetting import (
    ClassicSubsetting,
    RendezvousSubsetting,
    Ringsteady,
    StableIndices,
    Subsetter,
    balance,
    bit_reverse,
    churn,
    compare,
    connection_counts,
    diversity,
    van_der_corput,
    vdc_order,
)

Vectors = Callable[[str], Any]
Id = str | int

# The balance bars of issue 4 (frontends >= 3 * backends; max/mean for subset sizes >= 10 and
# >= 20) and what this implementation measured. Rank scaling meets them by construction: both
# sides sit evenly by rank, so every backend has floor or ceil of the mean, and max/mean stays
# below 1 + backends / (frontends * k) (measured: 1.0325 at k >= 10, 1.0164 at k >= 20, every
# backend count 10..400 and every frontend count 3..12 times that). Backend scaling (the
# default, with the churn guarantees) does not: an exhaustive sweep of the same sizes (k = 10,
# 11, 12, 13, 20, 21, 22 and 25) reached 1.1685 at k = 10 (223 backends, 897 frontends; 1.1671
# at k = 12) and 1.1036 at k = 20 (207 backends, 769 frontends). The reason is structural, not a bug: with n not a power of two the Van der Corput
# gaps between backends alternate between one and two units, and the frontends' own positions
# add their discrepancy, so a window of k backends can sit behind more than its share of the
# ring (as frontends grow without bound the worst window alone gives 1.137 at k = 10 and 1.096
# at k = 20 for some n up to 2048). The tests assert the measured bounds and pin the misses in
# test_article_bars_where_measured_above_them.
ARTICLE_BARS = {
    ("backend", 10): 1.15,
    ("backend", 20): 1.08,
    ("rank", 10): 1.06,
    ("rank", 20): 1.03,
}
MEASURED_BOUNDS = {
    ("backend", 10): 1.17,
    ("backend", 20): 1.105,
    ("rank", 10): 1.06,
    ("rank", 20): 1.03,
}


def anything(value: object) -> Any:
    """A value passed where the signature does not allow it, to test the runtime check."""
    return value


def radical_inverse(i: int) -> Fraction:
    """The Van der Corput position of ``i``, exactly, from its binary digits as text."""
    digits = bin(i)[2:][::-1] if i else "0"
    return Fraction(int(digits, 2), 2 ** len(digits))


def naive_subsets(
    slots: Sequence[Id | None], subset_size: int, frontends: int, scaling: str = "backend"
) -> list[tuple[Id, ...]]:
    """The documented walk, written plainly: sort the occupied indices by exact position, then
    start at the first backend at or after the frontend, or (rank scaling) at rank
    ceil(j * n / frontends) for the j-th frontend in order of exact position."""
    ring = sorted((radical_inverse(i), s) for i, s in enumerate(slots) if s is not None)
    count = len(ring)
    by_position = sorted(range(frontends), key=radical_inverse)
    frontend_rank = {frontend: j for j, frontend in enumerate(by_position)}
    result = []
    for frontend in range(frontends):
        position = radical_inverse(frontend)
        if scaling == "rank":
            start = math.ceil(Fraction(frontend_rank[frontend] * count, frontends)) % count
        else:
            start = next((r for r, (p, _) in enumerate(ring) if p >= position), 0)
        result.append(tuple(ring[(start + step) % count][1] for step in range(subset_size)))
    return result


def loads(algorithm: Subsetter) -> list[int]:
    """Connections per backend."""
    return list(algorithm.connection_counts().values())


# --- Van der Corput ----------------------------------------------------------------------


def test_van_der_corput_examples(impl: Any) -> None:
    """The first elements are 0, 1/2, 1/4, 3/4, 1/8, ... and the last index is exact."""
    assert [van_der_corput(i) for i in range(8)] == [
        0.0,
        0.5,
        0.25,
        0.75,
        0.125,
        0.625,
        0.375,
        0.875,
    ]
    top = 2**53 - 1
    assert van_der_corput(top) == float(radical_inverse(top))
    assert van_der_corput(top) < 1.0


@given(st.integers(0, 2**53 - 1))
def test_van_der_corput_is_the_radical_inverse(impl: Any, i: int) -> None:
    """van_der_corput(i) equals the exact binary radical inverse, in [0, 1)."""
    assert van_der_corput(i) == radical_inverse(i)
    assert 0.0 <= van_der_corput(i) < 1.0


@given(
    st.integers(0, 64).flatmap(lambda bits: st.tuples(st.just(bits), st.integers(0, 2**bits - 1)))
)
def test_bit_reverse_mirrors_the_bits(impl: Any, case: tuple[int, int]) -> None:
    """bit_reverse mirrors exactly ``bits`` binary digits and is its own inverse."""
    bits, i = case
    expected = int(format(i, f"0{bits}b")[::-1], 2) if bits else 0
    assert bit_reverse(i, bits) == expected
    assert bit_reverse(bit_reverse(i, bits), bits) == i


@given(st.integers(0, 3000))
def test_vdc_order_is_the_sorted_order(impl: Any, n: int) -> None:
    """vdc_order(n) is range(n) sorted by position, as an array('I')."""
    order = vdc_order(n)
    assert isinstance(order, array)
    assert order.typecode == "I"
    assert order.tolist() == sorted(range(n), key=radical_inverse)


@given(st.integers(1, 4096))
def test_positions_are_distinct_so_the_order_has_no_ties(impl: Any, n: int) -> None:
    """With bits = ceil(log2 n), the positions of 0..n-1 are distinct (no tie rule needed)."""
    bits = (n - 1).bit_length()
    positions = [bit_reverse(i, bits) for i in range(n)]
    assert len(set(positions)) == n
    assert [positions[i] for i in vdc_order(n)] == sorted(positions)


def test_golden_orders(impl: Any, vectors: Vectors) -> None:
    """vdc_order matches the orders tests/vectors/make_subsetting_vectors.py wrote."""
    for n, order in vectors("subsetting.json")["vdc_order"].items():
        assert vdc_order(int(n)).tolist() == order


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: van_der_corput(-1), InvalidArgument, "i is -1; it must be in 0..9007199254740991"),
        (
            lambda: van_der_corput(2**53),
            InvalidArgument,
            "i is 9007199254740992; it must be in 0..9007199254740991",
        ),
        (lambda: van_der_corput(anything(1.0)), ArgumentTypeError, "i is float; it must be an int"),
        (lambda: van_der_corput(anything(True)), ArgumentTypeError, "i is bool; it must be an int"),
        (lambda: bit_reverse(1, 65), InvalidArgument, "bits is 65; it must be in 0..64"),
        (lambda: bit_reverse(1, -1), InvalidArgument, "bits is -1; it must be in 0..64"),
        (lambda: bit_reverse(8, 3), InvalidArgument, "i is 8; it must be in 0..7 for bits=3"),
        (lambda: bit_reverse(-1, 3), InvalidArgument, "i is -1; it must be in 0..7 for bits=3"),
        (lambda: bit_reverse(anything("1"), 3), ArgumentTypeError, "i is str; it must be an int"),
        (
            lambda: bit_reverse(1, anything(3.0)),
            ArgumentTypeError,
            "bits is float; it must be an int",
        ),
        (lambda: vdc_order(-1), InvalidArgument, "n is -1; it must be in 0..268435456"),
        (
            lambda: vdc_order(2**28 + 1),
            InvalidArgument,
            "n is 268435457; it must be in 0..268435456",
        ),
        (lambda: vdc_order(anything(None)), ArgumentTypeError, "n is NoneType; it must be an int"),
    ],
)
def test_bad_sequence_arguments(
    impl: Any, call: Callable[[], object], error: type[Exception], message: str
) -> None:
    """Out-of-range and mistyped arguments raise lbkit errors naming the argument and rule."""
    with pytest.raises(error) as caught:
        call()
    assert str(caught.value) == message


# --- kernels: fast against pure ----------------------------------------------------------


@given(st.integers(0, 5000))
def test_order_kernels_agree(
    fast_kernels: dict[str, ModuleType], pure_kernels: dict[str, ModuleType], n: int
) -> None:
    """Both vdc_order kernels return equal arrays of the same type."""
    fast, pure = fast_kernels["subsetting"].vdc_order(n), pure_kernels["subsetting"].vdc_order(n)
    assert type(fast) is type(pure)
    assert fast == pure


@given(st.lists(st.integers(0, 2**32 - 1), max_size=50), st.integers(0, 64))
def test_bit_kernels_agree(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    values: list[int],
    bits: int,
) -> None:
    """bit_reverse and ring_positions agree on both paths."""
    fast, pure = fast_kernels["subsetting"], pure_kernels["subsetting"]
    for value in values:
        value &= (1 << bits) - 1
        assert fast.bit_reverse(value, bits) == pure.bit_reverse(value, bits)
    indices = array("I", values)
    assert fast.ring_positions(indices) == pure.ring_positions(indices)


@given(
    st.lists(st.integers(0, 2**28 - 1), min_size=1, max_size=60, unique=True),
    st.data(),
    st.booleans(),
)
def test_ring_kernels_agree(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    indices: list[int],
    data: st.DataObject,
    rank_scaled: bool,
) -> None:
    """Ring.start, walk and loads agree on both paths, a ring built by one read by the other."""
    pure = pure_kernels["subsetting"]
    positions = pure.ring_positions(array("I", indices))
    order = sorted(range(len(indices)), key=positions.__getitem__)
    positions = array("I", [positions[i] for i in order])
    members = tuple(f"b{indices[i]}" for i in order)
    k = data.draw(st.integers(1, len(members)))
    frontends = data.draw(st.integers(1, 300) | st.integers(1, 2**32))
    rings = [
        module["subsetting"].Ring(positions, members, k, rank_scaled, frontends)
        for module in (fast_kernels, pure_kernels)
    ]
    fast_ring, pure_ring = rings
    for frontend in [*range(min(frontends, 40)), frontends - 1, 2**32 - 1, 2**31]:
        assert fast_ring.start(frontend) == pure_ring.start(frontend)
        assert 0 <= pure_ring.start(frontend) < len(members)
        assert fast_ring.walk(frontend) == pure_ring.walk(frontend)
    if frontends <= 5000:
        assert fast_ring.loads() == pure_ring.loads()


@given(st.integers(1, 2**32), st.integers(0, 2**32 - 1))
def test_frontend_rank_kernels_agree(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    frontends: int,
    frontend: int,
) -> None:
    """frontend_rank agrees on both paths, and stays in 0..frontends for any 32-bit frontend
    (so a walker never indexes past its ring, even for a frontend it was not built for)."""
    pure = pure_kernels["subsetting"].frontend_rank(frontend, frontends)
    assert fast_kernels["subsetting"].frontend_rank(frontend, frontends) == pure
    assert 0 <= pure <= frontends
    if frontend < frontends:
        assert pure < frontends


@given(st.integers(1, 600))
def test_frontend_rank_is_the_van_der_corput_rank(
    fast_kernels: dict[str, ModuleType], pure_kernels: dict[str, ModuleType], frontends: int
) -> None:
    """frontend_rank(f, F) is f's place among 0..F-1 sorted by exact Van der Corput position."""
    by_position = sorted(range(frontends), key=radical_inverse)
    for kernels in (fast_kernels, pure_kernels):
        rank = kernels["subsetting"].frontend_rank
        assert [rank(f, frontends) for f in by_position] == list(range(frontends))


# --- stable indices ----------------------------------------------------------------------


def test_removed_indices_are_reused_lowest_first(impl: Any) -> None:
    """add takes the lowest free index; a fresh one only when none is free."""
    indices = StableIndices(["a", "b", "c", "d"])
    indices.remove("c")
    indices.remove("a")
    assert [indices.add("x"), indices.add("y"), indices.add("z")] == [0, 2, 4]
    assert list(indices) == ["x", "b", "y", "d", "z"]
    assert indices.items() == [(0, "x"), (1, "b"), (2, "y"), (3, "d"), (4, "z")]
    indices._check()


def test_removing_the_top_indices_shrinks_capacity(impl: Any) -> None:
    """Trailing free indices are dropped, so capacity is one past the highest index in use."""
    indices = StableIndices(range(5))
    indices.remove(2)
    indices.remove(4)
    assert indices.capacity == 4
    indices.remove(3)
    assert indices.capacity == 2
    assert indices.add(9) == 2
    indices._check()


def test_seeded_shuffle_is_random_random(impl: Any) -> None:
    """The seeded initial order is random.Random(seed).shuffle of the given order."""
    ids = [f"backend-{i}" for i in range(20)]
    expected = list(ids)
    random.Random(5).shuffle(expected)
    indices = StableIndices(ids, seed=5)
    assert list(indices) == expected
    assert list(StableIndices(ids, seed=5)) == expected
    assert list(StableIndices(ids, seed=6)) != expected
    assert list(StableIndices(ids)) == ids
    assert indices.seed == 5


def test_lookups_and_repr(impl: Any) -> None:
    """index_of, backend_at, membership, len and repr."""
    indices = StableIndices([3, "x"])
    assert indices.index_of("x") == 1
    assert indices.backend_at(0) == 3
    assert 3 in indices
    assert "3" not in indices
    assert [] not in indices
    assert len(indices) == 2
    assert repr(indices) == "StableIndices(backends=2, capacity=2)"
    assert indices.slots() == [3, "x"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: StableIndices(["a", "a"]),
            ConfigError,
            "backends names backend 'a' twice; backend ids must be unique",
        ),
        (
            lambda: StableIndices(anything([1.5])),
            ArgumentTypeError,
            "backends[0] is float; server ids must be str or int",
        ),
        (
            lambda: StableIndices(anything("ab")),
            ArgumentTypeError,
            "backends is str; pass an iterable of backend ids",
        ),
        (
            lambda: StableIndices(["a"], seed=-1),
            ConfigError,
            "seed is -1; it must be in 0..4294967295",
        ),
        (
            lambda: StableIndices(["a"], seed=anything("1")),
            ArgumentTypeError,
            "seed is str; it must be an int or None",
        ),
        (lambda: StableIndices(["a"]).add("a"), ConfigError, "backend 'a' already has index 0"),
        (
            lambda: StableIndices(["a"]).add(anything(None)),
            ArgumentTypeError,
            "backend is NoneType; server ids must be str or int",
        ),
        (lambda: StableIndices(["a"]).remove("b"), UnknownServer, "backend 'b' has no index"),
        (
            lambda: StableIndices(["a"]).index_of(anything(["x"])),
            UnknownServer,
            "backend ['x'] has no index",
        ),
        (
            lambda: StableIndices(["a"]).backend_at(1),
            InvalidArgument,
            "index is 1; no backend holds it",
        ),
        (
            lambda: StableIndices(["a"]).backend_at(-1),
            InvalidArgument,
            "index is -1; no backend holds it",
        ),
        (
            lambda: StableIndices(["a"]).backend_at(anything("0")),
            ArgumentTypeError,
            "index is str; it must be an int",
        ),
    ],
)
def test_bad_indices_input(
    impl: Any, call: Callable[[], object], error: type[Exception], message: str
) -> None:
    """Duplicates, unknown ids, bad seeds and bad indices raise clear errors."""
    with pytest.raises(error) as caught:
        call()
    assert str(caught.value) == message


class IndicesModel(RuleBasedStateMachine):
    """StableIndices against a plain list of slots."""

    def __init__(self) -> None:
        super().__init__()
        self.indices = StableIndices()
        self.slots: list[int | None] = []

    @rule(backend=st.integers(0, 30))
    def add(self, backend: int) -> None:
        if backend in self.slots:
            with pytest.raises(ConfigError):
                self.indices.add(backend)
            return
        free = [i for i, slot in enumerate(self.slots) if slot is None]
        expected = free[0] if free else len(self.slots)
        if free:
            self.slots[expected] = backend
        else:
            self.slots.append(backend)
        assert self.indices.add(backend) == expected

    @precondition(lambda self: any(slot is not None for slot in self.slots))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        backend = data.draw(st.sampled_from([slot for slot in self.slots if slot is not None]))
        self.indices.remove(backend)
        self.slots[self.slots.index(backend)] = None
        while self.slots and self.slots[-1] is None:
            self.slots.pop()

    @invariant()
    def agrees(self) -> None:
        self.indices._check()
        assert self.indices.slots() == self.slots


def test_indices_track_a_naive_model() -> None:
    """Random adds and removes keep StableIndices equal to a list model, invariants intact."""
    run_state_machine_as_test(IndicesModel)


# --- Ringsteady: golden vectors and the documented rule ---------------------------------


def test_golden_subsets(impl: Any, vectors: Vectors) -> None:
    """Subsets match tests/vectors/subsetting.json, including after removals and additions."""
    for entry in vectors("subsetting.json")["configurations"]:
        ring = Ringsteady(
            entry["backends"],
            subset_size=entry["subset_size"],
            frontends=entry["frontends"],
            seed=entry["seed"],
            scaling=entry["scaling"],
        )
        for backend in entry["removed"]:
            ring.remove_backend(backend)
        for backend in entry["added"]:
            ring.add_backend(backend)
        ring._check()
        assert [list(subset) for subset in ring.subsets()] == entry["subsets"], entry["name"]


@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.just(n), st.integers(1, n), st.integers(1, 150), st.sampled_from(["backend", "rank"])
        )
    ),
    st.lists(st.integers(0, 59), max_size=10),
)
def test_subsets_follow_the_documented_walk(
    impl: Any, case: tuple[int, int, int, str], removals: list[int]
) -> None:
    """subset_for, subsets and connection_counts agree with the naive model of the module docs."""
    n, k, frontends, scaling = case
    ring = Ringsteady(range(n), subset_size=k, frontends=frontends, scaling=anything(scaling))
    slots: list[Id | None] = list(range(n))
    for backend in removals:
        if backend in slots and len(ring.backends) > k:
            ring.remove_backend(backend)
            slots[slots.index(backend)] = None
    while slots[-1] is None:
        slots.pop()
    expected = naive_subsets(slots, k, frontends, scaling)
    assert ring.subsets() == expected
    assert [ring.subset_for(f) for f in range(frontends)] == expected
    assert ring.connection_counts() == connection_counts(expected, ring.ring)
    ring._check()


def test_power_of_two_scalings_coincide(impl: Any) -> None:
    """With a power of two backends at indices 0..n-1 and a power of two frontends, rank and
    backend scaling agree."""
    for n in (1, 2, 8, 64):
        for k in {1, n // 2 or 1, n}:
            for frontends in (1, 16, 256):
                plain = Ringsteady(range(n), subset_size=k, frontends=frontends)
                rank = Ringsteady(range(n), subset_size=k, frontends=frontends, scaling="rank")
                assert plain.subsets() == rank.subsets()


# --- Ringsteady: churn bars ---------------------------------------------------------------


@st.composite
def rings(draw: st.DrawFn, scaling: str = "backend") -> Ringsteady:
    """A Ringsteady of 2..120 backends, some indices freed, 1..400 frontends."""
    n = draw(st.integers(2, 120))
    k = draw(st.integers(1, n - 1))
    frontends = draw(st.integers(1, 400))
    seed = draw(st.none() | st.integers(0, 2**32 - 1))
    ring = Ringsteady(
        [f"b{i}" for i in range(n)],
        subset_size=k,
        frontends=frontends,
        seed=seed,
        scaling=anything(scaling),
    )
    for victim in draw(st.lists(st.integers(0, n - 1), max_size=5, unique=True)):
        if len(ring.backends) > k + 1:
            ring.remove_backend(f"b{victim}")
    return ring


@given(rings(), st.data())
def test_one_backend_changes_at_most_one_member_of_each_subset(
    impl: Any, ring: Ringsteady, data: st.DataObject
) -> None:
    """±1 backend changes at most one member of each subset, and the connections created
    never exceed the affected backend's load."""
    before = ring.subsets()
    ring.add_backend("new")
    after = ring.subsets()
    change = churn(before, after)
    assert change.max_members_changed <= 1
    assert change.connections_created == ring.connection_counts()["new"]
    victim = data.draw(st.sampled_from(ring.backends))
    load = ring.connection_counts()[victim]
    ring.remove_backend(victim)
    change = churn(after, ring.subsets())
    assert change.max_members_changed <= 1
    assert change.connections_created == load
    ring._check()


@given(rings(), st.integers(1, 800))
def test_a_frontend_resize_changes_no_other_subset(
    impl: Any, ring: Ringsteady, frontends: int
) -> None:
    """set_frontends leaves every remaining frontend's subset as it was."""
    before = ring.subsets()
    ring.set_frontends(frontends)
    after = ring.subsets()
    shared = min(len(before), len(after))
    assert after[:shared] == before[:shared]
    assert len(after) == frontends


@given(
    rings(scaling="rank"),
    st.sampled_from([-1, 1]),
    st.integers(0, 3),
)
def test_one_frontend_more_or_fewer_moves_rank_subsets_by_one(
    impl: Any, ring: Ringsteady, step: int, multiple: int
) -> None:
    """Rank scaling: with at least as many frontends as backends, one frontend more or fewer
    changes each remaining subset by at most one member (every start moves by less than one
    rank), and the subsets still follow the documented walk."""
    backends = len(ring.backends)
    ring.set_frontends(max(ring.frontends, backends * multiple + 1, 2))
    before = ring.subsets()
    ring.set_frontends(ring.frontends + step)
    after = ring.subsets()
    if min(len(before), len(after)) >= backends:
        assert churn(before, after).max_members_changed <= 1
    assert len(after) == ring.frontends


def test_rank_scaling_pays_in_churn(impl: Any) -> None:
    """The measured trade-off, against the plain ring on the same sizes: rank scaling balances
    better, creates several times the ideal connections on ±1 backend (backend scaling: about
    the ideal), and on ±1 frontend changes a quarter to a third of the other frontends'
    subsets, one member each (backend scaling: none)."""
    for backends, frontends, k in [(200, 600, 10), (200, 600, 20), (500, 2000, 25)]:
        report = compare(
            backends,
            frontends=frontends,
            subset_sizes=[k],
            algorithms=["ringsteady", "ringsteady-rank"],
        )
        plain, rank = report.row("ringsteady", k), report.row("ringsteady-rank", k)
        assert plain.added.relative <= 1.1
        assert plain.removed.relative <= 1.1
        assert rank.added.relative > 3
        assert rank.removed.relative > 5
        assert plain.frontend_grown.frontends_changed == 0
        assert plain.frontend_shrunk.frontends_changed == 0
        for change in (rank.frontend_grown, rank.frontend_shrunk):
            assert 0.2 * frontends < change.frontends_changed < 0.35 * frontends
            assert change.connections_created == change.frontends_changed
            assert change.max_members_changed == 1
        assert rank.balance.max_over_mean < plain.balance.max_over_mean
        assert rank.balance.maximum - rank.balance.mean < 1


# --- Ringsteady: balance bars --------------------------------------------------------------


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_equal_counts_give_every_backend_exactly_k(impl: Any, case: tuple[int, int]) -> None:
    """frontends == backends: every backend has exactly subset_size connections."""
    n, k = case
    ring = Ringsteady(range(n), subset_size=k, frontends=n)
    assert set(loads(ring)) == {k}
    assert [ring.subset_for(f)[0] for f in range(n)] == list(range(n))


@given(
    st.integers(0, 6).flatmap(
        lambda b: st.tuples(st.just(2**b), st.integers(1, 2**b), st.integers(1, 2000))
    )
)
def test_power_of_two_backends_differ_by_at_most_three(
    impl: Any, case: tuple[int, int, int]
) -> None:
    """Up to 64 backends, a power of two, connections differ by at most 3 (the article's bar)."""
    n, k, frontends = case
    counts = loads(Ringsteady(range(n), subset_size=k, frontends=frontends))
    assert max(counts) - min(counts) <= 3


@given(
    st.integers(7, 10).flatmap(
        lambda b: st.tuples(st.just(2**b), st.integers(1, 2**b), st.integers(1, 3000))
    )
)
def test_power_of_two_spread_grows_slowly(impl: Any, case: tuple[int, int, int]) -> None:
    """Beyond 64 the spread can pass 3 (4 at 128 backends, 5 at 512, measured) but stays
    within 2 + log2(backends) / 2: the Van der Corput discrepancy grows logarithmically."""
    n, k, frontends = case
    counts = loads(Ringsteady(range(n), subset_size=k, frontends=frontends))
    assert max(counts) - min(counts) <= 2 + n.bit_length() // 2


def test_the_power_of_two_spread_passes_three() -> None:
    """The measured counterexample to the ≤ 3 bar beyond 64 backends."""
    counts = loads(Ringsteady(range(128), subset_size=43, frontends=43))
    assert max(counts) - min(counts) == 4


@given(
    st.integers(10, 300).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(10, min(n, 60)), st.integers(3 * n, 10 * n))
    ),
    st.sampled_from(["backend", "rank"]),
)
def test_many_frontends_are_balanced(impl: Any, case: tuple[int, int, int], scaling: str) -> None:
    """frontends >= 3 * backends and k >= 10 (or 20): max/mean within the measured bounds,
    which for rank scaling are the article's bars; rank scaling never puts a backend a whole
    connection above the mean."""
    n, k, frontends = case
    ring = Ringsteady(range(n), subset_size=k, frontends=frontends, scaling=anything(scaling))
    result = balance(ring)
    assert result.max_over_mean <= MEASURED_BOUNDS[(scaling, 20 if k >= 20 else 10)]
    if scaling == "rank":
        assert result.maximum - result.mean < 1
        assert result.mean - result.minimum < 1


@given(
    st.integers(1, 300).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(1, n), st.integers(1, 20 * n))
    )
)
def test_rank_scaling_is_even_at_any_counts(impl: Any, case: tuple[int, int, int]) -> None:
    """Rank scaling, any counts: backends differ by at most one connection."""
    n, k, frontends = case
    counts = loads(Ringsteady(range(n), subset_size=k, frontends=frontends, scaling="rank"))
    assert max(counts) - min(counts) <= 1


def test_article_bars_where_measured_above_them() -> None:
    """The worst cases found for backend scaling, above the article's bars: pinned so a change
    shows (the reason is in the comment on ARTICLE_BARS)."""
    cases = [
        (223, 897, 10, 1.1684),
        (223, 1409, 10, 1.1554),
        (207, 769, 20, 1.1036),
        (103, 515, 20, 1.0900),
    ]
    for n, frontends, k, measured in cases:
        ratio = balance(Ringsteady(range(n), subset_size=k, frontends=frontends)).max_over_mean
        assert ARTICLE_BARS[("backend", 20 if k >= 20 else 10)] < ratio
        assert ratio == pytest.approx(measured, abs=1e-4)
        assert ratio <= MEASURED_BOUNDS[("backend", 20 if k >= 20 else 10)]
        rank = Ringsteady(range(n), subset_size=k, frontends=frontends, scaling="rank")
        assert balance(rank).max_over_mean <= ARTICLE_BARS[("rank", 20 if k >= 20 else 10)]


# --- Ringsteady: state machine and errors ---------------------------------------------------


class RingModel(RuleBasedStateMachine):
    """Ringsteady on one path against the naive walk over a list of slots."""

    scaling: ClassVar[str] = "backend"

    def __init__(self) -> None:
        super().__init__()
        self.slots: list[Id | None] = [f"b{i}" for i in range(6)]
        self.k = 2
        self.frontends = 9
        self.ring = Ringsteady(
            [slot for slot in self.slots if slot is not None],
            subset_size=self.k,
            frontends=self.frontends,
            scaling=anything(self.scaling),
        )

    @rule(name=st.integers(0, 40))
    def add(self, name: int) -> None:
        backend = f"b{name}"
        if backend in self.slots:
            with pytest.raises(ConfigError):
                self.ring.add_backend(backend)
            return
        self.ring.add_backend(backend)
        free = [i for i, slot in enumerate(self.slots) if slot is None]
        if free:
            self.slots[free[0]] = backend
        else:
            self.slots.append(backend)

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        backend = data.draw(st.sampled_from([slot for slot in self.slots if slot is not None]))
        if sum(slot is not None for slot in self.slots) <= self.k:
            with pytest.raises(ConfigError):
                self.ring.remove_backend(backend)
            return
        self.ring.remove_backend(backend)
        self.slots[self.slots.index(backend)] = None
        while self.slots[-1] is None:
            self.slots.pop()

    @rule(frontends=st.integers(1, 40))
    def resize(self, frontends: int) -> None:
        self.ring.set_frontends(frontends)
        self.frontends = frontends

    @invariant()
    def agrees(self) -> None:
        self.ring._check()
        assert self.ring.subsets() == naive_subsets(
            self.slots, self.k, self.frontends, self.scaling
        )


@pytest.mark.parametrize("scaling", ["backend", "rank"])
def test_ring_tracks_a_naive_model(impl: Any, scaling: str) -> None:
    """Random adds, removes and resizes keep Ringsteady equal to the naive walk."""

    class Lockstep(RingModel):
        pass

    Lockstep.scaling = scaling
    run_state_machine_as_test(Lockstep)


def test_ring_attributes(impl: Any) -> None:
    """backends, ring, frontends, subset_size, scaling, index_of and repr."""
    ring = Ringsteady(["a", "b", "c"], subset_size=2, frontends=5, scaling="rank")
    assert ring.backends == ("a", "b", "c")
    assert ring.ring == ("a", "c", "b")
    assert (ring.frontends, ring.subset_size, ring.scaling) == (5, 2, "rank")
    assert ring.index_of("c") == 2
    assert repr(ring) == "Ringsteady(backends=3, subset_size=2, frontends=5, scaling='rank')"


def test_frontends_up_to_the_limit(impl: Any) -> None:
    """Frontend 2**32 - 1 is valid with 2**32 frontends; its position is just below a turn."""
    ring = Ringsteady(range(4), subset_size=1, frontends=2**32)
    assert ring.subset_for(2**32 - 1) == (0,)  # wraps past the last backend (index 3)
    assert ring.subset_for(1) == (1,)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: Ringsteady([], subset_size=1, frontends=1),
            ConfigError,
            "backends is empty; at least one backend is needed",
        ),
        (
            lambda: Ringsteady(["a", "a"], subset_size=1, frontends=1),
            ConfigError,
            "backends names backend 'a' twice; backend ids must be unique",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=2, frontends=1),
            ConfigError,
            "subset_size is 2 but there are 1 backends; a subset cannot be larger than the set of backends",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=0, frontends=1),
            ConfigError,
            "subset_size is 0; it must be at least 1",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=-1, frontends=1),
            ConfigError,
            "subset_size is -1; it must be at least 1",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=anything(1.0), frontends=1),
            ArgumentTypeError,
            "subset_size is float; it must be an int",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=0),
            ConfigError,
            "frontends is 0; it must be in 1..4294967296",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=-3),
            ConfigError,
            "frontends is -3; it must be in 1..4294967296",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2**32 + 1),
            ConfigError,
            "frontends is 4294967297; it must be in 1..4294967296",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=1, scaling=anything("frontend")),
            ConfigError,
            "scaling is 'frontend'; it must be one of ['backend', 'rank']",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=1, seed=2**32),
            ConfigError,
            "seed is 4294967296; it must be in 0..4294967295",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2).subset_for(2),
            InvalidArgument,
            "frontend is 2; frontends are numbered 0..1 (there are 2; call set_frontends to change that)",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2).subset_for(-1),
            InvalidArgument,
            "frontend is -1; frontends are numbered 0..1 (there are 2; call set_frontends to change that)",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2).subset_for(anything("0")),
            ArgumentTypeError,
            "frontend is str; it must be an int",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2).subset_for(anything(True)),
            ArgumentTypeError,
            "frontend is bool; it must be an int",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2).add_backend("a"),
            ConfigError,
            "backend 'a' already has index 0",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2).remove_backend("z"),
            UnknownServer,
            "backend 'z' has no index",
        ),
        (
            lambda: Ringsteady(["a", "b"], subset_size=2, frontends=2).remove_backend("a"),
            ConfigError,
            "removing backend 'a' would leave 1 backends, fewer than subset_size 2; add a backend first or use a smaller subset size",
        ),
        (
            lambda: Ringsteady(["a"], subset_size=1, frontends=2).set_frontends(0),
            ConfigError,
            "frontends is 0; it must be in 1..4294967296",
        ),
    ],
)
def test_bad_ring_input(
    impl: Any, call: Callable[[], object], error: type[Exception], message: str
) -> None:
    """Bad sizes, counts, ids, frontends and scalings raise clear lbkit errors."""
    with pytest.raises(error) as caught:
        call()
    assert str(caught.value) == message
    assert isinstance(caught.value, LbkitError)


def test_failed_changes_leave_the_ring_as_it_was(impl: Any) -> None:
    """A refused add, remove or resize changes nothing."""
    ring = Ringsteady(["a", "b"], subset_size=2, frontends=3)
    before = ring.subsets()
    calls: list[Callable[[], object]] = [
        lambda: ring.add_backend("a"),
        lambda: ring.remove_backend("a"),
        lambda: ring.set_frontends(-1),
    ]
    for call in calls:
        with pytest.raises(LbkitError):
            call()
    assert ring.subsets() == before
    ring._check()


# --- baselines -----------------------------------------------------------------------------


def test_classic_rounds_use_each_backend_once(impl: Any) -> None:
    """Within a round of subset_count frontends, every backend is used exactly once, and the
    round's shuffle is random.Random(seed * 2**32 + round)."""
    classic = ClassicSubsetting(range(12), subset_size=3, frontends=10, seed=2)
    for round_start in (0, 4):
        used = [b for f in range(round_start, round_start + 4) for b in classic.subset_for(f)]
        assert sorted(used) == list(range(12))
    shuffled = list(range(12))
    random.Random(2 * 2**32 + 1).shuffle(shuffled)
    assert classic.subset_for(5) == tuple(shuffled[3:6])
    assert classic.subsets()[5] == classic.subset_for(5)
    classic._check()


@given(
    st.integers(2, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
    st.integers(1, 300),
)
def test_classic_balance_is_even(impl: Any, case: tuple[int, int], frontends: int) -> None:
    """With subset_size dividing the backends and whole rounds, every backend has the same load."""
    n, k = case
    n -= n % k
    if n < k:
        return
    rounds = max(1, frontends // (n // k))
    classic = ClassicSubsetting(range(n), subset_size=k, frontends=rounds * (n // k))
    assert len(set(loads(classic))) == 1


@given(rings(), st.data())
def test_rendezvous_churn_is_minimal(impl: Any, ring: Ringsteady, data: st.DataObject) -> None:
    """Rendezvous: ±1 backend changes at most one member of a subset; resizes change none."""
    hrw = RendezvousSubsetting(
        ring.backends,
        subset_size=ring.subset_size,
        frontends=min(ring.frontends, 60),
        seed=data.draw(st.integers(0, 2**32 - 1)),
    )
    before = hrw.subsets()
    hrw.add_backend("new")
    assert churn(before, hrw.subsets()).max_members_changed <= 1
    hrw.remove_backend(hrw.backends[0])
    hrw.set_frontends(hrw.frontends + 3)
    after = hrw.subsets()
    assert all(len(set(subset)) == hrw.subset_size for subset in after)
    hrw._check()


def test_rendezvous_is_highest_random_weight(impl: Any) -> None:
    """A subset is the k backends with the highest murmur3 of frontend bytes + id bytes."""
    import mmh3

    hrw = RendezvousSubsetting(["a", "b", "c", "d", "e"], subset_size=2, frontends=4, seed=9)
    for frontend in range(4):
        weights = {
            b: mmh3.hash(frontend.to_bytes(8, "big") + b"s" + b.encode(), 9, signed=False)
            for b in "abcde"
        }
        expected = tuple(sorted(weights, key=lambda b: -weights[b])[:2])
        assert hrw.subset_for(frontend) == expected


@pytest.mark.parametrize("cls", [ClassicSubsetting, RendezvousSubsetting])
def test_baselines_reject_bad_input(impl: Any, cls: type[ClassicSubsetting]) -> None:
    """The baselines validate like Ringsteady."""
    with pytest.raises(ConfigError, match="subset_size is 3 but there are 2 backends"):
        cls(["a", "b"], subset_size=3, frontends=1)
    with pytest.raises(ConfigError, match="frontends is -1"):
        cls(["a", "b"], subset_size=1, frontends=-1)
    with pytest.raises(ConfigError, match="twice"):
        cls(["a", "a"], subset_size=1, frontends=1)
    with pytest.raises(ConfigError, match="backends is empty"):
        cls([], subset_size=1, frontends=1)
    with pytest.raises(ConfigError, match="seed is -1"):
        cls(["a"], subset_size=1, frontends=1, seed=-1)
    with pytest.raises(ArgumentTypeError, match="seed is NoneType"):
        cls(["a"], subset_size=1, frontends=1, seed=anything(None))
    algorithm = cls(["a", "b"], subset_size=2, frontends=2)
    with pytest.raises(InvalidArgument, match="frontend is 2"):
        algorithm.subset_for(2)
    with pytest.raises(ConfigError, match="would leave 1 backends"):
        algorithm.remove_backend("a")
    with pytest.raises(UnknownServer):
        algorithm.remove_backend("z")
    assert repr(algorithm).startswith(cls.__name__)
    assert (algorithm.backends, algorithm.frontends, algorithm.subset_size, algorithm.seed) == (
        ("a", "b"),
        2,
        2,
        0,
    )


# --- metrics -------------------------------------------------------------------------------


def test_balance_fields(impl: Any) -> None:
    """max/mean, min/mean, spread and utilisation from connection counts."""
    ring = Ringsteady(["a", "b", "c"], subset_size=2, frontends=6)
    result = balance(ring)
    assert (result.maximum, result.minimum, result.mean) == (5, 3, 4.0)
    assert result.max_over_mean == 1.25
    assert result.min_over_mean == 0.75
    assert result.spread == 2
    assert result.utilisation == 0.8


def test_churn_and_diversity(impl: Any) -> None:
    """churn counts changed frontends and connections; diversity counts distinct subsets."""
    change = churn([("a", "b"), ("c", "d"), ("e", "f")], [("a", "x"), ("c", "d")], ideal=2.0)
    assert (change.frontends_changed, change.connections_created, change.connections_closed) == (
        1,
        1,
        1,
    )
    assert change.relative == 0.5
    assert churn([], []).relative == 0.0
    assert diversity([("a", "b"), ("b", "a")]).distinct == 1
    assert diversity([]).max_sharing == 0


def test_compare_puts_algorithms_side_by_side(impl: Any) -> None:
    """compare measures every algorithm at every size, and renders one line per row."""
    report = compare(["x", "y", "z", "w", "v", "u"], frontends=18, subset_sizes=[2, 3])
    assert [(row.algorithm, row.subset_size) for row in report.rows] == [
        (name, k)
        for name in ("ringsteady", "ringsteady-rank", "classic", "rendezvous")
        for k in (2, 3)
    ]
    text = report.render()
    assert str(report) == text
    assert len(text.splitlines()) == 2 + len(report.rows)
    ring = report.row("ringsteady", 3)
    assert ring.added.max_members_changed <= 1
    assert ring.removed.max_members_changed <= 1
    assert ring.frontend_grown.frontends_changed == 0
    assert ring.frontend_shrunk.frontends_changed == 0
    with pytest.raises(KeyError):
        report.row("ringsteady", 4)
    single = compare(4, frontends=1, subset_sizes=[1], algorithms=["classic"])
    assert single.rows[0].frontend_shrunk.frontends_changed == 0


def test_compare_shows_small_k_unevenness(impl: Any) -> None:
    """At small k the plain ring is uneven; rank scaling and classic are more even."""
    report = compare(
        1000,
        frontends=3000,
        subset_sizes=[3],
        algorithms=["ringsteady", "ringsteady-rank", "classic"],
    )
    plain = report.row("ringsteady", 3).balance.max_over_mean
    assert plain > 1.15
    assert report.row("ringsteady-rank", 3).balance.max_over_mean < plain
    assert report.row("classic", 3).balance.max_over_mean < plain


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"backends": 1, "frontends": 1, "subset_sizes": [1]},
            ConfigError,
            "backends is 1; it must be in 2..1048576",
        ),
        (
            {"backends": 4, "frontends": 0, "subset_sizes": [1]},
            ConfigError,
            "frontends is 0; it must be in 1..1048576",
        ),
        (
            {"backends": 4, "frontends": 1, "subset_sizes": []},
            ConfigError,
            "subset_sizes is empty; give at least one subset size",
        ),
        (
            {"backends": 4, "frontends": 1, "subset_sizes": [4]},
            ConfigError,
            "subset_sizes item is 4; it must be in 1..3",
        ),
        (
            {"backends": 4, "frontends": 1, "subset_sizes": 2},
            ArgumentTypeError,
            "subset_sizes is int; pass an iterable of ints",
        ),
        (
            {"backends": 4, "frontends": 1, "subset_sizes": [1], "algorithms": ["maglev"]},
            ConfigError,
            "algorithm 'maglev' is unknown; choose from ['ringsteady', 'ringsteady-rank', 'classic', 'rendezvous']",
        ),
    ],
)
def test_bad_compare_input(
    impl: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """compare refuses bad counts, sizes and algorithm names."""
    with pytest.raises(error) as caught:
        compare(**kwargs)
    assert str(caught.value) == message


def test_every_error_is_an_lbkit_error(impl: Any) -> None:
    """The errors subsetting raises on purpose derive from LbkitError."""
    for call in (
        lambda: vdc_order(-1),
        lambda: StableIndices(["a"]).remove("b"),
        lambda: Ringsteady(["a"], subset_size=1, frontends=1).subset_for(5),
        lambda: compare(3, frontends=1, subset_sizes=[9]),
    ):
        with pytest.raises(LbkitError):
            call()
    assert Counter(loads(Ringsteady(range(3), subset_size=3, frontends=2))) == Counter({2: 3})
