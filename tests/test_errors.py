"""lbkit.errors: one hierarchy, each type also the builtin that fits."""

from __future__ import annotations

import pytest

import lbkit.errors as errors


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.InvalidArgument, ValueError),
        (errors.ConfigError, ValueError),
        (errors.InvalidKey, ValueError),
        (errors.CorruptBlob, ValueError),
        (errors.UnknownServer, LookupError),
        (errors.ArgumentTypeError, TypeError),
        (errors.ExtensionUnavailable, ImportError),
        (errors.StoreUnavailable, ConnectionError),
    ],
)
def test_every_error_is_an_lbkit_error_and_a_builtin(
    error: type[Exception], builtin: type[Exception]
) -> None:
    """Callers can catch either LbkitError or the usual builtin."""
    assert issubclass(error, errors.LbkitError)
    assert issubclass(error, builtin)


def test_config_and_key_errors_are_invalid_arguments() -> None:
    """ConfigError and InvalidKey narrow InvalidArgument, so one except clause covers both."""
    assert issubclass(errors.ConfigError, errors.InvalidArgument)
    assert issubclass(errors.InvalidKey, errors.InvalidArgument)
    assert not issubclass(errors.InvalidKey, errors.ConfigError)


def test_all_lists_exactly_the_exception_types() -> None:
    """__all__ exports every exception class of the module and nothing else."""
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert set(errors.__all__) == classes


def test_key_messages_name_the_position() -> None:
    """The shared message helpers name a single key or a batch element."""
    assert str(errors.key_type_error(1, -1)) == "key is int; keys must be bytes or str"
    assert str(errors.key_type_error(1, 4)) == "keys[4] is int; keys must be bytes or str"
    try:
        "a\ud800".encode("utf-8")
    except UnicodeEncodeError as error:
        message = str(errors.unencodable_key_error(error, 0))
    assert message == (
        "keys[0] has the unencodable character '\\ud800' at index 1; "
        "str keys are hashed as their UTF-8 encoding"
    )
