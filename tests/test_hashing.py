"""lbkit.hashing: canonical flow keys, murmur3 on both kernel paths, batch forms, bad input."""

from __future__ import annotations

import ipaddress
import sys
import threading
from array import array
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import mmh3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, InvalidArgument, InvalidKey, LbkitError
from lbkit.hashing import (
    IPV4_FLOW_KEY_SIZE,
    IPV6_FLOW_KEY_SIZE,
    MAX_SEED,
    bucket_index,
    flow_key,
    hash_flow,
    hash_key,
    hash_many,
    hash_packed,
)

Vectors = Callable[[str], Any]

seeds = st.integers(min_value=0, max_value=MAX_SEED)


def reference(key: bytes | str, seed: int = 0) -> int:
    """mmh3 is the contract; str keys go in as UTF-8 (mmh3 crashes on lone surrogates)."""
    data = key.encode("utf-8") if isinstance(key, str) else key
    return int(mmh3.hash(data, seed, signed=False))


# --- golden vectors -------------------------------------------------------------------------


def test_published_murmur3_vectors(impl: Any, vectors: Vectors) -> None:
    """hash_key matches the published MurmurHash3_x86_32 test values."""
    for entry in vectors("hashing.json")["published"]:
        assert hash_key(bytes.fromhex(entry["key"]), seed=entry["seed"]) == entry["hash"], entry


def test_every_tail_length_vector(impl: Any, vectors: Vectors) -> None:
    """hash_key, hash_many and hash_packed match pinned hashes for keys of 0..32 and longer
    lengths, covering every tail case of the block loop."""
    entries = vectors("hashing.json")["lengths"]
    for entry in entries:
        key = bytes.fromhex(entry["key"])
        assert hash_key(key, seed=entry["seed"]) == entry["hash"], entry
        assert hash_many([key], seed=entry["seed"]).tolist() == [entry["hash"]]
        if key:
            packed = hash_packed(key * 3, record_size=len(key), seed=entry["seed"])
            assert packed.tolist() == [entry["hash"]] * 3


def test_flow_vectors(impl: Any, vectors: Vectors) -> None:
    """flow_key bytes and hash_flow values are pinned for IPv4, mapped and IPv6 flows."""
    for entry in vectors("hashing.json")["flows"]:
        flow = (entry["src"], entry["dst"], entry["sport"], entry["dport"])
        assert flow_key(*flow).hex() == entry["key"], entry
        assert hash_flow(*flow) == entry["hash"], entry
        assert hash_flow(*flow, seed=42) == entry["hash_seed_42"], entry


# --- flow keys ------------------------------------------------------------------------------


def test_ipv4_flow_layout() -> None:
    """An IPv4 flow is src | dst | sport | dport, big-endian, 12 bytes."""
    key = flow_key("192.0.2.1", "198.51.100.7", 0x1234, 0xABCD)
    assert key == bytes([192, 0, 2, 1, 198, 51, 100, 7, 0x12, 0x34, 0xAB, 0xCD])
    assert len(key) == IPV4_FLOW_KEY_SIZE


def test_ipv6_flow_layout() -> None:
    """An IPv6 flow is the two 16-byte addresses then the two ports, 36 bytes."""
    src, dst = ipaddress.IPv6Address("2001:db8::1"), ipaddress.IPv6Address("2001:db8::2")
    key = flow_key(src, dst, 1, 65535)
    assert key == src.packed + dst.packed + b"\x00\x01\xff\xff"
    assert len(key) == IPV6_FLOW_KEY_SIZE


@pytest.mark.parametrize(
    "address",
    [
        "192.0.2.1",
        ipaddress.IPv4Address("192.0.2.1"),
        b"\xc0\x00\x02\x01",
        bytearray(b"\xc0\x00\x02\x01"),
        "::ffff:192.0.2.1",
        ipaddress.IPv6Address("::ffff:192.0.2.1"),
        ipaddress.IPv6Address("::ffff:192.0.2.1").packed,
    ],
)
def test_every_form_of_one_ipv4_address_gives_one_key(address: object) -> None:
    """Strings, address objects, packed bytes and IPv4-mapped IPv6 forms encode the same."""
    assert flow_key(address, "198.51.100.7", 1, 2) == flow_key("192.0.2.1", "198.51.100.7", 1, 2)  # type: ignore[arg-type]


