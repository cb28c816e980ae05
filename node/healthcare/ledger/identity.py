"""Who is acting: organisations from genesis, enrolled members, licences and patients.

Rules:

* An organisation's admin key (genesis) enrols and revokes member keys of its
  own organisation, with a role its kind allows (``ROLE_KINDS``).
* The regulator's admin and its inspectors grant and revoke licences:
  manufacture (scope: a GS1 company prefix), distribute and dispense, each to an
  organisation of a kind that may hold it (``LICENCE_KINDS``).
* A patient registers their own key, which is then known only by its
  pseudonymous id; a key is a patient or an organisation's key, never both.
* Each node key acts for the organisation that runs the node.
"""

from __future__ import annotations

from typing import Protocol

from node.app import Rejected
from node.genesis import Organisation
from node.healthcare.ledger.bodies import EnrolMember, GrantLicence, RegisterPatient, RevokeLicence, RevokeMember
from node.healthcare.ledger.bodies import body as state_record
from node.healthcare.ledger.records import (
    Licence,
    Member,
    Patient,
    licence_key,
    member_key,
    patient_id,
    patient_key,
)
from node.healthcare.ledger.state import Ctx, Overlay

ROLE_KINDS: dict[str, tuple[str, ...]] = {
    "physician": ("hospital", "lab"),
    "nurse": ("hospital",),
    "pharmacist": ("pharmacy", "hospital"),
    "logistics": ("manufacturer", "distributor", "pharmacy", "hospital"),
    "inspector": ("regulator",),
}
LICENCE_KINDS: dict[str, tuple[str, ...]] = {
    "manufacture": ("manufacturer",),
    "distribute": ("distributor", "manufacturer"),
    "dispense": ("pharmacy", "hospital"),
}


@state_record
class Actor:
    """The signer of a transaction as the rules see it."""

    key: bytes
    org: Organisation | None
    role: str  # admin | node | a member role | patient | unknown

    @property
    def org_id(self) -> str:
        return self.org.id if self.org is not None else ""

    def is_(self, *roles: str) -> bool:
        return self.role in roles


class AddedOrgs(Protocol):
    """Organisations that joined after genesis (``node.governance``), as the state records them."""

    def by_id(self, state: Overlay, org_id: str) -> Organisation | None: ...

    def by_admin(self, state: Overlay, key: bytes) -> Organisation | None: ...


