"""Validator-set changes: the engine takes the set in force at each height.

A change is decided as a ledger transaction and scheduled at a stated height
(``consensus.membership``); every replica learns it by executing that block,
so all switch at the same height.  Here, first one replica driven by hand
(pure, no I/O), then the simulator with every Byzantine behaviour around the
switches: a removed Byzantine validator that keeps voting, a switch during a
view change, loss and partitions.
"""

from dataclasses import replace

import pytest

from consensus.config import ReplicaConfig
from consensus.events import Executed, Propose, Received, Verdict
from consensus.membership import ACTIVATION_DELAY, Schedule, ValidatorChange
from consensus.messages import Block, Commit, Prepare, PrePrepare
from consensus.replica import Replica
from consensus.sim import BEHAVIOURS, Scenario, run_many
from consensus.sim.cluster import Cluster
from consensus.sim.scenario import FaultPlan
from primitives.errors import UsageError
from primitives.signing import SigningKey
from tests.helpers import CHAIN, T0, app_after, block, encode, genesis_tip, keys, sent_of

KEYS = keys(5)
GENESIS = tuple(k.verify_key for k in KEYS[:4])
ADDED = tuple(k.verify_key for k in KEYS)  # k4 joins at height 3
REMOVED = tuple(k.verify_key for k in KEYS[1:])  # k0 leaves at height 5
CHANGES = {1: (ValidatorChange(3, ADDED),), 3: (ValidatorChange(5, REMOVED),)}


def _replica(key: SigningKey) -> Replica:
    index = GENESIS.index(key.verify_key) if key.verify_key in GENESIS else None
    return Replica(ReplicaConfig(CHAIN, GENESIS, index, key), genesis_tip())


def _set_at(height: int) -> tuple:
    return GENESIS if height < 3 else ADDED if height < 5 else REMOVED


def _signed(message, key: SigningKey):
    return replace(message, signature=key.sign(message.DOMAIN, CHAIN, message.signing_payload()))


def _vote(kind, b: Block, key: SigningKey, index: int | None = None):
    position = _set_at(b.height).index(key.verify_key) if index is None else index
    return _signed(kind(0, b.height, b.hash, position, b""), key)


def _next_block(r: Replica) -> Block:
    return block(r.height, txs=(b"tx-%d" % r.height,), prev=r.last_hash, app=r.app_hash,
                 proposer=0, ts=T0 + r.height)


def _primary_key(height: int) -> SigningKey:
    return next(k for k in KEYS if k.verify_key == _set_at(height)[0])


def _decide(r: Replica, voters: list[SigningKey]) -> tuple[Block, list]:
    """Drive ``r`` through one height in view 0 with ``voters``' PREPAREs and COMMITs; what it sent."""
    sent: list = []
    if r.is_primary:
        out = r.handle(Propose((b"tx-%d" % r.height,)), T0)
        (proposal,) = sent_of(out, PrePrepare)
        b = proposal.block
        sent.append(proposal)
    else:
        b = _next_block(r)
        out = r.handle(Received(encode(_signed(PrePrepare(0, b.height, b, 0, b""), _primary_key(b.height)))), T0)
    sent += sent_of(out, Prepare)
    if out.validate:
        out = r.handle(Verdict(b.hash, True), T0)
        sent += sent_of(out, Prepare)
    for key in voters:
        out = r.handle(Received(encode(_vote(Prepare, b, key))), T0)
        sent += sent_of(out, Prepare) + sent_of(out, Commit)
    decided = []
    for key in voters:
        out = r.handle(Received(encode(_vote(Commit, b, key))), T0)
        sent += sent_of(out, Commit)
        decided += out.commit
    assert [c.block.hash for c in decided] == [b.hash], f"height {b.height} not decided"
    r.handle(Executed(b.height, app_after(b), CHANGES.get(b.height, ())), T0)
    return b, sent


# ---------------------------------------------------------------- the schedule


def test_the_schedule_gives_each_height_the_set_in_force_and_refuses_changes_out_of_order():
    schedule = Schedule(GENESIS)
    assert schedule.add(ValidatorChange(3, ADDED)) is True
    assert schedule.add(ValidatorChange(3, ADDED)) is False  # the same block executed again
    schedule.add(ValidatorChange(5, REMOVED))
    assert [schedule.at(h).keys for h in (1, 2, 3, 4, 5, 99)] == [GENESIS, GENESIS, ADDED, ADDED, REMOVED, REMOVED]
    assert [schedule.at(h).quorum for h in (1, 3, 5)] == [3, 4, 3]
    with pytest.raises(UsageError, match="comes after"):
        schedule.add(ValidatorChange(4, GENESIS))
    with pytest.raises(UsageError, match="twice"):
        ValidatorChange(9, (GENESIS[0], GENESIS[0]))
    assert Schedule(GENESIS, schedule.changes).starts() == (1, 3, 5)


