"""The HTTP API every node serves: JSON for clients and operators, SSE, Prometheus.

Bytes travel as hex.  Every error is a 4xx (or 503 for back-pressure) with
``{"error": code, "message": text}``; a handler never lets an exception become
a 500 for bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from node import explorer
from node.api.admin import AdminGuard, AdminRoutes
from node.api.batch import BatchLimits, decode_batch, read_body
from node.api.openapi import openapi_json
from node.api.request import MAX_BODY_BYTES, int_query, number_query, parse_json
from node.api.sse import event_stream
from node.errors import ApiError

if TYPE_CHECKING:
    from node.runtime import Node

MAX_WAIT_SECONDS = 120
BLOCKS_PAGE = 20  # GET /blocks without ?limit
BLOCKS_PAGE_MAX = 100
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "too-large", f"request body over {MAX_BODY_BYTES} bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(exc.status, exc.reason.lower().replace(" ", "-"), exc.text or exc.reason)
        raise


def _hex_param(request: web.Request, name: str, size: int | None = None) -> bytes:
    text = request.match_info[name]
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise ApiError(400, "bad-hex", f"{name} must be hex, got {text[:80]!r}") from None
    if size is not None and len(value) != size:
        raise ApiError(400, "bad-length", f"{name} must be {size} bytes ({2 * size} hex digits)")
    return value


def _int_param(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not text.isdigit() or len(text) > 19:
        raise ApiError(400, "bad-integer", f"{name} must be a non-negative integer, got {text[:40]!r}")
    return int(text)


async def _tx_body(request: web.Request) -> bytes:
    """A transaction as raw bytes (application/octet-stream) or JSON {"tx": hex}."""
    body = await request.read()
    if not body:
        raise ApiError(400, "empty-body", "send the transaction's canonical bytes, or JSON {\"tx\": \"<hex>\"}")
    if request.content_type == "application/json":
        doc = parse_json(body)
        tx = doc.get("tx") if isinstance(doc, dict) else None
        expected = "expected JSON {\"tx\": \"<hex of canonical bytes>\"}"
        if not isinstance(tx, str):
            raise ApiError(400, "bad-json", expected)
        try:
            return bytes.fromhex(tx)
        except ValueError:
            raise ApiError(400, "bad-json", f"{expected}; tx is not hex") from None
    return body


def _wait_query(request: web.Request) -> tuple[bool, float]:
    """``wait=commit`` (or absent) and its ``timeout`` in seconds."""
    wait = request.query.get("wait", "")
    if wait not in ("", "commit"):
        raise ApiError(400, "bad-wait", "wait must be 'commit' or absent")
    return wait == "commit", number_query(request, "timeout", 30, 0.1, MAX_WAIT_SECONDS, "bad-timeout")


class Api:
    def __init__(self, node: Node) -> None:
        self.node = node

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors_middleware])
        app.on_shutdown.append(self._end_streams)
        app.add_routes(
            [
                web.get("/status", self.status),
                web.get("/health", self.health),
                web.get("/blocks", self.blocks),
                web.get("/blocks/{height}", self.block),
                web.post("/txs", self.submit),
                web.post("/txs/batch", self.submit_batch),
                web.get("/txs/{id}", self.tx),
                web.get("/proofs/{id}", self.proof),
                web.get("/events", self.events),
                web.get("/evidence", self.evidence),
                web.get("/network", self.network),
                web.get("/validators", self.validators),
                web.get("/genesis", self.genesis),
                web.get("/metrics", self.metrics),
                web.get("/openapi.json", openapi_json),
            ]
        )
        app.add_routes(self.node.app.routes())
        app.add_routes(self._admin().routes())
        app.add_routes(explorer.routes())
        return app

    def _admin(self) -> AdminRoutes:
        node = self.node
        guard = AdminGuard(node.cfg.operator_key, node.chain_id)
        members = [*node.genesis.validators, *node.genesis.observers]
        return AdminRoutes(guard, node.transport.faults, [m.name for m in members if m.name != node.cfg.name], node)

    async def _end_streams(self, app: web.Application) -> None:
        """Wake every /events stream so shutdown does not wait for its keep-alive."""
        for queue in self.node.subscribers():
            queue.put_nowait(None)
        self.node.app.on_shutdown()

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.status())

    async def health(self, request: web.Request) -> web.Response:
        ok, detail = self.node.health()
        return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)

    async def blocks(self, request: web.Request) -> web.Response:
        limit = int_query(request, "limit", 1, BLOCKS_PAGE_MAX, "bad-limit")
        before = int_query(request, "before", 1, 2**63 - 1, "bad-integer")
        return web.json_response(self.node.block_summaries(before, BLOCKS_PAGE if limit is None else limit))

    async def genesis(self, request: web.Request) -> web.Response:
        """The genesis file this node runs, as it was read (its canonical hash names the chain)."""
        genesis = self.node.genesis
        return web.json_response(genesis.raw, headers={"X-Medchain-Genesis-Hash": genesis.hash.hex()})

    async def network(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.network_json())

    async def validators(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.validators_json())

    async def block(self, request: web.Request) -> web.Response:
        height = _int_param(request, "height")
        found = self.node.block_json(height)
        if found is None:
            raise ApiError(404, "not-found", f"no committed block at height {height}")
        return web.json_response(found)

    async def submit(self, request: web.Request) -> web.Response:
        data = await _tx_body(request)
        wait, timeout = _wait_query(request)
        result = await self.node.submit(data, wait_commit=wait, timeout=timeout)
        return web.json_response(result, status=200 if wait else 202)

    async def submit_batch(self, request: web.Request) -> web.Response:
        """Many transactions, each with its own result (``node.api.batch``): 200 or 202 whatever each one's fate."""
        settings = self.node.cfg.api
        limits = BatchLimits(settings.batch_max_txs, settings.batch_max_bytes)
        wait, timeout = _wait_query(request)
        txs = decode_batch(await read_body(request, limits.max_bytes), request.content_type, limits)
        reply = await self.node.submit_batch(txs, wait_commit=wait, timeout=timeout)
        full = any(r.get("error") == "mempool-full" for r in reply["results"])
        return web.json_response(reply, status=200 if wait else 202, headers={"Retry-After": "1"} if full else None)

    async def tx(self, request: web.Request) -> web.Response:
        tid = _hex_param(request, "id", 32)
        return web.json_response(self.node.tx_status(tid))

    async def proof(self, request: web.Request) -> web.Response:
        tid = _hex_param(request, "id", 32)
        proof = self.node.proof_json(tid)
        if proof is None:
            raise ApiError(404, "not-found", f"transaction {tid.hex()} is not committed")
        return web.json_response(proof)

    async def evidence(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.evidence_json())

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.node.metrics_text()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def events(self, request: web.Request) -> web.StreamResponse:
        return await event_stream(request, "commits", "commit", "height", self.node.subscribe, self.node.unsubscribe)
