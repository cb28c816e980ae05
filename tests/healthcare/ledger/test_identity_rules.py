"""Enrolment, licences and patient registration: one allowed and one refused case per rule."""

from __future__ import annotations

from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import Member, member_key
from node.healthcare.ledger.state import Overlay
from primitives.codec import decode
from tests.healthcare.ledger.world import PREFIX, World, key


def test_admin_enrols_a_role_its_kind_allows() -> None:
    w = World()
    doc = key("doc")
    w.ok(w.admin("st-mary"), b.EnrolMember(doc.verify_key.raw, "physician"))
    member = decode(Member, w.state.get(member_key(doc.verify_key.raw)))
    assert (member.org, member.role, member.active) == ("st-mary", "physician", True)
    assert w.app.directory.actor(Overlay(w.state), doc.verify_key.raw).role == "physician"


def test_enrol_refusals() -> None:
    w = World()
    doc = key("doc")
    w.refused(doc, b.EnrolMember(doc.verify_key.raw, "physician"), "not-admin")
    w.refused(w.admin("pharmacy"), b.EnrolMember(doc.verify_key.raw, "physician"), "role-not-allowed")
    w.refused(w.admin("st-mary"), b.EnrolMember(doc.verify_key.raw, "surgeon-general"), "bad-role")
    w.refused(w.admin("st-mary"), b.EnrolMember(w.admin("maker").verify_key.raw, "nurse"), "key-in-use")
    w.ok(w.admin("st-mary"), b.EnrolMember(doc.verify_key.raw, "physician"))
    w.refused(w.admin("city-general"), b.EnrolMember(doc.verify_key.raw, "nurse"), "already-enrolled")


def test_revoke_member_only_by_own_admin_and_takes_effect() -> None:
    w = World()
    nurse = w.member("st-mary", "nurse")
    w.refused(w.admin("city-general"), b.RevokeMember(nurse.verify_key.raw), "other-org")
    w.ok(w.admin("st-mary"), b.RevokeMember(nurse.verify_key.raw))
    assert w.app.directory.actor(Overlay(w.state), nurse.verify_key.raw).role == "unknown"
    w.refused(w.admin("st-mary"), b.RevokeMember(nurse.verify_key.raw), "not-enrolled")


def test_regulator_grants_and_revokes_licences() -> None:
    w = World()
    reg = w.admin("regulator")
    inspector = w.member("regulator", "inspector")
    w.ok(inspector, b.GrantLicence("maker", "manufacture", PREFIX))
    w.refused(reg, b.GrantLicence("maker", "manufacture", PREFIX), "already-licensed")
    w.ok(reg, b.RevokeLicence("maker", "manufacture", PREFIX))
    w.refused(reg, b.RevokeLicence("maker", "manufacture", PREFIX), "not-licensed")


def test_licence_refusals() -> None:
    w = World()
    reg = w.admin("regulator")
    w.refused(w.admin("maker"), b.GrantLicence("maker", "manufacture", PREFIX), "not-regulator")
    w.refused(reg, b.GrantLicence("pharmacy", "manufacture", PREFIX), "licence-not-allowed")
    w.refused(reg, b.GrantLicence("maker", "manufacture", "12"), "bad-scope")
    w.refused(reg, b.GrantLicence("dist", "distribute", "123456"), "bad-scope")
    w.refused(reg, b.GrantLicence("nobody", "distribute", ""), "unknown-org")
    w.refused(reg, b.GrantLicence("dist", "smuggle", ""), "bad-licence")


def test_patient_registers_once_and_org_keys_cannot() -> None:
    w = World()
    alice, pid = w.patient("alice")
    assert len(pid) == 16 and pid != alice.verify_key.raw[:16]
    w.refused(alice, b.RegisterPatient(), "already-registered")
    w.refused(w.node("st-mary"), b.RegisterPatient(), "key-in-use")
    nurse = w.member("st-mary", "nurse")
    w.refused(nurse, b.RegisterPatient(), "key-in-use")
    w.refused(w.admin("st-mary"), b.EnrolMember(alice.verify_key.raw, "nurse"), "key-in-use")
