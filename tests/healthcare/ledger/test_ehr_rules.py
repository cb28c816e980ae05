"""EHR rules: filing, amendment, consent, audited access, break-glass and erasure."""

from __future__ import annotations

import os

from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import Access, Patient, Record, access_key, patient_key, record_key
from primitives.codec import decode
from primitives.hashing import sha256
from primitives.signing import SigningKey
from tests.healthcare.ledger.world import CHAIN, DAY, World


def _setup() -> tuple[World, dict[str, SigningKey], bytes]:
    w = World()
    keys = {
        "doc": w.member("st-mary", "physician", "doc"),
        "nurse": w.member("st-mary", "nurse"),
        "other-doc": w.member("city-general", "physician", "other-doc"),
        "other-nurse": w.member("city-general", "nurse", "other-nurse"),
    }
    alice, pid = w.patient("alice")
    keys["alice"] = alice
    return w, keys, pid


def _add(w: World, author: SigningKey, pid: bytes, rtype: str = "Observation") -> bytes:
    rid = os.urandom(16)
    w.ok(author, b.AddRecord(rid, pid, rtype, sha256(rid)))
    return rid


def _read(w: World, reader: SigningKey, rid: bytes, *, glass: bool = False, filer: SigningKey | None = None,
          time_ms: int | None = None) -> tuple[bool, str]:
    req = b.ReadRequest.signed(reader, CHAIN, rid, 0, "treatment", glass, time_ms or w.time_ms, os.urandom(16))
    result = w.run(filer or w.node("st-mary"), b.RecordAccess(req))
    return result.ok, result.code


def test_clinician_files_record_custodian_is_their_org() -> None:
    w, k, pid = _setup()
    rid = _add(w, k["doc"], pid)
    record = decode(Record, w.state.get(record_key(rid)))
    assert (record.custodian, record.version, record.patient) == ("st-mary", 1, pid)
    assert decode(Patient, w.state.get(patient_key(pid))).records == (rid,)


def test_filing_refusals() -> None:
    w, k, pid = _setup()
    w.refused(k["alice"], b.AddRecord(os.urandom(16), pid, "Observation", bytes(32)), "not-clinician")
    w.refused(w.admin("st-mary"), b.AddRecord(os.urandom(16), pid, "Observation", bytes(32)), "not-clinician")
    w.refused(k["doc"], b.AddRecord(os.urandom(16), os.urandom(16), "Observation", bytes(32)), "unknown-patient")
    w.refused(k["doc"], b.AddRecord(os.urandom(16), pid, "not a type", bytes(32)), "bad-resource-type")
    rid = _add(w, k["doc"], pid)
    w.refused(k["doc"], b.AddRecord(rid, pid, "Observation", bytes(32)), "record-exists")


def test_amendment_points_at_current_version_by_custodian_only() -> None:
    w, k, pid = _setup()
    rid = _add(w, k["doc"], pid)
    w.ok(k["nurse"], b.AmendRecord(rid, 1, "Observation", sha256(b"v2")))
    assert decode(Record, w.state.get(record_key(rid))).version == 2
    w.refused(k["doc"], b.AmendRecord(rid, 1, "Observation", sha256(b"v3")), "stale-version")
    w.refused(k["other-doc"], b.AmendRecord(rid, 2, "Observation", sha256(b"v3")), "not-custodian")
    w.refused(k["doc"], b.AmendRecord(rid, 2, "Condition", sha256(b"v3")), "type-changed")


def test_consent_lifecycle_read_refused_served_revoked_expired() -> None:
    w, k, pid = _setup()
    rid = _add(w, k["doc"], pid)
    assert _read(w, k["other-doc"], rid) == (False, "no-consent")
    w.ok(k["alice"], b.GrantConsent("city-general", None, (), None))
    assert _read(w, k["other-doc"], rid) == (True, "ok")
    access = decode(Access, w.state.get(access_key(rid, 0)))
    assert (access.reader, access.reader_org, access.basis, access.break_glass) == (
        k["other-doc"].verify_key.raw, "city-general", "consent", False)
    w.ok(k["alice"], b.RevokeConsent("city-general", None))
    assert _read(w, k["other-doc"], rid) == (False, "no-consent")
    w.ok(k["alice"], b.GrantConsent("", k["other-nurse"].verify_key.raw, ("Observation",), w.time_ms + 5_000))
    assert _read(w, k["other-nurse"], rid) == (True, "ok")
    assert _read(w, k["other-doc"], rid) == (False, "no-consent")  # the grant names one practitioner
    w.run(k["alice"], b.RegisterPatient(), advance_ms=10_000)  # time passes beyond the expiry
    assert _read(w, k["other-nurse"], rid) == (False, "no-consent")


