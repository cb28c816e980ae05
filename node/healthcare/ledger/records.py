"""The ledger's state layout: every key the rules write, and the record stored under it.

Keys are byte strings with a short prefix per table; values are canonical
records (``primitives.codec``).  Every lookup the API needs is a key or a
prefix range here — pack -> events, lot -> packs, patient -> records, record
-> accesses — so no query walks the chain or the whole state.

=====================  ========================================  =================
key                    meaning                                    value
=====================  ========================================  =================
id/m/<key32>           an enrolled member key                     Member
id/l/<org>/<kind>/<s>  a licence (scope: company prefix or "")    Licence
ehr/p/<pid16>          a registered patient                       Patient
ehr/r/<rid16>          a record's head                            Record
ehr/v/<rid16><u32>     one version of a record                    RecordVersion
ehr/a/<rid16><u64>     one access to a record                     Access
ehr/n/<key32><nonce>   a read request already filed (no replay)   b""
ehr/c/<pid16><g>       a consent (g: b"o"+org or b"k"+key)        Consent
sc/k/<gtin14><serial>  a pack                                     Pack
sc/l/<gtin14><n><lot>  a lot (n: one byte, the lot's length)      Lot
sc/q/<lot key><serial> lot -> packs index                         b""
sc/s/<shipment id>     a shipment                                 Shipment
sc/p/<shipment id>     the packs of a shipment                    ShipmentPacks
sc/e/<tx id>           one supply-chain event (shared by its packs) Event
sc/a/<u64>             an alert raised by a scan                  Alert
sc/an                  the number of alerts                       u64
=====================  ========================================  =================
"""

from __future__ import annotations

import functools
import struct
from typing import ClassVar

from node.healthcare.ledger.bodies import (
    EXPIRY,
    GTIN,
    HASH,
    ID16,
    KEY,
    LOT,
    ORG,
    ROLE,
    RTYPE,
    SERIAL,
    SHIPMENT,
    LotRef,
    PackRef,
)
from node.healthcare.ledger.bodies import body as state_record  # state records are ledger records like bodies
from primitives.codec import Bool, Bytes, Kind, ListOf, Nested, Optional, Text, UInt
from primitives.hashing import sha256

DETAIL = Text(200)



def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def patient_id(key: bytes) -> bytes:
    """The pseudonymous id a patient key appears under on the ledger."""
    return sha256(b"medchain/v1/patient" + key)[:16]


# ---------------------------------------------------------------- keys


def member_key(key: bytes) -> bytes:
    return b"id/m/" + key


def licence_prefix(org: str) -> bytes:
    return b"id/l/" + org.encode() + b"/"


@functools.lru_cache(maxsize=4096)  # a few organisations and kinds, read by every custody event
def licence_key(org: str, kind: str, scope: str) -> bytes:
    return licence_prefix(org) + kind.encode() + b"/" + scope.encode()


def patient_key(pid: bytes) -> bytes:
    return b"ehr/p/" + pid


def record_key(rid: bytes) -> bytes:
    return b"ehr/r/" + rid


def version_key(rid: bytes, version: int) -> bytes:
    return b"ehr/v/" + rid + u32(version)


def access_prefix(rid: bytes) -> bytes:
    return b"ehr/a/" + rid


def access_key(rid: bytes, seq: int) -> bytes:
    return access_prefix(rid) + u64(seq)


def read_nonce_key(reader: bytes, nonce: bytes) -> bytes:
    return b"ehr/n/" + reader + nonce


def consent_prefix(pid: bytes) -> bytes:
    return b"ehr/c/" + pid


def grantee_id(org: str, key: bytes | None) -> bytes:
    return b"k" + key if key is not None else b"o" + org.encode()


def consent_key(pid: bytes, org: str, key: bytes | None) -> bytes:
    return consent_prefix(pid) + grantee_id(org, key)


def pack_key(gtin: str, serial: str) -> bytes:
    return b"sc/k/" + gtin.encode() + serial.encode()


@functools.lru_cache(maxsize=65_536)  # every pack of a shipment names its lot again
def _lot_part(gtin: str, lot: str) -> bytes:
    raw = lot.encode()
    return gtin.encode() + bytes([len(raw)]) + raw


def lot_key(gtin: str, lot: str) -> bytes:
    return b"sc/l/" + _lot_part(gtin, lot)


HOLD_PREFIX = b"sc/h/"  # lots recalled, lots and packs quarantined: what the regulator's view lists


def recall_hold_key(gtin: str, lot: str) -> bytes:
    return HOLD_PREFIX + b"r" + _lot_part(gtin, lot)


def lot_hold_key(gtin: str, lot: str) -> bytes:
    return HOLD_PREFIX + b"l" + _lot_part(gtin, lot)


def pack_hold_key(gtin: str, serial: str) -> bytes:
    return HOLD_PREFIX + b"p" + gtin.encode() + serial.encode()


def parse_hold_key(key: bytes) -> tuple[str, str, str]:
    """(kind, gtin, lot or serial) of a hold key: kind is recall, lot-quarantine or pack-quarantine."""
    rest = key[len(HOLD_PREFIX):]
    tag, gtin = rest[:1], rest[1:15].decode()
    if tag == b"p":
        return "pack-quarantine", gtin, rest[15:].decode()
    return ("recall" if tag == b"r" else "lot-quarantine"), gtin, rest[16:16 + rest[15]].decode()


