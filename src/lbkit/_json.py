"""Shape checks for JSON documents that lbkit reads (the CLI's input files, steering
configurations): every key known, every required key present, every value of its kind, and
errors that name the place in the document (``$.pools[2].weight``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lbkit.errors import ConfigError


def json_kind(value: object) -> str:
    """The JSON kind of a parsed value, as error messages name it (``"a number"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def fits(value: object, kind: str) -> bool:
    """Whether ``value`` is of ``kind`` (numbers must be finite; "an integer" is a number too)."""
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "a number":
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    return json_kind(value) == kind


def check_object(
    value: object,
    path: str,
    keys: dict[str, str],
    required: Sequence[str],
    *,
    nullable: Sequence[str] = (),
    error: type[Exception] = ConfigError,
) -> dict[str, Any]:
    """Check one JSON object against its keys and their kinds; ``path`` names it in errors,
    which are raised as ``error``."""
    if not isinstance(value, dict):
        raise error(f"{path} is {json_kind(value)}; it must be an object")
    for key in value:
        if key not in keys:
            raise error(f"{path} has the unknown key {key!r}; the keys are {', '.join(keys)}")
    for key in required:
        if key not in value:
            raise error(f"{path} lacks the key {key!r}")
    for key, item in value.items():
        if item is None and key in nullable:
            continue
        if keys[key] == "any":
            continue
        if not fits(item, keys[key]):
            if json_kind(item) == "a number" and keys[key] == "a number":
                raise error(f"{path}.{key} is {item!r}; it must be a finite number")
            raise error(f"{path}.{key} is {json_kind(item)}; it must be {keys[key]}")
    return value
