"""Validator-set governance on the ledger, and proofs that follow it (pure: no node, no disk).

The rules (``node.governance``): an organisation admin proposes, admins of a
quorum of validator organisations approve, the change takes effect at its
stated height.  Proofs (``node.proofs``) after a change carry the governance
transactions, and the checker replays them from genesis alone.
"""

import copy

import pytest

from consensus.messages import DOMAIN_COMMIT, Block, BlockHeader, CommitCertificate, Vote, vote_payload
from node.app import Rejected
from node.genesis import GenesisError, parse_genesis
from node.governance import (
    GOVERNANCE_CODEC,
    SCHEDULE_KEY,
    ApproveValidators,
    Governance,
    ProposeValidators,
    load_org,
    load_proposal,
    load_schedule,
    org_of_admin,
)
from node.healthcare.application import Application
from node.healthcare.ledger.bodies import EnrolMember
from node.healthcare.transactions import Anchor, make_transaction
from node.p2p.certs import make_certificate
from node.proofs import InvalidProof, build_proof, check_proof
from node.transaction import sign_transaction, tx_id
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey

CHAIN = "gov-test"
NODES = [SigningKey.from_seed_text(f"gov-node-{i}") for i in range(7)]
ADMINS = [SigningKey.from_seed_text(f"gov-admin-{i}") for i in range(7)]
CLIENT = SigningKey.from_seed_text("gov-client")
CERTS = [make_certificate(k)[0] for k in NODES]


def _genesis(quorum: str | None = None):
    raw = {
        "chain_id": CHAIN,
        "genesis_time_ms": 1_000,
        "validators": [{"name": f"v{i}", "key": NODES[i].verify_key.hex(), "cert": CERTS[i]} for i in range(4)],
        "observers": [{"name": "v5", "key": NODES[5].verify_key.hex(), "cert": CERTS[5]}],
        "clients": [{"name": "client", "key": CLIENT.verify_key.hex()}],
        "organisations": [
            {"id": f"org{i}", "name": f"Org {i}", "kind": "hospital", "admin_key": ADMINS[i].verify_key.hex(),
             "nodes": [f"v{i}"] if i != 4 else []}
            for i in range(6)
        ],
    }
    if quorum is not None:
        raw["governance"] = {"quorum": quorum}
    return parse_genesis(raw)


GENESIS = _genesis()


def _add(i: int, height: int, **changes) -> ProposeValidators:
    fields = {"action": "add", "name": f"v{i}", "key": NODES[i].verify_key.raw, "org": f"org{i}", "cert": CERTS[i],
              "address": f"10.0.0.{i}:7000", "height": height}
    fields.update(changes)
    return ProposeValidators(**fields)


def _remove(i: int, height: int) -> ProposeValidators:
    return ProposeValidators("remove", f"v{i}", NODES[i].verify_key.raw, "", "", "", height)


class DictState(dict):
    def put(self, key, value):
        self[key] = value


# ---------------------------------------------------------------- the rules


def test_a_change_takes_effect_once_a_quorum_of_validator_organisations_approved():
    gov, state = Governance(GENESIS), DictState()
    assert gov.needed(4) == 3 and gov.needed(5) == 4 and gov.needed(1) == 1
    pid = b"p" * 32
    assert gov.propose(ADMINS[0].verify_key.raw, pid, 10, _add(4, 20), state) is None
    assert gov.approve(ADMINS[1].verify_key.raw, b"a" * 32, 11, ApproveValidators(pid), state) is None
    assert load_schedule(state) == ()
    scheduled = gov.approve(ADMINS[2].verify_key.raw, b"b" * 32, 12, ApproveValidators(pid), state)
    assert scheduled is not None and scheduled.height == 20
    assert [v.name for v in scheduled.validators] == ["v0", "v1", "v2", "v3", "v4"]
    assert scheduled.txs == (pid, b"a" * 32, b"b" * 32)
    assert load_schedule(state) == (scheduled,)
    assert load_proposal(state, pid).decided == 12
    assert [v.name for v in gov.set_at(load_schedule(state), 19)] == ["v0", "v1", "v2", "v3"]
    with pytest.raises(Rejected, match="scheduled at block 12"):
        gov.approve(ADMINS[3].verify_key.raw, b"c" * 32, 13, ApproveValidators(pid), state)


