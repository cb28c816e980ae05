"""Commit certificates: what a lagging node, an observer or an auditor checks offline."""

from consensus.certificates import Verifier, verify_commit_certificate
from consensus.messages import CommitCertificate, Vote
from consensus.quorum import max_faulty, quorum
from tests.helpers import CHAIN, block, commit, keys, prepare

VALIDATORS = [k.verify_key for k in keys(4)]


def _cert(b, voters, view=0):
    votes = tuple(Vote(s, commit(b, s, view).signature) for s in voters)
    return CommitCertificate(b.height, view, b.hash, votes)


def test_quorum_arithmetic_keeps_two_quorums_meeting_in_an_honest_replica():
    for n in range(1, 100):
        f, q = max_faulty(n), quorum(n)
        assert n >= 3 * f + 1
        assert 2 * q - n >= f + 1  # any two quorums share at least one honest replica
        assert q <= n - f  # a quorum is reachable with f replicas silent
        if n == 3 * f + 1:
            assert q == 2 * f + 1


def test_a_certificate_of_a_quorum_of_commits_verifies():
    b = block()
    assert verify_commit_certificate(CHAIN, VALIDATORS, _cert(b, (0, 1, 3)), b) is None


def test_too_few_votes_fail():
    b = block()
    assert "quorum" in verify_commit_certificate(CHAIN, VALIDATORS, _cert(b, (0, 1)), b)


def test_a_validator_counted_twice_fails():
    b = block()
    c = _cert(b, (0, 1))
    dup = CommitCertificate(c.height, c.view, c.block_hash, (*c.votes, c.votes[0]))
    assert "twice" in verify_commit_certificate(CHAIN, VALIDATORS, dup, b)


def test_prepare_signatures_do_not_make_a_commit_certificate():
    b = block()
    votes = tuple(Vote(s, prepare(b, s).signature) for s in (0, 1, 2))
    cert = CommitCertificate(b.height, 0, b.hash, votes)
    assert "bad signature" in verify_commit_certificate(CHAIN, VALIDATORS, cert, b)


def test_a_certificate_for_another_block_view_or_chain_fails():
    b, other = block(), block(txs=(b"other",))
    assert verify_commit_certificate(CHAIN, VALIDATORS, _cert(b, (0, 1, 2)), other) is not None
    c = _cert(b, (0, 1, 2))
    moved = CommitCertificate(c.height, 1, c.block_hash, c.votes)  # signatures were for view 0
    assert verify_commit_certificate(CHAIN, VALIDATORS, moved, b) is not None
    assert verify_commit_certificate("other-chain", VALIDATORS, c) is not None


def test_verifier_memo_checks_each_signature_once():
    b = block()
    v = Verifier(CHAIN, VALIDATORS)
    c = _cert(b, (0, 1, 2))
    assert v.check_commit_certificate(c, b) is None
    assert v.check_commit_certificate(c, b) is None
    assert v.checked == 3
