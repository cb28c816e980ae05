"""Normal-case operation (Castro & Liskov, TOCS 2002, section 4.2), phase by phase."""

from consensus.certificates import verify_commit_certificate
from consensus.events import PendingWork, Propose, RequestSync, Verdict, WalPrepared, WalSigned
from consensus.messages import CONSENSUS_CODEC, Commit, Prepare, PrePrepare
from tests.helpers import (
    CHAIN,
    T0,
    accept_block,
    app_after,
    block,
    commit,
    deliver,
    execute,
    keys,
    pre_prepare,
    prepare,
    replica,
    sent_of,
)


def test_primary_proposes_a_batch_and_prepares_it_logging_before_sending():
    r = replica(4, 0)
    txs = tuple(f"tx-{i}".encode() for i in range(1000))
    out = r.handle(Propose(txs), T0)
    pps = sent_of(out, PrePrepare)
    assert len(pps) == 1 and pps[0].block.txs == txs and pps[0].height == 1
    assert len(sent_of(out, Prepare)) == 1
    # every message sent was handed out as a WAL record first, byte for byte
    wal = {rec.message for rec in out.persist if isinstance(rec, WalSigned)}
    assert {s.data for s in out.send} <= wal


def test_a_backup_does_not_propose_and_the_primary_proposes_once_per_view_and_height():
    assert replica(4, 1).handle(Propose((b"x",)), T0).send == []
    r = replica(4, 0)
    r.handle(Propose((b"a",)), T0)
    assert r.handle(Propose((b"b",)), T0).send == []
    assert r.handle(Propose(()), T0).send == []


def test_backup_prepares_only_after_the_application_says_the_block_is_valid():
    r = replica(4, 1)
    b = block()
    out = deliver(r, pre_prepare(b))
    assert [v.block.hash for v in out.validate] == [b.hash]
    assert sent_of(out, Prepare) == []
    out = accept_block(r, b)
    prepares = sent_of(out, Prepare)
    assert len(prepares) == 1 and prepares[0].block_hash == b.hash and prepares[0].sender == 1
    assert any(isinstance(rec, WalSigned) for rec in out.persist)


def test_an_invalid_block_is_never_prepared():
    r = replica(4, 1)
    b = block()
    deliver(r, pre_prepare(b))
    out = r.handle(Verdict(b.hash, False, "bad tx"), T0)
    assert sent_of(out, Prepare) == []
    assert r.stats["invalid-blocks"] == 1


def test_proposals_with_a_wrong_parent_state_or_time_are_refused_without_asking_the_application():
    bad = [
        block(prev=b"\x01" * 32),
        block(app=b"\x02" * 32),
        block(ts=T0 + 10**9),  # far in the future
        block(proposer=2),  # header names a validator that is not the primary
        block(chain="other-chain"),
    ]
    for b in bad:
        r = replica(4, 1)
        out = deliver(r, pre_prepare(b))
        assert out.validate == [] and sent_of(out, Prepare) == []
        assert r.stats["dropped.bad-proposal"] == 1


def test_pre_prepare_from_a_replica_that_is_not_the_primary_is_dropped():
    r = replica(4, 1)
    out = deliver(r, pre_prepare(block(proposer=2), sender=2))
    assert out.validate == []
    assert r.stats["dropped.not-primary"] == 1


def test_prepared_after_a_quorum_of_prepares_then_commit_with_certificate_in_wal():
    r = replica(4, 1)
    b = block()
    deliver(r, pre_prepare(b))
    accept_block(r, b)
    out = deliver(r, prepare(b, 0))
    assert sent_of(out, Commit) == []  # 2 of 3 prepares
    out = deliver(r, prepare(b, 2))
    commits = sent_of(out, Commit)
    assert len(commits) == 1 and commits[0].block_hash == b.hash
    prepared = [rec for rec in out.persist if isinstance(rec, WalPrepared)]
    assert len(prepared) == 1 and len(prepared[0].certificate.votes) == 3
    # The output that sends the COMMIT hands out, to persist first, the prepared
    # certificate and then the COMMIT's own bytes: a replica restored from these
    # records knows it prepared b before it knows it committed to it.
    (commit_send,) = [s for s in out.send if isinstance(CONSENSUS_CODEC.decode(s.data), Commit)]
    signed = [i for i, rec in enumerate(out.persist) if isinstance(rec, WalSigned) and rec.message == commit_send.data]
    assert len(signed) == 1
    assert out.persist.index(prepared[0]) < signed[0]
    assert r.prepared is not None and r.prepared.block.hash == b.hash


