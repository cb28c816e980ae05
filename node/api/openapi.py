"""The OpenAPI 3.1 description of the HTTP API, served by every node at ``GET /openapi.json``.

It describes the node's own routes (``node.api.server``) and the healthcare
application's (``node.healthcare.routes``), the one application a medchain node
runs.  ``tests/node/test_openapi.py`` checks that it is a valid OpenAPI 3.1
document and that its paths and methods are exactly the routes a node
registers, so a route added without its description fails the suite.
``python -m node.api.openapi`` prints it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from consensus.byzantine import BEHAVIOURS
from node.governance import ACTIONS

Schema = dict[str, Any]

ERROR_MEANINGS = {
    400: "Bad input: the error code and message name what is wrong.",
    401: "The signed request's signature does not verify.",
    403: "Refused: no consent, or the access was not filed.",
    404: "Not found: the message says what.",
    409: "Conflict: already committed, already filed, or not the current version.",
    410: "The record was erased.",
    413: "The request body is over 256 KiB (code too-large).",
    421: "Wrong node: the record is held by another organisation's node.",
    422: "Refused before ordering: invalid transaction, FHIR content or GS1 code.",
    503: "Back-pressure (code mempool-full): retry after the Retry-After header's seconds; or, with wait=commit, "
         "the node is stopping (code shutting-down: the transaction may still commit).",
    504: "With wait=commit: the transaction did not commit in time (code timeout).",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def hex_string(size: int | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "string", "pattern": "^[0-9a-f]*$" if size is None else f"^[0-9a-f]{{{2 * size}}}$"}
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


INT: Schema = {"type": "integer", "minimum": 0}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}


def json_answer(description: str, schema: Schema, media: str = "application/json") -> Schema:
    return {"description": description, "content": {media: {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for status in statuses:
        answer = json_answer(ERROR_MEANINGS[status], ref("Error"))
        if status == 503:
            answer["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": INT}}
        out[str(status)] = answer
    return out


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema or STR}


def query_param(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def json_body(schema: Schema, description: str) -> Schema:
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


def sse_answer(description: str, item: str) -> Schema:
    return {
        "description": f"{description} Each event's `data` is one JSON object (schema {item}).",
        "content": {"text/event-stream": {"schema": STR, "x-event-data": ref(item)}},
    }


def op(op_id: str, tag: str, summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    return {"operationId": op_id, "tags": [tag], "summary": summary, "responses": responses, **extra}


TX_ID = path_param("id", "transaction id: SHA-256 of its canonical bytes, 64 hex digits", hex_string(32))
RECORD_ID = path_param("rid", "record id, 32 hex digits", hex_string(16))
PATIENT_ID = path_param("pid", "pseudonymous patient id, 32 hex digits", hex_string(16))
GTIN = path_param("gtin", "GTIN-14 (check digit verified; shorter GTINs are padded)")
PROOFS = query_param("proofs", "attach an inclusion proof to each event; 0, false or no leave them out",
                     {"type": "string", "default": "1"})
RECORD_PROOFS = query_param(
    "proofs", "1, true or yes: attach an inclusion proof to each version and access, and the erasure's",
    {"type": "string", "default": "0"})
LIMIT = query_param("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})


def schemas() -> dict[str, Schema]:
    """The answers' shapes, as the handlers build them."""
    return {
        "Error": obj({"error": {**STR, "description": "machine-readable code, e.g. not-found"},
                      "message": {**STR, "description": "what is wrong, in one line"}}),
        "Status": obj({
            "chain_id": STR, "node_id": STR, "role": {"enum": ["validator", "observer"]},
            "node_key": hex_string(32), "height": INT, "head_hash": hex_string(32), "app_hash": hex_string(32),
            "view": INT, "primary": STR, "in_view_change": BOOL, "peers": array(STR),
            "mempool": obj({"txs": INT, "bytes": INT}), "syncing": BOOL, "best_peer_height": INT,
            "stable_checkpoint": nullable(INT), "uptime_s": {"type": "number"},
        }),
        "Health": obj({"ok": BOOL, "height": INT, "peers": INT}),
        "Block": obj({
            "height": INT, "hash": hex_string(32),
            "header": obj({
                "chain_id": STR, "height": INT, "prev_hash": hex_string(32), "proposer": STR, "view": INT,
                "timestamp_ms": INT, "tx_root": hex_string(32), "tx_count": INT, "app_hash": hex_string(32),
            }),
            "txs": array(hex_string(32)),
            "certificate": obj({
                "height": INT, "view": INT, "block_hash": hex_string(32),
                "votes": array(obj({"validator": STR, "signature": hex_string(64)})),
            }),
        }),
        "TxStatus": obj(
            {"tx_id": hex_string(32), "status": {"enum": ["pending", "committed", "rejected", "unknown"]}},
            {"height": INT, "index": INT, "code": {**STR, "description": "ok, or the rule's refusal code"},
             "message": STR},
        ),
        "Proof": {**obj({
            "format": {"const": "medchain-inclusion-proof/v1"}, "chain_id": STR, "height": INT,
            "block_hash": hex_string(32), "tx_id": hex_string(32), "tx_index": INT, "tx": hex_string(),
            "merkle_proof": hex_string(), "header": hex_string(), "certificate": hex_string(),
        }, {"validator_changes": {**array(array(ref("Proof"))), "description": (
            "after a validator-set change: for each change in force at the block's height, proofs of the "
            "proposal and approvals that made it, which a verifier replays from genesis")}}),
            "additionalProperties": False,
            "description": "tx, merkle_proof, header and certificate are the canonical encodings that verify; "
                           "every other member must equal what they give, and a verifier refuses any other member"},
        "BatchItem": obj(
            {"tx_id": hex_string(32), "status": {"enum": ["pending", "committed", "rejected", "refused", "timeout"]}},
            {"height": INT, "index": INT, "code": {**STR, "description": "ok, or the rule's refusal code"},
             "error": {**STR, "description": "refused: the code POST /txs would answer, or duplicate"},
             "message": STR},
        ),
        "BatchReply": obj({
            "count": INT,
            "counts": obj({k: INT for k in ("pending", "committed", "rejected", "refused", "timeout")}),
            "results": {**array(ref("BatchItem")), "description": "one per transaction sent, in the same order"},
        }),
        "CommitEvent": obj({
            "height": INT, "hash": hex_string(32), "txs": INT, "rejected": INT, "view": INT, "time_ms": INT,
            "app_hash": hex_string(32), "proposer": STR,
            "latency_ms": {**nullable({"type": "number"}), "description": "median time from admission at this "
                           "node to commit of the block's transactions admitted here; null when none was"},
            "evidence": {**INT, "description": "equivocation evidence items this node holds"},
        }),
        "DecodedTx": obj({
            "tx_id": hex_string(32), "status": ref("TxStatus"), "size": INT,
            "kind": {**nullable(STR), "description": "the body's type, e.g. Commission; null if undecodable"},
            "chain_id": nullable(STR),
            "signer": nullable(obj({"key": hex_string(32), "org": nullable(STR), "role": nullable(STR),
                                    "active": nullable(BOOL)})),
            "timestamp_ms": nullable(INT), "nonce": nullable(hex_string(16)),
            "body": {**nullable({"type": "object"}), "description": "the body's fields, bytes as hex"},
            "error": {**nullable(STR), "description": "why the bytes do not decode"},
        }),
        "SearchHit": obj(
            {"query": STR, "kind": {"enum": ["block", "tx", "anchor", "patient", "record", "pack"]}},
            {"height": INT, "tx_id": hex_string(32), "sha256": hex_string(32), "patient": hex_string(16),
             "record_id": hex_string(16), "gtin": STR, "serial": STR, "code": STR},
        ),
        "BlockSummary": obj({"height": INT, "hash": hex_string(32), "proposer": STR, "view": INT,
                             "timestamp_ms": INT, "tx_count": INT}),
        "Validators": obj({
            "height": INT, "quorum": {**STR, "description": "share of validator organisations that decides"},
            "validators": array(obj({"name": STR, "key": hex_string(32), "org": nullable(STR),
                                     "address": nullable(STR)})),
            "changes": array(obj({"height": INT, "validators": array(STR), "txs": array(hex_string(32)),
                                  "in_force": BOOL})),
            "proposals": array(obj({
                "proposal": hex_string(32), "action": {"enum": list(ACTIONS)}, "name": STR,
                "key": hex_string(32), "org": STR, "address": STR, "height": INT, "proposer_org": STR,
                "approvals": array(STR), "counted": INT, "needed": INT,
                "status": {"enum": ["pending", "scheduled", "expired"]}, "decided": nullable(INT),
            })),
        }),
        "Network": obj({
            "node": ref("Status"),
            "members": array(obj({
                "name": STR, "role": {"enum": ["validator", "observer"]}, "org": nullable(STR),
                "key": hex_string(32), "self": BOOL, "connected": BOOL,
                "height": {**nullable(INT), "description": "this node's, or the last the peer announced"},
                "peers": {**nullable(array(STR)), "description": "its connected peers, as it last told this node"},
                "primary": BOOL, "bytes_in": INT, "bytes_out": INT,
                "view": {**nullable(INT), "description": "this node's, or the view the peer last reported"},
                "in_view_change": nullable(BOOL), "mempool_txs": nullable(INT), "last_commit_ms": nullable(INT),
                "reported_ms": {**nullable(INT), "description": "when the peer's last report came (ms since 1970)"},
            })),
            "last_commit_ms": nullable(INT), "view_changes": INT, "evidence": INT,
        }),
        "Evidence": obj({
            "validator": {"type": ["string", "integer"]}, "kind": STR, "height": INT,
            "first": hex_string(), "second": hex_string(),
        }),
        "Anchor": obj({"sha256": hex_string(32), "height": INT, "tx_id": hex_string(32), "label": STR,
                       "signer": hex_string(32)}),
        "Organisation": obj({
            "id": STR, "name": STR, "kind": STR, "admin_key": hex_string(32), "nodes": array(STR),
            "licences": array(obj({"kind": STR, "scope": nullable(STR), "granted_height": INT,
                                   "tx_id": hex_string(32)})),
        }),
        "Member": obj({"key": hex_string(32), "org": STR, "role": STR, "active": BOOL, "enrolled_height": INT,
                       "revoked_height": nullable(INT)}),
        "FileRecordRequest": obj({
            "tx": hex_string(description="a signed AddRecord or AmendRecord transaction"),
            "resource": {"type": "object", "description": "the FHIR R5 resource"},
            "salt": hex_string(32, "the salt of the transaction's commitment"),
        }),
        "FiledRecord": {"allOf": [ref("TxStatus"), obj({"record_id": hex_string(16), "version": INT},
                                                       {"custodian": STR, "resource_type": STR})]},
        "ReadRequest": obj({"request": hex_string(description="a ReadRequest signed by the reader")}),
        "RecordContent": obj({
            "record_id": hex_string(16), "version": INT, "resource_type": STR, "resource": {"type": "object"},
            "break_glass": BOOL, "access_tx": hex_string(32), "access_height": INT,
        }),
        "RecordHead": obj({
            "record_id": hex_string(16), "patient": hex_string(16), "custodian": STR, "resource_type": STR,
            "version": INT, "created_height": INT, "accesses": INT, "erased": BOOL,
            "erased_height": nullable(INT), "erase_tx": nullable(hex_string(32)),
        }),
        "Record": {"allOf": [ref("RecordHead"), obj({
            "versions": array(obj({
                "version": INT, "commitment": hex_string(32), "author": hex_string(32), "replaces": nullable(INT),
                "resource_type": STR, "height": INT, "time_ms": INT, "tx_id": hex_string(32),
            }, {"proof": nullable(ref("Proof"))})),
            "access_log": array({"allOf": [ref("Access"), {"properties": {"proof": nullable(ref("Proof"))}}]}),
        }, {"erase_proof": {**nullable(ref("Proof")), "description": "with ?proofs=1: the erasure's proof, "
                                                                     "null while the record is not erased"}})]},
        "Access": obj({
            "record_id": hex_string(16), "seq": INT, "reader": hex_string(32), "reader_org": nullable(STR),
            "version": INT, "purpose": STR, "basis": STR, "break_glass": BOOL, "request_time_ms": INT,
            "height": INT, "time_ms": INT, "tx_id": hex_string(32),
        }),
        "Patient": obj({"patient": hex_string(16), "registered_height": INT, "records": array(ref("RecordHead"))}),
        "Consent": obj({
            "grantee_org": nullable(STR), "grantee_key": nullable(hex_string(32)),
            "resource_types": {"anyOf": [array(STR), {"const": "all"}]}, "expires_ms": nullable(INT),
            "active": BOOL, "height": INT, "tx_id": hex_string(32),
        }),
        "VerifyRequest": obj({"code": {**STR, "description": "the scanned GS1 code, in any written form"}}, {
            "scanned_by": STR, "proofs": {**BOOL, "default": True},
            "at_ms": {**INT, "description": "judge expiry at this time (ms since 1970) instead of now"},
        }),
        "Verification": obj({
            "code": obj({"gtin": STR, "serial": STR, "lot": nullable(STR), "expiry": nullable(STR)}),
            "verified": BOOL, "status": STR, "verificationFailureReason": nullable(STR),
            "additionalInfo": nullable(STR), "pack": nullable(ref("Pack")),
            "alert": nullable({"type": "object", "description": "the ScanAlert filed: tx_id and status, or an error"}),
        }),
        "LedgerEvent": obj({"kind": STR, "tx_id": hex_string(32), "height": INT, "time_ms": INT, "org": STR,
                            "other_org": nullable(STR), "ref": nullable(STR)}),
        "Pack": obj({
            "gtin": STR, "serial": STR, "lot": STR, "expiry": STR, "status": STR, "info": nullable(STR),
            "custodian": STR, "manufacturer": STR, "shipment": nullable(STR),
            "quarantined": nullable({**STR, "description": "the quarantine reason"}),
            "recalled": nullable({**STR, "description": "the recall reason"}),
            "history": array({"allOf": [ref("LedgerEvent"), {"properties": {"proof": nullable(ref("Proof"))}}]}),
        }),
        "Lot": obj({
            "gtin": STR, "lot": STR, "expiry": STR, "manufacturer": STR, "packs": INT, "recalled": nullable(STR),
            "quarantined": nullable(STR), "events": array(ref("LedgerEvent")), "serials": array(STR),
        }),
        "Shipment": obj({
            "shipment_id": STR, "from": STR, "to": STR, "status": STR,
            "packs": array(obj({"gtin": STR, "serial": STR})), "height": INT, "tx_id": hex_string(32),
            "received_tx_id": nullable(hex_string(32)),
        }),
        "Hold": obj({
            "kind": {"enum": ["recall", "lot-quarantine", "pack-quarantine"]}, "gtin": STR, "lot": nullable(STR),
            "serial": nullable(STR), "reason": STR, "org": nullable(STR), "height": nullable(INT),
            "time_ms": nullable(INT), "tx_id": nullable(hex_string(32)),
        }),
        "Alert": obj({
            "seq": INT, "gtin": STR, "serial": STR, "lot": nullable(STR), "expiry": nullable(STR), "reason": STR,
            "info": nullable(STR), "scanned_by": STR, "reporter_org": STR, "height": INT, "time_ms": INT,
            "tx_id": hex_string(32),
        }),
    }


