"""lbkit.forwarding: tables, the builder's rules, the redirector, blobs, and both kernel paths."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import pickle
import struct
from array import array
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lbkit import _kernels
from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    CorruptBlob,
    InvalidArgument,
    InvalidKey,
    UnknownServer,
)
from lbkit.forwarding import (
    NO_SERVER,
    ForwardingTable,
    TableBuilder,
    diff,
    redirect,
)
from lbkit.hashing import flow_key, hash_flow, hash_key, hash_packed

Vectors = Callable[[str], Any]

weights_strategy = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=3),
    st.one_of(st.integers(1, 9), st.floats(0.01, 50.0)),
    min_size=1,
    max_size=12,
)


def exact_shares(table: ForwardingTable) -> dict[Any, float]:
    total = 0.0
    for weight in table.weights.values():
        total += weight
    return {server: table.bucket_count * weight / total for server, weight in table.weights.items()}


def assert_within_one(table: ForwardingTable) -> None:
    shares = exact_shares(table)
    for server, count in table.bucket_counts().items():
        assert math.floor(shares[server]) <= count <= math.ceil(shares[server]), (server, count)


@contextlib.contextmanager
def using(kernels: dict[str, ModuleType]) -> Iterator[None]:
    """Run the public API on one kernel flavour (for lockstep comparisons in one test)."""
    saved = {name: getattr(_kernels, name) for name in kernels}
    for name, module in kernels.items():
        setattr(_kernels, name, module)
    try:
        yield
    finally:
        for name, module in saved.items():
            setattr(_kernels, name, module)


# --- the table ------------------------------------------------------------------------------


def test_lookup_forms_agree(impl: Any) -> None:
    """lookup(bytes/str/flow), lookup_hash and lookup_many name the same bucket's hops."""
    builder = TableBuilder({"a": 1, "b": 2, "c": 3}, buckets=64, hash_seed=7)
    builder.drain("b")
    table = builder.table
    flows = [(f"10.0.{i}.1", "192.0.2.1", 1000 + i, 443) for i in range(200)]
    packed = b"".join(flow_key(*flow) for flow in flows)
    first, second = table.lookup_many(packed, record_size=12)
    by_hash = table.lookup_many(hash_packed(packed, record_size=12, seed=7))
    assert (first, second) == by_hash
    for i, flow in enumerate(flows):
        expected = (
            table.servers[first[i]],
            None if second[i] == NO_SERVER else table.servers[second[i]],
        )
        key = flow_key(*flow)
        assert table.lookup(flow) == table.lookup(key) == expected
        assert table.lookup_hash(hash_flow(*flow, seed=7)) == expected
        assert ForwardingTable.lookup(table, key) == expected
    assert (
        table.lookup("text")
        == table.lookup(b"text")
        == table.lookup_hash(hash_key(b"text", seed=7))
    )


def test_lookup_uses_the_low_bits() -> None:
    """Bucket = hash & (bucket_count - 1), as Unimog indexes its table."""
    table = ForwardingTable(["a", "b", "c", "d"], list(range(4)) * 4)
    for value in (0, 5, 2**32 - 1, 0xABCDEF12):
        assert table.lookup_hash(value) == (table.servers[(value & 15) % 4], None)


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        (
            12,
            ArgumentTypeError,
            r"^key is int; keys must be bytes, str or a \(src, dst, sport, dport\) flow$",
        ),
        (bytearray(b"x"), ArgumentTypeError, r"^key is bytearray;"),
        (("1.2.3.4", "5.6.7.8", 1), ArgumentTypeError, r"^key is tuple;"),
        (("1.2.3.4", "::1", 1, 2), InvalidKey, r"^src is IPv4 and dst is IPv6"),
        ("\ud800", InvalidKey, r"^key has the unencodable character"),
    ],
)
def test_lookup_rejects_bad_keys(
    impl: Any, key: object, error: type[Exception], message: str
) -> None:
    """Bad keys raise the same clear errors on both paths."""
    table = ForwardingTable(["a"], [0] * 16)
    with pytest.raises(error, match=message):
        table.lookup(key)  # type: ignore[arg-type]


