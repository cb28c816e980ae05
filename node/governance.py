"""Validator-set governance: the consortium changes who validates, on the ledger.

An organisation's admin proposes a change -- add a validator node (its
organisation, key, TLS certificate and P2P address), remove one, or replace a
node's key -- to take effect at a stated height.  Admins of other validator
organisations approve it.  Once admins of a quorum of the organisations
running validators have signed (genesis's ``governance.quorum``, 2/3 by
default: ceil(2k/3) of k organisations), the change is scheduled: from its
height on, the engine takes the new set (``consensus.membership``).

Everything here is pure and deterministic: the ledger runs it as a rule (any
application puts ``GOVERNANCE_BODIES`` in its codec and calls ``propose`` and
``approve``), and ``node.proofs`` replays it offline from a proof's certified
governance transactions.  The same function decides in both places, so a
proof can only lead to the set the ledger adopted.

Rules (each refusal names its reason):

* the signer of a proposal or approval is an organisation's admin key (genesis);
  an approval counts only for an organisation with a validator in the set in
  force at the approval's height, once per organisation; the proposer's own
  organisation counts as its first approval when it runs a validator;
* ``add``: the node's key and name are new, its certificate's key is the node
  key and its address is host:port; its organisation is one the consortium
  knows (genesis's, or one an earlier change brought in) -- or a new one,
  given with its name, kind and admin key, which joins the consortium when the
  change is decided (a hospital joins: its admin signs as any other's from then
  on); ``remove``:
  the node is a validator and one would remain (it may run on as an observer);
  ``promote``: a known node that does not validate now -- an observer in
  genesis, or a validator removed before -- validates again, with the key,
  certificate and organisation it had (an address may be given anew);
  ``replace``: the node is a validator and the new key is unused (its name and
  organisation stay);
* the stated height is at least ``ACTIVATION_DELAY`` above the block that
  carries the deciding approval, and above every change already scheduled;
  a proposal whose height passes before its quorum can never take effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import ClassVar, Protocol

from consensus.membership import ACTIVATION_DELAY, Schedule, ValidatorChange
from node.app import Rejected
from node.config import ConfigError, parse_address
from node.genesis import ORG_KINDS, Genesis, Organisation
from node.p2p.certs import certificate_key_of_pem
from primitives.codec import Bytes, Kind, ListOf, MessageCodec, Nested, Text, UInt, decode, encode
from primitives.errors import DecodeError
from primitives.signing import VerifyKey

SCHEDULE_KEY = b"gv/s"
PROPOSAL_PREFIX = b"gv/p/"
ORG_PREFIX = b"gv/o/"  # an organisation a change brought in, by id
ADMIN_PREFIX = b"gv/a/"  # its admin key -> its id
ACTIONS = ("add", "remove", "replace", "promote")
MAX_VALIDATORS = 1_000


def proposal_key(proposal_id: bytes) -> bytes:
    return PROPOSAL_PREFIX + proposal_id


# ---------------------------------------------------------------- transaction bodies


@dataclass(frozen=True, slots=True)
class ProposeValidators:
    """An organisation's admin proposes a change to the validator set, effective at ``height``."""

    TAG: ClassVar[int] = 40
    action: str
    name: str
    key: bytes
    """add: the new node's key; remove, promote: the node's key; replace: the node's new key."""
    org: str
    cert: str
    address: str
    height: int
    org_name: str = ""
    """add, for an organisation new to the consortium: its name, kind and admin key (else empty)."""
    org_kind: str = ""
    org_admin: bytes = b""
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        Text(8), Text(64), Bytes(32, exact=True), Text(32), Text(4096), Text(255), UInt(), Text(128), Text(16),
        Bytes(32),
    )


@dataclass(frozen=True, slots=True)
class ApproveValidators:
    """An organisation's admin approves a pending proposal (named by its transaction id)."""

    TAG: ClassVar[int] = 41
    proposal: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Bytes(32, exact=True),)


GOVERNANCE_BODIES: tuple[type, ...] = (ProposeValidators, ApproveValidators)
GOVERNANCE_CODEC = MessageCodec(list(GOVERNANCE_BODIES))


# ---------------------------------------------------------------- state records