def core_paths() -> dict[str, Schema]:
    """``node.api.server``: the routes every node serves whatever its application."""
    tx_wait = query_param("wait", "commit: answer once the transaction commits", {"enum": ["commit"]})
    timeout = query_param("timeout", "seconds to wait with wait=commit, a finite number in 0.1..120 (else 400)",
                          {"type": "number", "minimum": 0.1, "maximum": 120, "default": 30})
    tx_body = {
        "required": True,
        "description": "the transaction's canonical bytes, or JSON {\"tx\": hex}",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
            "application/json": {"schema": obj({"tx": hex_string()})},
        },
    }
    return {
        "/status": {"get": op("getStatus", "node", "This node's chain, height, view, peers and mempool.",
                              {"200": json_answer("the node's status", ref("Status"))})},
        "/health": {"get": op("getHealth", "node", "Liveness: 200 while the node runs, 503 while it stops.",
                              {"200": json_answer("running", ref("Health")),
                               "503": json_answer("stopping", ref("Health"))})},
        "/blocks": {"get": op(
            "listBlocks", "chain", "The latest committed blocks (or those below ?before), newest first.",
            {"200": json_answer("block headers without their transactions", array(ref("BlockSummary"))),
             **errors(400)},
            parameters=[query_param("limit", "how many, 1..100 (default 20)", {**INT, "minimum": 1, "maximum": 100}),
                        query_param("before", "only blocks below this height", {**INT, "minimum": 1})])},
        "/genesis": {"get": op(
            "getGenesis", "chain", "The genesis file this node runs (validators, observers, organisations); "
                                   "its canonical SHA-256 is in the X-Medchain-Genesis-Hash header.",
            {"200": json_answer("the genesis document", {"type": "object"})})},
        "/validators": {"get": op(
            "getValidators", "chain", "The validators deciding the next height, the validator-set changes the ledger "
                                      "scheduled, and the proposals for more (node.governance).",
            {"200": json_answer("the set, its changes and the proposals", ref("Validators"))})},
        "/network": {"get": op(
            "getNetwork", "node", "This node's status and every validator and observer as this node sees them.",
            {"200": json_answer("the node and the members of the network", ref("Network"))})},
        "/blocks/{height}": {"get": op(
            "getBlock", "chain", "A committed block: header, tx ids and commit certificate.",
            {"200": json_answer("the block", ref("Block")), **errors(400, 404)},
            parameters=[path_param("height", "block height", INT)])},
        "/txs": {"post": op(
            "submitTx", "chain", "Submit a signed transaction.",
            {"202": json_answer("admitted to the mempool (status pending)", ref("TxStatus")),
             "200": json_answer("with wait=commit: committed or rejected by the rules", ref("TxStatus")),
             **errors(400, 409, 413, 422, 503, 504)},
            parameters=[tx_wait, timeout], requestBody=tx_body)},
        "/txs/batch": {"post": batch_op(tx_wait, timeout)},
        "/txs/{id}": {"get": op("getTx", "chain", "A transaction's status.",
                                {"200": json_answer("pending, committed, rejected or unknown", ref("TxStatus")),
                                 **errors(400)}, parameters=[TX_ID])},
        "/proofs/{id}": {"get": op(
            "getProof", "chain", "A self-contained inclusion proof of a committed transaction.",
            {"200": json_answer("verifiable offline against the genesis file", ref("Proof")), **errors(400, 404)},
            parameters=[TX_ID])},
        "/events": {"get": op("streamCommits", "chain", "Server-sent events: one `commit` event per committed block.",
                              {"200": sse_answer("The stream, with the block height as event id.", "CommitEvent")})},
        "/evidence": {"get": op("getEvidence", "chain", "Equivocation evidence: two conflicting signed messages.",
                                {"200": json_answer("up to 1000 items", array(ref("Evidence")))})},
        "/metrics": {"get": op("getMetrics", "node", "Prometheus metrics (text exposition format).",
                               {"200": json_answer("metric families named medchain_*", STR, "text/plain")})},
        "/openapi.json": {"get": op("getOpenApi", "node", "This document.",
                                    {"200": json_answer("OpenAPI 3.1", {"type": "object"})})},
        "/ui": {"get": op("explorerRoot", "explorer", "Redirects to /ui/.",
                          {"308": {"description": "to /ui/"}})},
        "/ui/{path}": {"get": op(
            "explorerPage", "explorer", "The explorer's pages and their files (HTML, ES modules, CSS); "
                                        "/ui/ is the network page.",
            {"200": json_answer("the file", STR, "text/html"), **errors(404)},
            parameters=[path_param("path", "a file of the explorer, e.g. verify.html or js/common.js", STR)])},
    }