def test_a_proposal_without_a_quorum_never_takes_effect():
    gov, state = Governance(GENESIS), DictState()
    pid = b"p" * 32
    gov.propose(ADMINS[0].verify_key.raw, pid, 10, _add(4, 20), state)
    gov.approve(ADMINS[1].verify_key.raw, b"a" * 32, 11, ApproveValidators(pid), state)
    # the same organisation again, and organisations without a validator, do not count
    with pytest.raises(Rejected) as again:
        gov.approve(ADMINS[1].verify_key.raw, b"x" * 32, 12, ApproveValidators(pid), state)
    assert again.value.code == "already-approved"
    for outsider in (4, 5):
        with pytest.raises(Rejected) as refused:
            gov.approve(ADMINS[outsider].verify_key.raw, b"y" * 32, 12, ApproveValidators(pid), state)
        assert refused.value.code == "not-a-validator-org"
    # the quorum arrives after the stated height: too late, and nothing is scheduled
    with pytest.raises(Rejected) as late:
        gov.approve(ADMINS[2].verify_key.raw, b"z" * 32, 19, ApproveValidators(pid), state)
    assert late.value.code == "too-soon"
    assert load_schedule(state) == () and SCHEDULE_KEY not in state
    assert gov.pending(load_proposal(state, pid), (), 19) == (2, 3)
    # what /validators calls expired: a quorum in the next block would already be too late
    assert not gov.expired(load_proposal(state, pid), 18) and gov.expired(load_proposal(state, pid), 19)


@pytest.mark.parametrize(("signer", "body", "code"), [
    (CLIENT, _add(4, 20), "not-admin"),
    (NODES[0], _add(4, 20), "not-admin"),
    (ADMINS[0], _add(4, 11), "too-soon"),
    (ADMINS[0], _add(4, 20, action="demote"), "bad-action"),
    (ADMINS[0], _add(3, 20), "node-exists"),
    (ADMINS[0], _add(4, 20, org="nobody"), "unknown-org"),
    (ADMINS[0], _add(4, 20, cert=CERTS[3]), "bad-certificate"),
    (ADMINS[0], _add(4, 20, cert="-----BEGIN CERTIFICATE-----\nnot one\n"), "bad-certificate"),
    (ADMINS[0], _add(4, 20, address="nowhere"), "bad-address"),
    (ADMINS[0], _add(4, 20, name="bad name!"), "bad-name"),
    (ADMINS[0], _remove(4, 20), "not-a-validator"),
    (ADMINS[0], ProposeValidators("remove", "v1", NODES[2].verify_key.raw, "", "", "", 20), "wrong-key"),
])
def test_a_bad_proposal_is_refused_naming_why(signer, body, code):
    with pytest.raises(Rejected) as refused:
        Governance(GENESIS).propose(signer.verify_key.raw, b"p" * 32, 10, body, DictState())
    assert refused.value.code == code


def test_changes_are_scheduled_in_height_order_and_quorums_follow_the_set():
    gov, state = Governance(GENESIS), DictState()
    for n, admin in enumerate((0, 1, 2)):
        if n == 0:
            gov.propose(ADMINS[admin].verify_key.raw, b"1" * 32, 10, _add(4, 20), state)
        else:
            gov.approve(ADMINS[admin].verify_key.raw, bytes([n]) * 32, 10 + n, ApproveValidators(b"1" * 32), state)
    with pytest.raises(Rejected) as order:
        gov.propose(ADMINS[0].verify_key.raw, b"2" * 32, 13, _remove(0, 20), state)
    assert order.value.code == "out-of-order"
    gov.propose(ADMINS[1].verify_key.raw, b"2" * 32, 13, _remove(0, 30), state)
    # at height 25 five organisations run validators: 4 approvals are needed, org4 may approve now
    for n, admin in enumerate((2, 3)):
        assert gov.approve(ADMINS[admin].verify_key.raw, bytes([9, n]) * 16, 25, ApproveValidators(b"2" * 32),
                           state) is None
    decided = gov.approve(ADMINS[4].verify_key.raw, b"4" * 32, 26, ApproveValidators(b"2" * 32), state)
    assert decided is not None and [v.name for v in decided.validators] == ["v1", "v2", "v3", "v4"]


