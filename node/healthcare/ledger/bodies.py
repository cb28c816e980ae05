"""Transaction bodies of the healthcare ledger (tags 2-31; 1 is ``Anchor``).

Each body is what the signer of the enclosing ``Transaction`` asks for; who
may ask is decided by the rules (``identity``, ``ehr``, ``supply``), never by
the body.  Drug events follow EPCIS: what (GTIN + serials or a lot), when (the
block's time), where and who (the signer's organisation), why (the event kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform

from primitives.codec import Bool, Bytes, Kind, ListOf, Nested, Optional, Text, UInt, pack
from primitives.signing import SIGNATURE_SIZE, SigningKey, VerifyKey

KEY = Bytes(32, exact=True)
ID16 = Bytes(16, exact=True)
HASH = Bytes(32, exact=True)
ORG = Text(32)
ROLE = Text(16)
RTYPE = Text(64)
GTIN = Text(14)
SERIAL = Text(20)
LOT = Text(20)
EXPIRY = Text(6)
REASON = Text(200)
SHIPMENT = Text(64)
MAX_SERIALS = 2000  # per commission: 2,000 x 22 bytes stays under the 60 KiB body limit
MAX_PACKS = 2000
DOMAIN_READ = b"medchain/v1/ehr-read"
B = TypeVar("B")


@dataclass_transform(frozen_default=True)
def body(cls: type[B]) -> type[B]:
    """A ledger record (a body, or a state record: ``records.state_record``): immutable to the type
    checker, a plain slotted dataclass at run time, hashable by value.

    Every node decodes every body once, and execution builds and decodes several
    state records per transaction and shares decoded ones within a block, so
    nothing may change one (mypy refuses assignments); the run-time guard of a
    frozen dataclass (``object.__setattr__`` per field) would make every
    construction several times slower.
    """
    made: Any = dataclass(slots=True, unsafe_hash=True)(cls)
    return made  # type: ignore[no-any-return]


# ---------------------------------------------------------------- identities


@body
class EnrolMember:
    """An organisation admin enrols a member key with a role in the admin's organisation."""

    TAG: ClassVar[int] = 2
    member: bytes
    role: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (KEY, ROLE)


@body
class RevokeMember:
    TAG: ClassVar[int] = 3
    member: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (KEY,)


@body
class GrantLicence:
    """The regulator licenses an organisation: manufacture (scope: a GS1 company prefix), distribute, dispense."""

    TAG: ClassVar[int] = 4
    org: str
    kind: str
    scope: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ORG, Text(16), Text(12))


@body
class RevokeLicence:
    TAG: ClassVar[int] = 5
    org: str
    kind: str
    scope: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ORG, Text(16), Text(12))


@body
class RegisterPatient:
    """A patient registers their own key; the ledger knows them only by a pseudonymous id."""

    TAG: ClassVar[int] = 6
    SCHEMA: ClassVar[tuple[Kind, ...]] = ()


# ---------------------------------------------------------------- EHR


@body
class AddRecord:
    """A clinician files a record; the content stays in the custodian's vault, the chain keeps its commitment."""

    TAG: ClassVar[int] = 7
    record_id: bytes
    patient: bytes
    resource_type: str
    commitment: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ID16, ID16, RTYPE, HASH)


@body
class AmendRecord:
    """A new version of a record; ``replaces`` must be the current version."""

    TAG: ClassVar[int] = 8
    record_id: bytes
    replaces: int
    resource_type: str
    commitment: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ID16, UInt(2**32 - 1), RTYPE, HASH)


@body
class GrantConsent:
    """The patient lets an organisation or a practitioner read (all records, or the listed types) until an expiry."""

    TAG: ClassVar[int] = 9
    grantee_org: str
    grantee_key: bytes | None
    resource_types: tuple[str, ...]
    expires_ms: int | None
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ORG, Optional(KEY), ListOf(RTYPE, 32), Optional(UInt()))


@body
class RevokeConsent:
    TAG: ClassVar[int] = 10
    grantee_org: str
    grantee_key: bytes | None
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ORG, Optional(KEY))