def batch_op(wait: Schema, timeout: Schema) -> Schema:
    """``POST /txs/batch`` (``node.api.batch``)."""
    media = "application/x-medchain-txs"
    body = {
        "required": True,
        "description": "the transactions' canonical bytes as a msgpack array of bin, or JSON {\"txs\": [hex, ...]} "
                       "(at most 256 KiB); at most [api] batch_max_txs transactions and batch_max_bytes bytes",
        "content": {
            media: {"schema": {"type": "string", "contentMediaType": media}},
            "application/json": {"schema": obj({"txs": array(hex_string())})},
        },
    }
    too_large = json_answer("Over [api] batch_max_txs transactions or batch_max_bytes bytes (code too-large; the "
                            "message names the limit); nothing is admitted.", ref("Error"))
    retry = {"Retry-After": {"description": "present when a transaction was refused mempool-full", "schema": INT}}
    answers = {
        "202": {**json_answer("each transaction admitted (pending) or refused", ref("BatchReply")), "headers": retry},
        "200": {**json_answer("with wait=commit: each committed, rejected, refused, or timeout", ref("BatchReply")),
                "headers": retry},
        "400": json_answer("The body does not decode (codes empty-body, empty-batch, bad-batch, bad-json), or a "
                           "bad wait or timeout.", ref("Error")),
        "413": too_large,
        "503": json_answer("With wait=commit: the node is stopping (code shutting-down); what it admitted may still "
                           "commit.", ref("Error")),
    }
    return op("submitTxBatch", "chain", "Submit many signed transactions; one result each, in order.", answers,
              parameters=[wait, timeout], requestBody=body)


