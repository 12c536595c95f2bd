"""Flow keys and MurmurHash3: the hashes every lbkit table is indexed by.

Balancers that must agree on where a connection goes without talking to each other need the
same bytes and the same hash for the same connection on every machine. This module fixes both.

**The canonical flow key.** A connection is named by its 4-tuple, with no protocol (tables are
kept per protocol). Addresses and ports are written big-endian, in the order they travel in the
packet headers::

    IPv4 flow:  src address (4) | dst address (4)  | src port (2) | dst port (2)   12 bytes
    IPv6 flow:  src address (16) | dst address (16) | src port (2) | dst port (2)  36 bytes

Addresses may be :mod:`ipaddress` objects, strings, or packed ``bytes`` (4 or 16 long).

* **IPv4-mapped IPv6 is IPv4.** ``::ffff:a.b.c.d`` is encoded as the IPv4 address
  ``a.b.c.d``, so a dual-stack socket that reports ``::ffff:192.0.2.1`` and a packet parser that
  reports ``192.0.2.1`` put the same connection in the same bucket. No other IPv6 range is
  translated (NAT64 ``64:ff9b::/96`` addresses are distinct hosts and stay IPv6).
* After that rule, both addresses must be of one family; a mixed flow is an
  :class:`~lbkit.errors.InvalidKey`.
* IPv6 zone ids (``fe80::1%eth0``) are not on the wire and are rejected rather than dropped.
* Ports are integers in ``0..65535``.

**The hash.** MurmurHash3 x86 32-bit, unsigned, bit for bit equal to
``mmh3.hash(key, seed, signed=False)``; ``str`` keys are hashed as their UTF-8 bytes. Seeds are
integers in ``0..2**32 - 1``. The batch forms return ``array('I')`` and are the ones to use in a
packet pipeline: :func:`hash_packed` walks a flat buffer of fixed-width records (for example
12-byte IPv4 flow keys) without creating a Python object per record and, compiled, with the GIL
released.

>>> key = flow_key("192.0.2.1", "198.51.100.7", 40000, 443)
>>> key.hex()
'c0000201c63364079c4001bb'
>>> key == flow_key("::ffff:192.0.2.1", "198.51.100.7", 40000, 443)
True
>>> hash_key(key)
1687694858
"""

from __future__ import annotations

import functools
import ipaddress
import struct
import sys
from array import array
from collections.abc import Iterable

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, InvalidArgument, InvalidKey

__all__ = [
    "IPV4_FLOW_KEY_SIZE",
    "IPV6_FLOW_KEY_SIZE",
    "MAX_SEED",
    "Address",
    "bucket_index",
    "flow_key",
    "hash_flow",
    "hash_key",
    "hash_many",
    "hash_packed",
]

#: Length of the canonical key of an IPv4 flow, in bytes.
IPV4_FLOW_KEY_SIZE = 12
#: Length of the canonical key of an IPv6 flow, in bytes.
IPV6_FLOW_KEY_SIZE = 36
#: The largest seed; seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1

#: What a flow's address may be given as.
Address = ipaddress.IPv4Address | ipaddress.IPv6Address | str | bytes | bytearray

if array("I").itemsize != 4:  # pragma: no cover - no platform CPython supports does this
    raise ImportError("lbkit needs array('I') to hold 32-bit unsigned integers")

_PORTS = struct.Struct("!HH")


def flow_key(src: Address, dst: Address, sport: int, dport: int) -> bytes:
    """The canonical bytes of a connection's 4-tuple (see the module docs for the layout).

    Args:
        src: source address: ``IPv4Address``, ``IPv6Address``, a string, or 4 or 16 packed bytes.
        dst: destination address, in any of the same forms.
        sport: source port, ``0..65535``.
        dport: destination port, ``0..65535``.

    Returns:
        12 bytes for an IPv4 flow (IPv4-mapped IPv6 counts as IPv4), 36 for an IPv6 flow.

    Raises:
        InvalidKey: an address that does not parse, a zone id, mixed families, a port out of
            range.
        ArgumentTypeError: an address or port of another type.

    Runtime complexity: O(1). Packed and ``ipaddress`` forms are cheapest; a string costs an
    ``ipaddress`` parse (about a microsecond) unless it is among the 4,096 most recently
    parsed, which are cached.

    >>> len(flow_key("2001:db8::1", "2001:db8::2", 1, 2))
    36
    >>> flow_key("192.0.2.1", "2001:db8::2", 1, 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    lbkit.errors.InvalidKey: src is IPv4 and dst is IPv6; a flow's addresses must be of one ...
    """
    source = _packed_address(src, "src")
    destination = _packed_address(dst, "dst")
    # Valid ports are checked inline; the helper call is only paid to report a bad one.
    if (
        type(sport) is not int
        or type(dport) is not int
        or not (0 <= sport <= 65535 and 0 <= dport <= 65535)
    ):
        sport, dport = _port(sport, "sport"), _port(dport, "dport")
    if len(source) != len(destination):
        families = {4: "IPv4", 16: "IPv6"}
        raise InvalidKey(
            f"src is {families[len(source)]} and dst is {families[len(destination)]}; a flow's "
            "addresses must be of one family (IPv4-mapped IPv6 counts as IPv4)"
        )
    return source + destination + _PORTS.pack(sport, dport)


