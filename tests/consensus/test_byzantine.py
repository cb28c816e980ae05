"""``consensus.byzantine.Adversary`` as one real validator runs it: holding only its own key.

Each behaviour's output is checked message by message, and fed to an honest
replica where that says more (it must drop what is forged or garbled).
"""

import random

import pytest

from consensus.byzantine import BEHAVIOURS, Adversary
from consensus.certificates import Verifier
from consensus.events import Received, Send
from consensus.messages import CONSENSUS_CODEC, Commit, CommitCertificate, Prepare, Vote, vote_payload
from primitives.errors import DecodeError
from primitives.merkle import merkle_root
from tests.helpers import CHAIN, T0, block, commit, encode, keys, pre_prepare, prepare, replica

N = 4
ME = 0
VERIFIER = Verifier(CHAIN, [k.verify_key for k in keys(N)])


def adversary(behaviour: str, seed: int = 1) -> Adversary:
    return Adversary(behaviour, {ME: keys(N)[ME]}, N, CHAIN, random.Random(seed))


def signed_by_me(data: bytes) -> bool:
    m = CONSENSUS_CODEC.decode(data)
    return m.sender == ME and VERIFIER.verify(ME, m.DOMAIN, m.signing_payload(), m.signature)


def broadcast(message: object) -> Send:
    return Send(encode(message))


TXS = (b"tx-a", b"tx-b", b"tx-c")


def test_the_behaviours_are_the_six_the_simulator_and_the_nodes_share():
    assert BEHAVIOURS == ("equivocate", "silent", "bad-sig", "vote-unknown", "stale", "garbage")


def test_an_unknown_behaviour_or_a_key_outside_the_validator_set_is_refused():
    with pytest.raises(ValueError, match="unknown behaviour"):
        Adversary("lying", {ME: keys(N)[ME]}, N, CHAIN, random.Random(0))
    with pytest.raises(ValueError, match=r"0\.\.3"):
        Adversary("silent", {7: keys(N)[0]}, N, CHAIN, random.Random(0))


def test_an_equivocating_primary_shows_the_others_two_blocks_both_signed_with_its_own_key():
    adv = adversary("equivocate")
    b = block(txs=TXS)
    out = adv.outgoing(ME, broadcast(pre_prepare(b)))
    assert sorted(t for t, _ in out) == [1, 2, 3]
    shown = {t: CONSENSUS_CODEC.decode(data) for t, data in out}
    hashes = {t: m.block.hash for t, m in shown.items()}
    # the engine's own block to one of the three others, a twin to the other two
    assert len(set(hashes.values())) == 2 and list(hashes.values()).count(b.hash) == 1
    twin = next(m.block for m in shown.values() if m.block.hash != b.hash)
    # a block an honest replica would validate: same height and parent, transactions matching its root
    assert twin.header.prev_hash == b.header.prev_hash and twin.height == b.height
    assert twin.header.tx_root == merkle_root(twin.txs) and twin.header.tx_count == len(twin.txs)
    assert all(signed_by_me(data) for _, data in out)
    assert adv.forks_made == 1
    # its PREPARE and COMMIT follow each receiver's fork, re-signed with its key
    for message in (prepare(b, ME), commit(b, ME)):
        votes = dict(adv.outgoing(ME, broadcast(message)))
        assert {t: CONSENSUS_CODEC.decode(d).block_hash for t, d in votes.items()} == hashes
        assert all(signed_by_me(d) for d in votes.values())


def test_the_same_seed_splits_the_others_the_same_way():
    def split(seed: int) -> dict[int, bytes]:
        out = adversary("equivocate", seed).outgoing(ME, broadcast(pre_prepare(block(txs=TXS))))
        return {t: CONSENSUS_CODEC.decode(d).block.hash for t, d in out}

    assert split(5) == split(5)
    assert len({tuple(sorted(split(s).items())) for s in range(12)}) > 1


def test_an_equivocator_that_is_not_primary_sends_its_votes_unchanged():
    adv = adversary("equivocate")
    vote = encode(prepare(block(), ME, view=1))
    assert adv.outgoing(ME, Send(vote)) == [(1, vote), (2, vote), (3, vote)]
    assert adv.outgoing(ME, Send(vote, to=2)) == [(2, vote)]


