"""What a proven transaction says in the ledger's terms, and whether it is the event a history shows.

``node.proofs`` proves that some signed bytes were committed; this module reads
those bytes as the application does: the action's kind (its body type, e.g.
``Dispense``) and its subject (a pack, a lot, a shipment, a record, a
document).  A history's event is bound to its proof only when the proven
action is of the event's kind, about the event's subject, and at the event's
height, time and transaction id, so a proof cannot be passed off as another
event's.  Everything here reads the verified bytes, never the readable copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from node.genesis import Genesis
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import patient_id
from node.healthcare.transactions import BODY_CODEC, Anchor
from node.proofs import InvalidProof, ProvenTransaction, check_proof
from primitives.errors import DecodeError

PACK_EVENT_BODIES: dict[str, type] = {
    "commission": b.Commission, "ship": b.Ship, "receive": b.Receive, "dispense": b.Dispense,
    "destroy": b.Destroy, "recall": b.Recall, "quarantine": b.Quarantine, "release": b.Release,
}
PATIENT_SIGNED = (b.RegisterPatient, b.GrantConsent, b.RevokeConsent, b.EraseRecords)


@dataclass(frozen=True, slots=True)
class Claim:
    """A verified proof read as the ledger's action: the transaction and what it is about."""

    proven: ProvenTransaction
    body: Any
    kind: str
    subject: dict[str, Any]  # the body's fields as JSON (bytes as hex), plus the patient id of a patient's action

    def json(self) -> dict[str, Any]:
        """What was proven, for people and scripts."""
        p = self.proven
        return {
            "chain_id": p.chain_id, "height": p.height, "block_hash": p.block_hash.hex(),
            "block_time_ms": p.block_time_ms, "proposer": p.proposer, "tx_id": p.tx_id.hex(),
            "tx_index": p.tx_index, "signer": p.signer.hex(), "signed_time_ms": p.signed_time_ms,
            "kind": self.kind, "subject": self.subject,
        }


def read_claim(doc: Any, genesis: Genesis) -> Claim:
    """Verify ``doc`` as a proof and read its action; ``InvalidProof`` says why it proves nothing."""
    proven = check_proof(doc, genesis)
    try:
        body = BODY_CODEC.decode(proven.body)
    except DecodeError as exc:
        raise InvalidProof(f"the proven transaction's body is not a ledger action: {exc}") from None
    subject = _plain(body.request) if isinstance(body, b.RecordAccess) else _plain(body)
    subject.pop("signature", None)
    subject.pop("nonce", None)
    if isinstance(body, PATIENT_SIGNED):
        subject["patient"] = patient_id(proven.signer).hex()
    return Claim(proven, body, type(body).__name__, subject)


def anchored_hash(claim: Claim) -> bytes:
    """The document hash an anchor proof carries; ``InvalidProof`` when the proof is of another action."""
    if not isinstance(claim.body, Anchor):
        raise InvalidProof(f"the proven transaction is a {claim.kind}, not a document anchor")
    return claim.body.doc_hash


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


# ---------------------------------------------------------------- binding to a history's events


def _claim_of(item: Mapping[str, Any], genesis: Genesis, key: str = "proof") -> Claim:
    if item.get(key) is None:
        raise InvalidProof(f"the {item.get('kind', 'event')} at height {item.get('height')} carries no {key}: "
                           "ask for the history with its proofs")
    return read_claim(item[key], genesis)


def _same_place(event: Mapping[str, Any], proven: ProvenTransaction) -> None:
    shown = (event.get("tx_id"), event.get("height"), event.get("time_ms"))
    real = (proven.tx_id.hex(), proven.height, proven.block_time_ms)
    if shown != real:
        raise InvalidProof(f"the event says tx {shown[0]} at height {shown[1]}, time {shown[2]}; its proof is of "
                           f"tx {real[0]} at height {real[1]}, time {real[2]}")


def _covers_pack(body: Any, gtin: str, serial: str, lot: str) -> bool:
    match body:
        case b.Commission():
            return body.gtin == gtin and body.lot == lot and serial in body.serials
        case b.Ship():
            return b.PackRef(gtin, serial) in body.packs or b.LotRef(gtin, lot) in body.lots
        case b.Dispense():
            return (body.gtin, body.serial) == (gtin, serial)
        case b.Destroy():
            return b.PackRef(gtin, serial) in body.packs
        case b.Recall():
            return (body.gtin, body.lot) == (gtin, lot)
        case b.Quarantine() | b.Release():
            return body.gtin == gtin and (body.serial == serial if body.serial is not None else body.lot == lot)
    return False