def hash_key(key: bytes | str, *, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit of one key, as an unsigned integer.

    Equal to ``mmh3.hash(key, seed, signed=False)``; a ``str`` is hashed as its UTF-8 bytes.

    Raises:
        ArgumentTypeError: ``key`` is not ``bytes`` or ``str``; ``seed`` is not an ``int``.
        InvalidKey: ``key`` is a ``str`` with a lone surrogate (it has no UTF-8 form).
        InvalidArgument: ``seed`` is outside ``0..2**32 - 1``.

    Runtime complexity: O(len(key)).

    >>> hash_key(b"hello")
    613153351
    >>> hash_key("hello") == hash_key(b"hello")
    True
    >>> hash_key(b"hello", seed=42)
    3806057185
    """
    # The common case is checked inline: a helper call here would cost more than the hash.
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        seed = _seed(seed)
    return _kernels.hashing.hash_key(key, seed)


def hash_flow(src: Address, dst: Address, sport: int, dport: int, *, seed: int = 0) -> int:
    """The hash of a connection's canonical flow key: ``hash_key(flow_key(...), seed=seed)``.

    Raises what :func:`flow_key` and :func:`hash_key` raise.

    Runtime complexity: O(1).

    >>> hash_flow("192.0.2.1", "198.51.100.7", 40000, 443)
    1687694858
    """
    seed = _seed(seed)
    return _kernels.hashing.hash_key(flow_key(src, dst, sport, dport), seed)


def hash_many(keys: Iterable[bytes | str], *, seed: int = 0) -> array[int]:
    """Hash every key of a batch; ``result[i]`` is ``hash_key(keys[i], seed=seed)``.

    A list or tuple is read in place; any other iterable is first gathered into a list.

    Raises:
        ArgumentTypeError: ``keys`` is a single ``bytes``/``str``/buffer or not iterable, or an
            element is not ``bytes`` or ``str`` (the message names its index).
        InvalidKey: an element is a ``str`` with a lone surrogate.
        InvalidArgument: ``seed`` is outside ``0..2**32 - 1``.

    Runtime complexity: O(total length of the keys).

    >>> hash_many([b"hello", "hello", b""]).tolist()
    [613153351, 613153351, 0]
    """
    seed = _seed(seed)
    if isinstance(keys, (bytes, str, bytearray, memoryview)):
        raise ArgumentTypeError(
            f"keys is {type(keys).__name__}; pass a sequence of keys (hash_key hashes one key, "
            "hash_packed hashes a buffer of fixed-width records)"
        )
    if not isinstance(keys, (list, tuple)):
        try:
            keys = list(keys)
        except TypeError:
            raise ArgumentTypeError(
                f"keys is {type(keys).__name__}; it must be an iterable of bytes or str keys"
            ) from None
    return _kernels.hashing.hash_many(keys, seed)


def hash_packed(buffer: object, *, record_size: int, seed: int = 0) -> array[int]:
    """Hash every fixed-width record of a flat buffer; ``result[i]`` hashes bytes
    ``[i * record_size, (i + 1) * record_size)``.

    ``buffer`` is anything with the buffer protocol that is C-contiguous (``bytes``,
    ``bytearray``, ``memoryview``, ``array``, a NumPy array); its bytes are read as they lie in
    memory. Compiled, the loop touches no Python object and releases the GIL, so other threads
    run while a large batch hashes.

    Raises:
        ArgumentTypeError: ``buffer`` has no buffer protocol; ``record_size`` or ``seed`` is not
            an ``int``.
        InvalidArgument: ``buffer`` is not C-contiguous, ``record_size`` is outside
            ``1..sys.maxsize`` or does not divide the buffer's length, ``seed`` is outside
            ``0..2**32 - 1``.

    Runtime complexity: O(len(buffer)).

    >>> packed = flow_key("192.0.2.1", "198.51.100.7", 40000, 443) * 2
    >>> hash_packed(packed, record_size=IPV4_FLOW_KEY_SIZE).tolist()
    [1687694858, 1687694858]
    """
    seed = _seed(seed)
    _check_int(record_size, "record_size")
    if not 1 <= record_size <= sys.maxsize:
        raise InvalidArgument(f"record_size is {record_size}; it must be in 1..{sys.maxsize}")
    try:
        view = memoryview(buffer)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentTypeError(
            f"buffer is {type(buffer).__name__}; it must support the buffer protocol "
            "(bytes, bytearray, memoryview, array)"
        ) from None
    with view:
        if not view.c_contiguous:
            raise InvalidArgument("buffer is not C-contiguous; copy it with bytes() first")
        if view.nbytes % record_size:
            raise InvalidArgument(
                f"buffer holds {view.nbytes} bytes, which is not a multiple of record_size "
                f"{record_size}; it must hold whole records"
            )
        with view.cast("B") as flat:
            return _kernels.hashing.hash_packed(flat, record_size, seed)


def bucket_index(hash_value: int, *, bucket_count: int) -> int:
    """The bucket a hash falls in, in a table of ``bucket_count`` buckets: its low bits.

    Forwarding tables in the style of Unimog index a power-of-two array of buckets with the low
    bits of the flow hash, so ``bucket_count`` must be a power of two.

    Raises:
        ArgumentTypeError: an argument is not an ``int``.
        InvalidArgument: ``hash_value`` is outside ``0..2**32 - 1``, or ``bucket_count`` is not
            a power of two in ``1..2**32``.

    Runtime complexity: O(1).

    >>> bucket_index(1687694858, bucket_count=4096)
    3594
    """
    _check_int(hash_value, "hash_value")
    _check_int(bucket_count, "bucket_count")
    if not 0 <= hash_value <= MAX_SEED:
        raise InvalidArgument(f"hash_value is {hash_value}; it must be in 0..{MAX_SEED}")
    if not 1 <= bucket_count <= 2**32 or bucket_count & (bucket_count - 1):
        raise InvalidArgument(
            f"bucket_count is {bucket_count}; it must be a power of two in 1..{2**32}"
        )
    return hash_value & (bucket_count - 1)


def _check_int(value: object, name: str) -> None:
    # bool is an int subclass, but True as a size or a port is a bug, not a number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")


def _seed(seed: int) -> int:
    if type(seed) is int and 0 <= seed <= MAX_SEED:
        return seed
    _check_int(seed, "seed")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidArgument(f"seed is {seed}; seeds must be integers in 0..{MAX_SEED}")
    return seed


def _port(port: int, name: str) -> int:
    if not isinstance(port, int) or isinstance(port, bool):
        raise ArgumentTypeError(f"{name} is {type(port).__name__}; ports must be int")
    if not 0 <= port <= 65535:
        raise InvalidKey(f"{name} is {port}; ports must be integers in 0..65535")
    return port


def _packed_address(address: object, name: str) -> bytes:
    """4 bytes for IPv4 (including IPv4-mapped IPv6), 16 for any other IPv6 address."""
    if type(address) is bytes and len(address) == 4:  # what a packet parser hands over
        return address
    if isinstance(address, str):
        try:
            return _packed_from_text(address)
        except _ZoneIdGiven:
            raise InvalidKey(_zone_message(name, address)) from None
        except ValueError:
            raise InvalidKey(f"{name} is {address!r}; it is not an IPv4 or IPv6 address") from None
    if isinstance(address, (bytes, bytearray)):
        if len(address) == 4:
            return bytes(address)
        if len(address) == 16:
            return _unmapped(bytes(address))
        raise InvalidKey(
            f"{name} is {len(address)} packed bytes; a packed address is 4 bytes (IPv4) "
            "or 16 bytes (IPv6)"
        )
    if isinstance(address, ipaddress.IPv4Address):
        return address.packed
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise InvalidKey(_zone_message(name, str(address)))
        return _unmapped(address.packed)
    raise ArgumentTypeError(
        f"{name} is {type(address).__name__}; an address must be an IPv4Address, "
        "IPv6Address, str or packed bytes"
    )


class _ZoneIdGiven(Exception):
    pass


# Parsing text with ipaddress costs about a microsecond; flows repeat their addresses (every
# flow to a service carries its address), so recent parses are kept. Errors are not cached.
@functools.lru_cache(maxsize=4096)
def _packed_from_text(text: str) -> bytes:
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv4Address):
        return address.packed
    if address.scope_id is not None:
        raise _ZoneIdGiven
    return _unmapped(address.packed)


_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96


def _unmapped(packed: bytes) -> bytes:
    """A 16-byte address, or its last 4 bytes when it is IPv4-mapped."""
    return packed[12:] if packed[:12] == _IPV4_MAPPED_PREFIX else packed


def _zone_message(name: str, text: str) -> str:
    return (
        f"{name} is {text!r}; zone ids are not part of a flow key, pass the address without %zone"
    )
