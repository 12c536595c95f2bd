"""Hashing kernels, reference implementation: MurmurHash3 x86 32-bit through ``mmh3``.

Callers (``lbkit.hashing``) have validated the seed, the container types and the buffer
layout; the kernels check each key's type themselves, because a separate validation pass over
a large batch would cost as much as hashing it.

``str`` keys are encoded to UTF-8 here and never handed to ``mmh3`` as ``str``: mmh3 5.3.1
crashes the interpreter (SIGSEGV) on a ``str`` that holds a lone surrogate.
"""

from __future__ import annotations

from array import array

import mmh3

from lbkit.errors import key_type_error, unencodable_key_error


def _key_bytes(key: object, position: int) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        try:
            return key.encode("utf-8")
        except UnicodeEncodeError as error:
            raise unencodable_key_error(error, position) from error
    raise key_type_error(key, position)


def hash_key(key: bytes | str, seed: int) -> int:
    """MurmurHash3 x86 32-bit of one key, unsigned."""
    hash_value: int = mmh3.hash(key if type(key) is bytes else _key_bytes(key, -1), seed, False)
    return hash_value


def hash_many(keys: list[bytes | str] | tuple[bytes | str, ...], seed: int) -> array[int]:
    """One unsigned hash per key, in order."""
    # bytes keys, the common case, skip the conversion call.
    return array(
        "I",
        [
            mmh3.hash(key if type(key) is bytes else _key_bytes(key, i), seed, False)
            for i, key in enumerate(keys)
        ],
    )


def hash_packed(data: memoryview, record_size: int, seed: int) -> array[int]:
    """One unsigned hash per fixed-width record of a flat byte buffer."""
    raw = data.tobytes()
    return array(
        "I",
        [
            mmh3.hash(raw[start : start + record_size], seed, False)
            for start in range(0, len(raw), record_size)
        ],
    )
