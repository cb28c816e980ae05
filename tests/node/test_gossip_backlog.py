"""Gossip is queued where it is read and checked later; consensus frames pass it.

``GossipBacklog`` on its own (pure), then a real node in-process (real store,
real transport, real signatures): a large gossip frame returns at once, a vote
that arrives behind it reaches the replica before the gossip is all checked,
and every gossiped transaction still lands in the mempool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consensus.messages import CONSENSUS_CODEC, Prepare
from node.config import load_config, read_key
from node.genesis import load_genesis
from node.healthcare.node_app import healthcare_app
from node.healthcare.transactions import Anchor, make_transaction
from node.lab.testnet import client_key, generate_testnet
from node.mempool import GossipBacklog
from node.p2p.setup import build_transport
from node.p2p.wire import NODE_CODEC, ConsensusFrame, TxGossip
from node.runtime import Node
from primitives.hashing import sha256
from storage.chainstore import ChainStore
from tests.harness import free_base_port
from tests.helpers import sign


def test_the_backlog_keeps_arrival_order_and_one_entry_per_transaction() -> None:
    backlog = GossipBacklog(max_txs=10)
    assert backlog.add(b"a", b"A", "node1")
    assert backlog.add(b"b", b"B", "node2")
    assert not backlog.add(b"a", b"A", "node3")  # already queued: the first origin stays
    assert b"a" in backlog and len(backlog) == 2
    assert backlog.take(1) == [(b"a", b"A", "node1")]
    assert backlog.take(5) == [(b"b", b"B", "node2")]
    assert len(backlog) == 0 and backlog.take(5) == []


def test_a_full_backlog_drops_and_counts_and_takes_again_once_drained() -> None:
    backlog = GossipBacklog(max_txs=2)
    assert backlog.add(b"a", b"A", "p") and backlog.add(b"b", b"B", "p")
    assert not backlog.add(b"c", b"C", "p")
    assert backlog.dropped == 1 and b"c" not in backlog
    backlog.take(1)
    assert backlog.add(b"c", b"C", "p")
    assert [tid for tid, _, _ in backlog.take(5)] == [b"b", b"c"]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """Validator 3 of a 4-validator testnet (not the primary), started in-process; its peers never run."""
    genesis = generate_testnet(tmp_path / "net", 4, 0, free_base_port(4), chain_id="backlog-test")
    home = tmp_path / "net" / genesis.validators[3].name
    config = load_config(home)
    key = read_key(home / "node_key.json")
    assert load_genesis(config.path(config.genesis)).validator_index(key.verify_key) == 3
    store = ChainStore.open(config.path(config.data_dir), genesis.chain_id, genesis.hash)
    started = Node(config, genesis, key, store, build_transport(config, genesis, key, home), healthcare_app(home))
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
        started.app.close()
        store.close()


def _anchors(node: Node, count: int) -> list[bytes]:
    client = client_key(node.cfg.path(node.cfg.genesis).parent, 0)
    now = int(time.time() * 1000)
    return [make_transaction(client, node.chain_id, Anchor(sha256(f"g {i}".encode()), "g"), now) for i in range(count)]


def _prepare_from_validator_1(node: Node) -> bytes:
    key = read_key(node.cfg.path(node.cfg.genesis).parent / node.validator_names[1] / "node_key.json")
    vote = sign(Prepare(0, 1, sha256(b"a block"), 1, b""), key, node.chain_id)
    return NODE_CODEC.encode(ConsensusFrame(CONSENSUS_CODEC.encode(vote)))


@pytest.mark.asyncio
async def test_a_vote_behind_a_large_gossip_frame_reaches_the_replica_before_the_gossip_is_checked(node: Node):
    txs = _anchors(node, 1500)
    started = time.perf_counter()
    node._on_p2p("node0", NODE_CODEC.encode(TxGossip(tuple(txs))))
    node._on_p2p("node1", _prepare_from_validator_1(node))
    read_s = time.perf_counter() - started
    # Where the frame was read nothing was checked: 1,500 signature checks take tens of ms, this took less.
    assert len(node.mempool) == 0 and len(node._gossip_in) == 1500, read_s

    assert node.replica is not None
    backlog_when_voted: list[int] = []
    async with asyncio.timeout(10):
        while not backlog_when_voted:
            log = node.replica.logs.get(1)
            if log is not None and (1, "Prepare", 0) in log.first_seen:  # (sender, phase, view)
                backlog_when_voted.append(len(node._gossip_in))
            await asyncio.sleep(0)
    assert backlog_when_voted[0] > 0, "the vote waited for every gossiped transaction to be checked"

    async with asyncio.timeout(30):
        while len(node.mempool) < 1500:
            await asyncio.sleep(0.01)
    assert len(node._gossip_in) == 0 and node.checker.verified >= 1500


@pytest.mark.asyncio
async def test_gossip_that_repeats_what_is_pending_is_not_queued_again(node: Node):
    txs = _anchors(node, 20)
    node._on_p2p("node0", NODE_CODEC.encode(TxGossip(tuple(txs))))
    async with asyncio.timeout(10):
        while len(node.mempool) < 20:
            await asyncio.sleep(0.01)
    node._on_p2p("node2", NODE_CODEC.encode(TxGossip(tuple(txs))))
    assert len(node._gossip_in) == 0
