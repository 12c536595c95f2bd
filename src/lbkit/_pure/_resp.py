"""The framing of a Redis command in the Redis serialization protocol (RESP), for
:class:`~lbkit.waitingroom.redis_store.RedisStore`: the reference, mirrored by
``lbkit._fast._resp``.

A command is an array of bulk strings: ``*<count>\\r\\n``, then for each argument
``$<length in bytes>\\r\\n<bytes>\\r\\n`` (the protocol's specification, "Sending commands to a
Redis server"). The store keeps the start of each of its calls framed once (``EVALSHA``, the
script's SHA1, the number of keys, the key prefix) and frames the call's values after it here:
one call per decision, where framing value by value in Python cost about as much as the rest
of the store's Python.
"""

from __future__ import annotations

from typing import cast

__all__ = ["frame_command"]


def frame_command(head: bytes, head_count: int, values: tuple[object, ...]) -> bytes:
    """The command ``head`` (``head_count`` arguments already framed) followed by ``values``,
    each as a bulk string: ``None`` as the empty string, a ``str`` as UTF-8, an ``int`` in
    decimal, a ``float`` as ``repr`` writes it (the shortest text that reads back the same).

    Raises:
        TypeError: a value of another type (``bool`` and other subclasses included: the
            caller passes plain values), or ``head`` not bytes, ``head_count`` not an int,
            ``values`` not a tuple.
        ValueError: ``head_count`` < 0.
        UnicodeEncodeError: a ``str`` that is not valid Unicode (a lone surrogate).
    """
    if head.__class__ is not bytes:
        raise TypeError(f"head is {type(head).__name__}; it must be bytes")
    if values.__class__ is not tuple:
        raise TypeError(f"values is {type(values).__name__}; it must be a tuple")
    if head_count.__class__ is not int:
        raise TypeError(f"head_count is {type(head_count).__name__}; it must be an int")
    if head_count < 0:
        raise ValueError(f"head_count is {head_count}; it must be >= 0")
    parts = [b"*%d\r\n" % (head_count + len(values)), head]
    for index in range(len(values)):
        value = values[index]
        kind = value.__class__
        if value is None:
            data = b""
        elif kind is str:
            data = cast(str, value).encode()
        elif kind is int:
            data = str(value).encode()
        elif kind is float:
            data = repr(value).encode()
        else:
            raise TypeError(
                f"values[{index}] is {type(value).__name__}; it must be None, str, int or float"
            )
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)
