"""Electronic health records: filing, amendment, consent, audited access and erasure.

Rules:

* A physician or nurse enrolled at a hospital or lab files a record for a
  registered patient; their organisation becomes its custodian.  Only
  clinicians of the custodian amend it, and an amendment names the version it
  replaces (which must be the current one).
* The custodian may always read its records; the patient may read their own;
  anyone else needs a consent of the patient on the ledger, for their key or
  their organisation, covering the record's type and not expired at that time.
  Revocation takes effect from the next block.
* A read is filed by the custodian with the reader's signed request; the rules
  check the signature, the request's freshness, that its nonce is new and the
  basis at the block's time.  Break-glass needs an enrolled physician and is
  always flagged.
* Erasure, asked by the patient, marks records erased: the commitments and
  events stay on the ledger, custodians shred the content off-chain, and no
  further amendment or access is filed.
"""

from __future__ import annotations

from node.app import Rejected
from node.healthcare.ledger.bodies import (
    AddRecord,
    AmendRecord,
    EraseRecords,
    GrantConsent,
    ReadRequest,
    RecordAccess,
    RevokeConsent,
)
from node.healthcare.ledger.identity import Actor, Directory
from node.healthcare.ledger.records import (
    Access,
    Consent,
    Patient,
    Record,
    RecordVersion,
    access_key,
    consent_key,
    patient_id,
    patient_key,
    read_nonce_key,
    record_key,
    version_key,
)
from node.healthcare.ledger.state import Ctx, Overlay

CLINICIANS = ("physician", "nurse")
REQUEST_SKEW_MS = 10 * 60 * 1000


def _resource_type_ok(name: str) -> bool:
    return bool(name) and name[0].isupper() and name.isalnum()


def load_record(state: Overlay, rid: bytes) -> Record:
    record = state.load(Record, record_key(rid))
    if record is None:
        raise Rejected("unknown-record", f"no record {rid.hex()}")
    return record


def consent_basis(state: Overlay, record: Record, reader: Actor, now_ms: int) -> str | None:
    """Why ``reader`` may read ``record`` at ``now_ms`` (custodian, patient, consent), or None."""
    if reader.org is not None and reader.org.id == record.custodian and reader.role != "unknown":
        return "custodian"
    if reader.role == "patient" and patient_id(reader.key) == record.patient:
        return "patient"
    grants = [consent_key(record.patient, "", reader.key)]
    if reader.org is not None and reader.role != "unknown":
        grants.append(consent_key(record.patient, reader.org.id, None))
    for key in grants:
        consent = state.load(Consent, key)
        if consent is None:
            continue
        if consent.expires_ms is not None and now_ms >= consent.expires_ms:
            continue
        if consent.resource_types and record.resource_type not in consent.resource_types:
            continue
        return "consent"
    return None