def test_repeated_text_addresses_give_the_same_answer() -> None:
    """Parses of text addresses are cached; answers and errors are the same on every call."""
    for _ in range(3):
        assert flow_key("::ffff:192.0.2.1", "198.51.100.7", 1, 2) == flow_key(
            "192.0.2.1", "198.51.100.7", 1, 2
        )
        with pytest.raises(InvalidKey, match=r"^src is 'fe80::1%eth0'; zone ids"):
            flow_key("fe80::1%eth0", "fe80::2", 1, 2)
        with pytest.raises(InvalidKey, match=r"^dst is '10.0.0.300'; it is not an IPv4"):
            flow_key("10.0.0.1", "10.0.0.300", 1, 2)


def test_nat64_and_compatible_addresses_stay_ipv6() -> None:
    """Only ::ffff:0:0/96 is translated; NAT64 and IPv4-compatible addresses are IPv6 hosts."""
    assert len(flow_key("64:ff9b::c000:201", "2001:db8::1", 1, 2)) == IPV6_FLOW_KEY_SIZE
    assert len(flow_key("::c000:201", "2001:db8::1", 1, 2)) == IPV6_FLOW_KEY_SIZE


@pytest.mark.parametrize(
    ("src", "dst", "message"),
    [
        (
            "192.0.2.1",
            "2001:db8::1",
            "src is IPv4 and dst is IPv6; a flow's addresses must be of one family",
        ),
        ("2001:db8::1", "::ffff:192.0.2.1", "src is IPv6 and dst is IPv4"),
        ("192.0.2.256", "192.0.2.1", "src is '192.0.2.256'; it is not an IPv4 or IPv6 address"),
        ("192.0.2.1", "", "dst is ''; it is not an IPv4 or IPv6 address"),
        ("192.0.2.1", "example.com", "dst is 'example.com'; it is not"),
        ("fe80::1%eth0", "fe80::2", "src is 'fe80::1%eth0'; zone ids are not part of a flow key"),
        (
            ipaddress.IPv6Address("fe80::1%eth0"),
            "fe80::2",
            "src is 'fe80::1%eth0'; zone ids are not part of a flow key",
        ),
        (
            b"\x01\x02\x03",
            "192.0.2.1",
            "src is 3 packed bytes; a packed address is 4 bytes (IPv4) or 16 bytes (IPv6)",
        ),
        ("192.0.2.1", b"", "dst is 0 packed bytes"),
    ],
)
def test_bad_addresses_raise_invalid_key(src: Any, dst: Any, message: str) -> None:
    """Unparsable, zoned, wrongly sized and mixed-family addresses are rejected by name."""
    with pytest.raises(InvalidKey, match="^" + _literal(message)):
        flow_key(src, dst, 1, 2)


@pytest.mark.parametrize("address", [3232235777, None, 1.5, ["192.0.2.1"], memoryview(b"\x00" * 4)])
def test_address_of_another_type_is_a_type_error(address: object) -> None:
    """Integers are ambiguous between families and are refused, like any other type."""
    with pytest.raises(
        ArgumentTypeError,
        match=r"^dst is \w+; an address must be an IPv4Address, IPv6Address, str or packed bytes$",
    ):
        flow_key("192.0.2.1", address, 1, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("port", "error"),
    [
        (-1, InvalidKey),
        (65536, InvalidKey),
        (2**70, InvalidKey),
        (True, ArgumentTypeError),
        (80.0, ArgumentTypeError),
        ("80", ArgumentTypeError),
    ],
)
def test_bad_ports(port: object, error: type[Exception]) -> None:
    """Ports outside 0..65535 are InvalidKey; bools, floats and strings are type errors."""
    with pytest.raises(error, match=r"^sport is "):
        flow_key("192.0.2.1", "192.0.2.2", port, 2)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"^dport is "):
        flow_key("192.0.2.1", "192.0.2.2", 1, port)  # type: ignore[arg-type]


