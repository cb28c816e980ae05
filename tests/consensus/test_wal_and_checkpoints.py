"""Safety over restarts (the WAL) and checkpoints with garbage collection (section 4.3)."""

from consensus.events import Executed, PendingWork, SetTimer, StableCheckpoint, TimerFired, WalRecord
from consensus.messages import Checkpoint, Commit, Prepare, PrePrepare, ViewChange
from consensus.replica import Replica
from tests.helpers import (
    T0,
    accept_block,
    app_after,
    block,
    commit,
    config,
    deliver,
    genesis_tip,
    keys,
    pre_prepare,
    prepare,
    replica,
    sent_of,
    sign,
)


def _wal(*outs) -> list[WalRecord]:
    return [rec for out in outs for rec in out.persist]


def test_restored_primary_never_proposes_a_second_block_for_the_same_view_and_height():
    r = replica(4, 0)
    from consensus.events import Propose

    out = r.handle(Propose((b"first",)), T0)
    first = sent_of(out, PrePrepare)[0]
    restored = Replica.restore(config(4, 0), genesis_tip(), _wal(out))
    out2 = restored.handle(Propose((b"second",)), T0 + 1)
    assert sent_of(out2, PrePrepare) == []
    # on start it re-sends exactly what it signed before
    resent = sent_of(restored.start(T0 + 2), PrePrepare)
    assert [m.block.hash for m in resent] == [first.block.hash]


def test_restored_backup_refuses_to_prepare_another_block_in_the_same_view():
    r = replica(4, 1)
    b = block()
    out1 = deliver(r, pre_prepare(b))
    out2 = accept_block(r, b)
    restored = Replica.restore(config(4, 1), genesis_tip(), _wal(out1, out2))
    # a faulty primary now shows the restarted replica a different block at (view 0, height 1)
    other = block(txs=(b"other",))
    deliver(restored, pre_prepare(other))
    out = accept_block(restored, other)
    assert sent_of(out, Prepare) == []


def test_restored_replica_reports_its_prepared_certificate_in_a_view_change():
    r = replica(4, 1, progress_timeout_ms=1000)
    b = block()
    outs = [deliver(r, pre_prepare(b)), accept_block(r, b), deliver(r, prepare(b, 0)), deliver(r, prepare(b, 2))]
    assert sent_of(outs[-1], Commit)
    restored = Replica.restore(config(4, 1, progress_timeout_ms=1000), genesis_tip(), _wal(*outs))
    assert restored.prepared is not None and restored.prepared.block.hash == b.hash
    out = restored.handle(PendingWork(), T0)
    timer = next(t for t in out.timers if isinstance(t, SetTimer))
    out = restored.handle(TimerFired(timer.name, timer.token), timer.deadline_ms)
    vc = sent_of(out, ViewChange)[0]
    assert vc.prepared is not None and vc.prepared.block.hash == b.hash


def test_restored_replica_stays_in_the_view_change_it_promised():
    r = replica(4, 1, progress_timeout_ms=1000)
    out = r.handle(PendingWork(), T0)
    timer = next(t for t in out.timers if isinstance(t, SetTimer))
    out2 = r.handle(TimerFired(timer.name, timer.token), timer.deadline_ms)
    restored = Replica.restore(config(4, 1), genesis_tip(), _wal(out, out2))
    assert restored.vc_target == 1
    start = restored.start(T0 + 5000)
    assert [m.new_view for m in sent_of(start, ViewChange)] == [1]
    # and it does not prepare anything in view 0 any more
    b = block()
    deliver(restored, pre_prepare(b))
    assert sent_of(accept_block(restored, b), Prepare) == []


def _commit_height(r, b):
    deliver(r, pre_prepare(b))
    accept_block(r, b)
    for s in (0, 2):
        deliver(r, prepare(b, s))
    out = None
    for s in (0, 2):
        out = deliver(r, commit(b, s))
    assert out is not None and out.commit
    return r.handle(Executed(b.height, app_after(b)), T0)


def _chain(length):
    blocks, prev = [], None
    for h in range(1, length + 1):
        kwargs = {} if prev is None else {"prev": prev.hash, "app": app_after(prev)}
        b = block(h, ts=T0 + h, txs=(f"tx-{h}".encode(),), **kwargs)
        blocks.append(b)
        prev = b
    return blocks


def test_a_checkpoint_is_signed_every_k_heights_and_becomes_stable_with_a_quorum():
    r = replica(4, 1, checkpoint_interval=2)
    blocks = _chain(2)
    _commit_height(r, blocks[0])
    out = _commit_height(r, blocks[1])
    mine = sent_of(out, Checkpoint)
    assert len(mine) == 1 and mine[0].height == 2 and mine[0].block_hash == blocks[1].hash
    app = app_after(blocks[1])
    out = deliver(r, sign(Checkpoint(2, blocks[1].hash, app, 0, b""), keys(4)[0]))
    assert out.checkpoints == []
    out = deliver(r, sign(Checkpoint(2, blocks[1].hash, app, 2, b""), keys(4)[2]))
    assert out.checkpoints == [StableCheckpoint(2, blocks[1].hash, app)]
    assert r.stable_checkpoint == 2 and r.checkpoint_votes == {}
    # a late checkpoint at or below the stable one is dropped
    deliver(r, sign(Checkpoint(2, blocks[1].hash, app, 3, b""), keys(4)[3]))
    assert r.stats["dropped.old-checkpoint"] == 1


def test_engine_memory_stays_bounded_over_many_heights():
    r = replica(4, 1, checkpoint_interval=10)
    sizes = []
    for b in _chain(60):
        _commit_height(r, b)
        if b.height % 10 == 0:
            for s in (0, 2):
                deliver(r, sign(Checkpoint(b.height, b.hash, app_after(b), s, b""), keys(4)[s]))
            sizes.append((len(r.logs), len(r.my_hashes), len(r.checkpoint_votes), len(r.my_checkpoints)))
    assert r.height == 61 and r.stable_checkpoint == 60
    assert all(s == sizes[0] for s in sizes) and sizes[0] == (0, 0, 0, 0)


def test_retransmit_resends_only_the_current_height_and_persists_nothing():
    r = replica(4, 0)
    from consensus.events import Propose

    first = r.handle(Propose((b"a",)), T0)
    again = r.retransmit(T0 + 5)
    assert {s.data for s in again.send} == {s.data for s in first.send}
    assert again.persist == []