def _promote(name: str, key: SigningKey, height: int, address: str = "") -> ProposeValidators:
    return ProposeValidators("promote", name, key.verify_key.raw, "", "", address, height)


def test_an_observer_or_a_removed_validator_is_promoted_with_what_the_network_knows_of_it():
    gov, state = Governance(GENESIS), DictState()

    def decide(pid: bytes, body: ProposeValidators, height: int):
        """Proposed by org0's admin, approved by the others in turn (those that run no validator are refused)."""
        assert gov.propose(ADMINS[0].verify_key.raw, pid, height, body, state) is None
        for n, admin in enumerate((1, 2, 3, 5), 1):
            try:
                done = gov.approve(ADMINS[admin].verify_key.raw, pid[:31] + bytes([n]), height + n,
                                   ApproveValidators(pid), state)
            except Rejected as exc:
                assert exc.code == "not-a-validator-org"
                continue
            if done is not None:
                return done
        raise AssertionError("never decided")

    promoted = decide(b"1" * 32, _promote("v5", NODES[5], 20, "10.0.0.5:7000"), 10)
    assert promoted is not None
    v5 = promoted.validators[-1]
    assert (v5.name, v5.key, v5.org, v5.cert, v5.address) == (
        "v5", NODES[5].verify_key.raw, "org5", CERTS[5], "10.0.0.5:7000")
    removed = decide(b"2" * 32, _remove(3, 30), 21)
    assert [v.name for v in removed.validators] == ["v0", "v1", "v2", "v5"]
    back = decide(b"3" * 32, _promote("v3", NODES[3], 40), 31)
    assert back.validators[-1].name == "v3" and back.validators[-1].cert == CERTS[3]
    for body, code in ((_promote("v1", NODES[1], 60), "already-a-validator"),
                       (_promote("nobody", NODES[4], 60), "unknown-node"),
                       (_promote("v5", NODES[4], 60), "already-a-validator"),
                       (_promote("v3", NODES[4], 60), "already-a-validator")):
        with pytest.raises(Rejected) as refused:
            gov.propose(ADMINS[0].verify_key.raw, b"4" * 32, 45, body, state)
        assert refused.value.code == code
    decide(b"5" * 32, _remove(3, 60), 45)
    with pytest.raises(Rejected) as refused:
        gov.propose(ADMINS[0].verify_key.raw, b"6" * 32, 50, _promote("v3", NODES[4], 70), state)
    assert refused.value.code == "wrong-key"


def _join(height: int, **changes) -> ProposeValidators:
    fields = {"org": "org6", "org_name": "Org Six", "org_kind": "hospital", "org_admin": ADMINS[6].verify_key.raw}
    fields.update(changes)
    return _add(6, height, **fields)


def test_a_new_organisation_joins_with_its_first_validator_and_its_admin_then_counts():
    gov, state = Governance(GENESIS), DictState()
    pid = b"j" * 32
    gov.propose(ADMINS[0].verify_key.raw, pid, 10, _join(20), state)
    assert load_org(state, "org6") is None  # nothing joins before the change is decided
    with pytest.raises(Rejected) as early:
        gov.approve(ADMINS[6].verify_key.raw, b"e" * 32, 11, ApproveValidators(pid), state)
    assert early.value.code == "not-admin"
    gov.approve(ADMINS[1].verify_key.raw, b"a" * 32, 11, ApproveValidators(pid), state)
    decided = gov.approve(ADMINS[2].verify_key.raw, b"b" * 32, 12, ApproveValidators(pid), state)
    assert decided is not None and decided.validators[-1].org == "org6"
    joined = load_org(state, "org6")
    assert joined is not None and (joined.name, joined.kind, joined.admin_key) == (
        "Org Six", "hospital", ADMINS[6].verify_key.raw)
    assert org_of_admin(state, ADMINS[6].verify_key.raw) == joined
    # its admin is an admin now; its approval counts once its validator does (from height 20)
    gov.propose(ADMINS[6].verify_key.raw, b"r" * 32, 13, _remove(3, 40), state)
    assert load_proposal(state, b"r" * 32).approvals == ()
    gov.propose(ADMINS[6].verify_key.raw, b"s" * 32, 21, _remove(2, 41), state)
    assert load_proposal(state, b"s" * 32).approvals == ("org6",)