def test_a_quorum_of_commits_decides_with_a_verifiable_certificate():
    r = replica(4, 1)
    b = block()
    deliver(r, pre_prepare(b))
    accept_block(r, b)
    for s in (0, 2):
        deliver(r, prepare(b, s))
    out = deliver(r, commit(b, 0))
    assert out.commit == []  # own + 0 = 2 < 3
    out = deliver(r, commit(b, 2))
    assert len(out.commit) == 1
    decided = out.commit[0]
    assert decided.block.hash == b.hash
    validators = [k.verify_key for k in keys(4)]
    assert verify_commit_certificate(CHAIN, validators, decided.certificate, decided.block) is None
    assert r.height == 2


def test_commits_before_the_block_decide_once_the_block_arrives_without_own_votes():
    r = replica(4, 3)
    b = block()
    for s in (0, 1, 2):
        out = deliver(r, commit(b, s))
    assert out.commit == []
    assert any(isinstance(x, RequestSync) for x in out.sync)  # decided but block unknown
    out = deliver(r, pre_prepare(b))
    assert [c.block.hash for c in out.commit] == [b.hash]


def test_messages_for_the_next_height_wait_until_the_previous_block_is_executed():
    r = replica(4, 1)
    b1 = block()
    deliver(r, pre_prepare(b1))
    accept_block(r, b1)
    for s in (0, 2):
        deliver(r, prepare(b1, s))
    for s in (0, 2):
        out = deliver(r, commit(b1, s))
    assert out.commit
    b2 = block(2, prev=b1.hash, app=app_after(b1), ts=T0 + 1, txs=(b"tx-2",))
    out = deliver(r, pre_prepare(b2))
    assert out.validate == []  # height 1 not executed yet
    out = execute(r, b1)
    assert [v.block.hash for v in out.validate] == [b2.hash]


def test_engine_cpu_path_accepts_a_block_of_one_thousand_transactions():
    r = replica(4, 1)
    txs = tuple(f"tx-{i:05d}".encode() * 10 for i in range(1000))
    b = block(txs=txs)
    out = deliver(r, pre_prepare(b))
    assert out.validate and out.validate[0].block.txs == txs


def test_conflicting_messages_from_one_validator_become_evidence():
    r = replica(4, 1)
    b, b_other = block(), block(txs=(b"other",))
    deliver(r, pre_prepare(b))
    out = deliver(r, pre_prepare(b_other))
    assert len(out.evidence) == 1 and out.evidence[0].validator == 0 and out.evidence[0].kind == "pre-prepare"
    deliver(r, prepare(b, 2))
    out = deliver(r, prepare(b_other, 2))
    assert [e.kind for e in out.evidence] == ["prepare"]
    assert len(r.evidence) == 2
    # the second, conflicting vote was not counted
    assert (0, b_other.hash) not in r.logs[1].prepares


def test_pending_work_arms_a_progress_timer_once():
    r = replica(4, 1)
    out = r.handle(PendingWork(), T0)
    assert [t.name for t in out.timers] == ["progress"]
    assert r.handle(PendingWork(), T0 + 5).timers == []


def test_signed_messages_round_trip_through_the_codec():
    b = block()
    for m in (pre_prepare(b), prepare(b, 1), commit(b, 2)):
        assert CONSENSUS_CODEC.decode(CONSENSUS_CODEC.encode(m)) == m