def test_lookup_hash_and_many_validate(impl: Any) -> None:
    """Hashes outside 32 bits, wrong types and wrong buffers are refused."""
    table = ForwardingTable(["a"], [0] * 16)
    with pytest.raises(
        InvalidArgument, match=r"^hash_value is 4294967296; it must be in 0\.\.4294967295$"
    ):
        table.lookup_hash(2**32)
    with pytest.raises(ArgumentTypeError, match=r"^hash_value is float"):
        table.lookup_hash(1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^data\[1\] is -1; hashes must be in"):
        table.lookup_many([1, -1])
    with pytest.raises(ArgumentTypeError, match=r"^data is bytes; pass record_size="):
        table.lookup_many(b"\x00" * 12)
    with pytest.raises(InvalidArgument, match=r"^data is array\('Q'\)"):
        table.lookup_many(array("Q", [1]))
    with pytest.raises(InvalidArgument, match=r"^buffer holds 13 bytes"):
        table.lookup_many(b"\x00" * 13, record_size=12)
    assert table.lookup_many([]) == (array("I"), array("I"))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            (["a"], [0] * 15),
            {},
            ConfigError,
            r"^len\(first_hops\) is 15; bucket counts must be powers of two from 2\*\*4 to 2\*\*24$",
        ),
        ((["a"], [0] * 8), {}, ConfigError, r"^len\(first_hops\) is 8;"),
        (
            (["a"], [0] * 15 + [1]),
            {},
            ConfigError,
            r"^first_hops\[15\] is 1; it must index servers \(0\.\.0\)$",
        ),
        ((["a", "a"], [0] * 16), {}, ConfigError, r"^servers names 'a' twice"),
        (
            (["a", True], [0] * 16),
            {},
            ArgumentTypeError,
            r"^servers\[1\] is bool; server ids must be str or int$",
        ),
        ((["a", ""], [0] * 16), {}, ConfigError, r"^servers\[1\] is 0 bytes of UTF-8"),
        (
            (["a", 2**63], [0] * 16),
            {},
            ConfigError,
            r"^servers\[1\] is 9223372036854775808; int server ids",
        ),
        ((["a"], [0] * 16, [0] * 15), {}, ConfigError, r"^second_hops has 15 entries"),
        ((["a"], [0] * 16, [1] + [NO_SERVER] * 15), {}, ConfigError, r"^second_hops\[0\] is 1;"),
        (
            (["a", "b"], [0] * 16, [1] * 16),
            {"protocol": "udp-rr"},
            ConfigError,
            r"^second_hops\[0\] is 1; udp-rr tables have no second hops$",
        ),
        (
            (["a"], [0] * 16),
            {"protocol": "sctp"},
            ConfigError,
            r"^protocol is 'sctp'; it must be one of",
        ),
        ((["a"], [0] * 16), {"generation": -1}, ConfigError, r"^generation is -1"),
        ((["a"], [0] * 16), {"hash_seed": 2**32}, ConfigError, r"^hash_seed is 4294967296"),
        (
            (["a"], [0] * 16),
            {"modified": [1] * 16},
            ConfigError,
            r"^modified holds generation 1, later than the table's generation 0$",
        ),
        (
            (["a"], [0] * 16),
            {"weights": {"a": math.nan}},
            ConfigError,
            r"^weights\['a'\] is nan; weights must be finite and >= 0$",
        ),
        ((["a"], [0] * 16), {"weights": {"z": 1}}, UnknownServer, r"^weights names 'z'"),
        (
            (["a"], [0] * 16),
            {"weights": {"a": 0}},
            ConfigError,
            r"^weights are all zero; at least one weight must be > 0$",
        ),
        ((["a"], [-1] * 16), {}, ConfigError, r"^first_hops holds a value outside"),
        (("ab", [0] * 16), {}, ArgumentTypeError, r"^servers is str"),
    ],
)
def test_table_rejects_invalid_parts(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """The public constructor validates sizes, indices, ids, protocol, generations and weights."""
    with pytest.raises(error, match=message):
        ForwardingTable(*args, **kwargs)


def test_table_is_immutable() -> None:
    """Snapshots cannot be changed; their hop arrays are read-only views."""
    table = ForwardingTable(["a", "b"], [0, 1] * 8)
    with pytest.raises(AttributeError, match="immutable"):
        table.generation = 5
    with pytest.raises(TypeError):
        table.first_hops[0] = 1
    assert table.first_hops.tolist() == [0, 1] * 8


def test_counts_shares_errors_and_occupancy() -> None:
    """Per-server counts and shares, share errors against weights, second-hop occupancy."""
    table = ForwardingTable(
        ["a", "b", "c"],
        [0, 0, 0, 1] * 4,
        [2] * 4 + [NO_SERVER] * 12,
        weights={"a": 3, "b": 1, "c": 0},
    )
    assert table.bucket_counts() == {"a": 12, "b": 4, "c": 0}
    assert table.shares() == {"a": 0.75, "b": 0.25, "c": 0.0}
    assert table.share_errors() == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert table.second_hop_occupancy() == 0.25
    assert table.index_of("c") == 2
    with pytest.raises(UnknownServer, match=r"^server 'z' is not in this table$"):
        table.index_of("z")


def test_udp_owners_are_second_hops() -> None:
    """For udp, new flows go to the second hop when there is one."""
    table = ForwardingTable(["a", "b"], [0] * 16, [1] * 4 + [NO_SERVER] * 12, protocol="udp")
    assert table.bucket_counts() == {"a": 12, "b": 4}
    tcp = ForwardingTable(["a", "b"], [0] * 16, [1] * 4 + [NO_SERVER] * 12)
    assert tcp.bucket_counts() == {"a": 16, "b": 0}


# --- blobs ----------------------------------------------------------------------------------


def sample_table() -> ForwardingTable:
    weights: dict[str | int, float] = {"alpha": 1, 42: 2.5, "gamma-\u03b3": 0.75}  # both id kinds
    builder = TableBuilder(weights, buckets=64, seed=3, hash_seed=99)
    builder.drain(42)
    builder.add(-7, 1)
    return builder.table


def test_blob_round_trip(impl: Any) -> None:
    """to_bytes/from_bytes and pickling give back an equal table that answers alike."""
    table = sample_table()
    again = ForwardingTable.from_bytes(table.to_bytes())
    assert again == table
    assert again.to_bytes() == table.to_bytes()
    assert pickle.loads(pickle.dumps(table)) == table
    assert ForwardingTable.from_bytes(bytearray(table.to_bytes())) == table
    for i in range(100):
        assert again.lookup(str(i)) == table.lookup(str(i))


def test_blob_golden_vector(impl: Any, vectors: Vectors) -> None:
    """A builder's output is byte-identical to the pinned blob on every machine and path."""
    expected = vectors("forwarding.json")
    for case in expected["tables"]:
        builder = TableBuilder(
            [tuple(pair) for pair in case["weights"]],
            buckets=case["buckets"],
            protocol=case["protocol"],
            seed=case["seed"],
        )
        for operation, server, value in case["operations"]:
            if operation == "drain":
                builder.drain(server)
            elif operation == "remove":
                builder.remove(server)
            elif operation == "add":
                builder.add(server, value)
            else:
                builder.set_weight(server, value)
        blob = builder.table.to_bytes()
        assert hashlib.sha256(blob).hexdigest() == case["sha256"], case
        assert builder.table.first_hops.tolist()[:16] == case["first_16"]


def corruptions() -> list[tuple[str, Callable[[bytes], bytes], str]]:
    def flip(offset: int) -> Callable[[bytes], bytes]:
        def change(blob: bytes) -> bytes:
            position = offset % len(blob)
            return blob[:position] + bytes([blob[position] ^ 1]) + blob[position + 1 :]

        return change

    def header(**fields: int) -> Callable[[bytes], bytes]:
        def change(blob: bytes) -> bytes:
            values = list(struct.unpack_from("<4sBBBBQII", blob))
            names = [
                "magic",
                "version",
                "protocol",
                "bits",
                "reserved",
                "generation",
                "seed",
                "servers",
            ]
            for name, value in fields.items():
                values[names.index(name)] = value
            return struct.pack("<4sBBBBQII", *values) + blob[24:]

        return change

    return [
        ("truncated", lambda blob: blob[:-1], r"is truncated"),
        ("one byte", lambda blob: blob[:1], r"shorter than the 40-byte minimum"),
        ("extra", lambda blob: blob + b"\x00", r"followed by extra bytes"),
        ("flipped body", flip(-40), r"fails its checksum"),
        ("flipped checksum", flip(-1), r"fails its checksum"),
        ("magic", lambda blob: b"XXXX" + blob[4:], r"starts with b'XXXX'"),
        ("version", header(version=2), r"format version 2; this lbkit reads version 1"),
        ("bits", header(bits=30), r"says 2\*\*30 buckets"),
        ("servers", header(servers=100), r"lists 100 servers for 64 buckets"),
        (
            "server list",
            header(servers=60),
            r"ends inside its server list|is truncated|fails its checksum",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "damage", "message"), corruptions(), ids=[c[0] for c in corruptions()]
)
def test_damaged_blobs_are_refused(
    name: str, damage: Callable[[bytes], bytes], message: str
) -> None:
    """Truncated, extended, altered and foreign blobs raise CorruptBlob, never a table."""
    with pytest.raises(CorruptBlob, match=message):
        ForwardingTable.from_bytes(damage(sample_table().to_bytes()))


def test_blob_with_valid_checksum_but_invalid_table_is_refused() -> None:
    """A re-checksummed blob whose hops point past the server list is still refused."""
    blob = bytearray(sample_table().to_bytes()[:-16])
    first_hops_start = len(blob) - 3 * 4 * 64
    blob[first_hops_start : first_hops_start + 4] = (77).to_bytes(4, "little")
    body = bytes(blob)
    forged = body + hashlib.blake2b(body, digest_size=16).digest()
    with pytest.raises(
        CorruptBlob, match=r"^table blob describes an invalid table: first_hops\[0\] is 77"
    ):
        ForwardingTable.from_bytes(forged)


def test_from_bytes_needs_bytes() -> None:
    """Only bytes-like input is read."""
    with pytest.raises(ArgumentTypeError, match=r"^data is str"):
        ForwardingTable.from_bytes("LBFT")  # type: ignore[arg-type]


# --- the builder ----------------------------------------------------------------------------


@given(weights=weights_strategy, seed=st.integers(0, 2**32 - 1), min_buckets=st.integers(1, 40))
def test_fresh_tables_are_within_one_bucket(
    impl: Any, weights: dict[str, float], seed: int, min_buckets: int
) -> None:
    """Every server's bucket count is within one of its exact share (largest remainder)."""
    builder = TableBuilder(weights, seed=seed, min_buckets_per_server=min_buckets)
    builder._check()
    assert builder.bucket_count >= max(16, len(weights) * min_buckets)
    assert builder.bucket_count < 2 * max(16, len(weights) * min_buckets)
    assert_within_one(builder.table)


def test_layout_interleaves_servers(impl: Any) -> None:
    """No server owns a run of more than two neighbouring buckets in a fresh table."""
    table = TableBuilder({"a": 1, "b": 1, "c": 1, "d": 1}, buckets=1024).table
    hops = table.first_hops.tolist()
    longest = run = 1
    for previous, current in itertools.pairwise(hops):
        run = run + 1 if previous == current else 1
        longest = max(longest, run)
    assert longest <= 2


def test_seed_changes_layout_deterministically(impl: Any) -> None:
    """The same seed gives the same table; another seed a different layout, same counts."""
    weights = {"a": 1, "b": 2, "c": 3}
    one = TableBuilder(weights, buckets=256, seed=1).table
    assert one == TableBuilder(weights, buckets=256, seed=1).table
    other = TableBuilder(weights, buckets=256, seed=2).table
    assert other.first_hops.tolist() != one.first_hops.tolist()
    assert other.bucket_counts() == one.bucket_counts()


@given(weights=weights_strategy.filter(lambda w: len(w) >= 2), data=st.data())
def test_removing_a_server_moves_only_its_buckets(
    impl: Any, weights: dict[str, float], data: st.DataObject
) -> None:
    """Removing one of N servers changes the first hop of that server's buckets only, and
    keeps it as their second hop."""
    builder = TableBuilder(weights, buckets=256)
    leaving = data.draw(st.sampled_from(sorted(weights)))
    before = builder.table
    owned = [b for b, hop in enumerate(before.first_hops) if before.servers[hop] == leaving]
    change = builder.remove(leaving)
    after = builder.table
    moved = [
        b
        for b in range(256)
        if before.servers[before.first_hops[b]] != after.servers[after.first_hops[b]]
    ]
    assert moved == owned
    assert change.moved == len(owned)
    assert change.broken == 0
    for bucket in owned:
        assert after.servers[after.second_hops[bucket]] == leaving
    builder._check()


@given(weights=weights_strategy, data=st.data())
def test_weight_change_moves_few_buckets(
    impl: Any, weights: dict[str, float], data: st.DataObject
) -> None:
    """Changing one server's weight moves at most ceil(|change of its exact share|) + 1
    buckets, breaking no established connection."""
    builder = TableBuilder(weights, buckets=512)
    server = data.draw(st.sampled_from(sorted(weights)))
    new_weight = data.draw(st.floats(0.01, 60.0))
    old_share = exact_shares(builder.table)[server]
    change = builder.set_weight(server, new_weight)
    new_share = exact_shares(builder.table)[server]
    assert change.moved <= math.ceil(abs(new_share - old_share)) + 1
    assert change.broken == 0
    builder._check()


def test_drain_keeps_connections_and_set_weight_restores(impl: Any) -> None:
    """A drained server leaves every first slot, stays as second hop, and comes back."""
    builder = TableBuilder({"a": 1, "b": 1, "c": 1, "d": 1}, buckets=64)
    before = builder.table
    change = builder.drain("c")
    after = builder.table
    assert change.broken == 0
    assert after.bucket_counts()["c"] == 0
    for bucket in range(64):
        if before.servers[before.first_hops[bucket]] == "c":
            assert after.servers[after.second_hops[bucket]] == "c"
    assert builder.drained == {"c"}
    builder.set_weight("c", 1)
    assert builder.drained == frozenset()
    assert_within_one(builder.table)
    builder._check()


def test_rebalance_prefers_swaps(impl: Any) -> None:
    """Undoing a drain swaps hops back: new connections move, none break, no hop is lost."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=32)
    builder.drain("b")
    change = builder.set_weight("b", 1)
    assert change.moved == 16
    assert change.broken == 0
    assert change.previous_hop_dropped == 0
    assert builder.table.bucket_counts() == {"a": 16, "b": 16}


def test_least_recently_modified_buckets_move_first(impl: Any) -> None:
    """A server gives up the buckets it has held longest, so recent second hops survive."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=64)
    builder.add("c", 1)  # generation 1: c takes buckets from a and b
    builder.add("d", 1)  # generation 2
    table = builder.table
    modified = table.modified.tolist()
    c = table.index_of("c")
    before = [b for b in range(64) if table.first_hops[b] == c]
    builder.set_weight("c", 0.5)
    after = builder.table
    given_up = [b for b in before if after.first_hops[b] != after.index_of("c")]
    kept = [b for b in before if b not in given_up]
    assert given_up
    assert max(modified[b] for b in given_up) <= min(modified[b] for b in kept)


def test_doubling_moves_no_flow(impl: Any) -> None:
    """resize(2n) gives bucket i + n the slots of bucket i; every flow keeps its hops."""
    builder = TableBuilder({"a": 1, "b": 2, "c": 3}, buckets=64)
    builder.drain("b")
    before = builder.table
    change = builder.resize(256)
    after = builder.table
    assert (change.moved, change.first_hop_changed, change.second_hop_changed, change.broken) == (
        0,
        0,
        0,
        0,
    )
    for value in range(0, 2**32, 2**32 // 997):
        assert before.lookup_hash(value) == after.lookup_hash(value)
    builder._check()


def test_shrinking_is_refused_unless_harmless_or_forced(impl: Any) -> None:
    """A shrink whose merged buckets agree moves nothing; one that would move flows is refused."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=16)
    builder.resize(64)
    assert builder.resize(16).moved == 0  # every merged group agrees
    builder.resize(64)
    builder.set_weight("b", 2)  # 21 and 43 buckets: some merged groups must split
    with pytest.raises(
        ConfigError,
        match=r"^shrinking to 16 buckets would move flows in \d+ of them; pass force=True to accept that$",
    ):
        builder.resize(16)
    assert builder.bucket_count == 64
    builder._check()


def test_forced_shrink_reports_disruption(impl: Any) -> None:
    """Forcing a disruptive shrink applies it and says how many buckets changed."""
    builder = TableBuilder({"a": 1, "b": 1, "c": 1}, buckets=64)
    with pytest.raises(ConfigError, match=r"^shrinking to 16 buckets would move flows in"):
        builder.resize(16)
    change = builder.resize(16, force=True)
    assert change.slots == 64
    assert change.moved > 0
    assert builder.bucket_count == 16
    builder._check()


def test_automatic_size_grows_without_moving_flows(impl: Any) -> None:
    """With buckets=None the table doubles as servers join, before taking their share."""
    builder = TableBuilder({"a": 1}, min_buckets_per_server=16)
    assert builder.bucket_count == 16
    before = builder.table
    change = builder.add("b", 1)
    assert builder.bucket_count == 32
    assert change.broken == 0
    assert change.moved == 16
    assert before.lookup_hash(3)[0] == "a"
    builder._check()


def test_udp_puts_new_servers_in_the_second_slot(impl: Any) -> None:
    """For udp the new server takes the second slot (where new flows go), the old owner the
    first (which UDP consults first)."""
    builder = TableBuilder({"a": 1}, buckets=16, protocol="udp")
    builder.add("b", 1)
    table = builder.table
    moved = [b for b in range(16) if table.second_hops[b] != NO_SERVER]
    assert len(moved) == 8
    for bucket in moved:
        assert table.lookup_hash(bucket) == ("a", "b")
    assert table.bucket_counts() == {"a": 8, "b": 8}
    builder._check()


def test_udp_rr_has_single_slot_buckets(impl: Any) -> None:
    """udp-rr tables never have second hops."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=16, protocol="udp-rr")
    builder.add("c", 2)
    builder.remove("a")
    assert builder.table.second_hop_occupancy() == 0.0
    builder._check()


def test_removed_server_is_forgotten_once_unreferenced(impl: Any) -> None:
    """A removed server stays listed while it is a second hop and disappears after."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=16)
    builder.remove("b")  # b's buckets: first a, second b
    assert "b" in builder.table.servers
    assert "b" not in builder.weights
    with pytest.raises(UnknownServer, match=r"^server 'b' was removed from the builder$"):
        builder.drain("b")
    builder.add("c", 1)  # c takes a's oldest buckets, the ones b never had
    assert "b" in builder.table.servers
    builder.drain("a")  # a's remaining buckets, all with b behind them, go to c: b is dropped
    assert builder.table.servers == ("a", "c")
    builder._check()


def test_readding_a_removed_server_keeps_its_second_hops(impl: Any) -> None:
    """A removed server that comes back is the same server to the buckets that remember it."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=16)
    builder.remove("b")
    change = builder.add("b", 1)
    assert change.broken == 0
    assert builder.table.bucket_counts() == {"a": 8, "b": 8}
    builder._check()


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_expiring_previous_hops_keeps_new_flows_in_place(impl: Any, protocol: Any) -> None:
    """Expiry clears only old buckets' previous hops; owners stay, so no new flow moves."""
    builder = TableBuilder({"a": 1, "b": 1, "c": 1}, buckets=64, protocol=protocol)
    builder.remove("b")  # generation 1
    builder.set_weight("c", 2)  # generation 2
    table = builder.table
    old = [b for b in range(64) if table.second_hops[b] != NO_SERVER and table.modified[b] < 2]
    recent = [b for b in range(64) if table.second_hops[b] != NO_SERVER and table.modified[b] == 2]
    assert old
    assert recent
    change = builder.expire_previous_hops(changed_before=2)
    after = builder.table
    assert change.moved == 0
    assert change.broken == 0
    assert change.previous_hop_dropped == len(old)
    assert all(after.second_hops[b] == NO_SERVER for b in old)
    assert all(after.second_hops[b] != NO_SERVER for b in recent)
    assert after.bucket_counts() == {s: n for s, n in table.bucket_counts().items() if s != "b"}
    assert "b" not in after.servers  # removed, and no longer anybody's previous hop
    builder._check()


def test_expiry_rejects_future_generations() -> None:
    """changed_before may not lie beyond the next generation, nor be negative."""
    builder = TableBuilder({"a": 1}, buckets=16)
    with pytest.raises(ConfigError, match=r"^changed_before is 5; it must be in 0\.\.1$"):
        builder.expire_previous_hops(changed_before=5)
    with pytest.raises(ArgumentTypeError, match=r"^changed_before is float"):
        builder.expire_previous_hops(changed_before=1.0)  # type: ignore[arg-type]


@given(data=st.data(), protocol=st.sampled_from(["tcp", "udp", "udp-rr"]))
def test_resumed_builder_continues_the_same_history(
    impl: Any, data: st.DataObject, protocol: Any
) -> None:
    """A builder resumed from a published blob with the original configuration makes exactly
    the tables the original makes."""
    weights = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 1.5}
    original = TableBuilder(weights, buckets=128, protocol=protocol, seed=9)
    steps = data.draw(
        st.lists(
            st.tuples(st.sampled_from(["drain", "reweight", "remove"]), st.sampled_from("abcd")),
            max_size=4,
        )
    )
    configured, drained = dict(weights), set()
    for operation, server in steps:
        if (
            server not in configured
            or [s for s in configured if s not in drained and s != server] == []
        ):
            continue
        if operation == "drain":
            original.drain(server)
            drained.add(server)
        elif operation == "reweight":
            original.set_weight(server, 4.0)
            configured[server] = 4.0
            drained.discard(server)
        else:
            original.remove(server)
            del configured[server]
            drained.discard(server)
    published = ForwardingTable.from_bytes(original.table.to_bytes())
    resumed = TableBuilder.resume(published, weights=configured, drained=drained, seed=9)
    resumed._check()
    assert resumed.table == original.table
    assert resumed.generation == original.generation
    server = sorted(configured)[0]
    assert resumed.set_weight(server, 7.0) == original.set_weight(server, 7.0)
    original.add("e", 2.0)
    resumed.add("e", 2.0)
    assert resumed.table.to_bytes() == original.table.to_bytes()


def test_resuming_with_new_weights_reapportions_on_the_next_change(impl: Any) -> None:
    """Weights that no longer match the table are accepted; the next change fixes the shares."""
    original = TableBuilder({"a": 1, "b": 1}, buckets=64)
    resumed = TableBuilder.resume(original.table, weights={"a": 1, "b": 3})
    resumed._check()
    assert resumed.table.bucket_counts() == {"a": 32, "b": 32}  # nothing changed yet
    resumed.set_weights({"a": 1, "b": 3})
    assert resumed.table.bucket_counts() == {"a": 16, "b": 48}
    resumed._check()


def test_resume_rejects_inconsistent_configuration() -> None:
    """Unknown servers, drains outside the weights, nobody left, and non-tables are refused."""
    table = TableBuilder({"a": 1, "b": 1}, buckets=16).table
    with pytest.raises(UnknownServer, match=r"^server 'z' is not in this table$"):
        TableBuilder.resume(table, weights={"a": 1, "z": 1})
    with pytest.raises(UnknownServer, match=r"^drained names 'b', which is not in weights$"):
        TableBuilder.resume(table, weights={"a": 1}, drained=["b"])
    with pytest.raises(ConfigError, match=r"^no server left to take traffic"):
        TableBuilder.resume(table, weights={"a": 1, "b": 0}, drained=["a"])
    with pytest.raises(ArgumentTypeError, match=r"^table is bytes; it must be a ForwardingTable$"):
        TableBuilder.resume(table.to_bytes(), weights={"a": 1})  # type: ignore[arg-type]


def test_balance_converges_on_equal_load(impl: Any) -> None:
    """Repeated rounds with load = traffic share / capacity even the loads out."""
    capacity = {"a": 1.0, "b": 2.0, "c": 4.0}
    builder = TableBuilder(dict.fromkeys(capacity, 1.0), buckets=4096)

    def loads() -> dict[str, float]:
        shares = builder.table.shares()
        return {server: 2.0 * shares[server] / capacity[server] for server in capacity}

    start = loads()
    for _ in range(40):
        builder.balance(loads())
        builder._check()
    end = loads()
    mean = sum(end.values()) / 3
    assert max(start.values()) / min(start.values()) > 3
    assert all(abs(load - mean) / mean <= 0.1 for load in end.values())


def test_balance_holds_when_the_datacentre_is_degraded(impl: Any) -> None:
    """Most servers overloaded at once: the table is held, not drained around."""
    builder = TableBuilder({"a": 1, "b": 1, "c": 1, "d": 1}, buckets=64)
    before = builder.table
    report = builder.balance({"a": 0.95, "b": 0.99, "c": 0.5, "d": 0.91})
    assert report.held
    assert report.overloaded == 3
    assert report.reason == "held: 3 of 4 servers are at or above the overload level 0.9"
    assert builder.table is before
    assert (
        builder.balance({"a": 0.95, "b": 0.99, "c": 0.5, "d": 0.91}, degraded_fraction=0.8).held
        is False
    )


def test_balance_dead_band_and_no_load(impl: Any) -> None:
    """Loads within the dead band, or all zero, change nothing."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=64)
    assert (
        builder.balance({"a": 0.5, "b": 0.52}).reason
        == "held: every server is within the dead band"
    )
    assert builder.balance({"a": 0.0, "b": 0.0}).reason == "held: no load to balance"
    assert builder.generation == 0


@pytest.mark.parametrize(
    ("loads", "kwargs", "error", "message"),
    [
        (
            {"a": 0.5},
            {},
            ConfigError,
            r"^loads has no value for 'b'; every server taking traffic needs one$",
        ),
        ({"a": 0.5, "b": -1}, {}, ConfigError, r"^loads\['b'\] is -1; it must be finite and >= 0$"),
        ({"a": 0.5, "b": math.inf}, {}, ConfigError, r"^loads\['b'\] is inf"),
        ({"a": 0.5, "b": 0.5, "z": 1}, {}, UnknownServer, r"^server 'z' is not in the builder$"),
        ({"a": 0.5, "b": 0.5}, {"gain": 0}, ConfigError, r"^gain is 0; it must be finite and > 0$"),
        (
            {"a": 0.5, "b": 0.5},
            {"gain": 1.5},
            ConfigError,
            r"^gain is 1\.5; it must be > 0 and <= 1$",
        ),
        (
            {"a": 0.5, "b": 0.5},
            {"max_step": 1.0},
            ConfigError,
            r"^max_step is 1\.0; it must be > 0 and < 1$",
        ),
        ({"a": 0.5, "b": 0.5}, {"dead_band": math.nan}, ConfigError, r"^dead_band is nan"),
        ({"a": 0.5, "b": 0.5}, {"overload": 0}, ConfigError, r"^overload is 0"),
        ([("a", 0.5)], {}, ArgumentTypeError, r"^loads is list"),
    ],
)
def test_balance_rejects_bad_input(
    loads: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Missing, unknown and invalid loads and out-of-range options are refused."""
    builder = TableBuilder({"a": 1, "b": 1}, buckets=64)
    with pytest.raises(error, match=message):
        builder.balance(loads, **kwargs)


@pytest.mark.parametrize(
    ("weights", "kwargs", "error", "message"),
    [
        (
            {"a": math.nan},
            {},
            ConfigError,
            r"^weights\['a'\] is nan; weights must be finite and >= 0$",
        ),
        ({"a": math.inf}, {}, ConfigError, r"^weights\['a'\] is inf"),
        ({"a": -1}, {}, ConfigError, r"^weights\['a'\] is -1"),
        (
            {"a": 0, "b": 0.0},
            {},
            ConfigError,
            r"^weights are all zero; at least one weight must be > 0$",
        ),
        ({}, {}, ConfigError, r"^weights is empty"),
        ([("a", 1), ("a", 2)], {}, ConfigError, r"^weights names server 'a' twice"),
        ({"a": "1"}, {}, ArgumentTypeError, r"^weights\['a'\] is str; weights must be numbers$"),
        ({"a": True}, {}, ArgumentTypeError, r"^weights\['a'\] is bool"),
        (
            {1.5: 1},
            {},
            ArgumentTypeError,
            r"^weights key 1\.5 is float; server ids must be str or int$",
        ),
        (
            {"a": 1},
            {"buckets": 100},
            ConfigError,
            r"^buckets is 100; bucket counts must be powers of two",
        ),
        ({"a": 1}, {"buckets": 2**25}, ConfigError, r"^buckets is 33554432"),
        (
            {f"s{i}": 1 for i in range(17)},
            {"buckets": 16},
            ConfigError,
            r"^weights lists 17 servers but buckets is 16",
        ),
        ({"a": 1}, {"protocol": "quic"}, ConfigError, r"^protocol is 'quic'"),
        ({"a": 1}, {"min_buckets_per_server": 0}, ConfigError, r"^min_buckets_per_server is 0"),
        ({"a": 1}, {"seed": -1}, ConfigError, r"^seed is -1"),
        (
            {f"s{i}": 1 for i in range(1000)},
            {"min_buckets_per_server": 20000},
            ConfigError,
            r"^1000 servers at min_buckets_per_server=20000 need",
        ),
        ("ab", {}, ArgumentTypeError, r"^weights is str"),
    ],
)
def test_builder_rejects_bad_configuration(
    weights: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """NaN, infinite, negative and all-zero weights, duplicates, bad sizes and options."""
    with pytest.raises(error, match=message):
        TableBuilder(weights, **kwargs)


def test_builder_rejects_bad_changes() -> None:
    """Unknown servers, duplicates, and changes that leave no weight are refused, unchanged."""
    builder = TableBuilder({"a": 1, "b": 0}, buckets=16)
    with pytest.raises(UnknownServer, match=r"^server 'z' is not in the builder$"):
        builder.drain("z")
    with pytest.raises(UnknownServer):
        builder.set_weights({"a": 1, "z": 2})
    with pytest.raises(ConfigError, match=r"^server 'a' is already in the builder; use set_weight"):
        builder.add("a", 1)
    with pytest.raises(
        ConfigError, match=r"^'a' is the last server with weight > 0; it cannot leave$"
    ):
        builder.remove("a")
    with pytest.raises(ConfigError, match=r"^these weights leave no server with weight > 0$"):
        builder.set_weight("a", 0)
    with pytest.raises(ConfigError, match=r"^weights\['b'\] is nan"):
        builder.set_weight("b", math.nan)
    full = TableBuilder({f"s{i}": 1 for i in range(16)}, buckets=16)
    with pytest.raises(
        ConfigError, match=r"^adding 'x' makes 17 servers for 16 buckets; resize the table first$"
    ):
        full.add("x", 1)
    assert builder.generation == 0
    builder._check()


# --- diff and the redirector ----------------------------------------------------------------


def test_diff_counts_broken_connections() -> None:
    """A bucket whose old first hop is in neither new slot breaks; via the second slot not."""
    old = ForwardingTable(["a", "b", "c"], [0] * 16)
    daisy = ForwardingTable(["a", "b", "c"], [1] * 16, [0] * 16)
    cold = ForwardingTable(["a", "b", "c"], [1] * 16, [2] * 16)
    assert diff(old, daisy).broken == 0
    assert diff(old, cold).broken == 16
    assert diff(old, cold).broken_fraction == 1.0
    assert diff(daisy, cold).previous_hop_dropped == 16
    without_a = ForwardingTable(["b", "c"], [0] * 16, [1] * 16)
    assert diff(daisy, without_a).broken == 0
    assert diff(daisy, without_a).previous_hop_dropped == 16  # a is gone altogether
    assert diff(old, without_a).broken == 16
    renumbered = ForwardingTable(["c", "b", "a"], [2] * 16)
    assert diff(old, renumbered).first_hop_changed == 0
    assert diff(old, ForwardingTable(["a"], [0] * 64)).slots == 64


@pytest.mark.parametrize(
    ("protocol", "is_syn", "first_has_flow", "expected"),
    [
        ("tcp", True, False, "first"),
        ("tcp", True, True, "first"),
        ("tcp", False, True, "first"),
        ("tcp", False, False, "second"),
        ("udp", False, True, "first"),
        ("udp", False, False, "second"),
        ("udp-rr", False, False, "first"),
        ("udp-rr", False, True, "first"),
    ],
)
def test_redirect_rule(protocol: Any, is_syn: bool, first_has_flow: bool, expected: str) -> None:
    """The TCP and UDP cases of the Beamer redirector."""
    assert redirect(protocol, is_syn=is_syn, first_has_flow=first_has_flow) == expected


def test_redirect_rejects_bad_input() -> None:
    """Unknown protocols, SYNs on UDP and non-bool flags are refused."""
    with pytest.raises(InvalidArgument, match=r"^protocol is 'icmp'"):
        redirect("icmp", is_syn=False, first_has_flow=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^is_syn is True but udp has no SYN$"):
        redirect("udp", is_syn=True, first_has_flow=False)
    with pytest.raises(ArgumentTypeError, match=r"^first_has_flow is int; it must be a bool$"):
        redirect("tcp", is_syn=False, first_has_flow=1)  # type: ignore[arg-type]


# --- the two paths against each other -------------------------------------------------------


@given(
    weights=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=40).filter(any),
    current=st.lists(st.integers(0, 5000), min_size=40, max_size=40),
    bits=st.integers(0, 14),
)
def test_apportion_kernels_agree(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    weights: list[float],
    current: list[int],
    bits: int,
) -> None:
    """Both apportion kernels return the same counts, summing to the bucket count, each
    within one of its exact share."""
    weight_array = array("d", weights)
    now = array("I", current[: len(weights)])
    fast = fast_kernels["forwarding"].apportion(weight_array, now, 2**bits)
    assert fast == pure_kernels["forwarding"].apportion(weight_array, now, 2**bits)
    assert sum(fast) == 2**bits
    total = 0.0
    for weight in weights:
        total += weight
    for count, weight in zip(fast, weights, strict=True):
        share = 2**bits * weight / total
        assert math.floor(share) <= count <= math.ceil(share)


@given(
    counts=st.lists(st.integers(0, 50), min_size=1, max_size=20), rotation=st.integers(0, 2**32 - 1)
)
def test_layout_kernels_agree(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    counts: list[int],
    rotation: int,
) -> None:
    """Both layout kernels place every server's count, identically."""
    total = sum(counts)
    size = 1 << max(total - 1, 1).bit_length()
    counts[-1] += size - total
    count_array = array("I", counts)
    fast = fast_kernels["forwarding"].layout(count_array, size, rotation)
    assert fast == pure_kernels["forwarding"].layout(count_array, size, rotation)
    assert [fast.count(i) for i in range(len(counts))] == counts


@given(weights=weights_strategy, hashes=st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_table_built_by_one_path_reads_the_same_on_the_other(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    weights: dict[str, float],
    hashes: list[int],
) -> None:
    """A table built with the pure kernels, sent as bytes and read with the compiled ones,
    answers every lookup alike; both paths build byte-identical blobs."""
    with using(pure_kernels):
        blob = TableBuilder(weights, buckets=64).table.to_bytes()
        pure_table = ForwardingTable.from_bytes(blob)
        pure_answers = [pure_table.lookup_hash(value) for value in hashes]
        pure_many = pure_table.lookup_many(hashes)
    with using(fast_kernels):
        assert TableBuilder(weights, buckets=64).table.to_bytes() == blob
        fast_table = ForwardingTable.from_bytes(blob)
        assert [fast_table.lookup_hash(value) for value in hashes] == pure_answers
        assert fast_table.lookup_many(hashes) == pure_many


class LockstepBuilders(RuleBasedStateMachine):
    """Random add/remove/drain/reweight/balance/resize rounds applied to two builders, one on
    each kernel path, against a model of the configured weights; every step checks the
    invariants, byte-identical tables, and that no change breaks an established connection."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels = {"fast": _kernels.load("fast"), "pure": _kernels.load("pure")}
        self.builders: dict[str, TableBuilder] = {}
        self.model: dict[str, float] = {}
        self.drained: set[str] = set()
        self.counter = 0
        self.keeps_connections = True

    @initialize(
        weights=st.dictionaries(
            st.sampled_from("abcdef"), st.integers(1, 5), min_size=2, max_size=6
        ),
        protocol=st.sampled_from(["tcp", "udp", "udp-rr"]),
    )
    def build(self, weights: dict[str, int], protocol: Any) -> None:
        for name, kernels in self.kernels.items():
            with using(kernels):
                self.builders[name] = TableBuilder(
                    weights, protocol=protocol, min_buckets_per_server=4
                )
        self.model = {server: float(weight) for server, weight in weights.items()}
        # udp-rr buckets have one slot: a move ends whatever the old server was doing.
        self.keeps_connections = protocol != "udp-rr"

    def apply(self, change: Callable[[TableBuilder], Any]) -> list[Any]:
        results = []
        for name, kernels in self.kernels.items():
            with using(kernels):
                results.append(change(self.builders[name]))
        return results

    def live(self) -> list[str]:
        return sorted(
            server
            for server, weight in self.model.items()
            if weight > 0 and server not in self.drained
        )

    @rule(weight=st.integers(1, 6))
    def add(self, weight: int) -> None:
        self.counter += 1
        server = f"n{self.counter}"
        changes = self.apply(lambda builder: builder.add(server, weight))
        self.model[server] = weight
        assert changes[0] == changes[1]
        assert changes[0].broken == 0 or not self.keeps_connections

    @precondition(lambda self: len(self.model) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        server = data.draw(st.sampled_from(sorted(self.model)))
        if self.live() == [server]:
            return
        changes = self.apply(lambda builder: builder.remove(server))
        del self.model[server]
        self.drained.discard(server)
        assert changes[0] == changes[1]
        assert changes[0].broken == 0 or not self.keeps_connections

    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        server = data.draw(st.sampled_from(sorted(self.model)))
        if self.live() in ([server], []):
            return
        changes = self.apply(lambda builder: builder.drain(server))
        self.drained.add(server)
        assert changes[0].broken == 0 or not self.keeps_connections

    @rule(data=st.data(), weight=st.floats(0.1, 8.0))
    def reweight(self, data: st.DataObject, weight: float) -> None:
        server = data.draw(st.sampled_from(sorted(self.model)))
        changes = self.apply(lambda builder: builder.set_weight(server, weight))
        self.model[server] = weight
        self.drained.discard(server)
        assert changes[0].broken == 0 or not self.keeps_connections

    @rule(data=st.data())
    def balance(self, data: st.DataObject) -> None:
        loads = {server: data.draw(st.floats(0.0, 1.2)) for server in self.live()}
        reports = self.apply(lambda builder: builder.balance(loads))
        assert reports[0] == reports[1]
        assert reports[0].diff.broken == 0 or not self.keeps_connections

    @rule(age=st.integers(0, 3))
    def expire(self, age: int) -> None:
        generation = self.builders["pure"].generation
        changes = self.apply(
            lambda builder: builder.expire_previous_hops(
                changed_before=max(0, generation + 1 - age)
            )
        )
        assert changes[0] == changes[1]
        assert changes[0].moved == 0

    @rule()
    def grow(self) -> None:
        if self.builders["pure"].bucket_count < 2**10:
            changes = self.apply(lambda builder: builder.resize(builder.bucket_count * 2))
            assert changes[0].moved == 0

    @invariant()
    def builders_agree_and_hold_their_invariants(self) -> None:
        if not self.builders:
            return
        pure, fast = self.builders["pure"], self.builders["fast"]
        pure._check()
        fast._check()
        assert pure.table.to_bytes() == fast.table.to_bytes()
        assert pure.weights == self.model
        assert pure.drained == self.drained


TestLockstepBuilders = pytest.mark.usefixtures("requires_fast")(LockstepBuilders.TestCase)
# As many runs as the loaded profile's examples (quick by default, HYPOTHESIS_PROFILE=thorough
# for many more), each of up to 12 steps.
TestLockstepBuilders.settings = settings(settings.default, stateful_step_count=12)
