"""node.proposals: a PRE-PREPARE sent as tx ids and rebuilt from what a replica holds (pure, no I/O).

The rebuilt message must be the primary's own: same bytes, same valid
signature; what is missing is asked for and filled in; a proposal that names
transactions wrongly rebuilds into a block that validation refuses.
"""

from __future__ import annotations

from consensus.messages import CONSENSUS_CODEC, Block, BlockHeader, Prepare, PrePrepare
from node.p2p.wire import NODE_CODEC, CompactProposal
from node.proposals import PRE_PREPARE_PREFIX, ProposalAssembler, compact, rebuild, serve
from node.transaction import tx_id
from node.validation import transactions_problem
from primitives.merkle import merkle_root
from primitives.signing import SigningKey
from tests.helpers import sign

CHAIN = "compact-test"
KEY = SigningKey.generate()


def _proposal(txs: list[bytes], height: int = 7, view: int = 0) -> PrePrepare:
    header = BlockHeader(CHAIN, height, b"\x01" * 32, 0, view, 1_000, merkle_root(txs), len(txs), b"\x02" * 32)
    return sign(PrePrepare(view, height, Block(header, tuple(txs)), 0, b""), KEY, CHAIN)


TXS = [f"transaction {i}".encode() * 10 for i in range(50)]


def test_a_complete_proposal_rebuilds_byte_for_byte_with_the_primarys_signature() -> None:
    message = _proposal(TXS)
    small = compact(message)
    assert len(NODE_CODEC.encode(small)) < len(CONSENSUS_CODEC.encode(message)) / 3
    held = {tx_id(t): t for t in TXS}
    rebuilt = ProposalAssembler().offer("node0", NODE_CODEC.decode(NODE_CODEC.encode(small)), held.get)
    assert isinstance(rebuilt, PrePrepare)
    assert CONSENSUS_CODEC.encode(rebuilt) == CONSENSUS_CODEC.encode(message)
    assert KEY.verify_key.verify(rebuilt.DOMAIN, CHAIN, rebuilt.signing_payload(), rebuilt.signature)


def test_known_ids_are_used_as_given_and_recomputed_when_they_do_not_fit() -> None:
    message = _proposal(TXS)
    ids = [tx_id(t) for t in TXS]
    assert compact(message, ids).tx_ids == tuple(ids)
    assert compact(message, ids[:-1]).tx_ids == tuple(ids)  # wrong length: computed from the block


def test_missing_transactions_are_asked_for_once_and_the_fill_completes_the_proposal() -> None:
    message = _proposal(TXS)
    held = {tx_id(t): t for t in TXS[5:]}
    assembler = ProposalAssembler()
    asked = assembler.offer("node0", compact(message), held.get)
    assert asked == [tx_id(t) for t in TXS[:5]]
    assert len(assembler) == 1
    assert assembler.fill(7, 0, TXS[:2]) == []  # still three short
    done = assembler.fill(7, 0, [TXS[2], TXS[3], TXS[4], b"something else"])
    assert [CONSENSUS_CODEC.encode(m) for m in done] == [CONSENSUS_CODEC.encode(message)]
    assert len(assembler) == 0 and assembler.fetched == 1


def test_a_fill_for_another_height_or_view_completes_nothing() -> None:
    assembler = ProposalAssembler()
    assembler.offer("node0", compact(_proposal(TXS)), lambda tid: None)
    assert assembler.fill(8, 0, TXS) == [] and assembler.fill(7, 1, TXS) == []
    assert len(assembler.fill(7, 0, TXS)) == 1


def test_waiting_proposals_are_bounded_and_forgotten_once_their_height_is_decided() -> None:
    assembler = ProposalAssembler(max_incomplete=2)
    for height in (5, 6, 7):
        assembler.offer("node0", compact(_proposal(TXS, height=height)), lambda tid: None)
    assert len(assembler) == 2 and assembler.dropped == 1
    assert assembler.fill(5, 0, TXS) == []  # the oldest went
    assembler.forget_through(6)
    assert len(assembler) == 1
    assert len(assembler.fill(7, 0, TXS)) == 1


def test_ids_that_name_other_transactions_rebuild_a_block_that_validation_refuses() -> None:
    message = _proposal(TXS)
    other = [b"another transaction"] * 1 + TXS[1:]
    lying = CompactProposal(message.view, message.height, message.block.header,
                            tuple(tx_id(t) for t in other), message.sender, message.signature)
    held = {tx_id(t): t for t in other}
    rebuilt = ProposalAssembler().offer("node0", lying, held.get)
    assert isinstance(rebuilt, PrePrepare)
    assert rebuilt.block.hash == message.block.hash  # the header, so the signature, is the primary's
    assert transactions_problem(rebuilt.block) is not None


def test_serving_a_fetch_takes_the_mempool_first_then_the_proposed_block() -> None:
    block = _proposal(TXS).block
    pool = {tx_id(t): t for t in TXS[:10]}
    wanted = [tx_id(t) for t in (TXS[3], TXS[20], b"never seen")]
    assert serve(wanted, pool.get, None) == [TXS[3]]
    assert serve(wanted, pool.get, block) == [TXS[3], TXS[20]]


def test_the_pre_prepare_prefix_tells_a_proposal_from_every_other_message() -> None:
    assert CONSENSUS_CODEC.encode(_proposal(TXS)).startswith(PRE_PREPARE_PREFIX)
    vote = sign(Prepare(0, 7, b"\x03" * 32, 1, b""), KEY, CHAIN)
    assert not CONSENSUS_CODEC.encode(vote).startswith(PRE_PREPARE_PREFIX)


def test_rebuild_keeps_block_order() -> None:
    message = _proposal(TXS)
    shuffled = compact(message)
    assert rebuild(shuffled, list(TXS)).block.txs == tuple(TXS)


def test_a_blocks_tx_hashes_are_the_node_tx_ids_and_survive_encoding() -> None:
    block = _proposal(TXS).block
    assert block.tx_hashes() == tuple(tx_id(t) for t in TXS)
    assert block.tx_hashes() is block.tx_hashes()  # computed once
    again = CONSENSUS_CODEC.decode(CONSENSUS_CODEC.encode(_proposal(TXS))).block
    assert again == block and again.tx_hashes() == block.tx_hashes()
