"""The API's one parser for JSON bodies: bounds checked before parsing, errors that name the problem."""

from __future__ import annotations

import pytest

from node.api.request import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth, parse_json
from node.errors import ApiError


def test_depth_counts_arrays_and_objects_but_not_brackets_inside_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": []}]}') == 4
    assert json_depth(b'["[[[[", "\\\\", "\\"[[["]') == 1
    assert json_depth(b"12") == 0


def test_a_body_at_the_depth_bound_parses_and_one_level_more_is_refused() -> None:
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(ApiError) as refused:
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert (refused.value.status, refused.value.code) == (400, "bad-json")
    assert f"at most {MAX_JSON_DEPTH}" in refused.value.message


def test_a_hundred_thousand_open_brackets_are_refused_without_parsing() -> None:
    with pytest.raises(ApiError) as refused:
        parse_json(b"[" * 100_000)
    assert refused.value.code == "bad-json" and "100000 levels" in refused.value.message


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"", 400, "empty"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b"{nope", 400, "not valid JSON"),
        (b"1" * (MAX_BODY_BYTES + 1), 413, "over"),
    ],
)
def test_bad_bodies_get_one_line_naming_the_problem(body: bytes, status: int, says: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_json(body)
    assert refused.value.status == status and says in refused.value.message
    assert "\n" not in refused.value.message