def lot_packs_prefix(gtin: str, lot: str) -> bytes:
    return b"sc/q/" + _lot_part(gtin, lot)


def lot_pack_key(gtin: str, lot: str, serial: str) -> bytes:
    return lot_packs_prefix(gtin, lot) + serial.encode()


def shipment_packs_key(shipment_id: str) -> bytes:
    return b"sc/p/" + shipment_id.encode()


def shipment_key(shipment_id: str) -> bytes:
    return b"sc/s/" + shipment_id.encode()


def event_key(tx_id: bytes) -> bytes:
    return b"sc/e/" + tx_id


ALERT_PREFIX = b"sc/a/"
ALERT_COUNT = b"sc/an"


def alert_key(seq: int) -> bytes:
    return ALERT_PREFIX + u64(seq)


# ---------------------------------------------------------------- identities


@state_record
class Member:
    org: str
    role: str
    active: bool
    enrolled_height: int
    revoked_height: int | None
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ORG, ROLE, Bool(), UInt(), Optional(UInt()))


@state_record
class Licence:
    granted_height: int
    tx_id: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), HASH)


@state_record
class Patient:
    key: bytes
    registered_height: int
    records: tuple[bytes, ...]  # patient -> records index
    SCHEMA: ClassVar[tuple[Kind, ...]] = (KEY, UInt(), ListOf(ID16, 100_000))


# ---------------------------------------------------------------- EHR


@state_record
class Record:
    patient: bytes
    custodian: str
    resource_type: str
    version: int
    created_height: int
    accesses: int
    erased_height: int | None
    erase_tx: bytes | None
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ID16, ORG, RTYPE, UInt(), UInt(), UInt(), Optional(UInt()), Optional(HASH))


@state_record
class RecordVersion:
    commitment: bytes
    author: bytes
    replaces: int | None
    resource_type: str
    height: int
    time_ms: int
    tx_id: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (HASH, KEY, Optional(UInt()), RTYPE, UInt(), UInt(), HASH)


@state_record
class Access:
    reader: bytes
    reader_org: str  # "" for the patient
    version: int
    purpose: str
    basis: str  # custodian | consent | patient | break-glass
    break_glass: bool
    request_time_ms: int
    height: int
    time_ms: int
    tx_id: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        KEY, ORG, UInt(), Text(64), Text(16), Bool(), UInt(), UInt(), UInt(), HASH,
    )


@state_record
class Consent:
    grantee_org: str
    grantee_key: bytes | None
    resource_types: tuple[str, ...]  # empty: every type
    expires_ms: int | None
    height: int
    tx_id: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ORG, Optional(KEY), ListOf(RTYPE, 32), Optional(UInt()), UInt(), HASH)


# ---------------------------------------------------------------- supply chain


@state_record
class Event:
    """One EPCIS-style event in a pack's or a lot's history."""

    kind: str
    tx_id: bytes
    height: int
    time_ms: int
    org: str
    other_org: str  # ship: the recipient; receive: the sender
    ref: str  # shipment id, or the reason of a recall / quarantine / destroy
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Text(16), HASH, UInt(), UInt(), ORG, ORG, DETAIL)


@state_record
class Pack:
    lot: str
    expiry: str
    state: str  # active | in_transit | dispensed | destroyed
    custodian: str
    manufacturer: str
    suspect: str | None  # the quarantine reason of this one pack
    shipment: str | None
    events: tuple[bytes, ...]  # tx ids of its events (``event_key``): one event record serves a whole lot's packs
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        LOT, EXPIRY, Text(16), ORG, ORG, Optional(DETAIL), Optional(SHIPMENT), ListOf(Bytes(32), 10_000),
    )


@state_record
class Lot:
    expiry: str
    manufacturer: str
    packs: int
    recalled: str | None  # the recall reason
    suspect: str | None  # the quarantine reason
    events: tuple[bytes, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        EXPIRY, ORG, UInt(), Optional(DETAIL), Optional(DETAIL), ListOf(Bytes(32), 10_000),
    )


@state_record
class Shipment:
    """Packs on their way; a receive settles them all here, without rewriting each pack (``supply.settled``).

    Every read of a pack from a shipment reads this record, so it stays small:
    the list of its packs is a record of its own (``ShipmentPacks``).
    """

    from_org: str
    to_org: str
    height: int
    tx_id: bytes
    lots: tuple[LotRef, ...]  # the lots its packs belong to: a receive checks recalls, quarantine and expiry here
    suspects: int  # its packs quarantined one by one while it is open
    received_tx: bytes | None  # the receive's event (tx id); None while it is open
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        ORG, ORG, UInt(), HASH, ListOf(Nested(LotRef), 100_000), UInt(), Optional(HASH),
    )

    @property
    def status(self) -> str:
        return "open" if self.received_tx is None else "received"


@state_record
class ShipmentPacks:
    packs: tuple[PackRef, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ListOf(Nested(PackRef), 100_000),)


@state_record
class Alert:
    seq: int
    gtin: str
    serial: str
    lot: str | None
    expiry: str | None
    reason: str
    info: str
    scanned_by: str
    reporter_org: str
    height: int
    time_ms: int
    tx_id: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        UInt(), GTIN, SERIAL, Optional(LOT), Optional(EXPIRY), Text(40), Text(40), Text(64), ORG, UInt(), UInt(), HASH,
    )
