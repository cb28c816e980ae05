"""Evidence against an equivocating primary that showed this replica only one fork.

With equivocation, each honest replica may see only one of the two blocks, so
no replica holds two conflicting messages from the primary by itself.  A
certificate formed on the other fork -- the prepared certificate in a
VIEW-CHANGE or NEW-VIEW, the commit certificate of a block that arrives by
sync -- carries the primary's signature for the other block: with what it sent
this replica for the same (view, height), that is evidence.
"""

from consensus.events import SyncedBlock
from consensus.messages import (
    Commit,
    CommitCertificate,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    Vote,
)
from consensus.replica import Replica
from tests.helpers import T0, block, commit, deliver, keys, pre_prepare, prepare, replica, sign

FORK_A = block(txs=(b"tx-a", b"tx-b"))
FORK_B = block(txs=(b"tx-a",), ts=T0 + 1)


def votes(kind: type[Prepare] | type[Commit], b, senders, view: int = 0) -> tuple[Vote, ...]:
    maker = prepare if kind is Prepare else commit
    return tuple(Vote(s, maker(b, s, view).signature) for s in senders)


def shown_fork_a() -> Replica:
    """Replica 1 saw primary 0 propose and prepare FORK_A in view 0."""
    r = replica(4, 1)
    deliver(r, pre_prepare(FORK_A))
    deliver(r, prepare(FORK_A, 0))
    return r


def view_change(sender: int, prepared: PreparedCertificate | None) -> ViewChange:
    return sign(ViewChange(1, 1, prepared, sender, b""), keys(4)[sender])


def test_a_prepared_certificate_for_the_other_fork_in_a_view_change_is_evidence_against_the_primary():
    r = shown_fork_a()
    prepared = PreparedCertificate(0, FORK_B, votes(Prepare, FORK_B, (0, 2, 3)))
    out = deliver(r, view_change(2, prepared))
    assert [(e.validator, e.kind) for e in out.evidence] == [(0, "prepare")]
    first, second = out.evidence[0].first, out.evidence[0].second
    assert isinstance(first, PrePrepare) and first.block.hash == FORK_A.hash
    assert isinstance(second, Prepare) and second.block_hash == FORK_B.hash and second.sender == 0
    assert r.verifier.verify(0, second.DOMAIN, second.signing_payload(), second.signature)
    # the same certificate again, from another replica: reported once
    assert deliver(r, view_change(3, prepared)).evidence == []


def test_the_view_changes_inside_a_new_view_are_checked_too():
    r = replica(4, 3)  # saw only the primary's proposal of fork A, then the new primary's NEW-VIEW
    deliver(r, pre_prepare(FORK_A))
    prepared = PreparedCertificate(0, FORK_B, votes(Prepare, FORK_B, (0, 2, 3)))
    changes = (view_change(0, None), view_change(1, prepared), view_change(2, prepared))
    out = deliver(r, sign(NewView(1, 1, changes, FORK_B, 1, b""), keys(4)[1]))
    assert r.view == 1, r.stats
    assert [(e.validator, e.kind) for e in out.evidence] == [(0, "prepare")]


def test_a_synced_block_whose_certificate_holds_the_primarys_vote_for_the_other_fork_is_evidence():
    r = shown_fork_a()
    cert = CommitCertificate(1, 0, FORK_B.hash, votes(Commit, FORK_B, (0, 2, 3)))
    out = r.handle(SyncedBlock(FORK_B, cert), T0)
    assert [c.block.hash for c in out.commit] == [FORK_B.hash]  # the certified block is still adopted
    assert [(e.validator, e.kind) for e in out.evidence] == [(0, "commit")]
    second = out.evidence[0].second
    assert isinstance(second, Commit) and second.block_hash == FORK_B.hash and second.view == 0


def test_certificates_that_agree_with_what_their_signers_sent_are_no_evidence():
    r = replica(4, 1)
    deliver(r, pre_prepare(FORK_B))
    deliver(r, prepare(FORK_B, 2))
    prepared = PreparedCertificate(0, FORK_B, votes(Prepare, FORK_B, (0, 2, 3)))
    assert deliver(r, view_change(2, prepared)).evidence == []
    cert = CommitCertificate(1, 0, FORK_B.hash, votes(Commit, FORK_B, (0, 2, 3)))
    out = r.handle(SyncedBlock(FORK_B, cert), T0)
    assert out.commit and out.evidence == []


def test_votes_in_another_view_are_no_evidence():
    # a validator may vote for another block in a later view (the view change moved on)
    r = shown_fork_a()
    cert = CommitCertificate(1, 1, FORK_B.hash, votes(Commit, FORK_B, (0, 2, 3), view=1))
    out = r.handle(SyncedBlock(FORK_B, cert), T0)
    assert out.commit and out.evidence == []
