"""The forwarding table: an immutable snapshot that every balancer reads the same way.

A table is ``2**k`` buckets indexed by the low ``k`` bits of a flow's hash, as in Cloudflare's
Unimog. Each bucket has a **first hop**, the server that receives new connections, and an
optional **second hop**, the server that had the bucket before, so that connections it still
holds keep working while the first hop takes over (Beamer's daisy chaining, Olteanu et al.,
NSDI 2018). :func:`~lbkit.forwarding.redirect` is the rule a server applies to a packet for a
flow it does not know.

Tables are produced by :class:`~lbkit.forwarding.TableBuilder` and travel between machines as
bytes (:meth:`ForwardingTable.to_bytes`): byte-identical for the same table on any machine and
either kernel implementation.

**Blob format, version 1.** All integers little-endian::

    magic "LBFT" | version u8 = 1 | protocol u8 (0 tcp, 1 udp, 2 udp-rr) | log2(buckets) u8
    | reserved u8 = 0 | generation u64 | hash_seed u32 | server count u32
    | per server: id length u16, canonical id bytes, weight f64
    | first hops u32[buckets] | second hops u32[buckets] (0xFFFFFFFF: none)
    | last-modified generation u32[buckets] | BLAKE2b-128 of everything before

Canonical id bytes are described in :mod:`lbkit.forwarding` (``"s"`` + UTF-8 or ``"i"`` + a
signed 64-bit big-endian integer).
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, cast

from lbkit import _kernels
from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    CorruptBlob,
    InvalidArgument,
    UnknownServer,
)
from lbkit.forwarding._inputs import batch_hashes
from lbkit.forwarding._servers import (
    ServerId,
    WeightsInput,
    check_server,
    check_weight,
    server_from_key,
    server_key,
)
from lbkit.hashing import MAX_SEED, hash_flow

__all__ = [
    "MAX_BUCKET_BITS",
    "MIN_BUCKET_BITS",
    "NO_SERVER",
    "PROTOCOLS",
    "ForwardingTable",
    "Protocol",
]

Protocol = Literal["tcp", "udp", "udp-rr"]
#: The protocols a table can be built for; see :class:`~lbkit.forwarding.TableBuilder`.
PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp", "udp-rr")
#: Tables have ``2**k`` buckets for ``MIN_BUCKET_BITS <= k <= MAX_BUCKET_BITS``.
MIN_BUCKET_BITS = 4
#: 2**24 buckets (16,777,216) take 192 MiB as a blob; more is refused as a likely mistake.
MAX_BUCKET_BITS = 24
#: The second-hop index of a bucket that has no second hop, in arrays and blobs.
NO_SERVER = 0xFFFFFFFF

_MAGIC = b"LBFT"
_VERSION = 1
_HEADER = struct.Struct("<4sBBBBQII")
_ID_LENGTH = struct.Struct("<H")
_WEIGHT = struct.Struct("<d")
_CHECKSUM_SIZE = 16


class ForwardingTable:
    """An immutable forwarding table: ``2**k`` buckets, each with a first and a second hop.

    Build tables with :class:`~lbkit.forwarding.TableBuilder`; this constructor is for tables
    assembled elsewhere and validates everything it is given.

    Args:
        servers: the server ids; their positions are the indices the hop arrays hold.
        first_hops: one server index per bucket; the length is the bucket count, a power of
            two from ``2**4`` to ``2**24``.
        second_hops: one server index per bucket, or :data:`NO_SERVER`; ``None`` means no
            bucket has a second hop. ``udp-rr`` tables have none.
        protocol: ``"tcp"``, ``"udp"`` or ``"udp-rr"``.
        generation: the builder's change counter when the table was made, ``0..2**64 - 1``.
        hash_seed: the murmur3 seed keys are hashed with, ``0..2**32 - 1``.
        weights: each server's weight when the table was made (default 1.0 each); what
            :meth:`share_errors` compares with.
        modified: the generation in which each bucket last changed (default all 0), at most
            ``generation``.

    Raises:
        ConfigError: a size, index, protocol or generation that breaks the rules above.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(buckets + servers) to build; lookups are O(1).

    >>> table = ForwardingTable(["a", "b"], [0, 1] * 8)
    >>> table.bucket_count, table.servers
    (16, ('a', 'b'))
    >>> table.lookup_hash(5)
    ('b', None)
    """

    servers: tuple[ServerId, ...]
    _index: dict[ServerId, int]
    _first: array[int]
    _second: array[int]
    _modified: array[int]
    _kernel: Any
    protocol: Protocol
    generation: int
    hash_seed: int
    bucket_count: int
    weights: Mapping[ServerId, float]

    def __init__(
        self,
        servers: Sequence[ServerId],
        first_hops: Iterable[int],
        second_hops: Iterable[int] | None = None,
        *,
        protocol: Protocol = "tcp",
        generation: int = 0,
        hash_seed: int = 0,
        weights: WeightsInput | None = None,
        modified: Iterable[int] | None = None,
    ) -> None:
        ids = tuple(servers) if not isinstance(servers, (str, bytes)) else None
        if ids is None:
            raise ArgumentTypeError(
                f"servers is {type(servers).__name__}; pass a sequence of server ids"
            )
        index: dict[ServerId, int] = {}
        for position, server in enumerate(ids):
            check_server(server, f"servers[{position}]")
            if server in index:
                raise ConfigError(f"servers names {server!r} twice; server ids must be unique")
            index[server] = position
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol is {protocol!r}; it must be one of {PROTOCOLS}")
        _check_range(generation, "generation", 2**64 - 1)
        _check_range(hash_seed, "hash_seed", MAX_SEED)

        first = _index_array(first_hops, "first_hops")
        bucket_count = len(first)
        check_bucket_count(bucket_count, "len(first_hops)")
        if first and max(first) >= len(ids):
            bad = next(i for i, value in enumerate(first) if value >= len(ids))
            raise ConfigError(
                f"first_hops[{bad}] is {first[bad]}; it must index servers (0..{len(ids) - 1})"
            )
        if second_hops is None:
            second = array("I", [NO_SERVER]) * bucket_count
        else:
            second = _index_array(second_hops, "second_hops")
            if len(second) != bucket_count:
                raise ConfigError(
                    f"second_hops has {len(second)} entries; it must have one per bucket "
                    f"({bucket_count})"
                )
            for bucket, value in enumerate(second):
                if value != NO_SERVER and value >= len(ids):
                    raise ConfigError(
                        f"second_hops[{bucket}] is {value}; it must index servers "
                        f"(0..{len(ids) - 1}) or be NO_SERVER"
                    )
                if protocol == "udp-rr" and value != NO_SERVER:
                    raise ConfigError(
                        f"second_hops[{bucket}] is {value}; udp-rr tables have no second hops"
                    )
        if modified is None:
            changed = array("I", bytes(4 * bucket_count))
        else:
            changed = _index_array(modified, "modified")
            if len(changed) != bucket_count:
                raise ConfigError(
                    f"modified has {len(changed)} entries; it must have one per bucket "
                    f"({bucket_count})"
                )
            if changed and max(changed) > generation:
                raise ConfigError(
                    f"modified holds generation {max(changed)}, later than the table's "
                    f"generation {generation}"
                )
        if weights is None:
            checked_weights = dict.fromkeys(ids, 1.0)
        else:
            if not isinstance(weights, Mapping):
                raise ArgumentTypeError(
                    f"weights is {type(weights).__name__}; pass a mapping of server id to weight"
                )
            given = cast(Mapping[ServerId, float], weights)
            unknown = [server for server in given if server not in index]
            if unknown:
                raise UnknownServer(f"weights names {unknown[0]!r}, which is not in servers")
            checked_weights = {
                server: check_weight(given.get(server, 0.0), f"weights[{server!r}]")
                for server in ids
            }
            if not any(checked_weights.values()):
                raise ConfigError("weights are all zero; at least one weight must be > 0")
        self._init(
            ids, index, first, second, changed, protocol, generation, hash_seed, checked_weights
        )

    def _init(
        self,
        ids: tuple[ServerId, ...],
        index: dict[ServerId, int],
        first: array[int],
        second: array[int],
        modified: array[int],
        protocol: Protocol,
        generation: int,
        hash_seed: int,
        weights: dict[ServerId, float],
    ) -> None:
        """Set every field from values already validated (the constructor, the builder and
        :meth:`from_bytes` all end here)."""
        setter = object.__setattr__
        setter(self, "servers", ids)
        setter(self, "_index", index)
        setter(self, "_first", first)
        setter(self, "_second", second)
        setter(self, "_modified", modified)
        setter(self, "protocol", protocol)
        setter(self, "generation", generation)
        setter(self, "hash_seed", hash_seed)
        setter(self, "bucket_count", len(first))
        setter(self, "weights", weights)
        kernel = _kernels.forwarding.TableLookup(first, second, ids, hash_seed, self._other_key)
        setter(self, "_kernel", kernel)
        # The kernel's bound method, stored on the instance, so table.lookup(key) is one call
        # into the kernel with no Python frame in between (see the lookup benchmark).
        setter(self, "lookup", kernel.lookup)

    @classmethod
    def _trusted(
        cls,
        ids: tuple[ServerId, ...],
        first: array[int],
        second: array[int],
        modified: array[int],
        *,
        protocol: Protocol,
        generation: int,
        hash_seed: int,
        weights: dict[ServerId, float],
    ) -> ForwardingTable:
        """A table from parts the caller guarantees are valid (the builder's own state)."""
        table = cls.__new__(cls)
        index = {server: position for position, server in enumerate(ids)}
        table._init(ids, index, first, second, modified, protocol, generation, hash_seed, weights)
        return table

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ForwardingTable is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ForwardingTable is immutable; cannot delete {name!r}")

    # -- lookups -------------------------------------------------------------------------

    def lookup(
        self, key: bytes | str | tuple[Any, Any, int, int]
    ) -> tuple[ServerId, ServerId | None]:
        """The (first hop, second hop or ``None``) of a key.

        ``key`` is ``bytes`` or ``str`` (hashed with :func:`lbkit.hashing.hash_key` and the
        table's ``hash_seed``) or a flow ``(src, dst, sport, dport)`` (hashed with
        :func:`lbkit.hashing.hash_flow`).

        Raises:
            ArgumentTypeError: a key of another type.
            InvalidKey: a malformed flow, or a ``str`` with no UTF-8 form.

        Runtime complexity: O(len(key)).

        >>> table = ForwardingTable(["a", "b"], [0, 1] * 8)
        >>> table.lookup(("192.0.2.1", "198.51.100.7", 40000, 443))
        ('a', None)
        """
        # Instances answer through the kernel's method stored in the ``lookup`` slot; this
        # body is what that method does, for readers and for calls through the class.
        result: tuple[ServerId, ServerId | None] = self._kernel.lookup(key)
        return result

    def _other_key(self, key: object) -> tuple[ServerId, ServerId | None]:
        if isinstance(key, tuple) and len(key) == 4:
            hops: tuple[ServerId, ServerId | None] = self._kernel.hops(
                hash_flow(*key, seed=self.hash_seed)
            )
            return hops
        raise ArgumentTypeError(
            f"key is {type(key).__name__}; keys must be bytes, str or a "
            "(src, dst, sport, dport) flow"
        )

    def lookup_hash(self, hash_value: int) -> tuple[ServerId, ServerId | None]:
        """The (first hop, second hop or ``None``) of a 32-bit hash: bucket
        ``hash_value & (bucket_count - 1)``.

        Raises:
            ArgumentTypeError: ``hash_value`` is not an ``int``.
            InvalidArgument: ``hash_value`` is outside ``0..2**32 - 1``.

        Runtime complexity: O(1).

        >>> ForwardingTable(["a", "b"], [0, 1] * 8).lookup_hash(16 + 3)
        ('b', None)
        """
        if type(hash_value) is not int or not 0 <= hash_value <= MAX_SEED:
            _check_range(hash_value, "hash_value", MAX_SEED, error=InvalidArgument)
        result: tuple[ServerId, ServerId | None] = self._kernel.hops(hash_value)
        return result

    def lookup_many(
        self, data: object, *, record_size: int | None = None
    ) -> tuple[array[int], array[int]]:
        """First- and second-hop server **indices** for a batch, as two ``array('I')``.

        ``data`` is an ``array('I')`` (or iterable) of hashes, or, with ``record_size``, a
        buffer of packed keys (for example 12-byte IPv4 flow keys) hashed with the table's
        ``hash_seed``. A bucket with no second hop gives :data:`NO_SERVER`. Translate indices
        with :attr:`servers`. Compiled, both passes run with the GIL released.

        Raises:
            ArgumentTypeError, InvalidArgument: as :func:`lbkit.hashing.hash_packed` for packed
                keys; a hash outside ``0..2**32 - 1`` or of another type otherwise.

        Runtime complexity: O(len(data)).

        >>> table = ForwardingTable(["a", "b"], [0, 1] * 8, [NO_SERVER, 0] * 8)
        >>> first, second = table.lookup_many([4, 5])
        >>> first.tolist(), second.tolist() == [NO_SERVER, 0]
        ([0, 1], True)
        """
        hashes = batch_hashes(data, record_size, self.hash_seed)
        result: tuple[array[int], array[int]] = _kernels.forwarding.lookup_many(
            self._first, self._second, hashes
        )
        return result

    # -- inspection ----------------------------------------------------------------------

    def index_of(self, server: ServerId) -> int:
        """The index of a server id in :attr:`servers` and in the hop arrays.

        Raises:
            UnknownServer: the table does not list ``server``.

        Runtime complexity: O(1).

        >>> ForwardingTable(["a", "b"], [0, 1] * 8).index_of("b")
        1
        """
        try:
            return self._index[server]
        except (KeyError, TypeError):
            raise UnknownServer(f"server {server!r} is not in this table") from None

    @property
    def first_hops(self) -> memoryview:
        """The first-hop server index of every bucket (read-only, format ``'I'``)."""
        return memoryview(self._first).toreadonly()

    @property
    def second_hops(self) -> memoryview:
        """The second-hop server index of every bucket, or :data:`NO_SERVER` (read-only)."""
        return memoryview(self._second).toreadonly()

    @property
    def modified(self) -> memoryview:
        """The generation in which each bucket last changed (read-only)."""
        return memoryview(self._modified).toreadonly()

    def owners(self) -> array[int]:
        """The server index that receives **new** flows in each bucket.

        For ``tcp`` and ``udp-rr`` that is the first hop. For ``udp`` it is the second hop
        when there is one: a UDP flow has no SYN, so a server that does not know a flow passes
        it to the second hop, and a new flow is known to nobody (see
        :func:`~lbkit.forwarding.redirect`).

        Runtime complexity: O(buckets).

        >>> second_hops = [1] + [NO_SERVER] * 15
        >>> ForwardingTable(["a", "b"], [0] * 16, second_hops, protocol="udp").owners()[:2]
        array('I', [1, 0])
        """
        if self.protocol != "udp":
            return array("I", self._first)
        second = self._second
        return array(
            "I",
            [
                hop if hop != NO_SERVER else first
                for first, hop in zip(self._first, second, strict=True)
            ],
        )

    def bucket_counts(self) -> dict[ServerId, int]:
        """How many buckets send new flows to each server (see :meth:`owners`), every listed
        server included.

        Runtime complexity: O(buckets).

        >>> ForwardingTable(["a", "b", "c"], [0, 0, 0, 1] * 4).bucket_counts()
        {'a': 12, 'b': 4, 'c': 0}
        """
        tally = Counter(self.owners())
        return {server: tally.get(position, 0) for position, server in enumerate(self.servers)}

    def shares(self) -> dict[ServerId, float]:
        """Each server's fraction of new flows: its bucket count over the bucket count.

        Runtime complexity: O(buckets).

        >>> ForwardingTable(["a", "b"], [0, 0, 0, 1] * 4).shares()
        {'a': 0.75, 'b': 0.25}
        """
        return {server: count / self.bucket_count for server, count in self.bucket_counts().items()}

    def share_errors(self) -> dict[ServerId, float]:
        """Each server's bucket count minus its exact share of the buckets by weight.

        A table from :class:`~lbkit.forwarding.TableBuilder` keeps every value strictly
        between -1 and 1 (with load feedback, by its adjusted weights).

        Runtime complexity: O(buckets).

        >>> ForwardingTable(["a", "b"], [0, 0, 0, 1] * 4, weights={"a": 3, "b": 1}).share_errors()
        {'a': 0.0, 'b': 0.0}
        """
        total = 0.0
        for weight in self.weights.values():
            total += weight
        counts = self.bucket_counts()
        return {
            server: counts[server] - self.bucket_count * self.weights[server] / total
            for server in self.servers
        }

    def second_hop_occupancy(self) -> float:
        """The fraction of buckets that have a second hop.

        Runtime complexity: O(buckets).

        >>> ForwardingTable(["a", "b"], [0] * 16, [1] * 4 + [NO_SERVER] * 12).second_hop_occupancy()
        0.25
        """
        empty = self._second.count(NO_SERVER)
        return (self.bucket_count - empty) / self.bucket_count

    # -- bytes ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The table as a compact, versioned, checksummed blob (see the module docs).

        Runtime complexity: O(buckets + servers).

        >>> table = ForwardingTable(["a", "b"], [0, 1] * 8)
        >>> ForwardingTable.from_bytes(table.to_bytes()) == table
        True
        """
        parts = [
            _HEADER.pack(
                _MAGIC,
                _VERSION,
                PROTOCOLS.index(self.protocol),
                self.bucket_count.bit_length() - 1,
                0,
                self.generation,
                self.hash_seed,
                len(self.servers),
            )
        ]
        for server in self.servers:
            key = server_key(server)
            parts.append(_ID_LENGTH.pack(len(key)))
            parts.append(key)
            parts.append(_WEIGHT.pack(self.weights[server]))
        for values in (self._first, self._second, self._modified):
            parts.append(_little_endian(values))
        body = b"".join(parts)
        return body + hashlib.blake2b(body, digest_size=_CHECKSUM_SIZE).digest()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> ForwardingTable:
        """Read a blob written by :meth:`to_bytes`, checking everything before trusting it.

        Raises:
            CorruptBlob: the bytes are not a table blob, of an unknown version, truncated,
                longer than the table they describe, fail the checksum, or describe an invalid
                table (the message says which).
            ArgumentTypeError: ``data`` is not bytes-like.

        Runtime complexity: O(buckets + servers).

        >>> ForwardingTable.from_bytes(b"LBFT")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        lbkit.errors.CorruptBlob: table blob is 4 bytes, shorter than the 40-byte minimum; ...
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ArgumentTypeError(
                f"data is {type(data).__name__}; a table blob is bytes, bytearray or memoryview"
            )
        blob = bytes(data)
        minimum = _HEADER.size + _CHECKSUM_SIZE
        if len(blob) < minimum:
            raise CorruptBlob(
                f"table blob is {len(blob)} bytes, shorter than the {minimum}-byte minimum; "
                "it is truncated or not a table"
            )
        magic, version, protocol_code, bits, reserved, generation, hash_seed, server_count = (
            _HEADER.unpack_from(blob)
        )
        if magic != _MAGIC:
            raise CorruptBlob(
                f"table blob starts with {magic!r}, not {_MAGIC!r}; it is not a table"
            )
        if version != _VERSION:
            raise CorruptBlob(
                f"table blob has format version {version}; this lbkit reads version {_VERSION}"
            )
        # Sizes first, from the header alone, so a damaged count cannot make us read far.
        if not MIN_BUCKET_BITS <= bits <= MAX_BUCKET_BITS:
            raise CorruptBlob(
                f"table blob says 2**{bits} buckets; tables have 2**{MIN_BUCKET_BITS}.."
                f"2**{MAX_BUCKET_BITS}"
            )
        bucket_count = 1 << bits
        if server_count > bucket_count:
            raise CorruptBlob(
                f"table blob lists {server_count} servers for {bucket_count} buckets; a table "
                "lists at most one server per bucket"
            )
        offset = _HEADER.size
        keys: list[bytes] = []
        weight_values: list[float] = []
        for _ in range(server_count):
            if offset + _ID_LENGTH.size > len(blob) - _CHECKSUM_SIZE:
                raise CorruptBlob("table blob ends inside its server list; it is truncated")
            (length,) = _ID_LENGTH.unpack_from(blob, offset)
            offset += _ID_LENGTH.size
            end = offset + length + _WEIGHT.size
            if end > len(blob) - _CHECKSUM_SIZE:
                raise CorruptBlob("table blob ends inside its server list; it is truncated")
            keys.append(blob[offset : offset + length])
            (weight,) = _WEIGHT.unpack_from(blob, offset + length)
            weight_values.append(weight)
            offset = end
        expected = offset + 3 * 4 * bucket_count + _CHECKSUM_SIZE
        if len(blob) != expected:
            state = "truncated" if len(blob) < expected else "followed by extra bytes"
            raise CorruptBlob(
                f"table blob is {len(blob)} bytes but describes {expected}; it is {state}"
            )
        checksum = hashlib.blake2b(blob[:-_CHECKSUM_SIZE], digest_size=_CHECKSUM_SIZE).digest()
        if checksum != blob[-_CHECKSUM_SIZE:]:
            raise CorruptBlob("table blob fails its checksum; it was altered or damaged")
        if reserved != 0 or protocol_code >= len(PROTOCOLS):
            raise CorruptBlob("table blob has an unknown protocol or flags; it is not version 1")
        try:
            ids = [server_from_key(key) for key in keys]
        except (ValueError, UnicodeDecodeError):
            raise CorruptBlob("table blob holds a malformed server id") from None
        if len(set(ids)) != len(ids):
            raise CorruptBlob("table blob lists a server twice")
        hops = []
        for _ in range(3):
            values = array("I")
            values.frombytes(blob[offset : offset + 4 * bucket_count])
            if sys.byteorder == "big":
                values.byteswap()
            hops.append(values)
            offset += 4 * bucket_count
        try:
            return cls(
                ids,
                hops[0],
                hops[1],
                protocol=PROTOCOLS[protocol_code],
                generation=generation,
                hash_seed=hash_seed,
                weights=dict(zip(ids, weight_values, strict=True)),
                modified=hops[2],
            )
        except (ConfigError, ArgumentTypeError) as error:
            raise CorruptBlob(f"table blob describes an invalid table: {error}") from None

    # -- identity ------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ForwardingTable):
            return NotImplemented
        return (
            self.servers == other.servers
            and self.protocol == other.protocol
            and self.generation == other.generation
            and self.hash_seed == other.hash_seed
            and self.weights == other.weights
            and self._first == other._first
            and self._second == other._second
            and self._modified == other._modified
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (ForwardingTable.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return (
            f"ForwardingTable(protocol={self.protocol!r}, buckets={self.bucket_count}, "
            f"servers={len(self.servers)}, generation={self.generation})"
        )


def check_bucket_count(count: object, name: str) -> int:
    """``count`` if it is a power of two from ``2**MIN_BUCKET_BITS`` to ``2**MAX_BUCKET_BITS``."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise ArgumentTypeError(f"{name} is {type(count).__name__}; it must be an int")
    if not 2**MIN_BUCKET_BITS <= count <= 2**MAX_BUCKET_BITS or count & (count - 1):
        raise ConfigError(
            f"{name} is {count}; bucket counts must be powers of two from "
            f"2**{MIN_BUCKET_BITS} to 2**{MAX_BUCKET_BITS}"
        )
    return count


def _check_range(
    value: object, name: str, maximum: int, *, error: type[InvalidArgument] = ConfigError
) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not 0 <= value <= maximum:
        raise error(f"{name} is {value}; it must be in 0..{maximum}")


def _index_array(values: Iterable[int], name: str) -> array[int]:
    """A private ``array('I')`` copy of ``values`` (so nobody else can change it)."""
    if isinstance(values, (str, bytes, bytearray)):
        raise ArgumentTypeError(f"{name} is {type(values).__name__}; pass a sequence of ints")
    if isinstance(values, (array, memoryview)):
        view = memoryview(values)
        if view.format in ("I", "=I", "<I") and view.itemsize == 4 and view.ndim == 1:
            return array("I", view.tobytes())
    try:
        return array("I", values)
    except TypeError:
        raise ArgumentTypeError(f"{name} must hold ints in 0..{2**32 - 1}") from None
    except OverflowError:
        raise ConfigError(f"{name} holds a value outside 0..{2**32 - 1}") from None


def _little_endian(values: array[int]) -> bytes:
    if sys.byteorder == "little":
        return values.tobytes()
    swapped = array("I", values)
    swapped.byteswap()
    return swapped.tobytes()
