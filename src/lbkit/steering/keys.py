"""64-bit hashes of steering keys and ids, the same on every machine and on both paths.

Hash steering must send a client to the same pool and endpoint from every proxy, so its hashes
are MurmurHash3 (:func:`lbkit.hashing.hash_key`, pinned by golden vectors), never Python's
salted ``hash()``. Two 32-bit hashes of the same bytes with seeds 0 and 1 make one 64-bit value.

>>> key_hash("198.51.100.7") == key_hash(b"198.51.100.7")
True
>>> id_hash("web-1") != id_hash(1)
True
"""

from __future__ import annotations

from lbkit import hashing
from lbkit.errors import ArgumentTypeError

__all__ = ["id_hash", "key_hash"]


def key_hash(key: bytes | str | int) -> int:
    """The 64-bit hash of a hash-steering key: a client IP, a session id, a header value.

    ``str`` hashes as its UTF-8 bytes; an ``int`` as its decimal digits (so ``7`` and ``"7"``
    agree).

    Raises:
        ArgumentTypeError: ``key`` is not ``bytes``, ``str`` or ``int``.
        InvalidKey: a ``str`` with no UTF-8 form (a lone surrogate).

    Runtime complexity: O(len(key)).

    >>> key_hash(7) == key_hash("7")
    True
    """
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    elif not isinstance(key, (bytes, str)):
        raise ArgumentTypeError(f"key is {type(key).__name__}; it must be bytes, str or int")
    return (hashing.hash_key(key, seed=0) << 32) | hashing.hash_key(key, seed=1)


def id_hash(value: str | int) -> int:
    """The 64-bit hash of an endpoint or pool id for rendezvous hashing.

    ``str`` and ``int`` ids are kept apart (``"1"`` and ``1`` hash differently), since both may
    name different things in one configuration.

    Runtime complexity: O(len(id)).

    >>> id_hash("web-1") == id_hash("web-1")
    True
    """
    if isinstance(value, int) and not isinstance(value, bool):
        data = b"i" + str(value).encode("ascii")
    elif isinstance(value, str):
        data = b"s" + value.encode("utf-8", "surrogatepass")
    else:
        raise ArgumentTypeError(f"id is {type(value).__name__}; ids must be str or int")
    return (hashing.hash_key(data, seed=0) << 32) | hashing.hash_key(data, seed=1)