# ---------------------------------------------------------------- one replica across two switches


def test_quorums_follow_the_set_in_force_at_each_height():
    r = _replica(KEYS[1])
    others = [KEYS[0], KEYS[2], KEYS[3]]
    _decide(r, others[:2])  # height 1: n = 4, this replica and two others are a quorum of 3
    _decide(r, others[:2])  # height 2: the change scheduled at height 1 is not in force yet
    assert r.n == 5 and r.quorum == 4
    b = _next_block(r)
    r.handle(Received(encode(_signed(PrePrepare(0, 3, b, 0, b""), KEYS[0]))), T0)
    r.handle(Verdict(b.hash, True), T0)
    for key in (KEYS[0], KEYS[2], KEYS[3]):
        r.handle(Received(encode(_vote(Prepare, b, key))), T0)
    commits = [r.handle(Received(encode(_vote(Commit, b, key))), T0) for key in (KEYS[0], KEYS[2])]
    assert not any(out.commit for out in commits), "3 commits decided a height whose quorum is 4"
    out = r.handle(Received(encode(_vote(Commit, b, KEYS[4]))), T0)  # the new validator's vote counts
    assert [c.block.hash for c in out.commit] == [b.hash]
    assert len(out.commit[0].certificate.votes) == 4


def test_a_validator_added_at_a_height_counts_from_that_height_and_not_before():
    r = _replica(KEYS[1])
    _decide(r, [KEYS[0], KEYS[2]])
    b2 = _next_block(r)
    early = _signed(Prepare(0, 2, b2.hash, 4, b""), KEYS[4])
    r.handle(Received(encode(early)), T0)
    assert r.stats["dropped.unknown-sender"] == 1  # position 4 does not exist in the genesis set


def test_a_removed_validators_votes_are_ignored_after_the_switch():
    r = _replica(KEYS[1])
    for voters in ([KEYS[0], KEYS[2]], [KEYS[0], KEYS[2]], [KEYS[0], KEYS[2], KEYS[4]], [KEYS[0], KEYS[2], KEYS[4]]):
        _decide(r, voters)
    assert r.height == 5 and r.schedule.at(5).keys == REMOVED and r.index == 0
    b = _next_block(r)
    before = r.stats["dropped.bad-signature"] + r.stats["dropped.own-message"]
    for position in range(4):  # k0 signs in every position of the new set: none is its own
        for kind in (Prepare, Commit):
            r.handle(Received(encode(_vote(kind, b, KEYS[0], index=position))), T0)
    assert r.stats["dropped.bad-signature"] + r.stats["dropped.own-message"] - before == 8
    assert 5 not in r.logs or not (r.logs[5].prepares or r.logs[5].commits)


def test_a_removed_validator_stops_voting_at_the_switch_and_follows_the_chain():
    r = _replica(KEYS[0])
    assert r.is_member
    for voters in ([KEYS[1], KEYS[2]], [KEYS[1], KEYS[2]], [KEYS[1], KEYS[2], KEYS[4]], [KEYS[1], KEYS[2], KEYS[4]]):
        _, sent = _decide(r, voters)
        assert sent, "a member signs its votes"
    assert not r.is_member and r.index is None
    _, sent = _decide(r, [KEYS[1], KEYS[2], KEYS[3]])  # decided as a follower: 3 COMMITs of the members
    assert sent == [] and r.stats["signed"] > 0 and r.height == 6


def test_a_new_validator_follows_until_its_height_then_votes():
    r = _replica(KEYS[4])
    assert not r.is_member
    for _ in range(2):
        _, sent = _decide(r, [KEYS[0], KEYS[1], KEYS[2]])
        assert sent == [], "a replica outside the set signed"
    assert r.is_member and r.index == 4
    _, sent = _decide(r, [KEYS[0], KEYS[1], KEYS[2]])
    assert {type(m) for m in sent} == {Prepare, Commit} and {m.sender for m in sent} == {4}


def test_a_change_sooner_than_the_activation_delay_is_refused():
    r = _replica(KEYS[1])
    b = _next_block(r)
    r.handle(Received(encode(_signed(PrePrepare(0, 1, b, 0, b""), KEYS[0]))), T0)
    r.handle(Verdict(b.hash, True), T0)
    for key in (KEYS[0], KEYS[2]):
        r.handle(Received(encode(_vote(Prepare, b, key))), T0)
    for key in (KEYS[0], KEYS[2]):
        r.handle(Received(encode(_vote(Commit, b, key))), T0)
    with pytest.raises(UsageError, match="before 3"):
        r.handle(Executed(1, app_after(b), (ValidatorChange(1 + ACTIVATION_DELAY - 1, ADDED),)), T0)