@given(
    src=st.ip_addresses(v=4),
    dst=st.ip_addresses(v=4),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
)
def test_mapped_ipv6_flows_equal_ipv4_flows(
    src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, sport: int, dport: int
) -> None:
    """Any IPv4 flow and its IPv4-mapped IPv6 spelling give the same key and hash."""
    mapped_src = ipaddress.IPv6Address(f"::ffff:{src}")
    mapped_dst = ipaddress.IPv6Address(f"::ffff:{dst}").packed
    key = flow_key(src, dst, sport, dport)
    assert (
        key
        == flow_key(mapped_src, mapped_dst, sport, dport)
        == flow_key(str(src), str(dst), sport, dport)
    )
    assert key == src.packed + dst.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    assert hash_flow(mapped_src, dst, sport, dport) == reference(key)


@given(
    src=st.ip_addresses(v=6),
    dst=st.ip_addresses(v=6),
    ports=st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
)
def test_ipv6_flow_keys_are_injective_and_canonical(
    src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, ports: tuple[int, int]
) -> None:
    """IPv6 flows (other than mapped ones) encode to 36 bytes that decode back to the tuple."""
    if src.ipv4_mapped or dst.ipv4_mapped:
        return
    key = flow_key(str(src), dst.packed, *ports)
    assert len(key) == IPV6_FLOW_KEY_SIZE
    assert ipaddress.IPv6Address(key[:16]) == src
    assert ipaddress.IPv6Address(key[16:32]) == dst
    assert (int.from_bytes(key[32:34], "big"), int.from_bytes(key[34:], "big")) == ports


# --- hash_key -------------------------------------------------------------------------------


def test_str_keys_hash_as_utf8(impl: Any) -> None:
    """A str key hashes exactly like its UTF-8 bytes, including non-ASCII text."""
    for text in ["", "hello", "héllo", "ππππ", "🙂 emoji", "\x00nul"]:
        assert hash_key(text) == hash_key(text.encode("utf-8")) == reference(text)


def test_bytes_subclasses_are_keys(impl: Any) -> None:
    """Subclasses of bytes and str hash like their values."""

    class Key(bytes):
        pass

    class Name(str):
        pass

    assert hash_key(Key(b"abc")) == hash_key(Name("abc")) == reference(b"abc")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            bytearray(b"a"),
            r"^key is bytearray; keys must be bytes or str \(convert it with bytes\(\)",
        ),
        (memoryview(b"a"), r"^key is memoryview; keys must be bytes or str \(convert"),
        (7, r"^key is int; keys must be bytes or str$"),
        (None, r"^key is NoneType; keys must be bytes or str$"),
    ],
)
def test_hash_key_type_errors(impl: Any, key: object, message: str) -> None:
    """Keys that are not bytes or str are refused with the same words on both paths."""
    with pytest.raises(ArgumentTypeError, match=message):
        hash_key(key)  # type: ignore[arg-type]


def test_lone_surrogate_is_invalid_key(impl: Any) -> None:
    """A str with no UTF-8 form is an InvalidKey naming the character and its index."""
    with pytest.raises(
        InvalidKey,
        match=r"^key has the unencodable character '\\ud800' at index 2; str keys are hashed as their UTF-8 encoding$",
    ):
        hash_key("ab\ud800")


