"""The exceptions lbkit raises.

Every error lbkit raises on purpose derives from :class:`LbkitError`, and also from the builtin
that fits (``ValueError``, ``TypeError``, ``ImportError``), so callers can catch either the lbkit
type or the usual builtin. Messages name the argument, the value and the rule that was broken,
for example ``"sport is 70000; ports must be integers in 0..65535"``.

>>> from lbkit.errors import InvalidArgument, LbkitError
>>> issubclass(InvalidArgument, ValueError) and issubclass(InvalidArgument, LbkitError)
True

The message helpers at the bottom of this module are shared by the pure-Python and the Cython
kernels, so both paths raise the same type with the same words.
"""

from __future__ import annotations

__all__ = [
    "ArgumentTypeError",
    "ConfigError",
    "CorruptBlob",
    "ExtensionUnavailable",
    "InvalidArgument",
    "InvalidCookie",
    "InvalidKey",
    "LbkitError",
    "NoHealthyEndpoint",
    "StoreUnavailable",
    "UnknownServer",
]


class LbkitError(Exception):
    """Base class of every exception lbkit raises on purpose."""


class InvalidArgument(LbkitError, ValueError):
    """An argument's value breaks a documented rule (a seed out of range, a size that is not a
    power of two, a buffer that does not hold whole records)."""


class ConfigError(InvalidArgument):
    """A configuration value breaks a documented rule: weights, table sizes, environment
    settings. Raised when an object is built or reconfigured, never mid-request."""


class InvalidKey(InvalidArgument):
    """A key or flow cannot be hashed: a malformed address, a port out of range, mixed address
    families, a ``str`` that has no UTF-8 encoding. A packet pipeline can catch this type to drop
    malformed input without hiding configuration bugs."""


class CorruptBlob(InvalidArgument):
    """Serialised bytes (a forwarding table blob) are truncated, oversized, altered, of an
    unknown version, or not lbkit's at all. Nothing is read from such bytes."""


class UnknownServer(LbkitError, LookupError):
    """A server id that the table or builder does not know."""


class InvalidCookie(InvalidArgument):
    """A waiting-room cookie that cannot be opened. ``reason`` says why, for logs and metrics:
    ``"malformed"``, ``"unknown_key"``, ``"tampered"``, ``"expired"``, ``"wrong_room"`` or
    ``"too_large"``. A proxy treats such a user as new; it never learns what the cookie held."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NoHealthyEndpoint(LbkitError, LookupError):
    """Nothing may serve a request: every pool and endpoint is down, drained or weighted 0, and
    no fail-open guard or fallback pool lets one serve anyway. ``reasons`` holds the steps that
    led there, for logs."""

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class StoreUnavailable(LbkitError, ConnectionError):
    """A waiting room's shared store (Redis) could not be reached or did not answer in time;
    the call counted nothing. A room applies its ``store_failure`` policy."""


class ArgumentTypeError(LbkitError, TypeError):
    """An argument has the wrong type."""


class ExtensionUnavailable(LbkitError, ImportError):
    """The compiled kernels were required (``LBKIT_REQUIRE_EXTENSIONS=1``) but cannot be
    imported."""


def _key_name(position: int) -> str:
    # Kernels pass -1 for a single key and the index for a key inside a batch.
    return "key" if position < 0 else f"keys[{position}]"


def key_type_error(value: object, position: int) -> ArgumentTypeError:
    """The error for a hash key that is neither ``bytes`` nor ``str``."""
    hint = ""
    if isinstance(value, (bytearray, memoryview)):
        hint = " (convert it with bytes(), or hash fixed-width records with hash_packed)"
    return ArgumentTypeError(
        f"{_key_name(position)} is {type(value).__name__}; keys must be bytes or str{hint}"
    )


def unencodable_key_error(error: UnicodeEncodeError, position: int) -> InvalidKey:
    """The error for a ``str`` key that has no UTF-8 encoding (it holds a lone surrogate)."""
    return InvalidKey(
        f"{_key_name(position)} has the unencodable character {error.object[error.start]!r} "
        f"at index {error.start}; str keys are hashed as their UTF-8 encoding"
    )