@pytest.mark.parametrize(("body", "code"), [
    (_join(20, org_kind="castle"), "bad-org"),
    (_join(20, org_name=""), "bad-org"),
    (_join(20, org_admin=b"short"), "bad-org"),
    (_join(20, org="bad id!"), "bad-org"),
    (_join(20, org_admin=ADMINS[1].verify_key.raw), "key-in-use"),
    (_join(20, org_admin=NODES[6].verify_key.raw), "key-in-use"),
    (_join(20, org="org1"), "org-exists"),
    (_join(20, org_name="", org_kind="", org_admin=b""), "unknown-org"),
])
def test_a_new_organisation_must_be_complete_and_new(body, code):
    with pytest.raises(Rejected) as refused:
        Governance(GENESIS).propose(ADMINS[0].verify_key.raw, b"p" * 32, 10, body, DictState())
    assert refused.value.code == code


def test_a_joined_organisations_admin_enrols_members_on_the_ledger():
    app = Application.from_genesis(GENESIS)
    state: dict[bytes, bytes] = {}
    app_hash = sha256(b"app")

    def run(height: int, txs: list[bytes]):
        nonlocal app_hash
        result = app.execute_block(_block(height, txs), state, app_hash)
        app_hash = result.app_hash
        state.update({k: v for k, v in result.writes.items() if v is not None})
        return [(r.ok, r.code) for r in result.results]

    member = SigningKey.from_seed_text("gov-physician")
    enrol = make_transaction(ADMINS[6], CHAIN, EnrolMember(member.verify_key.raw, "physician"), 1)
    assert run(2, [enrol]) == [(False, "not-admin")]
    proposal = make_transaction(ADMINS[0], CHAIN, _join(9), 2)
    approvals = [make_transaction(ADMINS[i], CHAIN, ApproveValidators(tx_id(proposal)), 3) for i in (1, 2)]
    assert run(3, [proposal, *approvals]) == [(True, "ok")] * 3
    enrol = make_transaction(ADMINS[6], CHAIN, EnrolMember(member.verify_key.raw, "physician"), 4)
    assert run(4, [enrol]) == [(True, "ok")]


def test_genesis_sets_the_quorum_rule():
    assert Governance(_genesis("3/4")).needed(4) == 3 and Governance(_genesis("1/1")).needed(4) == 4
    for bad in ("1/3", "2", "x"):
        with pytest.raises(GenesisError, match=r"governance\.quorum"):
            _genesis(bad)


def test_the_ledger_runs_the_rules_and_a_refused_change_writes_nothing():
    app = Application.from_genesis(GENESIS)
    state: dict[bytes, bytes] = {}
    prev = sha256(b"app")
    proposal = make_transaction(ADMINS[0], CHAIN, _add(4, 9), 1)
    bad = make_transaction(ADMINS[5], CHAIN, ApproveValidators(tx_id(proposal)), 2)
    result = app.execute_block(_block(2, [proposal, bad]), state, prev)
    assert [(r.ok, r.code) for r in result.results] == [(True, "ok"), (False, "not-a-validator-org")]
    state.update({k: v for k, v in result.writes.items() if v is not None})
    approvals = [make_transaction(ADMINS[i], CHAIN, ApproveValidators(tx_id(proposal)), 3) for i in (1, 2)]
    result = app.execute_block(_block(3, approvals), state, result.app_hash)
    assert all(r.ok for r in result.results)
    assert SCHEDULE_KEY in result.writes
    (scheduled,) = load_schedule(result.writes)
    assert scheduled.height == 9 and scheduled.txs == (tx_id(proposal), *map(tx_id, approvals))


# ---------------------------------------------------------------- proofs across changes


def _block(height: int, txs: list[bytes], prev: bytes = b"\0" * 32, proposer: int = 0) -> Block:
    header = BlockHeader(CHAIN, height, prev, proposer, 0, 1_000 + height, merkle_root(txs), len(txs), b"\1" * 32)
    return Block(header, tuple(txs))