def check_pack_event(event: Mapping[str, Any], genesis: Genesis, pack: Mapping[str, Any],
                     shipments: set[str]) -> Claim:
    """The claim of ``event``'s proof, once it is bound to ``event`` of ``pack`` (gtin, serial, lot).

    ``shipments`` are the shipment ids that proven ships of this pack named so far: a receive's body names only
    its shipment, so it binds to the pack through one of them.  A ship adds its own.
    """
    claim = _claim_of(event, genesis)
    expected = PACK_EVENT_BODIES.get(str(event.get("kind")))
    if expected is None or not isinstance(claim.body, expected):
        raise InvalidProof(f"the event is a {event.get('kind')}; its proof is of a {claim.kind}")
    _same_place(event, claim.proven)
    body, gtin, serial = claim.body, str(pack.get("gtin")), str(pack.get("serial"))
    if isinstance(body, b.Receive):
        if body.shipment_id not in shipments or event.get("ref") != body.shipment_id:
            raise InvalidProof(f"the proven receive is of shipment {body.shipment_id!r}, which no proven ship of "
                               f"{gtin}/{serial} names")
        return claim
    if not _covers_pack(body, gtin, serial, str(pack.get("lot"))):
        raise InvalidProof(f"the proven {claim.kind} is not about pack {gtin}/{serial} (lot {pack.get('lot')})")
    if isinstance(body, b.Ship):
        if (event.get("ref"), event.get("other_org")) != (body.shipment_id, body.to_org):
            raise InvalidProof(f"the event names shipment {event.get('ref')!r} to {event.get('other_org')!r}; "
                               f"the proven ship is {body.shipment_id!r} to {body.to_org!r}")
        shipments.add(body.shipment_id)
    elif hasattr(body, "reason") and event.get("ref") != body.reason:
        raise InvalidProof(f"the event's reason is {event.get('ref')!r}; the proven one is {body.reason!r}")
    return claim


def check_pack_history(pack: Mapping[str, Any], genesis: Genesis) -> list[Claim]:
    """Every event of a pack document (``GET /drugs/packs/...`` with proofs), each bound to its proof."""
    shipments: set[str] = set()
    return [check_pack_event(event, genesis, pack, shipments) for event in pack.get("history", [])]


def check_record_version(version: Mapping[str, Any], genesis: Genesis, record_id: str) -> Claim:
    """The claim of one version's proof, once it is the filing of that version of ``record_id``."""
    claim = _claim_of(version, genesis)
    body = claim.body
    if not isinstance(body, b.AddRecord | b.AmendRecord):
        raise InvalidProof(f"a record version is filed by AddRecord or AmendRecord; the proof is of a {claim.kind}")
    _same_place(version, claim.proven)
    replaces = body.replaces if isinstance(body, b.AmendRecord) else None
    shown = (version.get("version"), version.get("replaces"), version.get("commitment"), version.get("author"),
             version.get("resource_type"))
    real = ((replaces or 0) + 1, replaces, body.commitment.hex(), claim.proven.signer.hex(), body.resource_type)
    if body.record_id.hex() != record_id or shown != real:
        raise InvalidProof(f"the proof files {claim.subject['record_id']} v{real[0]}, not this version of "
                           f"{record_id}")
    return claim


def check_record_access(access: Mapping[str, Any], genesis: Genesis, record_id: str) -> Claim:
    """The claim of one access log entry's proof, once it is that read of ``record_id``."""
    claim = _claim_of(access, genesis)
    if not isinstance(claim.body, b.RecordAccess):
        raise InvalidProof(f"an access is filed by RecordAccess; the proof is of a {claim.kind}")
    _same_place(access, claim.proven)
    req = claim.body.request
    shown = (access.get("reader"), access.get("purpose"), access.get("break_glass"), access.get("request_time_ms"))
    real = (req.reader.hex(), req.purpose, req.break_glass, req.time_ms)
    if req.record_id.hex() != record_id or shown != real or req.version not in (0, access.get("version")):
        raise InvalidProof(f"the proof files a read of {req.record_id.hex()} by {req.reader.hex()[:16]}, not this "
                           f"access to {record_id}")
    return claim


def check_record_erasure(record: Mapping[str, Any], genesis: Genesis) -> Claim:
    """The claim of a record's erasure proof: the record's patient erased it (by id, or all their records)."""
    claim = _claim_of({"kind": "erasure", "height": record.get("erased_height"), **record}, genesis, "erase_proof")
    body = claim.body
    if not isinstance(body, b.EraseRecords):
        raise InvalidProof(f"an erasure is filed by EraseRecords; the proof is of a {claim.kind}")
    if (record.get("erase_tx"), record.get("erased_height")) != (claim.proven.tx_id.hex(), claim.proven.height):
        raise InvalidProof("the record's erase_tx and erased_height are not those of its erasure proof")
    rid = str(record.get("record_id"))
    named = rid in claim.subject["record_ids"] or body.all_records
    if claim.subject["patient"] != record.get("patient") or not named:
        raise InvalidProof(f"the proven erasure is not of record {rid} by its patient")
    return claim


def check_record_history(record: Mapping[str, Any], genesis: Genesis) -> list[Claim]:
    """Every version, access and the erasure of a record document (``GET /ehr/records/{id}?proofs=1``)."""
    rid = str(record.get("record_id"))
    claims = [check_record_version(v, genesis, rid) for v in record.get("versions", [])]
    claims += [check_record_access(a, genesis, rid) for a in record.get("access_log", [])]
    if record.get("erased"):
        claims.append(check_record_erasure(record, genesis))
    return claims


def check_history(doc: Any, genesis: Genesis) -> tuple[str, list[Claim]]:
    """Which history ``doc`` is (a pack, a scan's pack, a record) and the claims of all its events, each bound."""
    if isinstance(doc, dict) and isinstance(doc.get("pack"), dict):
        doc = doc["pack"]  # a scan's answer (``drug verify --json``)
    if isinstance(doc, dict) and isinstance(doc.get("history"), list):
        return f"pack {doc.get('gtin')}/{doc.get('serial')}", check_pack_history(doc, genesis)
    if isinstance(doc, dict) and isinstance(doc.get("versions"), list):
        return f"record {doc.get('record_id')}", check_record_history(doc, genesis)
    raise InvalidProof("not a pack's or a record's history (the JSON of 'drug history --proofs --json', "
                       "'drug verify --json' or 'ehr history --proofs --json')")
