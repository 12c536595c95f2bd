"""Maglev hashing: a lookup table that spreads flows over weighted servers in proportion to their
weights, and moves few flows when the set of servers changes.

Source: D. E. Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
NSDI 2016, §3.4 ("Consistent Hashing", Listing 1). Every balancer that builds a table from the
same servers, weights and seeds gets the same table, byte for byte, on any machine and either
kernel implementation, so balancers agree on where a flow goes without talking to each other.

**Permutations.** Each server prefers the entries of a table of ``size`` entries in its own
order, derived from two MurmurHash3 hashes of its canonical id bytes
(``key = server_key(server)``: ``b"s"`` + UTF-8 for a ``str``, ``b"i"`` + 8-byte big-endian
for an ``int``)::

    offset = hash_key(key, seed=seed) % size
    skip   = hash_key(key, seed=seed ^ SKIP_SEED_XOR) % (size - 1) + 1     prime size
    skip   = (hash_key(key, seed=seed ^ SKIP_SEED_XOR) & (size - 1)) | 1   power-of-two size
    preference j (j = 0, 1, ...) = (offset + j * skip) % size

The two murmur3 seeds differ for every ``seed`` (``SKIP_SEED_XOR`` is not 0). A prime size
makes every skip in ``1..size - 1`` coprime with it; a power-of-two size gets an odd skip. So
either way the preferences of a server run through every entry exactly once.

**Weights.** A server's *exact share* is ``size * weight / sum(weights)``. Its *quota*, the
number of entries it ends with, is the exact share rounded by the largest-remainder (Hamilton)
method: every quota starts at the share rounded down, and the entries left over go one each to
the servers with the largest fractional parts, ties to the earlier server. The arithmetic is
exact (weights are binary fractions, so they are scaled to integers first), hence
**every server's entry count differs from its exact share by less than one entry**. Zero-weight
servers are listed in :attr:`MaglevTable.servers` but own no entries; a positive weight whose
share is below one entry may own none either.

**Population.** Rounds ``r = 1, 2, ..., Q`` (``Q``, the largest quota) visit the servers in
index order. In round ``r`` a server claims its next preferred entry that is still free only
while it is behind its share of the rounds so far, ``claims * Q < r * quota``: the pacing
Envoy's weighted Maglev uses, here with integer quotas, so that every server reaches its quota
in round ``Q`` exactly and the table fills at the end of that round. With equal weights this
is Listing 1 of the paper, entry for entry.

**Lookups.** A key's entry is ``hash % size``, its hash ``hash_key(key, seed=hash_seed)``
(``hash_flow`` for a ``(src, dst, sport, dport)`` flow), and the entry names its server.

**Disruption.** Maglev trades a little disruption for balance. Removing one of ``N`` servers
moves all of its entries and a small fraction of the other servers' entries as well. Measured
over every single removal (``tests/test_maglev.py`` asserts the bounds in brackets): with
65,537 entries and 100 servers weighted 1 to 4, at most 0.72% of the other servers' entries
move (1%); with about 100 entries per server (4,099 or 4,096 entries, 40 servers), at most
2.8% (4%). Doubling one of ten equal weights moves the entries its quota gains and about 3%
more (10%). A larger table moves fewer.

**Sizes.** ``size`` is a prime or a power of two in ``1..MAX_SIZE``, and at least the number of
servers with a positive weight. Use at least 100 entries per server, the paper's rule of thumb:
the rounding of a quota (under one entry) is then under 1% of the server's share, and
disruption stays low (see above).

>>> table = MaglevTable({"a": 1, "b": 1, "c": 2}, size=251)
>>> table.counts()
{'a': 63, 'b': 63, 'c': 125}
>>> table.lookup(("192.0.2.1", "198.51.100.7", 40000, 443))
'a'
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from typing import Any, cast

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, UnknownServer
from lbkit.forwarding._inputs import batch_hashes
from lbkit.forwarding._servers import ServerId, check_weights, server_key
from lbkit.forwarding.disruption import TableDiff, diff
from lbkit.hashing import MAX_SEED, hash_flow, hash_key, hash_many

__all__ = ["DEFAULT_SIZE", "MAX_SIZE", "SKIP_SEED_XOR", "MaglevTable"]

# What a caller may pass as weights. Mapping is invariant in its key type, so a dict keyed by
# str alone or by int alone is listed beside the mixed one.
_WeightsInput = (
    Mapping[str, float]
    | Mapping[int, float]
    | Mapping[ServerId, float]
    | Iterable[tuple[ServerId, float]]
)

#: The default table size, the prime 65,537 (as in the paper and Envoy): at least 100 entries
#: per server for up to 655 servers.
DEFAULT_SIZE = 65537
#: The largest table size, the smallest prime above ``2**24`` (a 64 MiB table). Larger sizes
#: are refused as a likely mistake.
MAX_SIZE = 2**24 + 43
#: The skip hash's murmur3 seed is ``seed ^ SKIP_SEED_XOR`` (the offset hash's is ``seed``).
SKIP_SEED_XOR = 0x9E3779B9


class MaglevTable:
    """An immutable Maglev lookup table over weighted servers (see the module docs).

    Args:
        weights: server id to weight, as a mapping or ``(server, weight)`` pairs; the order
            given is the servers' index order. Weights are finite numbers ``>= 0``, not all 0.
            Server ids are ``str`` (1..255 bytes of UTF-8) or ``int`` (signed 64-bit).
        size: the number of entries: a prime or a power of two in ``1..MAX_SIZE``, at least
            the number of servers with a positive weight. Default 65,537.
        seed: picks the servers' permutations, ``0..2**32 - 1``.
        hash_seed: the murmur3 seed keys are hashed with, ``0..2**32 - 1``.

    Raises:
        ConfigError: a weight that is negative, NaN or infinite, all weights zero, no servers,
            a server listed twice, a bad size, a seed out of range.
        ArgumentTypeError: an argument (or a server id, or a weight) of the wrong type.

    Runtime complexity: O(size * log(size)) expected to build, plus O(servers * Q) for the
    pacing, where Q is the largest quota (Q is about size / servers for equal weights);
    lookups are O(1).

    >>> table = MaglevTable([("a", 1.0), ("b", 3.0), ("drained", 0.0)], size=257)
    >>> table.servers
    ('a', 'b', 'drained')
    >>> table.counts()
    {'a': 64, 'b': 193, 'drained': 0}
    """

    servers: tuple[ServerId, ...]
    size: int
    seed: int
    hash_seed: int
    _weights: dict[ServerId, float]
    _index: dict[ServerId, int]
    _quotas: array[int]
    _first_hops: array[int]

    def __init__(
        self,
        weights: _WeightsInput,
        *,
        size: int = DEFAULT_SIZE,
        seed: int = 0,
        hash_seed: int = 0,
    ) -> None:
        checked = check_weights(
            cast(Mapping[ServerId, float] | Iterable[tuple[ServerId, float]], weights)
        )
        positive = sum(1 for weight in checked.values() if weight > 0)
        _check_size(size, positive)
        _check_seed(seed, "seed")
        _check_seed(hash_seed, "hash_seed")
        servers = tuple(checked)
        offsets, skips = _permutations(servers, size, seed)
        quotas = _apportion(list(checked.values()), size)
        first_hops = _kernels.maglev.populate(offsets, skips, quotas, size)
        setter = object.__setattr__
        setter(self, "servers", servers)
        setter(self, "size", size)
        setter(self, "seed", seed)
        setter(self, "hash_seed", hash_seed)
        setter(self, "_weights", checked)
        setter(self, "_index", {server: position for position, server in enumerate(servers)})
        setter(self, "_quotas", quotas)
        setter(self, "_first_hops", first_hops)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"MaglevTable is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"MaglevTable is immutable; cannot delete {name!r}")

    # -- lookups -------------------------------------------------------------------------

    def lookup(self, key: bytes | str | tuple[Any, Any, int, int]) -> ServerId:
        """The server of a key.

        ``key`` is ``bytes`` or ``str`` (hashed with :func:`lbkit.hashing.hash_key` and the
        table's ``hash_seed``) or a flow ``(src, dst, sport, dport)`` (hashed with
        :func:`lbkit.hashing.hash_flow`); its entry is ``hash % size``.

        Raises:
            ArgumentTypeError: a key of another type.
            InvalidKey: a malformed flow, or a ``str`` with no UTF-8 form.

        Runtime complexity: O(len(key)).

        >>> table = MaglevTable({"a": 1, "b": 1}, size=251)
        >>> table.lookup(b"session-42"), table.lookup("session-42")
        ('b', 'b')
        """
        if isinstance(key, (bytes, str)):
            hash_value = hash_key(key, seed=self.hash_seed)
        elif isinstance(key, tuple) and len(key) == 4:
            hash_value = hash_flow(*key, seed=self.hash_seed)
        else:
            raise ArgumentTypeError(
                f"key is {type(key).__name__}; keys must be bytes, str or a "
                "(src, dst, sport, dport) flow"
            )
        return self.servers[self._first_hops[hash_value % self.size]]

    def lookup_hash(self, hash_value: int) -> ServerId:
        """The server of a 32-bit hash: the owner of entry ``hash_value % size``.

        Raises:
            ArgumentTypeError: ``hash_value`` is not an ``int``.
            InvalidArgument: ``hash_value`` is outside ``0..2**32 - 1``.

        Runtime complexity: O(1).

        >>> table = MaglevTable({"a": 1, "b": 1}, size=251)
        >>> table.lookup_hash(hash_key(b"session-42"))
        'b'
        """
        # The common case is checked inline; the helper call is only paid to report a bad one.
        if type(hash_value) is not int or not 0 <= hash_value <= MAX_SEED:
            _check_hash(hash_value)
        return self.servers[self._first_hops[hash_value % self.size]]

    def lookup_many(self, data: object, *, record_size: int | None = None) -> array[int]:
        """Server **indices** for a batch, as an ``array('I')``; translate them with
        :attr:`servers`.

        ``data`` is an ``array('I')`` (or iterable) of hashes, or, with ``record_size``, a
        buffer of packed keys (for example 12-byte IPv4 flow keys from
        :func:`lbkit.hashing.flow_key`) hashed with the table's ``hash_seed``. Compiled, the
        loop runs with the GIL released.

        Raises:
            ArgumentTypeError, InvalidArgument: as :func:`lbkit.hashing.hash_packed` for packed
                keys; a hash outside ``0..2**32 - 1`` or of another type otherwise.

        Runtime complexity: O(len(data)).

        >>> table = MaglevTable({"a": 1, "b": 1}, size=251)
        >>> indices = table.lookup_many([hash_key(b"session-42"), 0, 250])
        >>> [table.servers[index] for index in indices]
        ['b', 'b', 'a']
        """
        hashes = batch_hashes(data, record_size, self.hash_seed)
        result: array[int] = _kernels.maglev.lookup_many(hashes, self._first_hops)
        return result

    # -- inspection ----------------------------------------------------------------------

    @property
    def weights(self) -> dict[ServerId, float]:
        """Each server's weight, as validated (floats), in index order; a copy.

        >>> MaglevTable([("a", 2), ("b", 0)], size=2).weights
        {'a': 2.0, 'b': 0.0}
        """
        return dict(self._weights)

    @property
    def first_hops(self) -> memoryview:
        """The server index owning each entry: a read-only view of format ``'I'``, ``size``
        long. The name matches the forwarding tables', whose first hop is the server that gets
        new flows; a Maglev entry has no second hop.

        >>> MaglevTable({"a": 1, "b": 1}, size=5).first_hops.tolist()
        [0, 1, 0, 0, 1]
        """
        return memoryview(self._first_hops).toreadonly()

    def index_of(self, server: ServerId) -> int:
        """The index of a server id in :attr:`servers`, and in :attr:`first_hops` and the
        arrays :meth:`lookup_many` returns.

        Raises:
            UnknownServer: the table does not list ``server``.

        Runtime complexity: O(1).

        >>> MaglevTable({"a": 1, "b": 1}, size=5).index_of("b")
        1
        """
        try:
            return self._index[server]
        except (KeyError, TypeError):
            raise UnknownServer(f"server {server!r} is not in this table") from None

    def counts(self) -> dict[ServerId, int]:
        """How many entries each server owns, every listed server included: its quota, within
        one entry of its exact share ``size * weight / sum(weights)``.

        Runtime complexity: O(servers).

        >>> MaglevTable({"a": 1, "b": 2, "c": 0}, size=7).counts()
        {'a': 2, 'b': 5, 'c': 0}
        """
        return dict(zip(self.servers, self._quotas, strict=True))

    def shares(self) -> dict[ServerId, float]:
        """Each server's fraction of the entries, hence of the flows.

        Runtime complexity: O(servers).

        >>> MaglevTable({"a": 1, "b": 3}, size=8).shares()
        {'a': 0.25, 'b': 0.75}
        """
        return {server: count / self.size for server, count in self.counts().items()}

    def diff(self, other: MaglevTable) -> TableDiff:
        """What replacing this table with ``other`` does to traffic, entry by entry.

        Entries are compared by server **id**, so the two tables may list their servers in
        different orders. An entry whose server changed sends its new flows elsewhere and, with
        no second hop to fall back on, breaks its established ones: ``moved``,
        ``first_hop_changed`` and ``broken`` all count those entries, and
        ``second_hop_changed`` and ``previous_hop_dropped`` are 0. It is
        :func:`lbkit.forwarding.diff`, after checking that the two tables' entries hold the
        same flows.

        Raises:
            ArgumentTypeError: ``other`` is not a :class:`MaglevTable`.
            ConfigError: the tables differ in ``size`` or ``hash_seed``, so their entries hold
                different flows.

        Runtime complexity: O(size + servers).

        >>> before = MaglevTable({"a": 1, "b": 1, "c": 1}, size=251)
        >>> after = MaglevTable({"a": 1, "b": 1}, size=251)
        >>> change = before.diff(after)
        >>> change.moved, change.broken, before.counts()["c"]  # c's entries, and 2 more
        (85, 85, 83)
        """
        if not isinstance(other, MaglevTable):
            raise ArgumentTypeError(f"other is {type(other).__name__}; it must be a MaglevTable")
        if other.size != self.size:
            raise ConfigError(
                f"other has size {other.size} and this table {self.size}; Maglev tables "
                "are compared entry by entry, so their sizes must be equal"
            )
        if other.hash_seed != self.hash_seed:
            raise ConfigError(
                f"other has hash_seed {other.hash_seed} and this table {self.hash_seed}; "
                "their entries hold different flows, so their hash_seeds must be equal"
            )
        return diff(self, other)

    # -- identity ------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Tables are equal when built from the same servers in the same order, the same
        weights, size and seeds; equal tables have equal entries.

        >>> MaglevTable({"a": 1, "b": 1}, size=5) == MaglevTable([("a", 1.0), ("b", 1.0)], size=5)
        True
        """
        if not isinstance(other, MaglevTable):
            return NotImplemented
        return (
            self.servers == other.servers
            and self._weights == other._weights
            and self.size == other.size
            and self.seed == other.seed
            and self.hash_seed == other.hash_seed
        )

    def __hash__(self) -> int:
        return hash(
            (self.servers, tuple(self._weights.values()), self.size, self.seed, self.hash_seed)
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Rebuilt from its inputs: the table is a pure function of them.
        return (_rebuild, (tuple(self._weights.items()), self.size, self.seed, self.hash_seed))

    def __copy__(self) -> MaglevTable:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> MaglevTable:
        return self

    def __repr__(self) -> str:
        """A summary: the size, how many servers, and the seeds.

        >>> MaglevTable({"a": 1, "b": 1}, size=5)
        MaglevTable(size=5, servers=2, seed=0, hash_seed=0)
        """
        return (
            f"MaglevTable(size={self.size}, servers={len(self.servers)}, seed={self.seed}, "
            f"hash_seed={self.hash_seed})"
        )


def _rebuild(
    pairs: tuple[tuple[ServerId, float], ...], size: int, seed: int, hash_seed: int
) -> MaglevTable:
    return MaglevTable(pairs, size=size, seed=seed, hash_seed=hash_seed)


def _check_size(size: object, positive: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int):
        raise ArgumentTypeError(f"size is {type(size).__name__}; it must be an int")
    if not 1 <= size <= MAX_SIZE or not (size & (size - 1) == 0 or _is_prime(size)):
        raise ConfigError(f"size is {size}; it must be a prime or a power of two in 1..{MAX_SIZE}")
    if size < positive:
        raise ConfigError(
            f"size is {size}; it must be at least the number of servers with a positive "
            f"weight ({positive})"
        )


def _check_hash(hash_value: object) -> None:
    if isinstance(hash_value, bool) or not isinstance(hash_value, int):
        raise ArgumentTypeError(f"hash_value is {type(hash_value).__name__}; it must be an int")
    if not 0 <= hash_value <= MAX_SEED:
        raise InvalidArgument(f"hash_value is {hash_value}; it must be in 0..{MAX_SEED}")


def _check_seed(seed: object, name: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ArgumentTypeError(f"{name} is {type(seed).__name__}; it must be an int")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{name} is {seed}; it must be in 0..{MAX_SEED}")


def _is_prime(number: int) -> bool:
    """Trial division: at most 4,097 is tried for sizes up to MAX_SIZE."""
    if number < 4:
        return number >= 2
    if number % 2 == 0 or number % 3 == 0:
        return False
    divisor = 5
    while divisor * divisor <= number:
        if number % divisor == 0 or number % (divisor + 2) == 0:
            return False
        divisor += 6
    return True


def _permutations(
    servers: tuple[ServerId, ...], size: int, seed: int
) -> tuple[array[int], array[int]]:
    """Each server's offset and skip (see the module docs)."""
    keys = [server_key(server) for server in servers]
    offsets = array("I", [value % size for value in hash_many(keys, seed=seed)])
    skip_hashes = hash_many(keys, seed=seed ^ SKIP_SEED_XOR)
    if _is_prime(size):
        skips = array("I", [value % (size - 1) + 1 for value in skip_hashes])
    else:
        mask = size - 1
        skips = array("I", [(value & mask) | 1 for value in skip_hashes])
    return offsets, skips


def _apportion(weights: list[float], size: int) -> array[int]:
    """Each server's quota: its exact share rounded by the largest-remainder method, ties to
    the lower index, in exact integer arithmetic (see the module docs)."""
    # A float is numerator / 2**k; over the largest such denominator every weight is an integer.
    ratios = [weight.as_integer_ratio() for weight in weights]
    denominator = max([divisor for _, divisor in ratios])
    scaled = [numerator * (denominator // divisor) for numerator, divisor in ratios]
    total = sum(scaled)
    products = [size * value for value in scaled]
    quotas = [product // total for product in products]
    leftover = size - sum(quotas)
    if leftover:
        remainders = [product % total for product in products]
        # Largest remainder first; the sort is stable, so equal remainders keep index order.
        # The remainders sum to leftover * total and each is below total, so more than
        # leftover servers have a positive one: zero weights never receive a leftover entry.
        ranked = sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)
        for server in ranked[:leftover]:
            quotas[server] += 1
    return array("I", quotas)
