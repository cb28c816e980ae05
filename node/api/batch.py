"""The body of ``POST /txs/batch``: many signed transactions in one request, read and bounded before admission.

Two encodings, chosen by ``Content-Type``:

* ``application/x-medchain-txs`` (any type but JSON is read so, as ``POST /txs``
  reads raw bytes): a msgpack array of bin, each one transaction's canonical
  bytes, itself canonical msgpack (``primitives.codec.unpack_strict``).  The
  compact form, for programs: no hex doubling, one C-speed decode, and the
  count sits in the array's header, so an oversized batch is refused before
  anything is decoded.
* ``application/json``: ``{"txs": ["<hex>", ...]}``, for people and curl.  It
  goes through the API's one JSON parser (``node.api.request.parse_json``), so
  it keeps that parser's 256 KiB bound: larger batches go as msgpack.

Limits (``[api]`` in config.toml, ``node.config.ApiSettings``): the body as
sent is at most ``batch_max_bytes`` and the batch holds at most
``batch_max_txs`` transactions.  Over either, the whole request is a 413
``too-large`` naming the limit, and nothing is admitted.  An envelope that does
not decode is a 400; a transaction inside it that does not is only that
transaction's result (``Node.submit_batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from node.api.request import MAX_BODY_BYTES, parse_json
from node.errors import ApiError
from primitives.codec import Bytes, ListOf, pack, unpack_strict
from primitives.errors import DecodeError

MEDIA_TYPE = "application/x-medchain-txs"
EXPECTED = f'a msgpack array of transactions ({MEDIA_TYPE}) or JSON {{"txs": ["<hex>", ...]}}'
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_txs: int
    max_bytes: int

    @property
    def max_json_bytes(self) -> int:
        return min(self.max_bytes, MAX_BODY_BYTES)


def encode_batch(txs: Sequence[bytes]) -> bytes:
    """The ``application/x-medchain-txs`` body carrying ``txs``."""
    return pack(list(txs))


def array_length(body: bytes) -> int | None:
    """The item count in the header of a msgpack array, or None when ``body`` does not start with one."""
    first = body[0] if body else -1
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(body) >= 3:
        return int.from_bytes(body[1:3], "big")
    if first == 0xDD and len(body) >= 5:
        return int.from_bytes(body[1:5], "big")
    return None


def too_many(count: int, limits: BatchLimits) -> ApiError:
    return ApiError(413, "too-large", f"the batch holds {count} transactions; at most {limits.max_txs} per batch "
                                      "([api] batch_max_txs): split it")


def too_big(size: int | None, limit: int, what: str) -> ApiError:
    held = "is over" if size is None else f"is {size} bytes; over"
    return ApiError(413, "too-large", f"the batch body {held} the limit of {limit} bytes ({what}): split it")


def decode_batch(body: bytes, content_type: str, limits: BatchLimits) -> list[bytes]:
    """The transactions ``body`` carries, in order; ``ApiError`` 400 or 413 naming what is wrong."""
    if not body:
        raise ApiError(400, "empty-body", f"the request body is empty; send {EXPECTED}")
    if len(body) > limits.max_bytes:
        raise too_big(len(body), limits.max_bytes, "[api] batch_max_bytes")
    txs = _from_json(body, limits) if content_type == "application/json" else _from_msgpack(body, limits)
    if not txs:
        raise ApiError(400, "empty-batch", "the batch holds no transactions")
    return txs


def _from_msgpack(body: bytes, limits: BatchLimits) -> list[bytes]:
    count = array_length(body)
    if count is None:
        raise ApiError(400, "bad-batch", f"the body is not a msgpack array; send {EXPECTED}")
    if count > limits.max_txs:
        raise too_many(count, limits)
    try:
        shape = ListOf(Bytes(limits.max_bytes), limits.max_txs)
        items = shape.from_wire(unpack_strict(body, limits.max_bytes), "batch")
    except DecodeError as exc:
        raise ApiError(400, "bad-batch", f"the body is not a canonical msgpack array of bin: {exc}") from None
    return list(items)


def _from_json(body: bytes, limits: BatchLimits) -> list[bytes]:
    if len(body) > limits.max_json_bytes:
        raise too_big(len(body), limits.max_json_bytes, f"a JSON batch; send larger ones as {MEDIA_TYPE}")
    doc = parse_json(body)
    txs = doc.get("txs") if isinstance(doc, dict) else None
    if not isinstance(txs, list):
        raise ApiError(400, "bad-json", 'expected JSON {"txs": ["<hex of canonical bytes>", ...]}')
    if len(txs) > limits.max_txs:
        raise too_many(len(txs), limits)
    out: list[bytes] = []
    for i, item in enumerate(txs):
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            out.append(bytes.fromhex(item))
        except ValueError:
            raise ApiError(400, "bad-json", f"txs[{i}] is not a hex string") from None
    return out


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with a 413 as soon as it passes ``limit`` bytes (the app's own bound is lower)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_big(request.content_length, limit, "[api] batch_max_bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise too_big(None, limit, "[api] batch_max_bytes")
    return bytes(body)