@pytest.mark.parametrize(
    ("seed", "error", "message"),
    [
        (-1, InvalidArgument, r"^seed is -1; seeds must be integers in 0\.\.4294967295$"),
        (2**32, InvalidArgument, r"^seed is 4294967296; seeds must be integers"),
        (True, ArgumentTypeError, r"^seed is bool; it must be an int$"),
        (1.0, ArgumentTypeError, r"^seed is float; it must be an int$"),
        ("0", ArgumentTypeError, r"^seed is str; it must be an int$"),
    ],
)
def test_bad_seeds_everywhere(
    impl: Any, seed: object, error: type[Exception], message: str
) -> None:
    """Every hashing function validates its seed the same way."""
    calls: list[Callable[[], object]] = [
        lambda: hash_key(b"k", seed=seed),  # type: ignore[arg-type]
        lambda: hash_flow("192.0.2.1", "192.0.2.2", 1, 2, seed=seed),  # type: ignore[arg-type]
        lambda: hash_many([b"k"], seed=seed),  # type: ignore[arg-type]
        lambda: hash_packed(b"kk", record_size=1, seed=seed),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(error, match=message):
            call()


def test_extreme_seeds_are_accepted(impl: Any) -> None:
    """0 and 2**32 - 1 are valid seeds."""
    for seed in (0, MAX_SEED):
        assert hash_key(b"abc", seed=seed) == reference(b"abc", seed)


@given(key=st.binary(max_size=300) | st.text(max_size=100), seed=seeds)
def test_hash_key_equals_mmh3(impl: Any, key: bytes | str, seed: int) -> None:
    """On either path, hash_key is mmh3.hash(key, seed, signed=False)."""
    assert hash_key(key, seed=seed) == reference(key, seed)


# --- hash_many ------------------------------------------------------------------------------


def test_hash_many_accepts_lists_tuples_and_iterables(impl: Any) -> None:
    """Lists and tuples are read in place; other iterables are gathered first."""
    keys: list[bytes | str] = [b"a", "b", b"", "ccc"]
    expected = [reference(key, 5) for key in keys]
    containers: list[Iterable[bytes | str]] = [keys, tuple(keys), iter(keys), (k for k in keys)]
    for container in containers:
        result = hash_many(container, seed=5)
        assert isinstance(result, array)
        assert result.typecode == "I"
        assert result.tolist() == expected


def test_hash_many_of_nothing(impl: Any) -> None:
    """An empty batch gives an empty array('I')."""
    assert hash_many([]) == array("I")


@pytest.mark.parametrize("keys", [b"abc", "abc", bytearray(b"abc"), memoryview(b"abc")])
def test_hash_many_refuses_a_single_key(impl: Any, keys: object) -> None:
    """A bare bytes/str/buffer is almost surely a mistake, not a batch of characters."""
    with pytest.raises(
        ArgumentTypeError,
        match=r"^keys is \w+; pass a sequence of keys \(hash_key hashes one key, hash_packed hashes a buffer",
    ):
        hash_many(keys)  # type: ignore[arg-type]


def test_hash_many_refuses_non_iterables(impl: Any) -> None:
    """A non-iterable batch is a type error."""
    with pytest.raises(
        ArgumentTypeError, match=r"^keys is int; it must be an iterable of bytes or str keys$"
    ):
        hash_many(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (3, ArgumentTypeError, r"^keys\[2\] is int; keys must be bytes or str$"),
        (
            bytearray(b"x"),
            ArgumentTypeError,
            r"^keys\[2\] is bytearray; keys must be bytes or str \(convert",
        ),
        ("x\udfff", InvalidKey, r"^keys\[2\] has the unencodable character '\\udfff' at index 1;"),
    ],
)
def test_hash_many_names_the_bad_element(
    impl: Any, bad: object, error: type[Exception], message: str
) -> None:
    """A bad element is reported by its index, with the same type and words on both paths."""
    with pytest.raises(error, match=message):
        hash_many([b"a", "b", bad, b"d"])  # type: ignore[list-item]


@given(keys=st.lists(st.binary(max_size=64) | st.text(max_size=32), max_size=50), seed=seeds)
def test_hash_many_is_hash_key_per_element(impl: Any, keys: list[bytes | str], seed: int) -> None:
    """hash_many(keys)[i] == hash_key(keys[i]) for every batch."""
    assert hash_many(keys, seed=seed).tolist() == [reference(key, seed) for key in keys]


# --- hash_packed ----------------------------------------------------------------------------


