"""The JSON documents the healthcare views and service hand to the API.

Each is a ``TypedDict``: the routes serialise it as it is, so the keys here
are the wire format clients read (in the order the code that builds each one
writes them).  Bytes travel as hex strings.  Names that are not Python identifiers (``from``, ``@context``) use
the functional ``TypedDict`` form.
"""

# No ``from __future__ import annotations``: ``NotRequired`` must be seen when the
# class is built, so that ``__required_keys__`` is right for whoever inspects it.

from typing import Any, Literal, NotRequired, TypedDict

from node.documents import ProofDocument, TxStatus

# ------------------------------------------------------------ identities


class LicenceDocument(TypedDict):
    kind: str
    scope: str | None
    granted_height: int
    tx_id: str


class OrganisationDocument(TypedDict):
    id: str
    name: str
    kind: str
    admin_key: str
    nodes: list[str]
    licences: list[LicenceDocument]


class MemberDocument(TypedDict):
    key: str
    org: str
    role: str
    active: bool
    enrolled_height: int
    revoked_height: int | None


class AnchorDocument(TypedDict):
    """``GET /anchors/{hash}``: where and by whom a document's hash was anchored."""

    sha256: str
    height: int
    tx_id: str
    label: str
    signer: str


# ------------------------------------------------------------ EHR


class RecordHead(TypedDict):
    """What the ledger holds of a record, without its versions and accesses."""

    record_id: str
    patient: str
    custodian: str
    resource_type: str
    version: int
    created_height: int
    accesses: int
    erased: bool
    erased_height: int | None
    erase_tx: str | None


class RecordVersionDocument(TypedDict):
    version: int
    commitment: str
    author: str
    replaces: int | None
    resource_type: str
    height: int
    time_ms: int
    tx_id: str
    proof: NotRequired[ProofDocument | None]  # when proofs are asked for (``?proofs=1``)


class AccessDocument(TypedDict):
    """One audited read of a record, as the ledger filed it."""

    record_id: str
    seq: int
    reader: str
    reader_org: str | None
    version: int
    purpose: str
    basis: str
    break_glass: bool
    request_time_ms: int
    height: int
    time_ms: int
    tx_id: str
    proof: NotRequired[ProofDocument | None]  # in a record's history when proofs are asked for


class RecordDocument(RecordHead):
    """``GET /ehr/records/{rid}``: the record's head, every version, and its access log."""

    versions: list[RecordVersionDocument]
    access_log: list[AccessDocument]


class ProvenRecordDocument(RecordDocument):
    """``GET /ehr/records/{rid}?proofs=1``: each version and access carries its ``proof``, the erasure its own."""

    erase_proof: ProofDocument | None  # null while the record is not erased


class PatientDocument(TypedDict):
    patient: str
    registered_height: int
    records: list[RecordHead | None]


class ConsentDocument(TypedDict):
    grantee_org: str | None
    grantee_key: str | None
    resource_types: list[str] | Literal["all"]
    expires_ms: int | None
    active: bool
    height: int
    tx_id: str


class FiledRecord(TxStatus):
    """``POST /ehr/records``: the filing transaction's outcome, and the record it filed."""

    record_id: str
    version: int


class CommittedRecord(FiledRecord):
    """A filing that committed also names the record's custodian and FHIR resource type."""

    custodian: str
    resource_type: str


class ServedRecord(TypedDict):
    """``POST /ehr/records/{rid}/read``: the decrypted content, and the access the ledger filed for it."""

    record_id: str
    version: int
    resource_type: str
    resource: Any  # the FHIR resource as filed: free-form JSON, validated when it was filed
    break_glass: bool
    access_tx: str
    access_height: int


# ------------------------------------------------------------ supply chain


class EventDocument(TypedDict):
    """One event of a pack's or a lot's history."""

    kind: str
    tx_id: str
    height: int
    time_ms: int
    org: str
    other_org: str | None
    ref: str | None
    proof: NotRequired[ProofDocument | None]  # in a pack's history when proofs are asked for


