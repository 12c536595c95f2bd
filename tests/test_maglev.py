"""lbkit.forwarding.maglev: golden tables, weighted shares, disruption, lookups, both kernel
paths against each other and against a naive model, and every rejected input."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import pickle
import struct
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from types import ModuleType
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lbkit import _kernels
from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgument,
    InvalidKey,
    LbkitError,
    UnknownServer,
)
from lbkit.forwarding._servers import server_key
from lbkit.forwarding.disruption import TableDiff, diff
from lbkit.forwarding.maglev import DEFAULT_SIZE, MAX_SIZE, SKIP_SEED_XOR, MaglevTable
from lbkit.hashing import MAX_SEED, flow_key, hash_flow, hash_key

Vectors = Callable[[str], Any]
Weights = list[tuple[str | int, float]]

#: Table sizes the property tests draw from: small primes and powers of two, so the pure path
#: stays quick.
SIZES = [1, 2, 3, 5, 7, 13, 16, 31, 64, 101, 128, 251, 256, 509, 1024, 1031]


def digest(table: MaglevTable) -> str:
    """SHA-256 of the table's server indices as little-endian uint32, as the vectors hold it."""
    return hashlib.sha256(struct.pack(f"<{table.size}I", *table.first_hops)).hexdigest()


def exact_shares(table: MaglevTable) -> dict[str | int, Fraction]:
    """Each server's exact share of the entries, ``size * weight / sum(weights)``."""
    weights = {server: Fraction(weight) for server, weight in table.weights.items()}
    total = sum(weights.values())
    return {server: table.size * weight / total for server, weight in weights.items()}


def naive_table(weights: Weights, size: int, seed: int = 0) -> list[int]:
    """The documented rule, written as plainly as possible: explicit permutations, exact
    Fraction quotas, and the paced rounds of the module docs."""
    prime = size >= 2 and all(size % d for d in range(2, math.isqrt(size) + 1))
    permutations = []
    for server, _ in weights:
        key = server_key(server)
        offset = hash_key(key, seed=seed) % size
        skip_hash = hash_key(key, seed=seed ^ SKIP_SEED_XOR)
        skip = skip_hash % (size - 1) + 1 if prime else (skip_hash & (size - 1)) | 1
        permutations.append([(offset + j * skip) % size for j in range(size)])
    exact = [Fraction(weight) for _, weight in weights]
    shares = [size * weight / sum(exact) for weight in exact]
    quotas = [math.floor(share) for share in shares]
    ranked = sorted(range(len(weights)), key=lambda i: (quotas[i] - shares[i], i))
    for server in ranked[: size - sum(quotas)]:
        quotas[server] += 1
    table = [-1] * size
    nexts = [0] * len(weights)
    claims = [0] * len(weights)
    rounds = max(quotas)
    for round_number in range(1, rounds + 1):
        for server in range(len(weights)):
            if claims[server] * rounds < round_number * quotas[server]:
                while table[permutations[server][nexts[server]]] >= 0:
                    nexts[server] += 1
                table[permutations[server][nexts[server]]] = server
                nexts[server] += 1
                claims[server] += 1
    return table


def paper_listing_1(servers: Sequence[str | int], size: int) -> list[int]:
    """Listing 1 of the Maglev paper (unweighted): servers take turns claiming their next
    preferred free entry until the table is full."""
    prime = all(size % d for d in range(2, math.isqrt(size) + 1))
    permutation = []
    for server in servers:
        key = server_key(server)
        offset = hash_key(key) % size
        skip_hash = hash_key(key, seed=SKIP_SEED_XOR)
        skip = skip_hash % (size - 1) + 1 if prime else (skip_hash & (size - 1)) | 1
        permutation.append([(offset + j * skip) % size for j in range(size)])
    entry = [-1] * size
    next_ = [0] * len(servers)
    filled = 0
    while True:
        for i in range(len(servers)):
            c = permutation[i][next_[i]]
            while entry[c] >= 0:
                next_[i] += 1
                c = permutation[i][next_[i]]
            entry[c] = i
            next_[i] += 1
            filled += 1
            if filled == size:
                return entry


@st.composite
def configurations(draw: st.DrawFn, max_servers: int = 24) -> tuple[Weights, int]:
    """A valid (weights, size): some zero weights, at most ``size`` positive ones."""
    size = draw(st.sampled_from(SIZES))
    count = draw(st.integers(1, max_servers))
    weight = st.one_of(
        st.just(0.0),
        st.integers(1, 10).map(float),
        st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
    )
    values = draw(st.lists(weight, min_size=count, max_size=count))
    positive = [i for i, value in enumerate(values) if value > 0]
    for i in positive[size:]:
        values[i] = 0.0
    if not positive:
        values[0] = 1.0
    return [(f"server-{i}", value) for i, value in enumerate(values)], size


# --- golden vectors -------------------------------------------------------------------------