class Ehr:
    def __init__(self, chain_id: str, directory: Directory) -> None:
        self.chain_id = chain_id
        self.directory = directory

    def _clinician(self, ctx: Ctx) -> Actor:
        actor = self.directory.actor(ctx.state, ctx.signer)
        if not actor.is_(*CLINICIANS) or actor.org is None or actor.org.kind not in ("hospital", "lab"):
            raise Rejected("not-clinician", "only a physician or nurse enrolled at a hospital or lab files records")
        return actor

    def add(self, ctx: Ctx, body: AddRecord) -> None:
        actor = self._clinician(ctx)
        assert actor.org is not None
        if not _resource_type_ok(body.resource_type):
            raise Rejected("bad-resource-type", f"{body.resource_type!r} is not a FHIR resource type name")
        patient = ctx.state.load(Patient, patient_key(body.patient))
        if patient is None:
            raise Rejected("unknown-patient", f"no registered patient {body.patient.hex()}")
        if ctx.state.get(record_key(body.record_id)) is not None:
            raise Rejected("record-exists", f"record {body.record_id.hex()} already exists")
        ctx.state.store(
            record_key(body.record_id),
            Record(body.patient, actor.org.id, body.resource_type, 1, ctx.height, 0, None, None),
        )
        ctx.state.store(
            version_key(body.record_id, 1),
            RecordVersion(body.commitment, ctx.signer, None, body.resource_type, ctx.height, ctx.time_ms, ctx.tx_id),
        )
        ctx.state.store(
            patient_key(body.patient),
            Patient(patient.key, patient.registered_height, (*patient.records, body.record_id)),
        )

    def amend(self, ctx: Ctx, body: AmendRecord) -> None:
        actor = self._clinician(ctx)
        record = load_record(ctx.state, body.record_id)
        if record.erased_height is not None:
            raise Rejected("erased", f"record {body.record_id.hex()} was erased")
        if actor.org_id != record.custodian:
            raise Rejected("not-custodian", f"only clinicians of {record.custodian} amend this record")
        if body.replaces != record.version:
            raise Rejected("stale-version", f"the record is at version {record.version}, not {body.replaces}")
        if body.resource_type != record.resource_type:
            raise Rejected("type-changed", f"the record is a {record.resource_type}, not a {body.resource_type}")
        version = record.version + 1
        ctx.state.store(
            version_key(body.record_id, version),
            RecordVersion(body.commitment, ctx.signer, body.replaces, body.resource_type, ctx.height, ctx.time_ms,
                          ctx.tx_id),
        )
        ctx.state.store(
            record_key(body.record_id),
            Record(record.patient, record.custodian, record.resource_type, version, record.created_height,
                   record.accesses, None, None),
        )

    # ------------------------------------------------------------ consent

    def _patient(self, ctx: Ctx) -> bytes:
        pid = patient_id(ctx.signer)
        if ctx.state.get(patient_key(pid)) is None:
            raise Rejected("not-patient", "only a registered patient manages consent and erasure")
        return pid

    def _grantee(self, ctx: Ctx, org: str, key: bytes | None) -> None:
        if (org == "") == (key is None):
            raise Rejected("bad-grantee", "name exactly one grantee: an organisation or a practitioner key")
        if org:
            self.directory.org(org, ctx.state)

    def grant(self, ctx: Ctx, body: GrantConsent) -> None:
        pid = self._patient(ctx)
        self._grantee(ctx, body.grantee_org, body.grantee_key)
        if body.grantee_key == ctx.signer:
            raise Rejected("bad-grantee", "a patient needs no consent to read their own records")
        for name in body.resource_types:
            if not _resource_type_ok(name):
                raise Rejected("bad-resource-type", f"{name!r} is not a FHIR resource type name")
        if len(set(body.resource_types)) != len(body.resource_types):
            raise Rejected("bad-resource-type", "a resource type is listed twice")
        if body.expires_ms is not None and body.expires_ms <= ctx.time_ms:
            raise Rejected("already-expired", "the consent's expiry is not after the block's time")
        ctx.state.store(
            consent_key(pid, body.grantee_org, body.grantee_key),
            Consent(body.grantee_org, body.grantee_key, tuple(sorted(body.resource_types)), body.expires_ms,
                    ctx.height, ctx.tx_id),
        )

    def revoke(self, ctx: Ctx, body: RevokeConsent) -> None:
        pid = self._patient(ctx)
        self._grantee(ctx, body.grantee_org, body.grantee_key)
        key = consent_key(pid, body.grantee_org, body.grantee_key)
        if ctx.state.get(key) is None:
            raise Rejected("no-consent", "there is no such consent to revoke")
        ctx.state.delete(key)

    # ------------------------------------------------------------ access

    def access(self, ctx: Ctx, body: RecordAccess) -> None:
        req: ReadRequest = body.request
        record = load_record(ctx.state, req.record_id)
        filer = self.directory.actor(ctx.state, ctx.signer)
        if filer.org_id != record.custodian or filer.role in ("patient", "unknown"):
            raise Rejected("not-custodian", f"only {record.custodian} files accesses to this record")
        if req.chain_id != self.chain_id:  # its signature is checked with the transaction's (precheck)
            raise Rejected("bad-request-signature", f"the read request is for chain {req.chain_id!r}")
        if abs(req.time_ms - ctx.time_ms) > REQUEST_SKEW_MS:
            raise Rejected("stale-request", "the read request's time is more than 10 minutes from the block's")
        if record.erased_height is not None:
            raise Rejected("erased", f"record {req.record_id.hex()} was erased")
        version = req.version or record.version
        if version > record.version:
            raise Rejected("unknown-version", f"the record has {record.version} versions")
        nonce = read_nonce_key(req.reader, req.nonce)
        if ctx.state.get(nonce) is not None:
            raise Rejected("replayed-request", "that read request was already filed")
        reader = self.directory.actor(ctx.state, req.reader)
        if req.break_glass:
            if not reader.is_("physician") or reader.org is None:
                raise Rejected("break-glass-refused", "break-glass access needs an enrolled physician")
            basis = "break-glass"
        else:
            found = consent_basis(ctx.state, record, reader, ctx.time_ms)
            if found is None:
                raise Rejected("no-consent", "the patient has not consented to this reader for this record")
            basis = found
        ctx.state.put(nonce, b"")
        ctx.state.store(
            access_key(req.record_id, record.accesses),
            Access(req.reader, reader.org_id, version, req.purpose, basis, req.break_glass, req.time_ms, ctx.height,
                   ctx.time_ms, ctx.tx_id),
        )
        ctx.state.store(
            record_key(req.record_id),
            Record(record.patient, record.custodian, record.resource_type, record.version, record.created_height,
                   record.accesses + 1, None, None),
        )

    # ------------------------------------------------------------ erasure

    def erase(self, ctx: Ctx, body: EraseRecords) -> None:
        pid = self._patient(ctx)
        patient = ctx.state.load(Patient, patient_key(pid))
        assert patient is not None
        if body.all_records == bool(body.record_ids):
            raise Rejected("bad-erasure", "name the records to erase, or ask for all of them, not both")
        targets = patient.records if body.all_records else body.record_ids
        erased = 0
        for rid in targets:
            record = load_record(ctx.state, rid)
            if record.patient != pid:
                raise Rejected("not-your-record", f"record {rid.hex()} is not yours")
            if record.erased_height is not None:
                if body.all_records:
                    continue
                raise Rejected("already-erased", f"record {rid.hex()} is already erased")
            ctx.state.store(
                record_key(rid),
                Record(record.patient, record.custodian, record.resource_type, record.version, record.created_height,
                       record.accesses, ctx.height, ctx.tx_id),
            )
            erased += 1
        if not erased:
            raise Rejected("nothing-to-erase", "every record is already erased")