def test_consent_by_resource_type() -> None:
    w, k, pid = _setup()
    obs = _add(w, k["doc"], pid, "Observation")
    cond = _add(w, k["doc"], pid, "Condition")
    w.ok(k["alice"], b.GrantConsent("city-general", None, ("Condition",), None))
    assert _read(w, k["other-doc"], cond) == (True, "ok")
    assert _read(w, k["other-doc"], obs) == (False, "no-consent")


def test_consent_refusals() -> None:
    w, k, _pid = _setup()
    w.refused(k["doc"], b.GrantConsent("city-general", None, (), None), "not-patient")
    w.refused(k["alice"], b.GrantConsent("nowhere", None, (), None), "unknown-org")
    w.refused(k["alice"], b.GrantConsent("city-general", k["doc"].verify_key.raw, (), None), "bad-grantee")
    w.refused(k["alice"], b.GrantConsent("city-general", None, (), w.time_ms - DAY), "already-expired")
    w.refused(k["alice"], b.RevokeConsent("city-general", None), "no-consent")


def test_custodian_and_patient_read_without_consent() -> None:
    w, k, pid = _setup()
    rid = _add(w, k["doc"], pid)
    assert _read(w, k["nurse"], rid) == (True, "ok")
    assert _read(w, k["alice"], rid) == (True, "ok")
    bases = [decode(Access, w.state.get(access_key(rid, i))).basis for i in range(2)]
    assert bases == ["custodian", "patient"]


def test_break_glass_needs_physician_and_is_flagged() -> None:
    w, k, pid = _setup()
    rid = _add(w, k["doc"], pid)
    assert _read(w, k["other-nurse"], rid, glass=True) == (False, "break-glass-refused")
    assert _read(w, k["other-doc"], rid, glass=True) == (True, "ok")
    access = decode(Access, w.state.get(access_key(rid, 0)))
    assert access.break_glass and access.basis == "break-glass"


def test_access_filing_refusals() -> None:
    w, k, pid = _setup()
    rid = _add(w, k["doc"], pid)
    assert _read(w, k["nurse"], rid, filer=w.node("city-general")) == (False, "not-custodian")
    assert _read(w, k["nurse"], rid, time_ms=w.time_ms - DAY) == (False, "stale-request")
    req = b.ReadRequest.signed(k["nurse"], CHAIN, rid, 0, "treatment", False, w.time_ms, os.urandom(16))
    forged = b.ReadRequest(req.chain_id, k["doc"].verify_key.raw, *[getattr(req, f) for f in (
        "record_id", "version", "purpose", "break_glass", "time_ms", "nonce", "signature")])
    assert w.run(w.node("st-mary"), b.RecordAccess(forged)).code == "bad-request-signature"
    assert w.run(w.node("st-mary"), b.RecordAccess(req)).ok
    assert w.run(w.node("st-mary"), b.RecordAccess(req)).code == "replayed-request"


def test_erasure_by_patient_keeps_history_and_blocks_reads() -> None:
    w, k, pid = _setup()
    first = _add(w, k["doc"], pid)
    second = _add(w, k["other-doc"], pid)
    w.refused(k["doc"], b.EraseRecords((first,), False), "not-patient")
    w.ok(k["alice"], b.EraseRecords((first,), False))
    record = decode(Record, w.state.get(record_key(first)))
    assert record.erased_height == w.height and record.version == 1
    w.refused(k["alice"], b.EraseRecords((first,), False), "already-erased")
    assert _read(w, k["nurse"], first) == (False, "erased")
    w.refused(k["doc"], b.AmendRecord(first, 1, "Observation", bytes(32)), "erased")
    w.ok(k["alice"], b.EraseRecords((), True))
    assert decode(Record, w.state.get(record_key(second))).erased_height == w.height
    w.refused(k["alice"], b.EraseRecords((), True), "nothing-to-erase")


def test_patient_cannot_erase_another_patients_record() -> None:
    w, k, pid = _setup()
    rid = _add(w, k["doc"], pid)
    bob, _ = w.patient("bob")
    w.refused(bob, b.EraseRecords((rid,), False), "not-your-record")