def test_golden_tables(impl: Any, vectors: Vectors) -> None:
    """Tables match the digests, counts and entries that an independent implementation of the
    documented rule wrote (tests/vectors/make_maglev_vectors.py)."""
    document = vectors("maglev.json")
    assert document["skip_seed_xor"] == SKIP_SEED_XOR
    for entry in document["tables"]:
        weights = [(server, weight) for server, weight in entry["weights"]]
        table = MaglevTable(
            weights, size=entry["size"], seed=entry["seed"], hash_seed=entry["hash_seed"]
        )
        assert digest(table) == entry["sha256"], entry["name"]
        assert list(table.counts().values()) == entry["counts"], entry["name"]
        for position, server in entry["entries"].items():
            assert table.first_hops[int(position)] == server, entry["name"]


def test_golden_lookups(impl: Any, vectors: Vectors) -> None:
    """Keys and flows go to the pinned servers through lookup, lookup_hash and lookup_many."""
    for entry in vectors("maglev.json")["tables"]:
        table = MaglevTable(
            [(server, weight) for server, weight in entry["weights"]],
            size=entry["size"],
            seed=entry["seed"],
            hash_seed=entry["hash_seed"],
        )
        for lookup in entry["lookups"]:
            key = lookup["key"]
            if lookup["kind"] == "bytes":
                key = bytes.fromhex(key)
            elif lookup["kind"] == "list":
                key = tuple(key)
            assert table.lookup(key) == lookup["server"], (entry["name"], key)
            assert table.lookup_hash(lookup["hash"]) == lookup["server"]
            index = table.lookup_many(array("I", [lookup["hash"]]))[0]
            assert table.servers[index] == lookup["server"]


# --- population -----------------------------------------------------------------------------


@given(config=configurations())
def test_every_entry_belongs_to_a_positive_weight_server(
    impl: Any, config: tuple[Weights, int]
) -> None:
    """No entry is left empty and none goes to a zero-weight server."""
    weights, size = config
    table = MaglevTable(weights, size=size)
    assert len(table.first_hops) == size
    for index in table.first_hops:
        assert table.weights[table.servers[index]] > 0


@given(config=configurations())
def test_counts_are_within_one_entry_of_the_exact_share(
    impl: Any, config: tuple[Weights, int]
) -> None:
    """The documented bound: |entries - size * weight / sum(weights)| < 1 for every server, and
    counts() tells the truth about first_hops."""
    weights, size = config
    table = MaglevTable(weights, size=size)
    tally = Counter(table.first_hops.tolist())
    counts = table.counts()
    assert counts == {server: tally[table.index_of(server)] for server in table.servers}
    assert sum(counts.values()) == size
    for server, share in exact_shares(table).items():
        assert abs(counts[server] - share) < 1, (server, counts[server], share)
    assert table.shares() == {server: count / size for server, count in counts.items()}


@given(config=configurations(max_servers=12), seed=st.integers(0, MAX_SEED))
def test_tables_follow_the_documented_rule(
    impl: Any, config: tuple[Weights, int], seed: int
) -> None:
    """Entry for entry, a table equals a naive transcription of the module docs' rule."""
    weights, size = config
    table = MaglevTable(weights, size=size, seed=seed)
    assert table.first_hops.tolist() == naive_table(weights, size, seed)


@pytest.mark.parametrize(("servers", "size"), [(5, 251), (7, 64), (13, 1031), (3, 3), (10, 4096)])
def test_equal_weights_give_the_papers_table(impl: Any, servers: int, size: int) -> None:
    """With equal weights the pacing never holds a server back until the last round, so the
    table is exactly the one of Listing 1 in the paper; counts differ by at most one."""
    ids = [f"backend-{i}" for i in range(servers)]
    table = MaglevTable(dict.fromkeys(ids, 1.0), size=size)
    assert table.first_hops.tolist() == paper_listing_1(ids, size)
    counts = table.counts().values()
    assert max(counts) - min(counts) <= 1


def test_weighted_shares_on_the_default_size(impl: Any) -> None:
    """1,000 servers with weights 1..4 on 65,537 entries: each count is within one entry of its
    exact share (a relative error below 0.1% for the lightest servers)."""
    weights = {f"backend-{i:04d}": float(1 + i % 4) for i in range(1000)}
    table = MaglevTable(weights)
    assert table.size == DEFAULT_SIZE
    shares = exact_shares(table)
    for server, count in table.counts().items():
        assert abs(count - shares[server]) < 1
    assert Counter(table.first_hops.tolist()) == Counter(
        {table.index_of(server): count for server, count in table.counts().items()}
    )


def test_zero_weight_servers_are_listed_but_own_nothing(impl: Any) -> None:
    """A drained server keeps its index; it owns no entry and receives no flow."""
    table = MaglevTable([("a", 1), ("drained", 0), ("b", 1)], size=101)
    assert table.servers == ("a", "drained", "b")
    assert table.index_of("drained") == 1
    assert table.counts()["drained"] == 0
    assert 1 not in table.first_hops.tolist()
    assert all(table.lookup_hash(h) != "drained" for h in range(0, 2**32, 2**22))


def test_a_share_below_one_entry_may_own_nothing(impl: Any) -> None:
    """A positive weight whose exact share is far below one entry loses the rounding."""
    table = MaglevTable({"big": 1000, "tiny": 0.001}, size=13)
    assert table.counts() == {"big": 13, "tiny": 0}


