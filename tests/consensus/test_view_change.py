"""View changes (Castro & Liskov, TOCS 2002, section 4.4)."""

from consensus.events import PendingWork, SetTimer, TimerFired, WalSigned
from consensus.messages import NewView, Prepare, PreparedCertificate, ViewChange
from consensus.view_change import mandated_block
from tests.helpers import (
    T0,
    accept_block,
    block,
    deliver,
    keys,
    pre_prepare,
    prepare,
    replica,
    sent_of,
    sign,
)


def _fire(r, out, name):
    timer = next(t for t in out.timers if isinstance(t, SetTimer) and t.name == name)
    return r.handle(TimerFired(name, timer.token), timer.deadline_ms), timer


def view_change(new_view, height, sender, prepared=None, n=4):
    return sign(ViewChange(new_view, height, prepared, sender, b""), keys(n)[sender])


def prepared_cert(b, view=0, voters=(0, 1, 2)):
    votes = tuple(sorted((p.sender, p.signature) for p in (prepare(b, s, view) for s in voters)))
    from consensus.messages import Vote

    return PreparedCertificate(view, b, tuple(Vote(v, s) for v, s in votes))


def test_waiting_work_times_out_into_a_view_change_that_is_logged_before_it_leaves():
    r = replica(4, 1, progress_timeout_ms=1000)
    out = r.handle(PendingWork(), T0)
    out, timer = _fire(r, out, "progress")
    assert timer.deadline_ms == T0 + 1000
    vcs = sent_of(out, ViewChange)
    assert len(vcs) == 1 and vcs[0].new_view == 1 and vcs[0].prepared is None
    assert WalSigned(out.send[0].data) in out.persist
    assert r.vc_target == 1


def test_view_change_timeouts_double_while_a_quorum_waits_for_a_new_view():
    r = replica(4, 0, progress_timeout_ms=1000)  # primary of none of views 1..3
    out = r.handle(PendingWork(), T0)
    out, _ = _fire(r, out, "progress")
    deadlines = []
    for step in range(3):
        target = r.vc_target
        # two others joined this view change: with ours, a quorum waits (section 4.5.2)
        for s in (1, 2):
            deliver(r, view_change(target, 1, s))
        timer = next(t for t in out.timers if isinstance(t, SetTimer) and t.name == "view-change")
        deadlines.append(timer.deadline_ms)
        out = r.handle(TimerFired("view-change", timer.token), timer.deadline_ms)
        assert r.vc_target == target + 1, step
    gaps = [deadlines[0] - (T0 + 1000), deadlines[1] - deadlines[0], deadlines[2] - deadlines[1]]
    assert gaps == [2000, 4000, 8000]


def test_a_replica_alone_in_a_view_change_asks_again_instead_of_racing_ahead():
    r = replica(4, 1, progress_timeout_ms=1000)
    out = r.handle(PendingWork(), T0)
    out, _ = _fire(r, out, "progress")
    out, _ = _fire(r, out, "view-change")
    assert r.vc_target == 1
    assert [vc.new_view for vc in sent_of(out, ViewChange)] == [1]


def test_a_stale_timer_token_does_nothing():
    r = replica(4, 1)
    r.handle(PendingWork(), T0)
    assert r.handle(TimerFired("progress", 999), T0 + 10**6).send == []
    assert r.vc_target is None


def test_view_change_carries_the_prepared_certificate():
    r = replica(4, 1, progress_timeout_ms=1000)
    b = block()
    deliver(r, pre_prepare(b))
    out = accept_block(r, b)
    for s in (0, 2):
        out = deliver(r, prepare(b, s))
    assert r.prepared is not None
    out = r.handle(TimerFired("progress", r._timer_tokens["progress"]), T0 + 5000)
    vc = sent_of(out, ViewChange)[0]
    assert vc.prepared is not None and vc.prepared.block.hash == b.hash and len(vc.prepared.votes) == 3


