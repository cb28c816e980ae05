"""Check a JSON document read off the wire against the ``TypedDict`` that types it in the code."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union


def assert_matches(doc: Any, schema: Any, where: str = "document") -> None:
    """``doc`` has every required key of ``schema``, no other key, and each value of its declared type."""
    assert isinstance(doc, dict), f"{where}: expected a JSON object, got {doc!r}"
    hints = typing.get_type_hints(schema)
    missing = schema.__required_keys__ - set(doc)
    unknown = set(doc) - set(hints)
    assert not missing, f"{where}: missing {sorted(missing)}"
    assert not unknown, f"{where}: keys the type does not declare: {sorted(unknown)}"
    for key, value in doc.items():
        assert_value(value, hints[key], f"{where}.{key}")


def assert_value(value: Any, hint: Any, where: str) -> None:
    origin = typing.get_origin(hint)
    if hint is Any:
        return
    if typing.is_typeddict(hint):
        assert_matches(value, hint, where)
    elif origin in (Union, types.UnionType):
        failures = []
        for option in typing.get_args(hint):
            try:
                assert_value(value, option, where)
                return
            except AssertionError as exc:
                failures.append(str(exc))
        raise AssertionError(f"{where}: {value!r} matches none of {hint}: {failures}")
    elif origin is Literal:
        assert value in typing.get_args(hint), f"{where}: {value!r} is not one of {typing.get_args(hint)}"
    elif origin is list:
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        (item,) = typing.get_args(hint)
        for i, element in enumerate(value):
            assert_value(element, item, f"{where}[{i}]")
    elif origin is dict or hint is dict:
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
    elif hint is type(None):
        assert value is None, f"{where}: expected null, got {value!r}"
    elif hint is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: expected a number"
    elif hint in (int, str, bool):
        ok = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        assert ok, f"{where}: expected {hint.__name__}, got {value!r}"
    else:
        raise AssertionError(f"{where}: no check for the declared type {hint!r}")