def test_scaling_every_weight_keeps_the_table(impl: Any) -> None:
    """Only weight ratios matter: multiplying every weight by 3 gives the same entries."""
    weights = {"a": 1, "b": 2, "c": 5}
    scaled = {server: 3 * weight for server, weight in weights.items()}
    first = MaglevTable(weights, size=509).first_hops
    assert first == MaglevTable(scaled, size=509).first_hops


def test_exact_arithmetic_breaks_a_near_tie(impl: Any) -> None:
    """0.1, 0.2 and 0.3 as floats are not exactly 1:2:3; quotas follow the floats' exact values
    (z's exact share is just below 128.5), not a rounded sum."""
    table = MaglevTable({"x": 0.1, "y": 0.2, "z": 0.3}, size=257)
    assert table.counts() == {"x": 43, "y": 86, "z": 128}
    assert exact_shares(table)["z"] < Fraction(257, 2)


# --- disruption -----------------------------------------------------------------------------


def moved_fraction_of_others(
    weights: dict[str | int, float], size: int, removed: str | int
) -> float:
    """Remove one server; the fraction of the *other* servers' entries that change server."""
    before = MaglevTable(weights, size=size)
    after = MaglevTable({s: w for s, w in weights.items() if s != removed}, size=size)
    gone = before.index_of(removed)
    others = moved = 0
    for old, new in zip(before.first_hops, after.first_hops, strict=True):
        if old != gone:
            others += 1
            moved += before.servers[old] != after.servers[new]
    return moved / others


@pytest.mark.parametrize(
    ("servers", "size", "removals", "bound"),
    [
        # About 650 entries per server: measured at most 0.72% (mean 0.55%) over all removals.
        (100, 65537, 10, 0.01),
        # About 100 entries per server, the documented minimum: measured at most 2.8% (mean 2%).
        (40, 4099, 10, 0.04),
        (40, 4096, 10, 0.04),
    ],
)
def test_removing_a_server_moves_few_other_entries(
    impl: Any, servers: int, size: int, removals: int, bound: float
) -> None:
    """The paper's minimal disruption, as a measured bound: when one of N servers goes, its own
    entries move and only a small fraction of everyone else's do (Maglev is not perfectly
    minimal; the bounds are the module docs')."""
    weights: dict[str | int, float] = {f"s{i}": float(1 + i % 4) for i in range(servers)}
    for removed in list(weights)[:removals]:
        assert moved_fraction_of_others(weights, size, removed) < bound, removed


def test_diff_of_a_removal(impl: Any) -> None:
    """diff counts the removed server's entries plus the few others that moved, by server id."""
    weights = {f"s{i}": 1.0 for i in range(10)}
    before = MaglevTable(weights, size=4099)
    after = MaglevTable({s: w for s, w in weights.items() if s != "s3"}, size=4099)
    change = before.diff(after)
    assert isinstance(change, TableDiff)
    own = before.counts()["s3"]
    assert own <= change.moved < own + 0.03 * (4099 - own)
    assert change.broken == change.first_hop_changed == change.moved
    assert (change.slots, change.second_hop_changed, change.previous_hop_dropped) == (4099, 0, 0)
    assert after.diff(before).moved == change.moved


def test_generic_diff_counts_a_removed_servers_entries_as_broken(impl: Any) -> None:
    """The generic diff agrees with MaglevTable.diff: a removed server's entries break their
    established connections."""
    before = MaglevTable({f"s{i}": 1.0 for i in range(10)}, size=4099)
    after = MaglevTable({f"s{i}": 1.0 for i in range(1, 10)}, size=4099)
    assert diff(before, after) == before.diff(after)
    assert diff(before, after).broken == diff(before, after).moved >= before.counts()["s0"]


def test_diff_compares_servers_by_id_not_index(impl: Any) -> None:
    """Two tables that list the same servers in different orders are compared by id."""
    table = MaglevTable({"a": 1, "b": 1, "c": 1}, size=251)
    assert table.diff(table).first_hop_changed == 0
    reordered = MaglevTable({"c": 1, "a": 1, "b": 1}, size=251)
    expected = sum(
        table.servers[mine] != reordered.servers[theirs]
        for mine, theirs in zip(table.first_hops, reordered.first_hops, strict=True)
    )
    assert table.diff(reordered).moved == expected
    assert table.diff(reordered) == diff(table, reordered)  # no server missing: all agree
    renamed = MaglevTable({"x": 1, "y": 1, "z": 1}, size=251)
    assert table.diff(renamed).first_hop_changed == 251


def test_weight_change_moves_entries_towards_the_new_shares(impl: Any) -> None:
    """Doubling one of ten weights moves the entries its quota gains and few more (measured:
    2.8% more)."""
    weights: dict[str | int, float] = {f"s{i}": 1.0 for i in range(10)}
    before = MaglevTable(weights, size=65537)
    after = MaglevTable({**weights, "s0": 2.0}, size=65537)
    gained = after.counts()["s0"] - before.counts()["s0"]
    assert gained <= before.diff(after).first_hop_changed < 1.1 * gained


# --- determinism ----------------------------------------------------------------------------


def test_same_inputs_same_table(impl: Any) -> None:
    """Two builds from the same inputs are equal and hold the same entries; mappings and pairs
    are the same input."""
    weights = {f"s{i}": float(i % 3) for i in range(30)}
    first = MaglevTable(weights, size=1031, seed=9)
    second = MaglevTable(list(weights.items()), size=1031, seed=9)
    assert first == second
    assert hash(first) == hash(second)
    assert first.first_hops == second.first_hops