@dataclass(frozen=True, slots=True)
class Validator:
    """One validator node as the network knows it (``address`` is empty for genesis nodes: configs say)."""

    name: str
    key: bytes
    org: str
    cert: str
    address: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Text(64), Bytes(32, exact=True), Text(32), Text(4096), Text(255))


@dataclass(frozen=True, slots=True)
class ScheduledSet:
    """A change the ledger adopted: from ``height`` on, ``validators`` decide.

    ``txs``: the ids of the proposal and of the approvals that made its quorum, in ledger order
    (what a proof carries to show the change).
    """

    height: int
    validators: tuple[Validator, ...]
    txs: tuple[bytes, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        UInt(), ListOf(Nested(Validator), MAX_VALIDATORS), ListOf(Bytes(32, exact=True), MAX_VALIDATORS),
    )


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    changes: tuple[ScheduledSet, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ListOf(Nested(ScheduledSet), 100_000),)


@dataclass(frozen=True, slots=True)
class Proposal:
    body: ProposeValidators
    proposer_org: str
    approvals: tuple[str, ...]  # organisations that approved, in order
    txs: tuple[bytes, ...]  # the proposal's id, then each counted approval's
    height: int  # the block that carried the proposal
    decided: int  # 0 while pending; the height of the block that scheduled it
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        Nested(ProposeValidators), Text(32), ListOf(Text(32), MAX_VALIDATORS),
        ListOf(Bytes(32, exact=True), MAX_VALIDATORS), UInt(), UInt(),
    )


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """An organisation a validator-set change brought into the consortium."""

    id: str
    name: str
    kind: str
    admin_key: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Text(32), Text(128), Text(16), Bytes(32, exact=True))

    def organisation(self) -> Organisation:
        return Organisation(self.id, self.name, self.kind, VerifyKey(self.admin_key))


def load_org(state: Reader, org_id: str) -> OrgRecord | None:
    raw = state.get(ORG_PREFIX + org_id.encode())
    return None if raw is None else decode(OrgRecord, raw)


def org_of_admin(state: Reader, key: bytes) -> OrgRecord | None:
    """The organisation a change brought in whose admin key is ``key``, or None."""
    found = state.get(ADMIN_PREFIX + key)
    return None if found is None else load_org(state, found.decode())


class State(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes | None) -> None: ...


class Reader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


def load_schedule(state: Reader) -> tuple[ScheduledSet, ...]:
    raw = state.get(SCHEDULE_KEY)
    return () if raw is None else decode(ScheduleRecord, raw).changes


def load_proposal(state: Reader, proposal_id: bytes) -> Proposal | None:
    raw = state.get(proposal_key(proposal_id))
    return None if raw is None else decode(Proposal, raw)


def engine_changes(changes: Sequence[ScheduledSet]) -> tuple[ValidatorChange, ...]:
    """The schedule as the consensus engine takes it."""
    return tuple(ValidatorChange(c.height, tuple(VerifyKey(v.key) for v in c.validators)) for c in changes)


# ---------------------------------------------------------------- the rules


