"""The node core's JSON documents, read from a real cluster, are what ``node.documents`` says they are."""

from __future__ import annotations

import asyncio
from pathlib import Path

from node.client.sse import ServerSentEvent
from node.documents import (
    BlockDocument,
    CommitEvent,
    EvidenceDocument,
    Liveness,
    NodeStatus,
    ProofDocument,
    TxStatus,
)
from node.lab import cluster as clusters
from node.proofs import verify_proof
from tests.harness import Cluster, load, next_event
from tests.node.shapes import assert_matches


async def test_every_core_document_matches_its_type(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root) as c:
        async with c.events("node1") as stream:
            code, committed = await c.post_tx("node0", c.anchor_tx("typed"), wait=True)
            assert code == 200 and committed["status"] == "committed", committed
            assert_matches(committed, TxStatus, "commit result")
            async with asyncio.timeout(20):
                event = await next_event(stream)
            assert_matches(event, CommitEvent, "commit event")

        code, status = await c.get("node1", "/status")
        assert code == 200
        assert_matches(status, NodeStatus, "status")

        code, health = await c.get("node1", "/health")
        assert code == 200 and health.pop("ok") is True
        assert_matches(health, Liveness, "health")

        code, block = await c.get("node1", f"/blocks/{committed['height']}")
        assert code == 200 and committed["tx_id"] in block["txs"]
        assert_matches(block, BlockDocument, "block")

        # node1 has applied the block (its commit event came); node2 may not have yet
        code, looked_up = await c.get("node1", f"/txs/{committed['tx_id']}")
        assert code == 200 and looked_up == committed
        code, unknown = await c.get("node2", "/txs/" + "00" * 32)
        assert code == 200 and unknown == {"tx_id": "00" * 32, "status": "unknown"}
        assert_matches(unknown, TxStatus, "unknown tx")

        code, pending = await c.post_tx("node3", c.anchor_tx("typed, not awaited"))
        assert code == 202 and pending["status"] == "pending", pending
        assert_matches(pending, TxStatus, "pending tx")

        code, proof = await c.get("node1", f"/proofs/{committed['tx_id']}")
        assert code == 200
        assert_matches(proof, ProofDocument, "proof")
        assert verify_proof(proof, load(root)) is None

        code, evidence = await c.get("node2", "/evidence")
        assert code == 200 and isinstance(evidence, list)
        for i, item in enumerate(evidence):
            assert_matches(item, EvidenceDocument, f"evidence[{i}]")


async def test_a_live_stream_ends_when_its_node_stops(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root) as c, c.events("node2") as stream:  # entered once the node's greeting came
        clusters.signal_node(root, "node2", "stop")
        async with asyncio.timeout(20):
            rest = [item async for item in stream]
        assert not [item for item in rest if isinstance(item, ServerSentEvent)], rest