def test_seed_picks_the_permutations(impl: Any) -> None:
    """Another seed gives another table, with the same counts."""
    weights = {f"s{i}": 1.0 for i in range(5)}
    first = MaglevTable(weights, size=251, seed=0)
    other = MaglevTable(weights, size=251, seed=1)
    assert first != other
    assert first.first_hops != other.first_hops
    assert first.counts() == other.counts()


def test_hash_seed_moves_keys_not_entries(impl: Any) -> None:
    """hash_seed changes where keys land, not which server owns each entry."""
    plain = MaglevTable({"a": 1, "b": 1, "c": 1}, size=251)
    salted = MaglevTable({"a": 1, "b": 1, "c": 1}, size=251, hash_seed=99)
    assert plain.first_hops == salted.first_hops
    assert plain != salted
    keys = [f"key-{i}".encode() for i in range(200)]
    assert [plain.lookup(k) for k in keys] != [salted.lookup(k) for k in keys]
    assert salted.lookup(b"k") == salted.lookup_hash(hash_key(b"k", seed=99))


def test_server_order_is_index_order(impl: Any) -> None:
    """The order weights are given in is the index order, and it matters to the table."""
    forward = MaglevTable({"a": 1, "b": 1, "c": 1}, size=7)
    backward = MaglevTable({"c": 1, "b": 1, "a": 1}, size=7)
    assert forward.servers == ("a", "b", "c")
    assert backward.servers == ("c", "b", "a")
    assert forward != backward


def test_int_and_str_ids_are_different_servers(impl: Any) -> None:
    """1 and "1" hash differently (their canonical bytes are tagged)."""
    as_int = MaglevTable({1: 1, 2: 1}, size=251)
    as_str = MaglevTable({"1": 1, "2": 1}, size=251)
    assert as_int.first_hops != as_str.first_hops


# --- lookups --------------------------------------------------------------------------------


def test_lookup_forms_agree(impl: Any) -> None:
    """lookup, lookup_hash and lookup_many (hashes and packed keys) name the same server."""
    table = MaglevTable({f"s{i}": float(1 + i % 3) for i in range(7)}, size=509, hash_seed=5)
    flows = [(f"10.0.{i // 250}.{i % 250}", "192.0.2.10", 1024 + i, 443) for i in range(300)]
    keys = [flow_key(*flow) for flow in flows]
    by_flow = [table.lookup(flow) for flow in flows]
    by_key = [table.lookup(key) for key in keys]
    hashes = array("I", [hash_flow(*flow, seed=5) for flow in flows])
    by_hash = [table.lookup_hash(value) for value in hashes]
    batch = table.lookup_many(hashes)
    packed = table.lookup_many(b"".join(keys), record_size=12)
    assert by_flow == by_key == by_hash
    assert batch == packed
    assert [table.servers[index] for index in batch] == by_flow
    assert by_hash == [table.servers[table.first_hops[value % 509]] for value in hashes]
    assert table.lookup("text") == table.lookup(b"text")


@given(hashes=st.lists(st.integers(0, MAX_SEED), max_size=64), size=st.sampled_from(SIZES))
def test_lookup_many_is_lookup_hash_per_element(impl: Any, hashes: list[int], size: int) -> None:
    """lookup_many(hashes)[i] is the index of lookup_hash(hashes[i]), for prime and power-of-two
    sizes alike."""
    table = MaglevTable({"a": 1, "b": 2, "c": 0}, size=max(size, 2))
    indices = table.lookup_many(hashes)
    assert isinstance(indices, array)
    assert indices.typecode == "I"
    assert [table.servers[i] for i in indices] == [table.lookup_hash(h) for h in hashes]


def test_lookup_many_of_nothing(impl: Any) -> None:
    """An empty batch gives an empty array, from hashes or from packed keys."""
    table = MaglevTable({"a": 1}, size=7)
    assert table.lookup_many(array("I")) == array("I")
    assert table.lookup_many([]) == array("I")
    assert table.lookup_many(b"", record_size=12) == array("I")