class Governance:
    """The consortium's governance rules over genesis (pure: state comes in, records go out)."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.admins = {org.admin_key.raw: org.id for org in genesis.organisations}
        self.genesis_set = tuple(_validator(genesis, m.name) for m in genesis.validators)

    @property
    def quorum(self) -> Fraction:
        return self.genesis.governance_quorum

    # -- reading the schedule

    def set_at(self, changes: Sequence[ScheduledSet], height: int) -> tuple[Validator, ...]:
        current = self.genesis_set
        for change in changes:
            if change.height > height:
                break
            current = change.validators
        return current

    def latest(self, changes: Sequence[ScheduledSet]) -> tuple[int, tuple[Validator, ...]]:
        if not changes:
            return 1, self.genesis_set
        return changes[-1].height, changes[-1].validators

    def validator_orgs(self, validators: Sequence[Validator]) -> frozenset[str]:
        return frozenset(v.org for v in validators if v.org)

    def expired(self, proposal: Proposal, next_height: int) -> bool:
        """Whether ``proposal``, undecided, can no longer take effect: its quorum would come too late."""
        return not proposal.decided and _too_soon(proposal.body.height, next_height)

    def needed(self, orgs: int) -> int:
        """Approvals needed among ``orgs`` validator organisations: ceil(quorum x orgs), at least 1."""
        q = self.quorum * orgs
        return max(1, -(-q.numerator // q.denominator))

    # -- the two transactions

    def propose(
        self, signer: bytes, tx_id: bytes, height: int, body: ProposeValidators, state: State
    ) -> ScheduledSet | None:
        org = self._admin(signer, state)
        changes = load_schedule(state)
        _, latest = self.latest(changes)
        self._check_body(body, latest, changes, state)
        self._check_height(body.height, height, changes)
        proposal = Proposal(body, org, (), (tx_id,), height, 0)
        if org in self.validator_orgs(self.set_at(changes, height)):
            proposal = replace(proposal, approvals=(org,))
        return self._maybe_decide(tx_id, proposal, height, changes, state)

    def approve(
        self, signer: bytes, tx_id: bytes, height: int, body: ApproveValidators, state: State
    ) -> ScheduledSet | None:
        org = self._admin(signer, state)
        proposal = load_proposal(state, body.proposal)
        if proposal is None:
            raise Rejected("unknown-proposal", f"no validator-set proposal {body.proposal.hex()}")
        if proposal.decided:
            raise Rejected("already-decided", f"the proposal was scheduled at block {proposal.decided}")
        changes = load_schedule(state)
        if org not in self.validator_orgs(self.set_at(changes, height)):
            raise Rejected("not-a-validator-org", f"organisation {org!r} runs no validator: it cannot approve")
        if org in proposal.approvals:
            raise Rejected("already-approved", f"organisation {org!r} already approved this proposal")
        proposal = replace(proposal, approvals=(*proposal.approvals, org), txs=(*proposal.txs, tx_id))
        return self._maybe_decide(body.proposal, proposal, height, changes, state)

    def pending(self, proposal: Proposal, changes: Sequence[ScheduledSet], height: int) -> tuple[int, int]:
        """(approvals that count now, approvals needed) for ``proposal`` at ``height``."""
        orgs = self.validator_orgs(self.set_at(changes, height))
        return sum(1 for o in proposal.approvals if o in orgs), self.needed(len(orgs))

    # -- internals

    def _admin(self, signer: bytes, state: Reader) -> str:
        org = self.admins.get(signer)
        if org is None:
            added = org_of_admin(state, signer)
            org = added.id if added is not None else None
        if org is None:
            raise Rejected("not-admin", "only an organisation's admin key proposes or approves validator changes")
        return org

    def _known_org(self, org_id: str, state: Reader) -> bool:
        return self.genesis.organisation(org_id) is not None or load_org(state, org_id) is not None

    def _check_new_org(self, body: ProposeValidators, state: Reader) -> None:
        """``add`` names an organisation: a known one (and no new-organisation fields), or a new one, complete."""
        new = body.org_name or body.org_kind or body.org_admin
        if self._known_org(body.org, state):
            if new:
                raise Rejected("org-exists", f"organisation {body.org!r} is already in the consortium: leave its "
                               "name, kind and admin key out")
            return
        if not new:
            raise Rejected("unknown-org", f"no organisation {body.org!r} in the consortium (a new one needs its "
                           "name, kind and admin key)")
        if not 0 < len(body.org) <= 32 or not body.org.replace("-", "").isalnum():
            raise Rejected("bad-org", "an organisation id is 1 to 32 letters, digits or '-'")
        if not body.org_name or body.org_kind not in ORG_KINDS:
            raise Rejected("bad-org", f"a new organisation needs a name and a kind: one of {', '.join(ORG_KINDS)}")
        if len(body.org_admin) != 32:
            raise Rejected("bad-org", "a new organisation's admin key is 32 bytes")
        known_keys = {m.key.raw for m in self.genesis.nodes} | set(self.admins) | {body.key}
        if body.org_admin in known_keys or org_of_admin(state, body.org_admin) is not None:
            raise Rejected("key-in-use", "the new organisation's admin key is already a node's or an admin's")

    def _check_body(
        self, body: ProposeValidators, latest: tuple[Validator, ...], changes: Sequence[ScheduledSet], state: Reader
    ) -> None:
        if body.action not in ACTIONS:
            raise Rejected("bad-action", f"action {body.action!r} is not one of {', '.join(ACTIONS)}")
        keys = {v.key for c in changes for v in c.validators} | {m.key.raw for m in self.genesis.nodes}
        names = {v.name for c in changes for v in c.validators} | {m.name for m in self.genesis.nodes}
        member = next((v for v in latest if v.name == body.name), None)
        if body.action != "add" and (body.org_name or body.org_kind or body.org_admin):
            raise Rejected("bad-org", f"'{body.action}' brings in no organisation: leave its name, kind and admin out")
        if body.action == "promote":
            known = self._known_node(body.name, changes)
            if known is None:
                raise Rejected("unknown-node", f"no node named {body.name!r}: 'add' brings in a new one")
            if member is not None:
                raise Rejected("already-a-validator", f"{body.name!r} is a validator already")
            if known.key != body.key:
                raise Rejected("wrong-key", f"{body.name!r} has another key")
            if body.address:
                try:
                    parse_address(body.address, "address")
                except ConfigError as exc:
                    raise Rejected("bad-address", str(exc)) from None
        elif body.action == "add":
            if body.key in keys or body.name in names:
                raise Rejected("node-exists", f"a node named {body.name!r} or with that key is already known")
            self._check_new_org(body, state)
            if not body.name or len(body.name) > 64 or not body.name.replace("-", "").isalnum():
                raise Rejected("bad-name", "a node name is 1 to 64 letters, digits or '-'")
            self._check_endpoint(body)
        elif member is None:
            raise Rejected("not-a-validator", f"{body.name!r} is not a validator (in the latest scheduled set)")
        elif body.action == "remove":
            if member.key != body.key:
                raise Rejected("wrong-key", f"{body.name!r} validates with another key")
            if len(latest) == 1:
                raise Rejected("last-validator", "the last validator cannot be removed")
        else:  # replace
            if body.key in keys:
                raise Rejected("key-in-use", "the new key is already a node's")
            self._check_endpoint(body)

    def _known_node(self, name: str, changes: Sequence[ScheduledSet]) -> Validator | None:
        """The node ``name`` as last scheduled, or as genesis lists it (observers too), or None."""
        for change in reversed(changes):
            for v in change.validators:
                if v.name == name:
                    return v
        return _validator(self.genesis, name) if self.genesis.node(name) is not None else None

    def _apply(
        self, body: ProposeValidators, latest: tuple[Validator, ...], changes: Sequence[ScheduledSet]
    ) -> tuple[Validator, ...]:
        if body.action == "add":
            return (*latest, Validator(body.name, body.key, body.org, body.cert, body.address))
        if body.action == "promote":
            known = self._known_node(body.name, changes)
            assert known is not None  # checked when proposed, and nodes are never forgotten
            return (*latest, replace(known, address=body.address or known.address))
        if body.action == "remove":
            return tuple(v for v in latest if v.name != body.name)
        return tuple(
            replace(v, key=body.key, cert=body.cert, address=body.address) if v.name == body.name else v
            for v in latest
        )

    def _check_endpoint(self, body: ProposeValidators) -> None:
        try:
            cert_key = certificate_key_of_pem(body.cert)
        except ValueError as exc:
            raise Rejected("bad-certificate", f"the TLS certificate does not parse: {exc}") from None
        if cert_key != body.key:
            raise Rejected("bad-certificate", "the TLS certificate's key is not the node key")
        try:
            parse_address(body.address, "address")
        except ConfigError as exc:
            raise Rejected("bad-address", str(exc)) from None

    def _check_height(self, wanted: int, height: int, changes: Sequence[ScheduledSet]) -> None:
        if _too_soon(wanted, height):
            raise Rejected(
                "too-soon", f"height {wanted} is too soon: a change decided in block {height} takes effect at "
                f"{height + ACTIVATION_DELAY} or later",
            )
        last, _ = self.latest(changes)
        if changes and wanted <= last:
            raise Rejected("out-of-order", f"a change is already scheduled at height {last}: state a later one")

    def _maybe_decide(
        self, proposal_id: bytes, proposal: Proposal, height: int, changes: Sequence[ScheduledSet], state: State
    ) -> ScheduledSet | None:
        have, need = self.pending(proposal, changes, height)
        if have < need:
            state.put(proposal_key(proposal_id), encode(proposal))
            return None
        self._check_height(proposal.body.height, height, changes)
        body = proposal.body
        if body.action == "add" and body.org_admin:
            # A new organisation joins with the change; another change decided meanwhile may have brought in
            # one with this id or admin key.
            self._check_new_org(body, state)
            record = OrgRecord(body.org, body.org_name, body.org_kind, body.org_admin)
            state.put(ORG_PREFIX + body.org.encode(), encode(record))
            state.put(ADMIN_PREFIX + body.org_admin, body.org.encode())
        _, latest = self.latest(changes)
        scheduled = ScheduledSet(proposal.body.height, self._apply(proposal.body, latest, changes), proposal.txs)
        state.put(proposal_key(proposal_id), encode(replace(proposal, decided=height)))
        state.put(SCHEDULE_KEY, encode(ScheduleRecord((*changes, scheduled))))
        return scheduled




def _too_soon(wanted: int, height: int) -> bool:
    """A change decided in block ``height`` cannot take effect at ``wanted`` (consensus.membership)."""
    return wanted < height + ACTIVATION_DELAY


def _validator(genesis: Genesis, name: str) -> Validator:
    """Genesis's node ``name`` (a validator or an observer) as a validator record."""
    member = genesis.node(name)
    assert member is not None
    org = genesis.org_of_node(name)
    return Validator(name, member.key.raw, org.id if org is not None else "", member.cert_pem, "")


