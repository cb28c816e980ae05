"""HTTP routes of the healthcare ledger (same conventions as the rest of the API).

Actions are signed transactions posted to ``POST /txs``; the routes here are
the ones a node adds around them: filing record content, audited reads, scans,
histories, EPCIS export, alerts (also live, as server-sent events) and the
directory of organisations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from node.api.request import int_query, json_body
from node.api.sse import event_stream
from node.errors import ApiError
from node.healthcare import explorer
from node.healthcare.application import ANCHOR_PREFIX
from node.healthcare.documents import AnchorDocument
from node.healthcare.gs1 import Gs1Error, check_gtin
from primitives.codec import unpack_strict

if TYPE_CHECKING:
    from node.healthcare.service import HealthcareService
    from node.runtime import Node


# Milliseconds since 1970 fit a signed 64-bit integer (as the ledger encodes times).
MAX_TIME_MS = 2**63 - 1
PAGE_MAX = 1000


def _found(doc: object, missing: str, content_type: str = "application/json") -> web.Response:
    """``doc`` as JSON, or a 404 saying what was not found."""
    if doc is None:
        raise ApiError(404, "not-found", missing)
    return web.json_response(doc, content_type=content_type)


def _hex(text: str, name: str, size: int) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise ApiError(400, "bad-hex", f"{name} must be hex, got {text[:80]!r}") from None
    if len(value) != size:
        raise ApiError(400, "bad-length", f"{name} must be {size} bytes ({2 * size} hex digits)")
    return value


def _gtin(request: web.Request) -> str:
    try:
        return check_gtin(request.match_info["gtin"])
    except Gs1Error as exc:
        raise ApiError(422, "invalid-gs1", f"gtin: {exc}") from None


def _page(request: web.Request) -> int:
    limit = int_query(request, "limit", 1, PAGE_MAX, "bad-limit")
    return 100 if limit is None else limit


class HealthcareRoutes:
    def __init__(self, node: Node, service: HealthcareService) -> None:
        self.node = node
        self.healthcare = service

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/anchors/{hash}", self.anchor),
            web.get("/orgs", self.orgs),
            web.get("/members/{key}", self.member),
            web.post("/ehr/records", self.file_record),
            web.get("/ehr/records/{rid}", self.record),
            web.post("/ehr/records/{rid}/read", self.read_record),
            web.get("/ehr/patients/{pid}", self.patient),
            web.get("/ehr/patients/{pid}/consents", self.consents),
            web.get("/ehr/patients/{pid}/accesses", self.patient_accesses),
            web.get("/drugs/verify", self.verify),
            web.post("/drugs/verify", self.verify),
            web.get("/drugs/packs/{gtin}/{serial}", self.pack),
            web.get("/drugs/packs/{gtin}/{serial}/epcis", self.epcis),
            web.get("/drugs/lots/{gtin}/{lot}", self.lot),
            web.get("/drugs/shipments/{sid}", self.shipment),
            web.get("/drugs/holds", self.holds),
            web.get("/alerts", self.alerts),
            web.get("/alerts/stream", self.alert_stream),
            web.get("/txs/{id}/decoded", self.decoded_tx),
            web.get("/search", self.search),
        ]

    async def anchor(self, request: web.Request) -> web.Response:
        doc_hash = _hex(request.match_info["hash"], "hash", 32)
        raw = self.node.store.get(ANCHOR_PREFIX + doc_hash)
        if raw is None:
            raise ApiError(404, "not-found", f"document {doc_hash.hex()} is not anchored")
        height, tid, label, signer = unpack_strict(raw)
        doc: AnchorDocument = {
            "sha256": doc_hash.hex(), "height": height, "tx_id": tid.hex(), "label": label, "signer": signer.hex()
        }
        return web.json_response(doc)

    async def orgs(self, request: web.Request) -> web.Response:
        return web.json_response(self.healthcare.views().organisations())

    async def member(self, request: web.Request) -> web.Response:
        key = _hex(request.match_info["key"], "key", 32)
        return _found(self.healthcare.views().member(key), f"key {key.hex()} is not an enrolled member")

    # ------------------------------------------------------------ EHR

    async def file_record(self, request: web.Request) -> web.Response:
        result = await self.healthcare.file_record(await json_body(request))
        status = 201 if result.get("status") == "committed" else 200
        return web.json_response(result, status=status)

    async def record(self, request: web.Request) -> web.Response:
        rid = _hex(request.match_info["rid"], "record id", 16)
        proofs = request.query.get("proofs", "0") not in ("0", "false", "no")
        return _found(self.healthcare.record_json(rid, proofs), f"no record {rid.hex()}")

    async def read_record(self, request: web.Request) -> web.Response:
        rid = _hex(request.match_info["rid"], "record id", 16)
        return web.json_response(await self.healthcare.read_record(rid, await json_body(request)))

    async def patient(self, request: web.Request) -> web.Response:
        pid = _hex(request.match_info["pid"], "patient id", 16)
        return _found(self.healthcare.views().patient(pid), f"no registered patient {pid.hex()}")

    async def consents(self, request: web.Request) -> web.Response:
        pid = _hex(request.match_info["pid"], "patient id", 16)
        return web.json_response(self.healthcare.views().consents(pid, self.healthcare.now_ms()))

    async def patient_accesses(self, request: web.Request) -> web.Response:
        pid = _hex(request.match_info["pid"], "patient id", 16)
        return _found(self.healthcare.views().patient_accesses(pid), f"no registered patient {pid.hex()}")

    # ------------------------------------------------------------ drugs

    async def verify(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            doc = await json_body(request)
            if not isinstance(doc, dict) or not isinstance(doc.get("code"), str) \
                    or not isinstance(doc.get("scanned_by", ""), str):
                raise ApiError(400, "bad-json", 'expected {"code": "<scanned GS1 code>", "scanned_by": "..."}')
            code, by, proofs = doc["code"], str(doc.get("scanned_by", "")), bool(doc.get("proofs", True))
            at = doc.get("at_ms")
            if at is not None and (type(at) is not int or not 0 <= at <= MAX_TIME_MS):
                raise ApiError(400, "bad-json", "at_ms must be a non-negative integer (milliseconds since 1970)")
        else:
            code = request.query.get("code", "")
            by = request.query.get("scanned_by", "")
            proofs = request.query.get("proofs", "1") not in ("0", "false", "no")
            at = int_query(request, "at_ms", 0, MAX_TIME_MS, "bad-integer")
        if not code:
            raise ApiError(422, "invalid-gs1", "code: empty; pass the scanned GS1 code")
        return web.json_response(await self.healthcare.verify(code, by or "api", proofs, at))

    async def pack(self, request: web.Request) -> web.Response:
        gtin, serial = _gtin(request), request.match_info["serial"]
        proofs = request.query.get("proofs", "1") not in ("0", "false", "no")
        found = self.healthcare.pack_json(gtin, serial, proofs, self.healthcare.now_ms())
        return _found(found, f"no pack {gtin}/{serial} was commissioned")

    async def epcis(self, request: web.Request) -> web.Response:
        gtin, serial = _gtin(request), request.match_info["serial"]
        doc = self.healthcare.epcis(gtin, serial)
        return _found(doc, f"no pack {gtin}/{serial} was commissioned", content_type="application/ld+json")

    async def lot(self, request: web.Request) -> web.Response:
        gtin, lot = _gtin(request), request.match_info["lot"]
        found = self.healthcare.views().lot(gtin, lot, request.query.get("after"), _page(request))
        return _found(found, f"no lot {lot} of GTIN {gtin}")

    async def shipment(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        return _found(self.healthcare.views().shipment(sid), f"no shipment {sid}")

    async def holds(self, request: web.Request) -> web.Response:
        return web.json_response(self.healthcare.views().holds(_page(request)))

    async def alerts(self, request: web.Request) -> web.Response:
        after = int_query(request, "after", 0, MAX_TIME_MS, "bad-integer")
        return web.json_response(self.healthcare.views().alerts(after, _page(request)))

    async def alert_stream(self, request: web.Request) -> web.StreamResponse:
        hc = self.healthcare
        return await event_stream(request, "alerts", "alert", "seq", hc.subscribe_alerts, hc.unsubscribe_alerts)

    # ------------------------------------------------------------ explorer

    async def decoded_tx(self, request: web.Request) -> web.Response:
        tid = _hex(request.match_info["id"], "id", 32)
        found = self.node.tx_bytes(tid)
        if found is None:
            raise ApiError(404, "not-found", f"transaction {tid.hex()} is neither committed nor pending here")
        views = self.healthcare.views()
        return web.json_response(explorer.describe(found[0], self.node.tx_status(tid), views, self.node.genesis))

    async def search(self, request: web.Request) -> web.Response:
        return web.json_response(explorer.search(self.node, self.healthcare.views(), request.query.get("q", "")))