@body
class ReadRequest:
    """What a reader signs to read a record (no bearer tokens): the custodian files it with the access."""

    chain_id: str
    reader: bytes
    record_id: bytes
    version: int  # 0: the current version
    purpose: str
    break_glass: bool
    time_ms: int
    nonce: bytes
    signature: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        Text(64), KEY, ID16, UInt(2**32 - 1), Text(64), Bool(), UInt(), Bytes(16, exact=True),
        Bytes(SIGNATURE_SIZE, exact=True),
    )

    def signing_payload(self) -> bytes:
        return pack([self.reader, self.record_id, self.version, self.purpose, self.break_glass, self.time_ms,
                     self.nonce])

    def check_signature(self) -> bool:
        try:
            key = VerifyKey(self.reader)
        except Exception:
            return False
        return key.verify(DOMAIN_READ, self.chain_id, self.signing_payload(), self.signature)

    @staticmethod
    def signed(key: SigningKey, chain_id: str, record_id: bytes, version: int, purpose: str, break_glass: bool,
               time_ms: int, nonce: bytes) -> ReadRequest:
        unsigned = ReadRequest(chain_id, key.verify_key.raw, record_id, version, purpose, break_glass, time_ms,
                               nonce, b"\0" * SIGNATURE_SIZE)
        sig = key.sign(DOMAIN_READ, chain_id, unsigned.signing_payload())
        return ReadRequest(chain_id, key.verify_key.raw, record_id, version, purpose, break_glass, time_ms, nonce,
                           sig)


@body
class RecordAccess:
    """The custodian files a served read: the reader's signed request is the evidence."""

    TAG: ClassVar[int] = 11
    request: ReadRequest
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Nested(ReadRequest),)


@body
class EraseRecords:
    """The patient's right to erasure: listed records, or all of them."""

    TAG: ClassVar[int] = 12
    record_ids: tuple[bytes, ...]
    all_records: bool
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ListOf(ID16, 256), Bool())


# ---------------------------------------------------------------- drug supply chain


@body
class PackRef:
    gtin: str
    serial: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, SERIAL)


@body
class LotRef:
    gtin: str
    lot: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, LOT)


@body
class Commission:
    """A licensed manufacturer registers serials of one lot (EPCIS ADD / commissioning)."""

    TAG: ClassVar[int] = 13
    gtin: str
    lot: str
    expiry: str
    serials: tuple[str, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, LOT, EXPIRY, ListOf(SERIAL, MAX_SERIALS))


@body
class Ship:
    """The current custodian sends listed packs and/or whole lots to a licensed recipient."""

    TAG: ClassVar[int] = 14
    shipment_id: str
    to_org: str
    packs: tuple[PackRef, ...]
    lots: tuple[LotRef, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (SHIPMENT, ORG, ListOf(Nested(PackRef), MAX_PACKS), ListOf(Nested(LotRef), 16))


@body
class Receive:
    TAG: ClassVar[int] = 15
    shipment_id: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (SHIPMENT,)


@body
class Dispense:
    TAG: ClassVar[int] = 16
    gtin: str
    serial: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, SERIAL)


@body
class Recall:
    TAG: ClassVar[int] = 17
    gtin: str
    lot: str
    reason: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, LOT, REASON)


@body
class Quarantine:
    """The regulator flags a lot (serial None) or one pack (serial set) as suspect."""

    TAG: ClassVar[int] = 18
    gtin: str
    lot: str | None
    serial: str | None
    reason: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, Optional(LOT), Optional(SERIAL), REASON)


@body
class Release:
    TAG: ClassVar[int] = 19
    gtin: str
    lot: str | None
    serial: str | None
    reason: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, Optional(LOT), Optional(SERIAL), REASON)


@body
class Destroy:
    TAG: ClassVar[int] = 20
    packs: tuple[PackRef, ...]
    reason: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ListOf(Nested(PackRef), MAX_PACKS), REASON)


@body
class ScanAlert:
    """A node reports a suspicious scan (unknown code, mismatch, a clone of a dispensed pack, ...)."""

    TAG: ClassVar[int] = 21
    gtin: str
    serial: str
    lot: str | None
    expiry: str | None
    reason: str  # GS1 LMS verificationFailureReason
    info: str  # GS1 LMS additionalInfo, or ""
    scanned_by: str  # who scanned (free text: a pharmacy counter, an inspector), no personal data
    SCHEMA: ClassVar[tuple[Kind, ...]] = (GTIN, SERIAL, Optional(LOT), Optional(EXPIRY), Text(40), Text(40), Text(64))


HEALTHCARE_BODIES: tuple[type, ...] = (
    EnrolMember, RevokeMember, GrantLicence, RevokeLicence, RegisterPatient,
    AddRecord, AmendRecord, GrantConsent, RevokeConsent, RecordAccess, EraseRecords,
    Commission, Ship, Receive, Dispense, Recall, Quarantine, Release, Destroy, ScanAlert,
)
