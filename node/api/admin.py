"""The admin interface: ``POST /admin/...`` requests that only the network's operator can make.

A request carries three headers: the time it was signed (ms since the epoch),
a fresh random nonce, and an Ed25519 signature by the operator's key (named in
each node's config.toml as ``operator_key``) over (method, path, body, time,
nonce) under the ``medchain/v1/admin`` domain and the chain id.  A node refuses,
with 403, a request that is unsigned, signed by another key, outside the time
window, or a replay of a nonce it has seen within that window.  Nonces older
than the window are forgotten: the time check already refuses them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from consensus.byzantine import BEHAVIOURS
from node.api.request import parse_json
from node.errors import ApiError
from node.p2p.transport import LinkFaults
from primitives.codec import pack
from primitives.signing import SigningKey, VerifyKey

ADMIN_DOMAIN = b"medchain/v1/admin"
WINDOW_MS = 30_000
TIME_HEADER = "X-Medchain-Admin-Time"
NONCE_HEADER = "X-Medchain-Admin-Nonce"
SIGNATURE_HEADER = "X-Medchain-Admin-Signature"
NONCE_SIZE = 16
LINK_SETTINGS: dict[str, type] = {
    "cut": bool, "loss": float, "delay_ms": int, "jitter_ms": int, "duplicate": float, "reorder": float,
}
MAX_SKEW_MS = 7 * 24 * 3600 * 1000
MAX_SEED = 2**63 - 1


def admin_payload(method: str, path: str, body: bytes, time_ms: int, nonce: bytes) -> bytes:
    return pack([method.upper(), path, body, time_ms, nonce])


def sign_request(key: SigningKey, chain_id: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """The headers that make ``method path body`` an admin request signed by ``key``."""
    time_ms = int(time.time() * 1000)
    nonce = os.urandom(NONCE_SIZE)
    signature = key.sign(ADMIN_DOMAIN, chain_id, admin_payload(method, path, body, time_ms, nonce))
    return {TIME_HEADER: str(time_ms), NONCE_HEADER: nonce.hex(), SIGNATURE_HEADER: signature.hex()}


def _refuse(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


class AdminGuard:
    """Checks admin requests against the operator key; remembers nonces seen within the window."""

    def __init__(self, operator_key: str, chain_id: str, clock: Callable[[], float] = time.time) -> None:
        self.key = VerifyKey(bytes.fromhex(operator_key)) if operator_key else None
        self.chain_id = chain_id
        self.clock = clock
        self._seen: dict[bytes, int] = {}

    def check(self, method: str, path: str, body: bytes, headers: Any) -> None:
        if self.key is None:
            raise _refuse("this node has no operator_key in its config.toml: its admin interface is closed")
        fields = [headers.get(name) for name in (TIME_HEADER, NONCE_HEADER, SIGNATURE_HEADER)]
        if any(value is None for value in fields):
            raise _refuse(f"admin requests must be signed: send {TIME_HEADER}, {NONCE_HEADER}, {SIGNATURE_HEADER}")
        try:
            time_ms, nonce, signature = int(fields[0]), bytes.fromhex(fields[1]), bytes.fromhex(fields[2])
        except ValueError:
            raise _refuse("admin headers malformed: time is an integer (ms), nonce and signature are hex") from None
        now_ms = int(self.clock() * 1000)
        if abs(now_ms - time_ms) > WINDOW_MS:
            raise _refuse(f"admin request is stale: signed {abs(now_ms - time_ms)} ms from now (window {WINDOW_MS})")
        if len(nonce) != NONCE_SIZE:
            raise _refuse(f"admin nonce must be {NONCE_SIZE} bytes")
        payload = admin_payload(method, path, body, time_ms, nonce)
        if not self.key.verify(ADMIN_DOMAIN, self.chain_id, payload, signature):
            raise _refuse("admin request is not signed by this network's operator key")
        self._forget_old(now_ms)
        if nonce in self._seen:
            raise _refuse("admin request replayed: its nonce was already used")
        self._seen[nonce] = time_ms

    def _forget_old(self, now_ms: int) -> None:
        for nonce in [n for n, t in self._seen.items() if abs(now_ms - t) > WINDOW_MS]:
            del self._seen[nonce]


def _link_settings(doc: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "peer":
            continue
        kind = LINK_SETTINGS.get(key)
        if kind is None:
            raise ApiError(400, "bad-setting", f"unknown link setting {key!r}; known: {', '.join(LINK_SETTINGS)}")
        ok = isinstance(value, bool) if kind is bool else isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (kind is not bool and value < 0) or (kind is float and value > 1):
            raise ApiError(400, "bad-setting", f"{key} must be {_setting_text(kind)}, got {value!r}")
        settings[key] = kind(value)
    return settings


def _setting_text(kind: type) -> str:
    return {bool: "true or false", int: "a non-negative integer", float: "a probability from 0 to 1"}[kind]


class FaultControl(Protocol):
    """What the node offers fault experiments beyond its links (``node.runtime.Node``)."""

    clock_skew_ms: int

    def set_byzantine(self, behaviour: str | None, seed: int | None = None) -> None: ...

    def set_clock_skew(self, skew_ms: int) -> None: ...

    def reseed_faults(self, seed: int) -> None: ...

    @property
    def byzantine_behaviour(self) -> str | None: ...


def _integer(doc: dict[str, Any], key: str, bound: int) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > bound:
        raise ApiError(400, "bad-setting", f"{key} must be an integer from {-bound} to {bound}, got {value!r}")
    return value


class AdminRoutes:
    """Fault experiments on this node, every answer the node's whole fault state.

    ``/admin/links`` (set a peer's link faults), ``/admin/links/clear`` (clear
    one peer's, or all), ``/admin/byzantine`` (a behaviour on, or ``none``),
    ``/admin/clock`` (skew of the replica's wall clock), ``/admin/seed``
    (reseed the link faults and the adversary).
    """

    def __init__(self, guard: AdminGuard, faults: LinkFaults, peers: list[str], node: FaultControl) -> None:
        self.guard = guard
        self.faults = faults
        self.peers = peers
        self.node = node

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/admin/links", self.set_link),
            web.post("/admin/links/clear", self.clear_links),
            web.post("/admin/byzantine", self.set_byzantine),
            web.post("/admin/clock", self.set_clock),
            web.post("/admin/seed", self.set_seed),
        ]

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body = await request.read()
        self.guard.check(request.method, request.path, body, request.headers)
        doc = parse_json(body) if body else {}
        if not isinstance(doc, dict):
            raise ApiError(400, "bad-json", "expected a JSON object")
        return doc

    def _peer(self, doc: dict[str, Any], required: bool) -> str | None:
        peer = doc.get("peer")
        if peer is None and not required:
            return None
        if peer not in self.peers:
            raise ApiError(400, "bad-peer", f"peer must be one of {', '.join(self.peers)}, got {peer!r}")
        return str(peer)

    def _rules(self) -> web.Response:
        rules = {peer: {k: getattr(rule, k) for k in LINK_SETTINGS} for peer, rule in self.faults.rules().items()}
        return web.json_response(
            {"links": rules, "byzantine": self.node.byzantine_behaviour, "clock_skew_ms": self.node.clock_skew_ms}
        )

    async def set_link(self, request: web.Request) -> web.Response:
        doc = await self._body(request)
        peer = self._peer(doc, required=True)
        assert peer is not None
        self.faults.set(peer, **_link_settings(doc))
        return self._rules()

    async def clear_links(self, request: web.Request) -> web.Response:
        doc = await self._body(request)
        self.faults.clear(self._peer(doc, required=False))
        return self._rules()

    async def set_byzantine(self, request: web.Request) -> web.Response:
        doc = await self._body(request)
        behaviour = doc.get("behaviour")
        if behaviour != "none" and behaviour not in BEHAVIOURS:
            raise ApiError(400, "bad-behaviour", f"behaviour must be one of {', '.join(BEHAVIOURS)} or none, "
                           f"got {behaviour!r}")
        seed = None if doc.get("seed") is None else _integer(doc, "seed", MAX_SEED)
        self.node.set_byzantine(None if behaviour == "none" else behaviour, seed)
        return self._rules()

    async def set_clock(self, request: web.Request) -> web.Response:
        doc = await self._body(request)
        self.node.set_clock_skew(_integer(doc, "skew_ms", MAX_SKEW_MS))
        return self._rules()

    async def set_seed(self, request: web.Request) -> web.Response:
        doc = await self._body(request)
        self.node.reseed_faults(_integer(doc, "seed", MAX_SEED))
        return self._rules()
