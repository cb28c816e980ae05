"""The node core's JSON documents, read from a real cluster, are what ``node.documents`` says they are."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

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
from tests.harness import Cluster, load
from tests.node.shapes import assert_matches


async def _first_event(content: aiohttp.StreamReader) -> Any:
    async for raw in content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            return json.loads(line[6:])
    raise AssertionError("the stream ended before its first event")


async def test_every_core_document_matches_its_type(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root) as c:
        assert c.session is not None
        async with c.session.get(c.api("node1") + "/events") as stream:
            code, committed = await c.post_tx("node0", c.anchor_tx("typed"), wait=True)
            assert code == 200 and committed["status"] == "committed", committed
            assert_matches(committed, TxStatus, "commit result")
            async with asyncio.timeout(20):
                event = await _first_event(stream.content)
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

        code, looked_up = await c.get("node2", f"/txs/{committed['tx_id']}")
        assert code == 200 and looked_up == committed
        code, unknown = await c.get("node2", "/txs/" + "00" * 32)
        assert code == 200 and unknown == {"tx_id": "00" * 32, "status": "unknown"}
        assert_matches(unknown, TxStatus, "unknown tx")

        code, pending = await c.post_tx("node3", c.anchor_tx("typed, not awaited"))
        assert code == 202 and pending["status"] == "pending", pending
        assert_matches(pending, TxStatus, "pending tx")

        code, proof = await c.get("node2", f"/proofs/{committed['tx_id']}")
        assert code == 200
        assert_matches(proof, ProofDocument, "proof")
        assert verify_proof(proof, load(root)) is None

        code, evidence = await c.get("node2", "/evidence")
        assert code == 200 and isinstance(evidence, list)
        for i, item in enumerate(evidence):
            assert_matches(item, EvidenceDocument, f"evidence[{i}]")


async def test_a_live_stream_ends_when_its_node_stops(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root) as c:
        assert c.session is not None
        async with c.session.get(c.api("node2") + "/events") as stream:
            first = await stream.content.readline()
            assert first.startswith(b": medchain commits")
            clusters.signal_node(root, "node2", "stop")
            async with asyncio.timeout(20):
                rest = await stream.content.read()
            assert b"event:" not in rest