class Directory:
    """The consortium as genesis defines it, plus what the state says about a key (and the organisations a
    validator-set change brought in, through ``added``)."""

    def __init__(
        self, organisations: tuple[Organisation, ...], node_keys: dict[str, bytes], added: AddedOrgs | None = None
    ) -> None:
        self.added = added
        self.orgs = {o.id: o for o in organisations}
        self.admins = {o.admin_key.raw: o for o in organisations}
        self.nodes: dict[bytes, Organisation] = {}
        for org in organisations:
            for name in org.nodes:
                if name in node_keys:
                    self.nodes[node_keys[name]] = org

    def org(self, org_id: str, state: Overlay) -> Organisation:
        org = self.find_org(org_id, state)
        if org is None:
            raise Rejected("unknown-org", f"no organisation {org_id!r} in the consortium")
        return org

    def find_org(self, org_id: str, state: Overlay) -> Organisation | None:
        org = self.orgs.get(org_id)
        if org is None and self.added is not None:
            org = self.added.by_id(state, org_id)
        return org

    def admin_of(self, state: Overlay, key: bytes) -> Organisation | None:
        """The organisation whose admin key ``key`` is, or None."""
        org = self.admins.get(key)
        if org is None and self.added is not None:
            org = self.added.by_admin(state, key)
        return org

    def actor(self, state: Overlay, key: bytes) -> Actor:
        if key in self.admins:
            return Actor(key, self.admins[key], "admin")
        if key in self.nodes:
            return Actor(key, self.nodes[key], "node")
        member = state.load(Member, member_key(key))
        if member is not None and member.active:
            return Actor(key, self.find_org(member.org, state), member.role)
        if state.get(patient_key(patient_id(key))) is not None:
            return Actor(key, None, "patient")
        joined = self.admin_of(state, key)  # last: one more read, for an admin of an organisation that joined
        if joined is not None:
            return Actor(key, joined, "admin")
        return Actor(key, None, "unknown")

    def is_org_key(self, key: bytes, state: Overlay) -> bool:
        return key in self.nodes or self.admin_of(state, key) is not None

    # ------------------------------------------------------------ members

    def enrol(self, ctx: Ctx, body: EnrolMember) -> None:
        admin = self.admin_of(ctx.state, ctx.signer)
        if admin is None:
            raise Rejected("not-admin", "only an organisation's admin key enrols members")
        kinds = ROLE_KINDS.get(body.role)
        if kinds is None:
            raise Rejected("bad-role", f"role {body.role!r} is not one of {', '.join(ROLE_KINDS)}")
        if admin.kind not in kinds:
            raise Rejected("role-not-allowed", f"a {admin.kind} cannot enrol a {body.role}")
        if self.is_org_key(body.member, ctx.state):
            raise Rejected("key-in-use", "that key is an organisation admin or node key")
        current = ctx.state.load(Member, member_key(body.member))
        if current is not None and current.active:
            raise Rejected("already-enrolled", f"that key is already enrolled as {current.role} at {current.org}")
        if ctx.state.get(patient_key(patient_id(body.member))) is not None:
            raise Rejected("key-in-use", "that key is registered as a patient")
        ctx.state.store(member_key(body.member), Member(admin.id, body.role, True, ctx.height, None))

    def revoke(self, ctx: Ctx, body: RevokeMember) -> None:
        admin = self.admin_of(ctx.state, ctx.signer)
        if admin is None:
            raise Rejected("not-admin", "only an organisation's admin key revokes members")
        current = ctx.state.load(Member, member_key(body.member))
        if current is None or not current.active:
            raise Rejected("not-enrolled", "that key is not an enrolled member")
        if current.org != admin.id:
            raise Rejected("other-org", f"that key belongs to {current.org}, not {admin.id}")
        ctx.state.store(
            member_key(body.member), Member(current.org, current.role, False, current.enrolled_height, ctx.height)
        )

    # ------------------------------------------------------------ licences

    def _regulator(self, ctx: Ctx) -> Actor:
        actor = self.actor(ctx.state, ctx.signer)
        if actor.org is None or actor.org.kind != "regulator" or not actor.is_("admin", "inspector"):
            raise Rejected("not-regulator", "only the regulator's admin or an inspector may do this")
        return actor

    def _licence_args(self, ctx: Ctx, body: GrantLicence | RevokeLicence) -> None:
        org = self.org(body.org, ctx.state)
        kinds = LICENCE_KINDS.get(body.kind)
        if kinds is None:
            raise Rejected("bad-licence", f"licence kind {body.kind!r} is not one of {', '.join(LICENCE_KINDS)}")
        if org.kind not in kinds:
            raise Rejected("licence-not-allowed", f"a {org.kind} cannot hold a {body.kind} licence")
        if body.kind == "manufacture":
            if not (body.scope.isdigit() and 6 <= len(body.scope) <= 12):
                raise Rejected("bad-scope", "a manufacture licence is for a GS1 company prefix of 6 to 12 digits")
        elif body.scope:
            raise Rejected("bad-scope", f"a {body.kind} licence has no scope")

    def grant_licence(self, ctx: Ctx, body: GrantLicence) -> None:
        self._regulator(ctx)
        self._licence_args(ctx, body)
        key = licence_key(body.org, body.kind, body.scope)
        if ctx.state.get(key) is not None:
            raise Rejected("already-licensed", f"{body.org} already holds that {body.kind} licence")
        ctx.state.store(key, Licence(ctx.height, ctx.tx_id))

    def revoke_licence(self, ctx: Ctx, body: RevokeLicence) -> None:
        self._regulator(ctx)
        self._licence_args(ctx, body)
        key = licence_key(body.org, body.kind, body.scope)
        if ctx.state.get(key) is None:
            raise Rejected("not-licensed", f"{body.org} holds no such {body.kind} licence")
        ctx.state.delete(key)

    @staticmethod
    def licensed(state: Overlay, org: str, kind: str, scope: str = "") -> bool:
        return state.get(licence_key(org, kind, scope)) is not None

    # ------------------------------------------------------------ patients

    def register_patient(self, ctx: Ctx, body: RegisterPatient) -> None:
        if self.is_org_key(ctx.signer, ctx.state):
            raise Rejected("key-in-use", "an organisation key cannot register as a patient")
        member = ctx.state.load(Member, member_key(ctx.signer))
        if member is not None and member.active:
            raise Rejected("key-in-use", "an enrolled member key cannot register as a patient")
        pid = patient_id(ctx.signer)
        if ctx.state.get(patient_key(pid)) is not None:
            raise Rejected("already-registered", f"patient {pid.hex()} is already registered")
        ctx.state.store(patient_key(pid), Patient(ctx.signer, ctx.height, ()))
