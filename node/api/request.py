"""Reading what a client sends: JSON bodies and numeric query parameters.

Every route reads its input through here, so every route refuses the same bad
input the same way: a 400 (413 for size) with a code and a sentence naming
what is wrong, never a 500.  JSON is bounded in size and nesting depth before
it is parsed, because Python's parser recurses once per level and a body of
nested brackets would otherwise exhaust the stack.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from node.errors import ApiError

MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in ``body``, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def parse_json(body: bytes) -> Any:
    """``body`` parsed as UTF-8 JSON of bounded size and depth; ``ApiError`` naming what is wrong."""
    if not body:
        raise ApiError(400, "empty-body", "the request body is empty; send a JSON document")
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "too-large", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad-json", f"the request body is not UTF-8 (byte {exc.start})") from None
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, "bad-json", f"the request body nests {depth} levels deep; at most {MAX_JSON_DEPTH}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "bad-json", f"the request body is not valid JSON: {exc}") from None


async def json_body(request: web.Request) -> Any:
    """The request's body as parsed JSON, any shape: each handler checks the members it reads."""
    return parse_json(await request.read())


def number_query(request: web.Request, name: str, default: float, low: float, high: float, code: str) -> float:
    """Query parameter ``name`` as a finite number in [low, high] (``default`` when absent).

    NaN and infinities are refused by name: ``float`` accepts them and every
    comparison with NaN is false, so a clamp would let them through.
    """
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, code, f"{name} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ApiError(400, code, f"{name} must be a number between {low:g} and {high:g}, got {text[:40]!r}")
    return value


def int_query(request: web.Request, name: str, low: int, high: int, code: str) -> int | None:
    """Query parameter ``name`` as a whole number in [low, high], or None when absent."""
    text = request.query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not low <= int(text) <= high:
        raise ApiError(400, code, f"{name} must be an integer in [{low}, {high}], got {text[:40]!r}")
    return int(text)
