"""Read-side views of the ledger's state as JSON documents (``node.healthcare.documents``), for the API.

Every view is a key lookup or a bounded prefix range over the committed
state (``records`` lists the indexes); nothing here walks blocks.
"""

from __future__ import annotations

from node.genesis import Genesis
from node.governance import ORG_PREFIX, OrgRecord, load_schedule
from node.healthcare.documents import (
    AccessDocument,
    AlertDocument,
    ConsentDocument,
    EpcisDocument,
    EpcisPackEvent,
    EventDocument,
    HoldDocument,
    LicenceDocument,
    LotDocument,
    MemberDocument,
    OrganisationDocument,
    PatientDocument,
    RecordDocument,
    RecordHead,
    RecordVersionDocument,
    ShipmentDocument,
)
from node.healthcare.epcis import epcis_document
from node.healthcare.ledger.bodies import PackRef
from node.healthcare.ledger.records import (
    ALERT_PREFIX,
    HOLD_PREFIX,
    Access,
    Alert,
    Consent,
    Event,
    Licence,
    Lot,
    Member,
    Pack,
    Patient,
    Record,
    RecordVersion,
    Shipment,
    ShipmentPacks,
    access_prefix,
    alert_key,
    consent_prefix,
    event_key,
    licence_prefix,
    lot_key,
    lot_packs_prefix,
    member_key,
    pack_key,
    parse_hold_key,
    patient_key,
    record_key,
    shipment_key,
    shipment_packs_key,
    u64,
    version_key,
)
from node.healthcare.ledger.state import Overlay, RangeReader
from node.healthcare.ledger.supply import load_pack
from primitives.codec import decode

MAX_PAGE = 1000


def event_json(e: Event) -> EventDocument:
    return {
        "kind": e.kind, "tx_id": e.tx_id.hex(), "height": e.height, "time_ms": e.time_ms, "org": e.org,
        "other_org": e.other_org or None, "ref": e.ref or None,
    }