def test_lookup_many_from_many_threads(impl: Any) -> None:
    """Threads looking up large batches at once (the GIL released on the compiled path) each
    get exactly their own results."""
    table = MaglevTable({f"s{i}": 1.0 for i in range(50)}, size=65537)
    batches = [array("I", range(i, 4_000_000, 37 + i)) for i in range(4)]
    expected = [table.lookup_many(batch) for batch in batches]
    results: list[array[int]] = [array("I") for _ in batches]

    def work(index: int) -> None:
        for _ in range(3):
            results[index] = table.lookup_many(batches[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected


def test_tables_built_in_many_threads_at_once(impl: Any) -> None:
    """Threads building tables concurrently (the walk releases the GIL on the compiled path)
    each get the table a lone build gives."""
    configurations = [{f"t{t}-s{i}": float(1 + (i + t) % 3) for i in range(60)} for t in range(4)]
    expected = [MaglevTable(weights, size=65537).first_hops.tobytes() for weights in configurations]
    results: list[bytes] = [b"" for _ in configurations]

    def work(index: int) -> None:
        for _ in range(2):
            results[index] = MaglevTable(configurations[index], size=65537).first_hops.tobytes()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(configurations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected


# --- the two paths against each other -------------------------------------------------------


@st.composite
def walks(draw: st.DrawFn) -> tuple[array[int], array[int], array[int], int]:
    """Valid populate inputs for any size: skips coprime with it, quotas that fill it."""
    size = draw(st.integers(1, 600))
    count = draw(st.integers(1, min(size, 20)))
    offsets = draw(st.lists(st.integers(0, size - 1), min_size=count, max_size=count))
    coprime = [value for value in range(1, size + 1) if math.gcd(value, size) == 1]
    skips = draw(st.lists(st.sampled_from(coprime), min_size=count, max_size=count))
    cuts = sorted(draw(st.lists(st.integers(0, size), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, size]
    quotas = [bounds[i + 1] - bounds[i] for i in range(count)]
    return array("I", offsets), array("I", skips), array("I", quotas), size


@given(walk=walks())
def test_populate_kernels_agree(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    walk: tuple[array[int], array[int], array[int], int],
) -> None:
    """The compiled and the reference populate kernels fill identical tables, and each server
    gets exactly its quota."""
    offsets, skips, quotas, size = walk
    fast = fast_kernels["maglev"].populate(offsets, skips, quotas, size)
    pure = pure_kernels["maglev"].populate(offsets, skips, quotas, size)
    assert fast == pure
    assert isinstance(fast, array)
    assert fast.typecode == "I"
    tally = Counter(fast.tolist())
    assert [tally[server] for server in range(len(quotas))] == quotas.tolist()


@given(
    hashes=st.lists(st.integers(0, MAX_SEED), max_size=50),
    first_hops=st.lists(st.integers(0, 9), min_size=1, max_size=300),
)
def test_lookup_kernels_agree(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    hashes: list[int],
    first_hops: list[int],
) -> None:
    """The compiled and the reference lookup_many kernels agree on any table length."""
    batch, table = array("I", hashes), array("I", first_hops)
    fast = fast_kernels["maglev"].lookup_many(batch, table)
    assert fast == pure_kernels["maglev"].lookup_many(batch, table)
    assert fast.tolist() == [first_hops[h % len(first_hops)] for h in hashes]


def test_a_table_built_by_one_path_reads_the_same_on_the_other(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built with the compiled kernels and read with the reference ones (and the other way
    round), a table answers the same."""
    weights = {f"s{i}": float(1 + i % 5) for i in range(40)}
    hashes = array("I", range(0, 2**32 - 1, 1_000_003))
    answers = []
    for build, read in ((fast_kernels, pure_kernels), (pure_kernels, fast_kernels)):
        monkeypatch.setattr(_kernels, "maglev", build["maglev"])
        table = MaglevTable(weights, size=8192)
        monkeypatch.setattr(_kernels, "maglev", read["maglev"])
        answers.append((table.first_hops.tobytes(), table.lookup_many(hashes)))
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("offsets", "skips", "quotas", "size", "message"),
    [
        ([0, 1], [1], [1, 1], 2, r"^offsets, skips and quotas have 2, 1 and 2 items; they must"),
        ([0], [1], [0], 0, r"^size is 0; it must be in 1\.\.2147483648$"),
        ([0], [1], [1], 2**31 + 1, r"^size is 2147483649; it must be in 1\.\.2147483648$"),
        ([7], [1], [7], 7, r"^offsets\[0\] is 7; it must be below size 7$"),
        ([0, 0], [1, 0], [3, 4], 7, r"^skips\[1\] is 0; it must be in 1\.\.7 and coprime"),
        ([0], [8], [7], 7, r"^skips\[0\] is 8; it must be in 1\.\.7 and coprime with size$"),
        ([0], [2], [8], 8, r"^skips\[0\] is 2; it must be in 1\.\.8 and coprime with size$"),
        ([0, 1], [1, 1], [3, 3], 7, r"^quotas add up to 6; they must add up to size 7$"),
        ([0], [1], [8], 7, r"^quotas add up to 8; they must add up to size 7$"),
    ],
)
def test_populate_refuses_walks_that_would_not_end(
    impl: Any, offsets: list[int], skips: list[int], quotas: list[int], size: int, message: str
) -> None:
    """Inputs that would make the walk loop forever or leave the table are refused, with the
    same words on both paths, before any work (the kernels trust their caller otherwise)."""
    with pytest.raises(InvalidArgument, match=message):
        impl.maglev.populate(array("I", offsets), array("I", skips), array("I", quotas), size)


def test_lookup_kernel_refuses_an_empty_table(impl: Any) -> None:
    """A table has at least one entry; the modulo would have no divisor."""
    with pytest.raises(InvalidArgument, match=r"^first_hops is empty; a Maglev table has"):
        impl.maglev.lookup_many(array("I", [1]), array("I"))


class MaglevModel(RuleBasedStateMachine):
    """Servers come, go and change weight; after every step each kernel flavour's table equals
    the naive transcription of the documented rule, and diffs between steps add up."""

    #: The populate kernels to build with, by flavour; set by the test on a subclass.
    flavours: ClassVar[dict[str, ModuleType]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.weights: dict[str | int, float] = {"s0": 1.0}
        self.size = 101
        self.previous: MaglevTable | None = None
        self.table = self._build()

    def _build(self) -> MaglevTable:
        tables = []
        saved = _kernels.maglev
        try:
            for module in self.flavours.values():
                _kernels.maglev = module
                tables.append(MaglevTable(self.weights, size=self.size))
        finally:
            _kernels.maglev = saved
        for other in tables[1:]:
            assert other.first_hops == tables[0].first_hops
        return tables[0]

    def _step(self) -> None:
        self.previous, self.table = self.table, self._build()

    @rule(name=st.integers(1, 40), weight=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]))
    def set_weight(self, name: int, weight: float) -> None:
        if weight > 0 or any(w > 0 for s, w in self.weights.items() if s != f"s{name}"):
            self.weights[f"s{name}"] = weight
            self._step()

    @precondition(lambda self: len(self.weights) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        server = data.draw(st.sampled_from(sorted(self.weights, key=str)))
        rest = {s: w for s, w in self.weights.items() if s != server}
        if any(rest.values()):
            self.weights = rest
            self._step()

    @rule(size=st.sampled_from([64, 101, 128, 251]))
    def resize(self, size: int) -> None:
        self.size = size
        self.previous, self.table = None, self._build()

    @invariant()
    def _check(self) -> None:
        """The table is the model's, counts are within one of the shares, every entry belongs
        to a positive-weight server, and diff counts exactly the entries that changed owner."""
        table = self.table
        assert table.first_hops.tolist() == naive_table(list(self.weights.items()), self.size)
        shares = exact_shares(table)
        for server, count in table.counts().items():
            assert abs(count - shares[server]) < 1
        assert all(self.weights[table.servers[i]] > 0 for i in table.first_hops)
        if self.previous is not None:
            changed = sum(
                self.previous.servers[old] != table.servers[new]
                for old, new in zip(self.previous.first_hops, table.first_hops, strict=True)
            )
            assert self.previous.diff(table).moved == changed


def test_tables_track_a_naive_model(request: pytest.FixtureRequest) -> None:
    """Stateful: random membership and weight changes, both kernel paths in lockstep with the
    naive model (the compiled path is left out only in a pure-only run)."""
    chosen = {"pure": request.getfixturevalue("pure_kernels")["maglev"]}
    with contextlib.suppress(pytest.skip.Exception):
        chosen["fast"] = request.getfixturevalue("fast_kernels")["maglev"]

    class Lockstep(MaglevModel):
        flavours = chosen

    run_state_machine_as_test(
        Lockstep,
        settings=settings(settings.default, max_examples=25, stateful_step_count=12),
    )


# --- the object -----------------------------------------------------------------------------


def test_attributes(impl: Any) -> None:
    """The constructor's inputs are readable as given (weights as floats)."""
    table = MaglevTable([("a", 1), ("b", 2.5)], size=64, seed=3, hash_seed=4)
    assert (table.servers, table.size, table.seed, table.hash_seed) == (("a", "b"), 64, 3, 4)
    assert table.weights == {"a": 1.0, "b": 2.5}
    assert table.index_of("b") == 1
    assert table.first_hops.format == "I"
    assert len(table.first_hops) == 64


def test_the_table_is_immutable(impl: Any) -> None:
    """Attributes cannot be set or deleted; first_hops is read-only; weights is a copy."""
    table = MaglevTable({"a": 1, "b": 1}, size=7)
    with pytest.raises(AttributeError, match="MaglevTable is immutable; cannot set 'size'"):
        table.size = 11
    with pytest.raises(AttributeError, match="MaglevTable is immutable; cannot delete 'seed'"):
        del table.seed
    with pytest.raises(TypeError):
        table.first_hops[0] = 1
    table.weights["a"] = 100.0
    assert table.weights == {"a": 1.0, "b": 1.0}


def test_pickle_and_copy(impl: Any) -> None:
    """A table pickles to an equal table with the same entries; copies are the table itself."""
    weights: dict[str | int, float] = {"a": 1, 7: 2, "c": 0}
    table = MaglevTable(weights, size=251, seed=5, hash_seed=6)
    restored = pickle.loads(pickle.dumps(table))
    assert restored == table
    assert restored.first_hops == table.first_hops
    assert copy.copy(table) is table
    assert copy.deepcopy(table) is table


def test_equality(impl: Any) -> None:
    """Equal inputs give equal tables; any differing input gives an unequal one; other types
    are never equal."""
    base = MaglevTable({"a": 1, "b": 2}, size=7)
    assert base == MaglevTable({"a": 1.0, "b": 2.0}, size=7)
    assert base != MaglevTable({"a": 1, "b": 3}, size=7)
    assert base != MaglevTable({"a": 1, "b": 2}, size=11)
    assert base != MaglevTable({"a": 1, "b": 2}, size=7, seed=1)
    assert base != MaglevTable({"a": 1, "b": 2}, size=7, hash_seed=1)
    assert base != "table"
    assert len({base, MaglevTable({"a": 1, "b": 2}, size=7)}) == 1


def test_repr(impl: Any) -> None:
    """The repr summarises size, server count and seeds."""
    table = MaglevTable({"a": 1, "b": 1}, size=7, seed=2, hash_seed=3)
    assert repr(table) == "MaglevTable(size=7, servers=2, seed=2, hash_seed=3)"


def test_unknown_server(impl: Any) -> None:
    """index_of an id the table does not list (or an unhashable value) is UnknownServer."""
    table = MaglevTable({"a": 1}, size=7)
    for server in ("b", 1, ["a"]):
        with pytest.raises(UnknownServer, match=r"is not in this table$"):
            table.index_of(server)  # type: ignore[arg-type]


def test_sizes_at_the_limits(impl: Any) -> None:
    """1 and 2 entries work; MAX_SIZE is the smallest prime above 2**24."""
    assert MaglevTable({"a": 1}, size=1).lookup(b"anything") == "a"
    assert sorted(MaglevTable({"a": 1, "b": 1}, size=2).first_hops.tolist()) == [0, 1]
    assert MAX_SIZE == 2**24 + 43
    assert all(MAX_SIZE % d for d in range(2, math.isqrt(MAX_SIZE) + 1))
    assert all(
        any(n % d == 0 for d in range(2, math.isqrt(n) + 1)) for n in range(2**24 + 1, MAX_SIZE)
    )


# --- rejected input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        ({"a": math.nan}, ConfigError, r"^weights\['a'\] is nan; weights must be finite and >= 0$"),
        ({"a": math.inf}, ConfigError, r"^weights\['a'\] is inf; weights must be finite"),
        (
            {"a": 1, "b": -1},
            ConfigError,
            r"^weights\['b'\] is -1; weights must be finite and >= 0$",
        ),
        (
            {"a": 0, "b": 0.0},
            ConfigError,
            r"^weights are all zero; at least one weight must be > 0$",
        ),
        ({}, ConfigError, r"^weights is empty; at least one server is needed$"),
        ([], ConfigError, r"^weights is empty"),
        (
            [("a", 1), ("a", 2)],
            ConfigError,
            r"^weights names server 'a' twice; server ids must be unique$",
        ),
        (
            {True: 1},
            ArgumentTypeError,
            r"^weights key True is bool; server ids must be str or int$",
        ),
        ({1.5: 1}, ArgumentTypeError, r"^weights key 1.5 is float; server ids must be str or int$"),
        (
            {b"a": 1},
            ArgumentTypeError,
            r"^weights key b'a' is bytes; server ids must be str or int$",
        ),
        (
            {"": 1},
            ConfigError,
            r"^weights key '' is 0 bytes of UTF-8; str server ids must be 1\.\.255 bytes$",
        ),
        (
            {"x" * 256: 1},
            ConfigError,
            r"is 256 bytes of UTF-8; str server ids must be 1\.\.255 bytes$",
        ),
        (
            {2**63: 1},
            ConfigError,
            r"^weights key 9223372036854775808 is 9223372036854775808; int server ids must fit",
        ),
        ({"a": "1"}, ArgumentTypeError, r"^weights\['a'\] is str; weights must be numbers$"),
        ({"a": True}, ArgumentTypeError, r"^weights\['a'\] is bool; weights must be numbers$"),
        ("ab", ArgumentTypeError, r"^weights is str; pass a mapping of server id to weight$"),
        (5, ArgumentTypeError, r"^weights is int; pass a mapping of server id to weight$"),
        (
            [("a", 1, 2)],
            ArgumentTypeError,
            r"^weights\[0\] is \('a', 1, 2\); pass \(server, weight\) pairs",
        ),
    ],
)
def test_bad_weights(impl: Any, weights: Any, error: type[Exception], message: str) -> None:
    """NaN, infinite, negative and all-zero weights, no servers, duplicates and bad ids are
    refused by name."""
    with pytest.raises(error, match=message):
        MaglevTable(weights, size=7)


@pytest.mark.parametrize(
    "size", [0, -7, 4 * 3, 9, 100, 65535, 65536 + 2, MAX_SIZE + 1, 2**25, 2**61 - 1]
)
def test_sizes_that_are_not_prime_or_powers_of_two_in_range(impl: Any, size: int) -> None:
    """Composite sizes that are not powers of two, and sizes outside 1..MAX_SIZE (even a prime
    or a power of two), are ConfigErrors naming the rule."""
    with pytest.raises(
        ConfigError,
        match=rf"^size is {size}; it must be a prime or a power of two in 1\.\.{MAX_SIZE}$",
    ):
        MaglevTable({"a": 1}, size=size)


@pytest.mark.parametrize("size", [True, 251.0, "251", None])
def test_size_of_another_type(impl: Any, size: object) -> None:
    """A size that is not an int is a type error."""
    with pytest.raises(ArgumentTypeError, match=r"^size is \w+; it must be an int$"):
        MaglevTable({"a": 1}, size=size)  # type: ignore[arg-type]


def test_size_below_the_server_count(impl: Any) -> None:
    """Fewer entries than positive-weight servers is refused; zero weights do not count."""
    with pytest.raises(
        ConfigError,
        match=r"^size is 2; it must be at least the number of servers with a positive weight \(3\)$",
    ):
        MaglevTable({"a": 1, "b": 1, "c": 1}, size=2)
    assert MaglevTable({"a": 1, "b": 1, "c": 0}, size=2).counts() == {"a": 1, "b": 1, "c": 0}


@pytest.mark.parametrize("name", ["seed", "hash_seed"])
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, ConfigError, r"is -1; it must be in 0\.\.4294967295$"),
        (2**32, ConfigError, r"is 4294967296; it must be in 0\.\.4294967295$"),
        (True, ArgumentTypeError, r"is bool; it must be an int$"),
        (1.0, ArgumentTypeError, r"is float; it must be an int$"),
    ],
)
def test_bad_seeds(
    impl: Any, name: str, value: object, error: type[Exception], message: str
) -> None:
    """Seeds are ints in 0..2**32 - 1; the message names the argument."""
    arguments: dict[str, Any] = {name: value}
    with pytest.raises(error, match=rf"^{name} {message}"):
        MaglevTable({"a": 1}, size=7, **arguments)


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        (
            7,
            ArgumentTypeError,
            r"^key is int; keys must be bytes, str or a \(src, dst, sport, dport\) flow$",
        ),
        (bytearray(b"k"), ArgumentTypeError, r"^key is bytearray; keys must be bytes, str or a"),
        (["192.0.2.1", "192.0.2.2", 1, 2], ArgumentTypeError, r"^key is list; keys must be"),
        (("192.0.2.1", "192.0.2.2", 1), ArgumentTypeError, r"^key is tuple; keys must be"),
        (("192.0.2.1", "2001:db8::1", 1, 2), InvalidKey, r"^src is IPv4 and dst is IPv6"),
        (("192.0.2.1", "192.0.2.2", 1, 70000), InvalidKey, r"^dport is 70000; ports must be"),
        ("a\ud800", InvalidKey, r"^key has the unencodable character '\\ud800' at index 1"),
    ],
)
def test_bad_lookup_keys(impl: Any, key: object, error: type[Exception], message: str) -> None:
    """Keys of other types, short tuples, malformed flows and unencodable text are refused."""
    table = MaglevTable({"a": 1}, size=7)
    with pytest.raises(error, match=message):
        table.lookup(key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, InvalidArgument, r"^hash_value is -1; it must be in 0\.\.4294967295$"),
        (2**32, InvalidArgument, r"^hash_value is 4294967296; it must be in 0\.\.4294967295$"),
        (1.0, ArgumentTypeError, r"^hash_value is float; it must be an int$"),
        (True, ArgumentTypeError, r"^hash_value is bool; it must be an int$"),
    ],
)
def test_bad_lookup_hashes(impl: Any, value: object, error: type[Exception], message: str) -> None:
    """lookup_hash takes 32-bit unsigned ints only."""
    with pytest.raises(error, match=message):
        MaglevTable({"a": 1}, size=7).lookup_hash(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "record_size", "error", "message"),
    [
        (
            array("i", [1]),
            None,
            InvalidArgument,
            r"^data is array\('i'\); hashes must be array\('I'\)",
        ),
        (
            b"x" * 12,
            None,
            ArgumentTypeError,
            r"^data is bytes; pass record_size= to look up packed",
        ),
        ([1, -1], None, InvalidArgument, r"^data\[1\] is -1; hashes must be in 0\.\.4294967295$"),
        ([1, 2.0], None, ArgumentTypeError, r"^data\[1\] is float; hashes must be int$"),
        (5, None, ArgumentTypeError, r"^data is int; it must be an array\('I'\) or an iterable"),
        (
            b"x" * 13,
            12,
            InvalidArgument,
            r"^buffer holds 13 bytes, which is not a multiple of record_size 12",
        ),
        (b"x" * 12, 0, InvalidArgument, r"^record_size is 0; it must be in 1\.\."),
    ],
)
def test_bad_lookup_batches(
    impl: Any, data: object, record_size: int | None, error: type[Exception], message: str
) -> None:
    """Batches of the wrong type, out-of-range hashes and partial records are refused."""
    with pytest.raises(error, match=message):
        MaglevTable({"a": 1}, size=7).lookup_many(data, record_size=record_size)