def test_hash_packed_over_every_buffer_kind(impl: Any) -> None:
    """bytes, bytearray, memoryview and array buffers are read as the bytes they hold."""
    records = [flow_key(f"10.0.0.{i}", "10.1.0.1", 1000 + i, 80) for i in range(20)]
    flat = b"".join(records)
    expected = [reference(record) for record in records]
    as_uints = array("I")
    as_uints.frombytes(flat)
    for buffer in (
        flat,
        bytearray(flat),
        memoryview(flat),
        as_uints,
        memoryview(flat).cast("B", (20, 12)),
    ):
        assert hash_packed(buffer, record_size=IPV4_FLOW_KEY_SIZE).tolist() == expected


def test_hash_packed_of_an_empty_buffer(impl: Any) -> None:
    """No records, no hashes; any record size divides zero bytes."""
    assert hash_packed(b"", record_size=36) == array("I")


def test_hash_packed_rejects_record_sizes_beyond_sys_maxsize(impl: Any) -> None:
    """Even over an empty buffer, a record size no buffer could hold is refused on both paths."""
    with pytest.raises(InvalidArgument, match=rf"^record_size is {2**70}; it must be in 1\.\."):
        hash_packed(b"", record_size=2**70)
    assert hash_packed(b"", record_size=sys.maxsize) == array("I")