def _certify(block: Block, signers: list[int], positions: list[int]) -> CommitCertificate:
    payload = vote_payload(block.height, 0, block.hash)
    votes = tuple(Vote(p, NODES[s].sign(DOMAIN_COMMIT, CHAIN, payload)) for s, p in zip(signers, positions,
                                                                                           strict=True))
    return CommitCertificate(block.height, 0, block.hash, tuple(sorted(votes, key=lambda v: v.validator)))


def _governance_tx(admin: int, body) -> bytes:
    return sign_transaction(ADMINS[admin], CHAIN, GOVERNANCE_CODEC.encode(body), 5)


@pytest.fixture(scope="module")
def chain():
    """Block 2 proposes adding v4 at height 6, block 3 approves it twice; block 7 is certified by five."""
    proposal = _governance_tx(0, _add(4, 6))
    approvals = [_governance_tx(i, ApproveValidators(tx_id(proposal))) for i in (1, 2)]
    b2 = _block(2, [proposal])
    b3 = _block(3, approvals)
    anchor = make_transaction(CLIENT, CHAIN, Anchor(sha256(b"doc"), "after"), 7)
    b7 = _block(7, [anchor], proposer=4)
    steps = [[
        build_proof(b2, _certify(b2, [0, 1, 2], [0, 1, 2]), 0),
        build_proof(b3, _certify(b3, [1, 2, 3], [1, 2, 3]), 0),
        build_proof(b3, _certify(b3, [1, 2, 3], [1, 2, 3]), 1),
    ]]
    return {"b7": b7, "steps": steps}


def test_a_proof_after_a_change_verifies_from_genesis_alone(chain):
    doc = build_proof(chain["b7"], _certify(chain["b7"], [1, 2, 3, 4], [1, 2, 3, 4]), 0, changes=chain["steps"])
    proven = check_proof(doc, GENESIS)
    assert proven.height == 7 and proven.proposer == "v4"
    # the same block without the change: its certificate names a validator genesis does not know
    bare = {k: v for k, v in doc.items() if k != "validator_changes"}
    with pytest.raises(InvalidProof, match="invalid commit certificate at height 7"):
        check_proof(bare, GENESIS)


def test_after_a_change_the_old_sets_quorum_no_longer_certifies(chain):
    doc = build_proof(chain["b7"], _certify(chain["b7"], [0, 1, 2], [0, 1, 2]), 0, changes=chain["steps"])
    with pytest.raises(InvalidProof, match="3 votes, a quorum is 4"):
        check_proof(doc, GENESIS)


def test_a_change_whose_approvals_are_cut_or_forged_proves_nothing(chain):
    cert = _certify(chain["b7"], [1, 2, 3, 4], [1, 2, 3, 4])
    short = [chain["steps"][0][:2]]
    with pytest.raises(InvalidProof, match="do not reach the quorum"):
        check_proof(build_proof(chain["b7"], cert, 0, changes=short), GENESIS)
    reordered = [[chain["steps"][0][0], chain["steps"][0][2], chain["steps"][0][1]]]
    with pytest.raises(InvalidProof, match="ledger order"):
        check_proof(build_proof(chain["b7"], cert, 0, changes=reordered), GENESIS)
    tampered = copy.deepcopy(chain["steps"])
    cert_hex = tampered[0][1]["certificate"]
    tampered[0][1]["certificate"] = cert_hex[:-2] + ("00" if cert_hex[-2:] != "00" else "01")  # a signature byte
    with pytest.raises(InvalidProof, match="validator change 1"):
        check_proof(build_proof(chain["b7"], cert, 0, changes=tampered), GENESIS)
    # an approval by an organisation without a validator, made to look like a quorum
    pid = bytes.fromhex(chain["steps"][0][0]["tx_id"])
    outsider = _block(3, [_governance_tx(5, ApproveValidators(pid)), _governance_tx(1, ApproveValidators(pid))])
    forged = [[chain["steps"][0][0], build_proof(outsider, _certify(outsider, [1, 2, 3], [1, 2, 3]), 0)]]
    with pytest.raises(InvalidProof, match="runs no validator"):
        check_proof(build_proof(chain["b7"], cert, 0, changes=forged), GENESIS)
    for junk in ("x", [[]], [["x"]], [[{"format": "other"}]]):
        with pytest.raises(InvalidProof):
            check_proof({**build_proof(chain["b7"], cert, 0), "validator_changes": junk}, GENESIS)