class LedgerViews:
    def __init__(self, state: RangeReader, genesis: Genesis) -> None:
        self.reader = state
        self.state = Overlay(state)
        self.genesis = genesis

    def _items(self, prefix: bytes, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        return self.reader.state_items(prefix, after=after, limit=max(1, min(limit, MAX_PAGE)))

    # ------------------------------------------------------------ identities

    def organisations(self) -> list[OrganisationDocument]:
        """Genesis's organisations, then those validator-set changes brought in (``node.governance``)."""
        out: list[OrganisationDocument] = []
        joined = [decode(OrgRecord, raw).organisation() for _, raw in self._items(ORG_PREFIX, None, MAX_PAGE)]
        nodes: dict[str, list[str]] = {}
        for change in load_schedule(self.state):
            for v in change.validators:
                if v.org and v.name not in nodes.setdefault(v.org, []):
                    nodes[v.org].append(v.name)
        for org in (*self.genesis.organisations, *joined):
            known = list(org.nodes) + [n for n in nodes.get(org.id, []) if n not in org.nodes]
            out.append({
                "id": org.id, "name": org.name, "kind": org.kind, "admin_key": org.admin_key.hex(),
                "nodes": known, "licences": self.licences(org.id),
            })
        return out

    def licences(self, org: str) -> list[LicenceDocument]:
        prefix = licence_prefix(org)
        out: list[LicenceDocument] = []
        for key, raw in self._items(prefix, None, 256):
            kind, _, scope = key[len(prefix):].decode().partition("/")
            lic = decode(Licence, raw)
            out.append({"kind": kind, "scope": scope or None, "granted_height": lic.granted_height,
                        "tx_id": lic.tx_id.hex()})
        return out

    def member(self, key: bytes) -> MemberDocument | None:
        m = self.state.load(Member, member_key(key))
        if m is None:
            return None
        return {"key": key.hex(), "org": m.org, "role": m.role, "active": m.active,
                "enrolled_height": m.enrolled_height, "revoked_height": m.revoked_height}

    # ------------------------------------------------------------ EHR

    def patient(self, pid: bytes) -> PatientDocument | None:
        p = self.state.load(Patient, patient_key(pid))
        if p is None:
            return None
        return {"patient": pid.hex(), "registered_height": p.registered_height,
                "records": [self.record_head(rid) for rid in p.records]}

    def record_head(self, rid: bytes) -> RecordHead | None:
        r = self.state.load(Record, record_key(rid))
        if r is None:
            return None
        return {
            "record_id": rid.hex(), "patient": r.patient.hex(), "custodian": r.custodian,
            "resource_type": r.resource_type, "version": r.version, "created_height": r.created_height,
            "accesses": r.accesses, "erased": r.erased_height is not None, "erased_height": r.erased_height,
            "erase_tx": r.erase_tx.hex() if r.erase_tx else None,
        }

    def record(self, rid: bytes) -> RecordDocument | None:
        head = self.record_head(rid)
        if head is None:
            return None
        versions: list[RecordVersionDocument] = []
        for v in range(1, head["version"] + 1):
            rv = self.state.load(RecordVersion, version_key(rid, v))
            if rv is None:
                continue
            versions.append({
                "version": v, "commitment": rv.commitment.hex(), "author": rv.author.hex(),
                "replaces": rv.replaces, "resource_type": rv.resource_type, "height": rv.height,
                "time_ms": rv.time_ms, "tx_id": rv.tx_id.hex(),
            })
        return {**head, "versions": versions, "access_log": self.accesses(rid)}

    def accesses(self, rid: bytes, after: int | None = None, limit: int = MAX_PAGE) -> list[AccessDocument]:
        prefix = access_prefix(rid)
        start = prefix + u64(after) if after is not None else None
        out: list[AccessDocument] = []
        for key, raw in self._items(prefix, start, limit):
            a = decode(Access, raw)
            out.append({
                "record_id": rid.hex(), "seq": int.from_bytes(key[len(prefix):], "big"), "reader": a.reader.hex(),
                "reader_org": a.reader_org or None, "version": a.version, "purpose": a.purpose, "basis": a.basis,
                "break_glass": a.break_glass, "request_time_ms": a.request_time_ms, "height": a.height,
                "time_ms": a.time_ms, "tx_id": a.tx_id.hex(),
            })
        return out

    def patient_accesses(self, pid: bytes) -> list[AccessDocument] | None:
        p = self.state.load(Patient, patient_key(pid))
        if p is None:
            return None
        out: list[AccessDocument] = []
        for rid in p.records:
            out.extend(self.accesses(rid))
        out.sort(key=lambda a: (a["height"], a["record_id"], a["seq"]))
        return out

    def consents(self, pid: bytes, now_ms: int) -> list[ConsentDocument]:
        out: list[ConsentDocument] = []
        for _, raw in self._items(consent_prefix(pid), None, 256):
            c = decode(Consent, raw)
            out.append({
                "grantee_org": c.grantee_org or None, "grantee_key": c.grantee_key.hex() if c.grantee_key else None,
                "resource_types": list(c.resource_types) or "all", "expires_ms": c.expires_ms,
                "active": c.expires_ms is None or now_ms < c.expires_ms, "height": c.height, "tx_id": c.tx_id.hex(),
            })
        return out

    # ------------------------------------------------------------ supply chain

    def pack(self, gtin: str, serial: str) -> tuple[Pack, Lot | None] | None:
        p = load_pack(self.state, gtin, serial)  # as it stands: a received shipment's packs at the recipient
        if p is None:
            return None
        return p, self.state.load(Lot, lot_key(gtin, p.lot))

    def events(self, ids: tuple[bytes, ...]) -> list[Event]:
        out = []
        for tid in dict.fromkeys(ids):
            event = self.state.load(Event, event_key(tid))
            if event is not None:
                out.append(event)
        return out

    def history(self, pack: Pack, lot: Lot | None) -> list[Event]:
        """The pack's own events and its lot's (recall, quarantine, release), in ledger order."""
        events = self.events(pack.events + (lot.events if lot else ()))
        events.sort(key=lambda e: (e.height, e.time_ms))
        return events

    def lot(self, gtin: str, lot: str, after: str | None = None, limit: int = MAX_PAGE) -> LotDocument | None:
        found = self.state.load(Lot, lot_key(gtin, lot))
        if found is None:
            return None
        prefix = lot_packs_prefix(gtin, lot)
        start = prefix + after.encode() if after is not None else None
        serials = [k[len(prefix):].decode() for k, _ in self._items(prefix, start, limit)]
        return {
            "gtin": gtin, "lot": lot, "expiry": found.expiry, "manufacturer": found.manufacturer,
            "packs": found.packs, "recalled": found.recalled, "quarantined": found.suspect,
            "events": [event_json(e) for e in self.events(found.events)], "serials": serials,
        }

    def shipment(self, shipment_id: str) -> ShipmentDocument | None:
        s = self.state.load(Shipment, shipment_key(shipment_id))
        if s is None:
            return None
        return {"shipment_id": shipment_id, "from": s.from_org, "to": s.to_org, "status": s.status,
                "packs": [{"gtin": r.gtin, "serial": r.serial} for r in self._shipment_packs(shipment_id)],
                "height": s.height,
                "tx_id": s.tx_id.hex(), "received_tx_id": s.received_tx.hex() if s.received_tx else None}

    def _shipment_packs(self, shipment_id: str) -> tuple[PackRef, ...]:
        found = self.state.load(ShipmentPacks, shipment_packs_key(shipment_id))
        return found.packs if found is not None else ()

    def alerts(self, after: int | None = None, limit: int = MAX_PAGE) -> list[AlertDocument]:
        start = alert_key(after) if after is not None else None
        return [alert_json(decode(Alert, raw)) for _, raw in self._items(ALERT_PREFIX, start, limit)]

    def holds(self, limit: int = MAX_PAGE) -> list[HoldDocument]:
        """Recalls and quarantines in force, lots first by GTIN and lot, then packs."""
        out: list[HoldDocument] = []
        for key, _ in self._items(HOLD_PREFIX, None, limit):
            kind, gtin, ident = parse_hold_key(key)
            record: Lot | Pack | None
            if kind == "pack-quarantine":
                record = self.state.load(Pack, pack_key(gtin, ident))
                reason = record.suspect if record is not None else None
                event_kind = "quarantine"
            else:
                record = self.state.load(Lot, lot_key(gtin, ident))
                reason = None if record is None else record.recalled if kind == "recall" else record.suspect
                event_kind = "recall" if kind == "recall" else "quarantine"
            if record is None or reason is None:
                continue
            put = next((e for e in reversed(self.events(record.events)) if e.kind == event_kind), None)
            out.append({
                "kind": kind, "gtin": gtin, "lot": None if kind == "pack-quarantine" else ident,
                "serial": ident if kind == "pack-quarantine" else None, "reason": reason,
                "org": put.org if put else None, "height": put.height if put else None,
                "time_ms": put.time_ms if put else None, "tx_id": put.tx_id.hex() if put else None,
            })
        return out

    def epcis(self, gtin: str, serial: str, created_ms: int) -> EpcisDocument | None:
        """The pack's history as an EPCIS 2.0 document; its EPC is a fact of the GTIN (``gs1.sgtin_uri``)."""
        found = self.pack(gtin, serial)
        if found is None:
            return None
        pack, lot = found
        events = [epcis_event(event, pack) for event in self.history(pack, lot)]
        return epcis_document(gtin, serial, events, created_ms)


def epcis_event(event: Event, pack: Pack) -> EpcisPackEvent:
    """One ledger event of ``pack`` as the EPCIS exporter reads it."""
    item: EpcisPackEvent = {"kind": event.kind, "time_ms": event.time_ms, "tx_id": event.tx_id.hex(),
                            "height": event.height, "org": event.org, "lot": pack.lot, "expiry": pack.expiry}
    if event.kind == "ship":
        item["from_org"], item["to_org"], item["shipment_id"] = event.org, event.other_org, event.ref
    elif event.kind == "receive":
        item["from_org"], item["to_org"], item["shipment_id"] = event.other_org, event.org, event.ref
    elif event.kind in ("recall", "quarantine", "release", "destroy") and event.ref:
        item["reason"] = event.ref
    return item


def alert_json(a: Alert) -> AlertDocument:
    return {
        "seq": a.seq, "gtin": a.gtin, "serial": a.serial, "lot": a.lot, "expiry": a.expiry, "reason": a.reason,
        "info": a.info or None, "scanned_by": a.scanned_by, "reporter_org": a.reporter_org, "height": a.height,
        "time_ms": a.time_ms, "tx_id": a.tx_id.hex(),
    }