def healthcare_paths() -> dict[str, Schema]:
    """``node.healthcare.routes``: the healthcare application's routes."""
    verify_query = [
        query_param("code", "the scanned GS1 code", STR),
        query_param("scanned_by", "who scanned (recorded with an alert)", STR),
        PROOFS,
        query_param("at_ms", "judge expiry at this time (ms since 1970)", INT),
    ]
    verify_answers = {"200": json_answer("the GS1 verdict, the pack and its history", ref("Verification")),
                      **errors(400, 422)}
    pack_params = [GTIN, path_param("serial", "GS1 serial (AI 21)")]
    return {
        "/anchors/{hash}": {"get": op(
            "getAnchor", "anchoring", "Where a document's SHA-256 is anchored.",
            {"200": json_answer("the anchoring transaction", ref("Anchor")), **errors(400, 404)},
            parameters=[path_param("hash", "the document's SHA-256, 64 hex digits", hex_string(32))])},
        "/orgs": {"get": op("getOrgs", "consortium", "The consortium: organisations, kinds, nodes, licences.",
                            {"200": json_answer("the organisations in genesis", array(ref("Organisation")))})},
        "/members/{key}": {"get": op(
            "getMember", "consortium", "An enrolled member key: organisation, role, active.",
            {"200": json_answer("the member", ref("Member")), **errors(400, 404)},
            parameters=[path_param("key", "Ed25519 public key, 64 hex digits", hex_string(32))])},
        "/ehr/records": {"post": op(
            "fileRecord", "ehr", "File a record's content at its custodian's node, then submit its transaction.",
            {"201": json_answer("committed", ref("FiledRecord")),
             "200": json_answer("not committed (rejected, or still pending)", ref("FiledRecord")),
             **errors(400, 404, 409, 410, 413, 421, 422, 503, 504)},
            requestBody=json_body(ref("FileRecordRequest"), "the signed transaction, the resource and its salt"))},
        "/ehr/records/{rid}": {"get": op(
            "getRecord", "ehr", "A record's versions (commitments, authors), erasure and access log; with "
            "?proofs=1, an inclusion proof of each.",
            {"200": json_answer("the record on the ledger (no content)", ref("Record")), **errors(400, 404)},
            parameters=[RECORD_ID, RECORD_PROOFS])},
        "/ehr/records/{rid}/read": {"post": op(
            "readRecord", "ehr", "A reader-signed, audited read, served once the access is on the ledger.",
            {"200": json_answer("the decrypted resource", ref("RecordContent")),
             **errors(400, 401, 403, 404, 410, 413, 421, 503, 504)},
            parameters=[RECORD_ID], requestBody=json_body(ref("ReadRequest"), "the signed read request"))},
        "/ehr/patients/{pid}": {"get": op(
            "getPatient", "ehr", "A registered patient's records.",
            {"200": json_answer("the patient", ref("Patient")), **errors(400, 404)}, parameters=[PATIENT_ID])},
        "/ehr/patients/{pid}/consents": {"get": op(
            "getConsents", "ehr", "A patient's consents, with whether each is active now.",
            {"200": json_answer("the consents (empty for an unknown patient)", array(ref("Consent"))),
             **errors(400)}, parameters=[PATIENT_ID])},
        "/ehr/patients/{pid}/accesses": {"get": op(
            "getPatientAccesses", "ehr", "Every access to a patient's records, in ledger order.",
            {"200": json_answer("the accesses", array(ref("Access"))), **errors(400, 404)},
            parameters=[PATIENT_ID])},
        "/drugs/verify": {
            "get": op("verifyCodeGet", "drugs", "Verify a scanned code; files an alert when the verdict calls for one.",
                      verify_answers, parameters=verify_query),
            "post": op("verifyCode", "drugs", "Verify a scanned code; files an alert when the verdict calls for one.",
                       {**verify_answers, **errors(413)},
                       requestBody=json_body(ref("VerifyRequest"), "the scanned code")),
        },
        "/drugs/packs/{gtin}/{serial}": {"get": op(
            "getPack", "drugs", "A pack with its history and, by default, an inclusion proof per event.",
            {"200": json_answer("the pack", ref("Pack")), **errors(404, 422)}, parameters=[*pack_params, PROOFS])},
        "/drugs/packs/{gtin}/{serial}/epcis": {"get": op(
            "getPackEpcis", "drugs", "The pack's history as an EPCIS 2.0 document.",
            {"200": json_answer("an EPCISDocument of ObjectEvents", {"type": "object"}, "application/ld+json"),
             **errors(404, 422)}, parameters=pack_params)},
        "/drugs/lots/{gtin}/{lot}": {"get": op(
            "getLot", "drugs", "A lot: status, events and a page of its serials.",
            {"200": json_answer("the lot", ref("Lot")), **errors(400, 404, 422)},
            parameters=[GTIN, path_param("lot", "GS1 lot (AI 10)"),
                        query_param("after", "serials after this one (paging)", STR), LIMIT])},
        "/drugs/shipments/{sid}": {"get": op(
            "getShipment", "drugs", "A shipment: parties, status, packs.",
            {"200": json_answer("the shipment", ref("Shipment")), **errors(404)},
            parameters=[path_param("sid", "shipment id")])},
        "/alerts": {"get": op(
            "getAlerts", "drugs", "Alerts on the ledger, in sequence order.",
            {"200": json_answer("a page of alerts", array(ref("Alert"))), **errors(400)},
            parameters=[query_param("after", "alerts after this sequence number", INT), LIMIT])},
        "/drugs/holds": {"get": op(
            "listHolds", "drugs", "Recalls and quarantines in force: lots recalled, lots and packs quarantined.",
            {"200": json_answer("each hold, why, and the transaction that put it", array(ref("Hold"))),
             **errors(400)},
            parameters=[query_param("limit", "at most this many, 1..1000 (default 100)",
                                    {**INT, "minimum": 1, "maximum": 1000})])},
        "/alerts/stream": {"get": op(
            "streamAlerts", "drugs", "Server-sent events: one `alert` event per alert committed from now on.",
            {"200": sse_answer("The stream, with the alert's sequence number as event id.", "Alert")})},
        "/txs/{id}/decoded": {"get": op(
            "getDecodedTx", "chain", "A committed or pending transaction decoded: kind, signer, body fields.",
            {"200": json_answer("the transaction, for people", ref("DecodedTx")), **errors(400, 404)},
            parameters=[TX_ID])},
        "/search": {"get": op(
            "search", "chain", "What a query names: a block (height or hash), a transaction, an anchored "
                               "document, a patient, a record or a pack (a GS1 code in any written form).",
            {"200": json_answer("the kind found and how to fetch it", ref("SearchHit")), **errors(400, 404)},
            parameters=[query_param("q", "height, hash, tx id, SHA-256, 16-byte id or GS1 code", STR)])},
    }