def decode_governance(body: bytes) -> ProposeValidators | ApproveValidators | None:
    """A transaction body as governance, or None when it is another kind of action."""
    try:
        found = GOVERNANCE_CODEC.decode(body)
    except DecodeError:
        return None
    return found  # type: ignore[no-any-return]


class Roster:
    """Who validates which height, by name: genesis's validators, then each scheduled change.

    The node runtime's view of the schedule: the engine's own ``Schedule`` for the keys of each height, and
    names for them (what the engine's positions mean at a height); every node known with its key,
    certificate and address.  A re-keyed node keeps its name, and its old key still names it.
    """

    def __init__(self, governance: Governance, changes: Sequence[ScheduledSet] = ()) -> None:
        self.schedule = Schedule(tuple(VerifyKey(v.key) for v in governance.genesis_set))
        self.changes: list[ScheduledSet] = []
        self.nodes: dict[str, Validator] = {v.name: v for v in governance.genesis_set}
        self._name_of: dict[bytes, str] = {m.key.raw: m.name for m in governance.genesis.nodes}
        self._names: dict[int, list[str]] = {}  # id of a ValidatorSet of the schedule -> its names
        self.extend(changes)

    def extend(self, changes: Sequence[ScheduledSet]) -> list[ScheduledSet]:
        """Add the changes not known yet (``changes`` is the whole schedule, or its new tail); the new ones."""
        last = self.changes[-1].height if self.changes else 1
        new = [c for c in changes if c.height > last]
        for change, engine in zip(new, engine_changes(new), strict=True):
            self.changes.append(change)
            self.schedule.add(engine)
            for v in change.validators:
                self.nodes[v.name] = v
                self._name_of[v.key] = v.name
        return new

    def names_at(self, height: int) -> list[str]:
        vset = self.schedule.at(height)
        names = self._names.get(id(vset))
        if names is None:
            names = self._names[id(vset)] = [self._name_of[k.raw] for k in vset.keys]
        return names

    def keys_at(self, height: int) -> tuple[VerifyKey, ...]:
        return self.schedule.at(height).keys

    def names_from(self, height: int) -> frozenset[str]:
        """Every node that validates ``height`` or a later scheduled height: who must hear consensus."""
        later = (name for start in self.schedule.starts() if start > height for name in self.names_at(start))
        return frozenset((*self.names_at(height), *later))

    def name_at(self, height: int, index: int) -> str:
        names = self.names_at(height)
        return names[index] if 0 <= index < len(names) else f"#{index}"

    def name_of(self, key: VerifyKey) -> str:
        return self._name_of[key.raw]
