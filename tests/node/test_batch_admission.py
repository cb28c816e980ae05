"""``Node.submit_batch`` in-process: one admission pass, one wake-up of the replica and one gossip message per batch.

A real node (real ChainStore in ``tmp_path``, real healthcare application),
not started: admission needs none of its tasks.  What it hands the transport
to broadcast is recorded at the transport's ``broadcast``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consensus.events import PendingWork
from node.config import load_config, read_key
from node.healthcare.node_app import healthcare_app
from node.healthcare.transactions import Anchor, make_transaction
from node.lab.testnet import client_key, generate_testnet
from node.mempool import MempoolLimits
from node.p2p.setup import build_transport
from node.p2p.wire import NODE_CODEC, TxGossip
from node.runtime import GOSSIP_FLUSH_S, Node
from node.transaction import tx_id
from primitives.hashing import sha256
from storage.chainstore import ChainStore
from tests.harness import free_base_port

pytestmark = pytest.mark.asyncio


@dataclass
class Admitting:
    """A node, not started, and the payloads it handed its transport to broadcast."""

    node: Node
    broadcasts: list[bytes]


@pytest.fixture
async def admitting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Admitting]:
    genesis = generate_testnet(tmp_path, 4, 0, free_base_port(4), chain_id="batch-admission")
    home = tmp_path / genesis.validators[0].name
    config = load_config(home)
    key = read_key(home / "node_key.json")
    store = ChainStore.open(config.path(config.data_dir), genesis.chain_id, genesis.hash)
    built = Node(config, genesis, key, store, build_transport(config, genesis, key, home), healthcare_app(home))
    sent: list[bytes] = []
    monkeypatch.setattr(built.transport, "broadcast", lambda payload, only=None: sent.append(payload))
    try:
        yield Admitting(built, sent)
    finally:
        built.app.close()
        store.close()


def anchors(node: Node, label: str, count: int) -> list[bytes]:
    client = client_key(node.cfg.path(node.cfg.genesis).parent, 0)
    now = int(time.time() * 1000)
    return [make_transaction(client, node.chain_id, Anchor(sha256(f"{label} {i}".encode()), label), now)
            for i in range(count)]


def wake_ups(node: Node) -> int:
    return sum(isinstance(item, PendingWork) for item in list(node.inbox._queue))  # type: ignore[attr-defined]


def gossiped(at: Admitting) -> list[tuple[bytes, ...]]:
    return [m.txs for m in map(NODE_CODEC.decode, at.broadcasts) if isinstance(m, TxGossip)]


async def test_a_batch_wakes_the_replica_once_and_gossips_in_one_message(admitting: Admitting) -> None:
    node = admitting.node
    txs = anchors(node, "batch", 50)
    reply = await node.submit_batch([*txs, b"not a transaction"], wait_commit=False, timeout=1)
    assert reply["counts"] == {"pending": 50, "committed": 0, "rejected": 0, "refused": 1, "timeout": 0}
    assert wake_ups(node) == 1
    assert gossiped(admitting) == []  # the flush waits GOSSIP_FLUSH_S for more
    await asyncio.sleep(GOSSIP_FLUSH_S * 4)
    assert gossiped(admitting) == [tuple(txs)]
    assert len(node.mempool) == 50


async def test_transactions_sent_one_by_one_wake_it_once_and_share_a_gossip_message(admitting: Admitting) -> None:
    """A wake-up waiting in the inbox covers later transactions; gossip gathers what comes within GOSSIP_FLUSH_S."""
    node = admitting.node
    txs = anchors(node, "single", 5)
    for tx in txs:
        await node.submit(tx, wait_commit=False, timeout=1)
    assert wake_ups(node) == 1
    await asyncio.sleep(GOSSIP_FLUSH_S * 4)
    assert gossiped(admitting) == [tuple(txs)]


async def test_a_wake_up_is_queued_again_once_the_replica_took_the_last(admitting: Admitting) -> None:
    """The contrast: the once-only rule holds while one waits, not forever."""
    node = admitting.node
    first, second = anchors(node, "again", 2)
    await node.submit(first, wait_commit=False, timeout=1)
    taken = node.inbox.get_nowait()
    assert isinstance(taken, PendingWork)
    node._wake_queued = False  # what the drive loop does when it takes a PendingWork
    await node.submit(second, wait_commit=False, timeout=1)
    assert wake_ups(node) == 1


async def test_a_batch_of_refusals_wakes_nothing_and_gossips_nothing(admitting: Admitting) -> None:
    node = admitting.node
    reply = await node.submit_batch([b"junk", b"more junk"], wait_commit=False, timeout=1)
    assert [r["error"] for r in reply["results"]] == ["malformed", "malformed"]
    await asyncio.sleep(0)
    assert wake_ups(node) == 0 and gossiped(admitting) == []


async def test_a_full_mempool_refuses_before_checking_and_keeps_nothing_of_what_it_refused(
    admitting: Admitting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node behind the others fills its mempool with what they committed; what it cannot hold it must not
    verify (the CPU it needs to catch up) nor keep (decoded forms, verdicts)."""
    node = admitting.node
    monkeypatch.setattr(node.mempool, "limits", MempoolLimits(max_txs=10))
    txs = anchors(node, "full", 15)
    reply = await node.submit_batch(txs, wait_commit=False, timeout=1)
    assert [r["status"] for r in reply["results"]] == ["pending"] * 10 + ["refused"] * 5
    assert {r["error"] for r in reply["results"][10:]} == {"mempool-full"}
    assert node.checker.verified == 10  # the five refused were never checked
    refused = [tx_id(data) for data in txs[10:]]
    assert not any(node.checker.verified_ok(t) or node.checker.peek(t) is not None for t in refused)
    again = await node.submit_batch(txs[:3], wait_commit=False, timeout=1)  # already held: not "full"
    assert [r["status"] for r in again["results"]] == ["pending"] * 3 and node.checker.verified == 10