class PackDocument(TypedDict):
    gtin: str
    serial: str
    lot: str
    expiry: str
    status: str
    info: str | None
    custodian: str
    manufacturer: str
    shipment: str | None
    quarantined: str | None
    recalled: str | None
    history: list[EventDocument]


class LotDocument(TypedDict):
    gtin: str
    lot: str
    expiry: str
    manufacturer: str
    packs: int
    recalled: str | None
    quarantined: str | None
    events: list[EventDocument]
    serials: list[str]


class PackRefDocument(TypedDict):
    gtin: str
    serial: str


ShipmentDocument = TypedDict(
    "ShipmentDocument",
    {
        "shipment_id": str,
        "from": str,
        "to": str,
        "status": str,
        "packs": list[PackRefDocument],
        "height": int,
        "tx_id": str,
        "received_tx_id": str | None,
    },
)


class HoldDocument(TypedDict):
    """A recall or quarantine in force: what it holds, why, and the transaction that put it."""

    kind: str  # recall, lot-quarantine or pack-quarantine
    gtin: str
    lot: str | None
    serial: str | None
    reason: str
    org: str | None  # the organisation that put it
    height: int | None
    time_ms: int | None
    tx_id: str | None


class AlertDocument(TypedDict):
    seq: int
    gtin: str
    serial: str
    lot: str | None
    expiry: str | None
    reason: str
    info: str | None
    scanned_by: str
    reporter_org: str
    height: int
    time_ms: int
    tx_id: str


class ScannedCode(TypedDict):
    gtin: str
    serial: str
    lot: str | None
    expiry: str | None


class AlertRefused(TypedDict):
    """The alert a scan called for could not be submitted: the API error that refused it."""

    error: str
    message: str


class Verification(TypedDict):
    """``/drugs/verify``: the verdict on a scanned code, the pack as the ledger knows it, and any alert filed."""

    code: ScannedCode
    verified: bool
    status: str
    verificationFailureReason: str | None
    additionalInfo: str | None
    pack: PackDocument | None
    alert: TxStatus | AlertRefused | None


class EpcisPackEvent(TypedDict):
    """One event of a pack as the EPCIS exporter (``node.healthcare.epcis``) reads it."""

    kind: str
    time_ms: int
    tx_id: str
    height: int
    org: str
    lot: str
    expiry: str
    from_org: NotRequired[str]
    to_org: NotRequired[str]
    shipment_id: NotRequired[str]
    reason: NotRequired[str]


class EpcisId(TypedDict):
    id: str


class EpcisBizTransaction(TypedDict):
    type: str
    bizTransaction: str


class EpcisSource(TypedDict):
    type: str
    source: str


class EpcisDestination(TypedDict):
    type: str
    destination: str


EpcisIlmd = TypedDict("EpcisIlmd", {"cbvmda:lotNumber": str, "cbvmda:itemExpirationDate": str}, total=False)

EpcisObjectEvent = TypedDict(
    "EpcisObjectEvent",
    {
        "type": str,
        "eventTime": str,
        "eventTimeZoneOffset": str,
        "recordTime": str,
        "eventID": str,
        "epcList": list[str],
        "action": str,
        "bizStep": str,
        "disposition": str,
        "readPoint": EpcisId,
        "bizLocation": NotRequired[EpcisId],
        "bizTransactionList": NotRequired[list[EpcisBizTransaction]],
        "sourceList": NotRequired[list[EpcisSource]],
        "destinationList": NotRequired[list[EpcisDestination]],
        "ilmd": NotRequired[EpcisIlmd],
        "medchain:event": str,
        "medchain:txId": str,
        "medchain:height": int,
        "medchain:reason": NotRequired[str],
    },
)


class EpcisBody(TypedDict):
    eventList: list[EpcisObjectEvent]


EpcisDocument = TypedDict(
    "EpcisDocument",
    {
        "@context": list[str | dict[str, str]],
        "type": str,
        "schemaVersion": str,
        "creationDate": str,
        "epcisBody": EpcisBody,
    },
)