def admin_paths() -> dict[str, Schema]:
    """``node.api.admin``: the operator's signed admin requests."""
    headers = [
        {"name": name, "in": "header", "required": True, "description": text, "schema": STR}
        for name, text in (
            ("X-Medchain-Admin-Time", "when the request was signed, ms since 1970 (accepted within 30 s)"),
            ("X-Medchain-Admin-Nonce", "16 random bytes in hex, never reused"),
            ("X-Medchain-Admin-Signature", "Ed25519 signature by the operator key over "
                                           "(method, path, body, time, nonce), domain medchain/v1/admin, hex"),
        )
    ]
    refused = json_answer("Refused: unsigned, signed by another key than the operator's, stale, or replayed.",
                          ref("Error"))
    num = {"type": "number", "minimum": 0, "maximum": 1}
    nat = {"type": "integer", "minimum": 0}
    link = obj({"peer": STR}, {"cut": BOOL, "loss": num, "delay_ms": nat, "jitter_ms": nat, "duplicate": num,
                               "reorder": num})
    whole = {"type": "integer"}
    state = obj({
        "links": {"type": "object", "additionalProperties": {"type": "object"}},
        "byzantine": {"type": ["string", "null"], "enum": [*BEHAVIOURS, None]},
        "clock_skew_ms": whole,
    })
    behaviour = obj({"behaviour": {"type": "string", "enum": [*BEHAVIOURS, "none"]}}, {"seed": whole})

    def admin_op(op_id: str, summary: str, body: Schema, body_text: str) -> Schema:
        return {"post": op(op_id, "admin", summary,
                           {"200": json_answer("this node's whole fault state", state), **errors(400), "403": refused},
                           parameters=headers, requestBody=json_body(body, body_text))}

    return {
        "/admin/links": admin_op(
            "setLinkFault", "Set this node's link faults towards one peer (cut both ways; the rest outgoing).",
            link, "the peer and the settings to change"),
        "/admin/links/clear": admin_op(
            "clearLinkFaults", "Clear this node's link faults towards one peer, or all without a peer.",
            obj({}, {"peer": STR}), "the peer, or {} for all"),
        "/admin/byzantine": admin_op(
            "setByzantine", "Switch this validator to a Byzantine behaviour, or back to honest with none "
            "(observers answer 400).", behaviour, "the behaviour, and optionally the seed of its random choices"),
        "/admin/clock": admin_op(
            "setClockSkew", "Offset the wall clock this node's replica sees (its block timestamps) by skew_ms.",
            obj({"skew_ms": whole}), "the skew in ms, negative for behind, 0 for none"),
        "/admin/seed": admin_op(
            "reseedFaults", "Reseed this node's random fault choices (link faults, Byzantine behaviour).",
            obj({"seed": whole}), "the seed"),
    }


def package_version() -> str:
    try:
        return version("medchain")
    except PackageNotFoundError:
        return "0"


@cache
def document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "medchain node API",
            "version": package_version(),
            "description": (
                "The HTTP API every medchain node serves. Bytes travel as hex. Every error answers "
                '{"error": code, "message": text}. Healthcare actions are signed transactions posted to /txs.'
            ),
        },
        "servers": [{"url": "http://127.0.0.1:26601", "description": "node0 of a local cluster (base port 26600)"}],
        "paths": {**core_paths(), **healthcare_paths(), **admin_paths()},
        "components": {"schemas": schemas()},
    }


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /openapi.json``."""
    return web.json_response(document())


if __name__ == "__main__":
    print(json.dumps(document(), indent=2))
