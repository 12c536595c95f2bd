"""Input checks shared by the forwarding and Maglev tables' batch lookups."""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from lbkit.errors import ArgumentTypeError, InvalidArgument
from lbkit.hashing import hash_packed


def batch_hashes(data: object, record_size: int | None, hash_seed: int) -> array[int]:
    """The 32-bit hashes a batch lookup indexes with.

    With ``record_size``, ``data`` is a buffer of packed fixed-width keys (flow keys from
    :func:`lbkit.hashing.flow_key`), hashed with the table's ``hash_seed``. Without it, ``data``
    holds hashes already: an ``array('I')`` is used as it is, and any other iterable of ints in
    ``0..2**32 - 1`` is copied into one.
    """
    if record_size is not None:
        return hash_packed(data, record_size=record_size, seed=hash_seed)
    if isinstance(data, array):
        if data.typecode == "I":
            return data
        raise InvalidArgument(
            f"data is array({data.typecode!r}); hashes must be array('I') "
            "(or pass record_size= for packed keys)"
        )
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        raise ArgumentTypeError(
            f"data is {type(data).__name__}; pass record_size= to look up packed keys, "
            "or an array('I') of hashes"
        )
    if not isinstance(data, Iterable):
        raise ArgumentTypeError(
            f"data is {type(data).__name__}; it must be an array('I') or an iterable of hashes"
        )
    values = list(data)
    for position, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentTypeError(
                f"data[{position}] is {type(value).__name__}; hashes must be int"
            )
        if not 0 <= value <= 0xFFFFFFFF:
            raise InvalidArgument(f"data[{position}] is {value}; hashes must be in 0..4294967295")
    return array("I", values)