def test_bad_diffs(impl: Any) -> None:
    """diff needs another MaglevTable of the same size and hash_seed."""
    table = MaglevTable({"a": 1}, size=7)
    with pytest.raises(
        ConfigError,
        match=r"^other has size 11 and this table 7; Maglev tables are compared entry by entry",
    ):
        table.diff(MaglevTable({"a": 1}, size=11))
    with pytest.raises(
        ConfigError, match=r"^other has hash_seed 1 and this table 0; their entries hold"
    ):
        table.diff(MaglevTable({"a": 1}, size=7, hash_seed=1))
    with pytest.raises(ArgumentTypeError, match=r"^other is dict; it must be a MaglevTable$"):
        table.diff({"a": 1})  # type: ignore[arg-type]


def test_every_error_is_an_lbkit_error(impl: Any) -> None:
    """Whatever is refused, the caller can catch LbkitError."""
    bad_calls: list[Callable[[], object]] = [
        lambda: MaglevTable({"a": -1}),
        lambda: MaglevTable({"a": 1}, size=6),
        lambda: MaglevTable({"a": 1}).lookup(3.5),  # type: ignore[arg-type]
        lambda: MaglevTable({"a": 1}).index_of("b"),
    ]
    for call in bad_calls:
        with pytest.raises(LbkitError):
            call()