def test_new_primary_gathers_a_quorum_and_re_proposes_the_highest_prepared_block():
    b_old, b_new = block(txs=(b"old",)), block(txs=(b"newer",), view=1, proposer=1)
    high = prepared_cert(b_new, view=1, voters=(0, 1, 3))
    low = prepared_cert(b_old, view=0)
    p2 = replica(4, 2)  # the primary of view 2
    first = deliver(p2, view_change(2, 1, 0, low))
    assert sent_of(first, NewView) == [] and p2.vc_target is None  # f = 1 is not enough
    out = deliver(p2, view_change(2, 1, 3, high))
    # f+1 validators are in view 2: it joins (its own VIEW-CHANGE makes the quorum) and leads
    assert [vc.new_view for vc in sent_of(out, ViewChange)] == [2]
    nvs = sent_of(out, NewView)
    assert len(nvs) == 1 and nvs[0].view == 2 and len(nvs[0].view_changes) == 3
    assert nvs[0].block is not None and nvs[0].block.hash == b_new.hash
    assert mandated_block(nvs[0].view_changes).hash == b_new.hash
    assert p2.view == 2 and p2.vc_target is None
    assert len(out.view_changes) == 1 and out.view_changes[0].new_view == 2
    # and it prepares the carried block in the new view
    assert [(p.view, p.block_hash) for p in sent_of(out, Prepare)] == [(2, b_new.hash)]


def _new_view(view, height, vcs, blk, sender):
    return sign(NewView(view, height, tuple(vcs), blk, sender, b""), keys(4)[sender])


def test_backups_accept_a_valid_new_view_and_prepare_the_carried_block_without_revalidating():
    b = block()
    cert = prepared_cert(b)
    vcs = [view_change(1, 1, s, cert if s == 0 else None) for s in (0, 2, 3)]
    r = replica(4, 3)
    out = deliver(r, _new_view(1, 1, vcs, b, 1))
    assert r.view == 1
    assert out.validate == []
    prepares = sent_of(out, Prepare)
    assert len(prepares) == 1 and prepares[0].view == 1 and prepares[0].block_hash == b.hash


def test_a_new_view_that_drops_the_prepared_block_is_rejected():
    b = block()
    other = block(txs=(b"other",), view=1, proposer=1)
    vcs = [view_change(1, 1, s, prepared_cert(b) if s == 0 else None) for s in (0, 2, 3)]
    r = replica(4, 3)
    deliver(r, _new_view(1, 1, vcs, other, 1))
    assert r.view == 0
    assert r.stats["dropped.bad-new-view"] == 1


def test_a_new_view_without_a_quorum_of_view_changes_is_rejected():
    vcs = [view_change(1, 1, s) for s in (0, 2)]
    r = replica(4, 3)
    deliver(r, _new_view(1, 1, vcs, None, 1))
    assert r.view == 0 and r.stats["dropped.bad-new-view"] == 1


def test_a_new_view_from_a_replica_that_is_not_the_new_primary_is_rejected():
    vcs = [view_change(1, 1, s) for s in (0, 2, 3)]
    r = replica(4, 3)
    deliver(r, _new_view(1, 1, vcs, None, 2))
    assert r.view == 0


def test_a_forged_prepared_certificate_in_a_view_change_is_rejected():
    b = block()
    cert = prepared_cert(b)
    forged = PreparedCertificate(0, b, (cert.votes[0], cert.votes[0], cert.votes[1]))
    r = replica(4, 1)
    deliver(r, view_change(1, 1, 2, forged))
    assert r.stats["dropped.bad-view-change"] == 1


def test_f_plus_one_view_changes_pull_a_replica_along_but_f_do_not():
    r = replica(4, 3)
    out = deliver(r, view_change(3, 1, 0))
    assert r.vc_target is None and sent_of(out, ViewChange) == []
    out = deliver(r, view_change(5, 1, 2))
    vcs = sent_of(out, ViewChange)
    assert len(vcs) == 1 and vcs[0].new_view == 3  # the smallest view f+1 of them reached


def test_a_replica_in_the_new_view_hands_its_proof_to_a_laggard():
    vcs = [view_change(1, 1, s) for s in (0, 2, 3)]
    nv = _new_view(1, 1, vcs, None, 1)
    r = replica(4, 3)
    deliver(r, nv)
    assert r.view == 1
    out = deliver(r, view_change(1, 1, 2))
    assert [type(m) for m in sent_of(out, NewView)] == [NewView]
    assert out.send[0].to == 2
    laggard = replica(4, 2)
    deliver(laggard, nv)
    assert laggard.view == 1


def test_after_sending_a_view_change_a_replica_no_longer_prepares_in_the_old_view():
    r = replica(4, 1, progress_timeout_ms=1000)
    out = r.handle(PendingWork(), T0)
    _fire(r, out, "progress")
    b = block()
    out = deliver(r, pre_prepare(b))
    out.extend(accept_block(r, b))
    assert sent_of(out, Prepare) == []
