"""The healthcare ledger inside a running node: vault, audited reads, scans and alerts.

The rules live in ``node.healthcare.ledger`` and run in every validator; this is what one
organisation's node adds around them:

* filing a record: validate the FHIR content, check its commitment against the
  signed transaction, keep it encrypted in this node's vault, then submit;
* reading: check the reader's signed request against the committed consents,
  file the access on the ledger, and only once it is committed decrypt and serve;
* erasure: when an erase commits, shred every erased record this vault holds;
* scanning a code: answer with the GS1 verdict, the pack's history and proofs,
  and file an alert when the verdict calls for one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.documents import ProofDocument
from node.errors import ApiError
from node.healthcare.application import Application
from node.healthcare.documents import (
    AlertDocument,
    CommittedRecord,
    EpcisDocument,
    EventDocument,
    FiledRecord,
    PackDocument,
    ProvenRecordDocument,
    RecordDocument,
    ServedRecord,
    Verification,
)
from node.healthcare.fhir import SALT_BYTES, FhirError, commitment, validate_resource
from node.healthcare.gs1 import Gs1Error, parse_code
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.ehr import consent_basis
from node.healthcare.ledger.records import ALERT_COUNT, Alert, Patient, Record, alert_key, patient_id, record_key
from node.healthcare.ledger.records import patient_key as patient_key_of
from node.healthcare.ledger.state import Overlay
from node.healthcare.ledger.supply import pack_status, verify_code
from node.healthcare.transactions import make_transaction, parse_with_body
from node.healthcare.vault import Vault, VaultConflict, VaultErased, VaultMissing
from node.healthcare.views import LedgerViews, alert_json, event_json
from node.proofs import build_proof
from node.transaction import tx_id
from primitives.codec import decode, unpack_strict
from primitives.errors import DecodeError
from primitives.merkle import merkle_levels

if TYPE_CHECKING:
    from node.runtime import Node

log = logging.getLogger("medchain.healthcare")
PROOF_BLOCKS_CACHED = 64


class HealthcareService:
    def __init__(self, node: Node, rules: Application, vault_dir: Path, kek: bytes) -> None:
        self.node = node
        self.rules = rules
        self.genesis = node.genesis
        self.org = node.genesis.org_of_node(node.cfg.name)
        self.vault = Vault.open(vault_dir, kek)
        self.metrics = node.metrics
        self._levels: OrderedDict[int, list[list[bytes]]] = OrderedDict()
        self._alert_subscribers: set[asyncio.Queue[AlertDocument | None]] = set()

    def close(self) -> None:
        self.vault.close()

    def views(self) -> LedgerViews:
        return LedgerViews(self.node.store, self.genesis)

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    # ------------------------------------------------------------ commit hook

    def after_commit(self, notices: list[tuple[bytes, bytes, Any]]) -> list[AlertDocument]:
        """Off the loop, after a block with erasures or alerts: shred what was erased here.

        Returns the block's new alerts for ``publish_alerts``, which
        must run on the event loop: the subscribers' queues are asyncio queues.
        """
        for tid, signer, body in notices:
            if isinstance(body, b.EraseRecords):
                self._shred_erased(body, tid, signer)
        filed = sum(1 for _, _, body in notices if isinstance(body, b.ScanAlert))
        return self._newest_alerts(filed) if filed else []

    def _shred_erased(self, body: b.EraseRecords, tid: bytes, patient_key: bytes) -> list[bytes]:
        if body.all_records:
            patient = Overlay(self.node.store).load(Patient, patient_key_of(patient_id(patient_key)))
            rids = list(patient.records) if patient is not None else []
        else:
            rids = list(body.record_ids)
        out = []
        for rid in rids:
            record = self.node.store.get(record_key(rid))
            if record is None:
                continue
            if decode(Record, record).erase_tx == tid and self.vault.holds(rid):
                self.vault.shred(rid)
                self.metrics.records_shredded.inc()
                out.append(rid)
        if out:
            log.info("erasure: shredded %d record(s) from the vault", len(out),
                     extra={"event": "erasure", "records": [r.hex() for r in out]})
        return out

    def _newest_alerts(self, filed: int) -> list[AlertDocument]:
        """The last ``filed`` alerts by sequence: a block's accepted alerts are the newest after it."""
        raw = self.node.store.get(ALERT_COUNT)
        count = unpack_strict(raw) if raw is not None else 0
        out: list[AlertDocument] = []
        for seq in range(max(0, count - filed), count):
            found = self.node.store.get(alert_key(seq))
            if found is not None:
                out.append(alert_json(decode(Alert, found)))
        return out

    def publish_alerts(self, alerts: list[AlertDocument]) -> None:
        """Hand new alerts to every live subscriber (on the event loop); a backed-up subscriber misses them."""
        for alert in alerts:
            for queue in list(self._alert_subscribers):
                if queue.qsize() < 1000:
                    queue.put_nowait(alert)

    def subscribe_alerts(self) -> asyncio.Queue[AlertDocument | None]:
        """A queue of every alert from now on; ``None`` in it means the node is shutting down."""
        queue: asyncio.Queue[AlertDocument | None] = asyncio.Queue()
        self._alert_subscribers.add(queue)
        return queue

    def unsubscribe_alerts(self, queue: asyncio.Queue[AlertDocument | None]) -> None:
        self._alert_subscribers.discard(queue)

    def end_streams(self) -> None:
        for queue in list(self._alert_subscribers):
            queue.put_nowait(None)

    # ------------------------------------------------------------ EHR: filing

    async def file_record(self, doc: Any) -> FiledRecord:
        """``doc`` is the request's JSON as sent (``Any``): checked here, field by field."""
        if not isinstance(doc, dict):
            raise ApiError(400, "bad-json", 'expected {"tx": hex, "resource": {...FHIR...}, "salt": hex}')
        try:
            data = bytes.fromhex(doc["tx"])
            salt = bytes.fromhex(doc["salt"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "bad-json", "'tx' and 'salt' must be hex strings") from None
        if len(salt) != SALT_BYTES:
            raise ApiError(400, "bad-salt", f"salt must be {SALT_BYTES} bytes ({2 * SALT_BYTES} hex digits)")
        try:
            tx, body = parse_with_body(data)
        except DecodeError as exc:
            raise ApiError(400, "malformed", str(exc)) from None
        if not isinstance(body, b.AddRecord | b.AmendRecord):
            raise ApiError(400, "wrong-action", "this endpoint files AddRecord or AmendRecord transactions")
        if "resource" not in doc:
            raise ApiError(422, "invalid-fhir", "resource: missing (the FHIR resource to file)")
        try:
            rtype, canonical = await self.node.offload(validate_resource, doc["resource"])
        except FhirError as exc:
            raise ApiError(422, "invalid-fhir", str(exc)) from None
        if rtype != body.resource_type:
            raise ApiError(422, "invalid-fhir", f"resourceType: the content is a {rtype}, the transaction says "
                                                f"{body.resource_type}")
        if commitment(salt, canonical) != body.commitment:
            raise ApiError(422, "commitment-mismatch", "salt + content do not hash to the transaction's commitment")
        state = Overlay(self.node.store)
        author = self.rules.directory.actor(state, tx.signer)
        if self.org is None or author.org_id != self.org.id:
            raise ApiError(421, "wrong-custodian", f"file this record at a node of {author.org_id or 'your org'}; "
                                                   f"this node is run by {self.org.id if self.org else 'nobody'}")
        version = 1
        if isinstance(body, b.AmendRecord):
            current = state.load(Record, record_key(body.record_id))
            if current is None:
                raise ApiError(404, "not-found", f"no record {body.record_id.hex()}")
            if current.erased_height is not None:
                raise ApiError(410, "erased", f"record {body.record_id.hex()} was erased")
            if body.replaces != current.version:
                raise ApiError(409, "stale-version", f"the record is at version {current.version}, "
                                                     f"not {body.replaces}: amend the current version")
            version = body.replaces + 1
        rid = body.record_id
        try:
            await self.node.offload(self.vault.put, rid, version, canonical, salt)
        except VaultConflict:
            raise ApiError(409, "already-filed", f"this vault already holds record {rid.hex()} v{version}") from None
        try:
            result = await self.node.submit(data, wait_commit=True, timeout=30)
        except ApiError as exc:
            if exc.code not in ("timeout", "shutting-down"):  # refused before ordering: never on the chain
                await self.node.offload(self.vault.discard, rid, version)
            raise
        if result.get("status") != "committed":
            if result.get("status") == "rejected":
                await self.node.offload(self.vault.discard, rid, version)
            return {**result, "record_id": rid.hex(), "version": version}
        self.metrics.records_filed.inc()
        committed: CommittedRecord = {**result, "record_id": rid.hex(), "version": version, "custodian": self.org.id,
                                      "resource_type": rtype}
        return committed

    # ------------------------------------------------------------ EHR: reading

    async def read_record(self, rid: bytes, doc: Any) -> ServedRecord:
        try:
            served = await self._read_record(rid, doc)
        except ApiError as exc:
            self.metrics.ehr_reads.labels(exc.code).inc()
            raise
        self.metrics.ehr_reads.labels("served").inc()
        if served["break_glass"]:
            self.metrics.break_glass.inc()
        return served

    async def _read_record(self, rid: bytes, doc: Any) -> ServedRecord:
        try:
            request = decode(b.ReadRequest, bytes.fromhex(doc["request"]))
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "bad-json", 'expected {"request": "<hex of a signed ReadRequest>"}') from None
        except DecodeError as exc:
            raise ApiError(400, "malformed", f"read request: {exc}") from None
        if request.record_id != rid:
            raise ApiError(400, "wrong-record", "the signed request is for another record")
        if request.chain_id != self.node.chain_id or not request.check_signature():
            raise ApiError(401, "bad-signature", "the read request's signature does not verify")
        state = Overlay(self.node.store)
        record = state.load(Record, record_key(rid))
        if record is None:
            raise ApiError(404, "not-found", f"no record {rid.hex()}")
        if record.erased_height is not None:
            raise ApiError(410, "erased", f"record {rid.hex()} was erased at height {record.erased_height}")
        if self.org is None or record.custodian != self.org.id:
            raise ApiError(421, "wrong-custodian", f"record {rid.hex()} is held by {record.custodian}; ask its node")
        reader = self.rules.directory.actor(state, request.reader)
        now = self.now_ms()
        if request.break_glass:
            if not reader.is_("physician"):
                raise ApiError(403, "break-glass-refused", "break-glass access needs an enrolled physician")
        elif consent_basis(state, record, reader, now) is None:
            raise ApiError(403, "no-consent", "the patient has not consented to this reader for this record")
        access = make_transaction(self.node.key, self.node.chain_id, b.RecordAccess(request), now)
        result = await self.node.submit(access, wait_commit=True, timeout=30)
        if result.get("status") != "committed":
            code = result.get("code", "not-filed")
            raise ApiError(403, code, f"the access was not filed: {result.get('message', '')}")
        version = request.version or record.version
        try:
            content, _ = await self.node.offload(self.vault.get, rid, version)
        except VaultErased:
            raise ApiError(410, "erased", f"record {rid.hex()} was erased") from None
        except VaultMissing:
            raise ApiError(404, "content-missing", f"this vault holds no content for {rid.hex()} v{version}") from None
        flagged = request.break_glass
        if flagged:
            log.warning("break-glass access to record %s by %s", rid.hex(), request.reader.hex()[:16],
                        extra={"event": "break-glass", "record": rid.hex(), "reader": request.reader.hex()})
        return {
            "record_id": rid.hex(), "version": version, "resource_type": record.resource_type,
            "resource": json.loads(content), "break_glass": flagged, "access_tx": result["tx_id"],
            "access_height": result["height"],
        }

    # ------------------------------------------------------------ drugs: scanning

    def _proof(self, tid: bytes) -> ProofDocument | None:
        where = self.node.store.tx_location(tid)
        if where is None:
            return None
        found = self.node.store.certified_block(where[0])
        if found is None:
            return None
        block, cert = found
        levels = self._levels.get(block.height)
        if levels is None:
            levels = merkle_levels(block.txs)
            self._levels[block.height] = levels
            if len(self._levels) > PROOF_BLOCKS_CACHED:
                self._levels.popitem(last=False)
        return build_proof(block, cert, where[1], levels, changes=self.node.change_proofs(block.height))

    def record_json(self, rid: bytes, proofs: bool) -> RecordDocument | ProvenRecordDocument | None:
        """A record's history; with ``proofs``, each version, access and the erasure with its inclusion proof."""
        found = self.views().record(rid)
        if found is None or not proofs:
            return found
        for version in found["versions"]:
            version["proof"] = self._proof(bytes.fromhex(version["tx_id"]))
        for access in found["access_log"]:
            access["proof"] = self._proof(bytes.fromhex(access["tx_id"]))
        erased = found["erase_tx"]
        return {**found, "erase_proof": self._proof(bytes.fromhex(erased)) if erased is not None else None}

    def pack_json(self, gtin: str, serial: str, proofs: bool, now_ms: int) -> PackDocument | None:
        views = self.views()
        found = views.pack(gtin, serial)
        if found is None:
            return None
        pack, lot = found
        status, info = pack_status(pack, lot, now_ms)
        history: list[EventDocument] = []
        for event in views.history(pack, lot):
            item = event_json(event)
            if proofs:
                item["proof"] = self._proof(event.tx_id)
            history.append(item)
        return {
            "gtin": gtin, "serial": serial, "lot": pack.lot, "expiry": pack.expiry, "status": status,
            "info": info or None, "custodian": pack.custodian, "manufacturer": pack.manufacturer,
            "shipment": pack.shipment, "quarantined": pack.suspect or (lot.suspect if lot else None),
            "recalled": lot.recalled if lot else None, "history": history,
        }

    async def verify(self, code: str, scanned_by: str, proofs: bool = True, at_ms: int | None = None
                     ) -> Verification:
        """``at_ms`` judges expiry at another time (a planned dispense date, an audit); default now."""
        try:
            scanned = parse_code(code)
        except Gs1Error as exc:
            raise ApiError(422, "invalid-gs1", f"{exc.field}: {exc}") from None
        started = time.perf_counter()
        now = at_ms if at_ms is not None else self.now_ms()
        verdict = verify_code(Overlay(self.node.store), scanned.gtin, scanned.serial, scanned.lot, scanned.expiry, now)
        out: Verification = {
            "code": {"gtin": scanned.gtin, "serial": scanned.serial, "lot": scanned.lot, "expiry": scanned.expiry},
            "verified": verdict.verified,
            "status": verdict.status,
            "verificationFailureReason": verdict.reason or None,
            "additionalInfo": verdict.info or None,
            "pack": self.pack_json(scanned.gtin, scanned.serial, proofs, now),
            "alert": None,
        }
        self.metrics.scans.labels(verdict.status).inc()
        self.metrics.scan_seconds.observe(time.perf_counter() - started)
        if verdict.alert:
            self.metrics.alerts_filed.inc()
            alert = b.ScanAlert(scanned.gtin, scanned.serial, scanned.lot, scanned.expiry, verdict.reason,
                                verdict.info, scanned_by[:64])
            data = make_transaction(self.node.key, self.node.chain_id, alert, self.now_ms())
            try:
                await self.node.submit(data, wait_commit=False, timeout=0)
                out["alert"] = {"tx_id": tx_id(data).hex(), "status": "pending"}
            except ApiError as exc:
                out["alert"] = {"error": exc.code, "message": exc.message}
        return out

    def epcis(self, gtin: str, serial: str) -> EpcisDocument | None:
        return self.views().epcis(gtin, serial, self.now_ms())