def test_a_silent_validator_sends_nothing_and_serves_no_blocks():
    adv = adversary("silent")
    assert adv.outgoing(ME, broadcast(prepare(block(), ME))) == []
    assert not adv.serves_blocks and not adv.runs_engine(ME) and adv.runs_engine(1)


def test_bad_signatures_on_every_message_and_served_certificate_are_dropped_by_honest_replicas():
    adv = adversary("bad-sig")
    b = block()
    out = adv.outgoing(ME, broadcast(pre_prepare(b)))
    assert [t for t, _ in out] == [1, 2, 3] and not any(signed_by_me(d) for _, d in out)
    honest = replica(N, 1)
    result = honest.handle(Received(out[0][1]), T0)
    assert result.validate == [] and honest.stats["dropped.bad-signature"] == 1
    votes = tuple(Vote(i, keys(N)[i].sign(Commit.DOMAIN, CHAIN, vote_payload(1, 0, b.hash))) for i in range(3))
    cert = CommitCertificate(1, 0, b.hash, votes)
    assert VERIFIER.check_commit_certificate(cert, b) is None
    assert "bad signature" in (VERIFIER.check_commit_certificate(adv.served_certificate(cert), b) or "")
    assert adversary("stale").served_certificate(cert) is cert


def test_votes_for_unknown_blocks_come_with_the_honest_vote_signed_with_its_key():
    adv = adversary("vote-unknown")
    b = block()
    honest = encode(prepare(b, ME))
    out = adv.outgoing(ME, Send(honest))
    assert [(t, d) for t, d in out if d == honest] == [(1, honest), (2, honest), (3, honest)]
    fakes = [CONSENSUS_CODEC.decode(d) for _, d in out if d != honest]
    assert len(fakes) == 6 and {type(m) for m in fakes} == {Prepare, Commit}
    assert all(m.block_hash != b.hash and m.height in (1, 2) and m.view in (0, 1) for m in fakes)
    assert all(signed_by_me(d) for _, d in out)
    proposal = encode(pre_prepare(b))
    assert adv.outgoing(ME, Send(proposal)) == [(1, proposal), (2, proposal), (3, proposal)]


def test_a_stale_validator_replays_what_it_sent_and_received():
    adv = adversary("stale")
    assert adv.replays(ME) == []
    sent, heard = encode(prepare(block(), ME)), encode(prepare(block(), 2))
    assert adv.outgoing(ME, Send(sent)) == [(1, sent), (2, sent), (3, sent)]
    adv.received(ME, heard)
    replayed = [d for _ in range(20) for _, d in adv.replays(ME)]
    assert replayed and set(replayed) <= {sent, heard}
    assert all(t != ME for _ in range(20) for t, _ in adv.replays(ME))
    assert adversary("garbage").replays(ME) == []


def test_garbage_follows_every_message_and_comes_in_seeded_bursts_that_honest_replicas_drop():
    adv = adversary("garbage", seed=3)
    vote = encode(prepare(block(), ME))
    out = adv.outgoing(ME, Send(vote))
    assert [t for t, _ in out] == [1, 1, 2, 2, 3, 3] and [d for _, d in out][::2] == [vote] * 3
    burst = adv.flood(ME, burst=4)
    assert sorted(t for t, _ in burst) == [1] * 4 + [2] * 4 + [3] * 4
    assert burst != adv.flood(ME, burst=4) and adversary("garbage", seed=3).outgoing(ME, Send(vote)) == out
    assert adv.garbage_sent == 3 + 12 + 12
    honest = replica(N, 1)
    for _, data in [*out[1::2], *burst]:
        with pytest.raises(DecodeError):
            CONSENSUS_CODEC.decode(data)
        honest.handle(Received(data), T0)
    assert honest.stats["dropped.malformed"] == 15 and honest.stats["accepted"] == 0
    assert adversary("stale").flood(ME) == []


def test_messages_of_other_validators_are_never_rewritten():
    theirs = encode(prepare(block(), 2))
    for behaviour in ("equivocate", "vote-unknown"):
        assert {d for _, d in adversary(behaviour).outgoing(ME, Send(theirs))} == {theirs}
