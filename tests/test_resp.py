"""The resp kernel: a Redis command framed as the protocol specifies, the same bytes from the
compiled and the pure kernel, and every other value type refused by name."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit import _kernels

PING = b"$4\r\nPING\r\n"
EVALSHA = b"$7\r\nEVALSHA\r\n"


def test_a_command_of_every_value_kind(impl: Any) -> None:
    """None is the empty bulk string, str its UTF-8, int decimal (beyond 64 bits too), float
    its repr; the count covers the framed head."""
    framed = impl.resp.frame_command(
        EVALSHA, 1, (None, "", "zürich", -5, 2**70, 1_700_000_040.0001, 1e300, 3.0)
    )
    assert framed == (
        b"*9\r\n$7\r\nEVALSHA\r\n"
        b"$0\r\n\r\n"
        b"$0\r\n\r\n"
        b"$7\r\nz\xc3\xbcrich\r\n"
        b"$2\r\n-5\r\n"
        b"$22\r\n1180591620717411303424\r\n"
        b"$15\r\n1700000040.0001\r\n"
        b"$6\r\n1e+300\r\n"
        b"$3\r\n3.0\r\n"
    )
    assert impl.resp.frame_command(PING, 1, ()) == b"*1\r\n" + PING
    assert impl.resp.frame_command(b"", 0, ()) == b"*0\r\n"


values = st.lists(
    st.one_of(
        st.none(),
        st.text(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=20,
).map(tuple)


@given(values)
def test_the_kernels_agree(pure_kernels: Any, fast_kernels: Any, framed: tuple[Any, ...]) -> None:
    """The compiled kernel writes the pure one's bytes for any values."""
    pure = pure_kernels["resp"].frame_command(EVALSHA, 1, framed)
    assert fast_kernels["resp"].frame_command(EVALSHA, 1, framed) == pure


@given(values)
def test_redis_py_frames_the_same(impl: Any, framed: tuple[Any, ...]) -> None:
    """redis-py's own packing of the same command (None sent as "") gives the same bytes."""
    pytest.importorskip("redis", reason="redis-py is not installed (the redis extra)")
    from redis.connection import Connection

    connection: Any = Connection  # redis-py is untyped
    sent = ("" if value is None else value for value in framed)
    expected = b"".join(connection().pack_command("EVALSHA", *sent))
    assert impl.resp.frame_command(EVALSHA, 1, framed) == expected


@pytest.mark.parametrize(
    ("value", "kind"), [(True, "bool"), (b"x", "bytes"), ([1], "list"), (1j, "complex")]
)
def test_other_values_are_refused_by_position(impl: Any, value: object, kind: str) -> None:
    """A value of another type (a bool included: callers pass plain ints) is a TypeError that
    names its position and type."""
    with pytest.raises(
        TypeError, match=rf"^values\[1\] is {kind}; it must be None, str, int or float$"
    ):
        impl.resp.frame_command(PING, 1, ("ok", value))


def test_bad_frames_are_refused(impl: Any) -> None:
    """The head must be bytes, the values a tuple, the head count an int >= 0; a lone
    surrogate cannot be sent."""
    with pytest.raises(TypeError, match=r"^head is str; it must be bytes$"):
        impl.resp.frame_command("PING", 1, ())
    with pytest.raises(TypeError, match=r"^values is list; it must be a tuple$"):
        impl.resp.frame_command(PING, 1, [])
    for count, kind in ((1.0, "float"), (True, "bool")):
        with pytest.raises(TypeError, match=rf"^head_count is {kind}; it must be an int$"):
            impl.resp.frame_command(PING, count, ())
    with pytest.raises(ValueError, match=r"^head_count is -1; it must be >= 0$"):
        impl.resp.frame_command(PING, -1, ())
    with pytest.raises(UnicodeEncodeError):
        impl.resp.frame_command(PING, 1, ("\udc80",))
    assert _kernels.resp.frame_command(PING, 1, ()) == b"*1\r\n" + PING