def test_a_message_beyond_the_known_schedule_waits_rather_than_being_judged_by_an_old_set():
    r = _replica(KEYS[1])
    _decide(r, [KEYS[0], KEYS[2]])  # horizon: executed 1 + 2 = 3 (the set of height 3 is known)
    ahead = block(4, prev=b"\x01" * 32, ts=T0 + 4)
    data = encode(_vote(Prepare, ahead, KEYS[0], index=0))
    r.handle(Received(data), T0)
    assert r.stats["dropped.beyond-horizon"] == 1 and r.stats["dropped.duplicate"] == 0
    _decide(r, [KEYS[0], KEYS[2]])  # height 2 executed: height 4's set is known now
    r.handle(Received(data), T0)
    assert r.stats["dropped.duplicate"] == 0 and r.stats["dropped.beyond-horizon"] == 1
    assert list(r.logs[4].prepares) == [(0, ahead.hash)] and list(r.logs[4].prepares[(0, ahead.hash)]) == [0]


def test_a_restarted_replica_reads_the_changes_from_its_config():
    config = ReplicaConfig(CHAIN, GENESIS, None, KEYS[4], changes=(ValidatorChange(3, ADDED),))
    r = Replica(config, replace(genesis_tip(), height=2))
    assert r.is_member and r.index == 4 and r.quorum == 4


# ---------------------------------------------------------------- the simulator, around the switches

FAULTS = {"drop": 0.05, "duplicate": 0.05, "partition": True}
SEEDS_PER_VARIANT = 9  # 4 variants x 9 seeds x 6 behaviours = 216 schedules
VARIANTS = [  # (replica removed, a view change at each switch)
    (0, False), (1, False), (0, True), (1, True),
]


@pytest.mark.parametrize("behaviour", [b for b in BEHAVIOURS if b != "none"])
def test_reconfiguration_with_a_byzantine_validator_never_forks_or_stalls(behaviour):
    """Add a fifth validator, then remove the Byzantine one (which keeps voting) or an honest one."""
    for k, (removed, view_change) in enumerate(VARIANTS):
        scenario = Scenario(
            nodes=4, joiners=1, byzantine=1, behaviour=behaviour, heights=14, tx_rate_per_s=500,
            reconfigure=("add:4", f"remove:{removed}"), view_change_at_switch=view_change, **FAULTS,
        )
        runs = []
        summary = run_many(scenario, SEEDS_PER_VARIANT, first_seed=40_000 + 100 * k, on_run=runs.append)
        assert summary["safety_violations"] == 0, summary["failures"]
        assert summary["stalled_runs"] == 0, summary["failures"]
        for run in runs:
            assert len(run.switches) == 2, f"seed {run.seed}: switches at {run.switches}"
            assert min(run.heights.values()) > run.switches[-1]
        if removed == 0 and behaviour != "silent":
            assert summary["zombie_votes"] > 0
        if view_change:  # the primary crashed as the height before a switch was decided
            assert summary["view_changes_at_switch"] > 0, summary


def test_a_removed_byzantine_validator_that_keeps_voting_changes_nothing():
    scenario = Scenario(nodes=4, joiners=1, byzantine=1, behaviour="vote-unknown", heights=16, tx_rate_per_s=500,
                        reconfigure=("add:4", "remove:0"))
    cluster = Cluster(scenario, seed=3, plan=FaultPlan())
    cluster.boot()
    cluster.sched.at(0, cluster.client_tick)
    while cluster.sched.now < 60_000 and min(cluster.honest_heights().values()) < 16:
        cluster.sched.run_next()
    assert cluster.monitor.violations == []
    assert min(cluster.honest_heights().values()) >= 16
    assert cluster.zombie_votes > 0 and cluster.former_index == {0: 0}
    switch = cluster.switches[-1]
    for i in (1, 2, 3, 4):
        node = cluster.nodes[i]
        replica = node.replica
        assert replica is not None and replica.vset.keys == tuple(cluster.keys[1:])
        for h in range(switch, 17):
            _block, cert = node.store[h]
            signers = {replica.schedule.at(h).keys[v.validator] for v in cert.votes}
            assert cluster.keys[0] not in signers, f"the removed validator signed height {h}'s certificate"
    joiner = cluster.nodes[4]
    assert joiner.replica is not None and joiner.replica.index == 3
    assert any(tag >= cluster.switches[0] for tag, _record in joiner.wal), "the new validator never signed"
    removed = cluster.nodes[0].replica
    assert removed is not None and not removed.is_member