def test_hash_packed_from_many_threads_at_once(impl: Any) -> None:
    """Threads hashing large buffers concurrently (the GIL released on the compiled path) each
    get exactly their own results."""
    buffers = [bytes(range(i, i + 12)) * 20_000 for i in range(4)]
    expected = [hash_packed(buffer, record_size=12).tolist() for buffer in buffers]
    results: list[list[int]] = [[] for _ in buffers]

    def work(index: int) -> None:
        for _ in range(3):
            results[index] = hash_packed(buffers[index], record_size=12).tolist()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(buffers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected


def test_hash_packed_releases_its_buffer(impl: Any) -> None:
    """After the call the buffer export is gone, so a bytearray can be resized again."""
    buffer = bytearray(24)
    hash_packed(buffer, record_size=12)
    buffer.extend(b"\x00" * 12)
    assert len(buffer) == 36


@pytest.mark.parametrize(
    ("buffer", "record_size", "error", "message"),
    [
        (
            b"x" * 13,
            12,
            InvalidArgument,
            r"^buffer holds 13 bytes, which is not a multiple of record_size 12; it must hold whole records$",
        ),
        (b"x" * 12, 0, InvalidArgument, rf"^record_size is 0; it must be in 1\.\.{sys.maxsize}$"),
        (b"x" * 12, -12, InvalidArgument, r"^record_size is -12; it must be in 1\.\."),
        (b"x" * 12, True, ArgumentTypeError, r"^record_size is bool; it must be an int$"),
        (b"x" * 12, 12.0, ArgumentTypeError, r"^record_size is float; it must be an int$"),
        (
            [b"x" * 12],
            12,
            ArgumentTypeError,
            r"^buffer is list; it must support the buffer protocol",
        ),
        ("x" * 12, 12, ArgumentTypeError, r"^buffer is str; it must support the buffer protocol"),
        (
            memoryview(b"x" * 24)[::2],
            12,
            InvalidArgument,
            r"^buffer is not C-contiguous; copy it with bytes\(\) first$",
        ),
    ],
)
def test_hash_packed_rejects_bad_layouts(
    impl: Any, buffer: object, record_size: Any, error: type[Exception], message: str
) -> None:
    """Partial records, bad record sizes, non-buffers and strided views are refused."""
    with pytest.raises(error, match=message):
        hash_packed(buffer, record_size=record_size)


@given(records=st.lists(st.binary(min_size=7, max_size=7), max_size=40), seed=seeds)
def test_hash_packed_is_hash_key_per_record(impl: Any, records: list[bytes], seed: int) -> None:
    """hash_packed over joined records equals hashing each record on its own."""
    assert hash_packed(b"".join(records), record_size=7, seed=seed).tolist() == [
        reference(record, seed) for record in records
    ]


# --- bucket_index ---------------------------------------------------------------------------


def test_bucket_index_takes_the_low_bits() -> None:
    """The bucket is hash & (bucket_count - 1)."""
    assert bucket_index(0xDEADBEEF, bucket_count=16) == 0xF
    assert bucket_index(0xDEADBEEF, bucket_count=1) == 0
    assert bucket_index(0xDEADBEEF, bucket_count=2**32) == 0xDEADBEEF


@pytest.mark.parametrize(
    ("hash_value", "bucket_count", "error", "message"),
    [
        (
            1,
            100,
            InvalidArgument,
            r"^bucket_count is 100; it must be a power of two in 1\.\.4294967296$",
        ),
        (1, 0, InvalidArgument, r"^bucket_count is 0; it must be a power of two"),
        (1, 2**33, InvalidArgument, r"^bucket_count is 8589934592; it must be a power of two"),
        (-1, 16, InvalidArgument, r"^hash_value is -1; it must be in 0\.\.4294967295$"),
        (2**32, 16, InvalidArgument, r"^hash_value is 4294967296; it must be in"),
        (1.0, 16, ArgumentTypeError, r"^hash_value is float; it must be an int$"),
        (1, True, ArgumentTypeError, r"^bucket_count is bool; it must be an int$"),
    ],
)
def test_bucket_index_rejects_bad_arguments(
    hash_value: Any, bucket_count: Any, error: type[Exception], message: str
) -> None:
    """Sizes that are not powers of two and hashes outside 32 bits are refused."""
    with pytest.raises(error, match=message):
        bucket_index(hash_value, bucket_count=bucket_count)


# --- the two paths against each other -------------------------------------------------------


@given(key=st.binary(max_size=200) | st.text(max_size=60), seed=seeds)
def test_kernels_agree_on_single_keys(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    key: bytes | str,
    seed: int,
) -> None:
    """The compiled and the reference hash_key kernels return the same integer."""
    assert fast_kernels["hashing"].hash_key(key, seed) == pure_kernels["hashing"].hash_key(
        key, seed
    )


@given(keys=st.lists(st.binary(max_size=40) | st.text(max_size=20), max_size=60), seed=seeds)
def test_kernels_agree_on_batches(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    keys: list[bytes | str],
    seed: int,
) -> None:
    """The compiled and the reference hash_many kernels return equal arrays."""
    assert fast_kernels["hashing"].hash_many(keys, seed) == pure_kernels["hashing"].hash_many(
        keys, seed
    )


@given(data=st.data(), record_size=st.integers(1, 48), seed=seeds)
def test_kernels_agree_on_packed_buffers(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    data: st.DataObject,
    record_size: int,
    seed: int,
) -> None:
    """The compiled and the reference hash_packed kernels return equal arrays."""
    count = data.draw(st.integers(0, 30))
    raw = data.draw(st.binary(min_size=count * record_size, max_size=count * record_size))
    fast = fast_kernels["hashing"].hash_packed(memoryview(raw), record_size, seed)
    assert fast == pure_kernels["hashing"].hash_packed(memoryview(raw), record_size, seed)


@given(
    keys=st.lists(
        st.one_of(
            st.binary(max_size=8),
            st.text(max_size=8),
            st.integers(),
            st.none(),
            st.just("\ud800"),
            st.builds(bytearray),
        ),
        max_size=8,
    )
)
def test_kernels_fail_alike(
    fast_kernels: dict[str, ModuleType], pure_kernels: dict[str, ModuleType], keys: list[object]
) -> None:
    """On any mix of good and bad keys both kernels raise the same type and message, or agree."""
    outcomes = []
    for kernels in (fast_kernels, pure_kernels):
        try:
            outcomes.append(("ok", kernels["hashing"].hash_many(keys, 0).tolist()))
        except LbkitError as error:
            outcomes.append((type(error).__name__, str(error)))
    assert outcomes[0] == outcomes[1]


def _literal(text: str) -> str:
    import re

    return re.escape(text)
