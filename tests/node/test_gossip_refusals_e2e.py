"""Transactions a peer gossips and the node refuses are counted by reason at /metrics, never silently dropped."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from node.config import parse_address, read_key
from node.lab import cluster as clusters
from node.p2p.certs import client_context, server_context
from node.p2p.transport import Transport
from node.p2p.wire import NODE_CODEC, TxGossip
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio


async def _refused(c: Cluster, name: str) -> dict[str, float]:
    """The node's ``medchain_gossip_txs_refused_total`` samples, by reason."""
    reply = await c.node(name).send("GET", "/metrics")
    assert reply.status == 200
    pattern = r'^medchain_gossip_txs_refused_total\{reason="([^"]+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, reply.text, re.MULTILINE)}


async def _stand_in(c: Cluster, name: str, peer: str) -> Transport:
    """A transport with ``name``'s keys and address (its process killed), linked to ``peer``."""
    c.kill(name)
    homes = {n.name: n for n in clusters.load_cluster(c.root)}
    trusted = [m.cert_pem for m in c.genesis.nodes]
    tls = c.root / name / "tls"
    fake = Transport(
        name, read_key(c.root / name / "node_key.json"), c.genesis.chain_id, {m.name: m.key for m in c.genesis.nodes},
        parse_address(homes[name].p2p), {peer: parse_address(homes[peer].p2p)},
        server_context(tls, trusted), client_context(tls, trusted),
    )
    await fake.start()
    deadline = time.monotonic() + 20
    while peer not in fake.connected_peers():
        assert time.monotonic() < deadline, f"the stand-in for {name} never linked to {peer}"
        await asyncio.sleep(0.05)
    return fake


async def test_gossiped_transactions_refused_at_admission_are_counted_by_reason(tmp_path: Path):
    async with Cluster(tmp_path / "net") as c:
        known = c.anchor_tx("already in a block")
        code, committed = await c.post_tx("node0", known, wait=True)
        assert code == 200 and committed["status"] == "committed", committed
        await c.wait_all(lambda s: s is not None and s["height"] >= committed["height"], 30, "node1 to commit it",
                         ["node1"])
        assert await _refused(c, "node1") == {}
        fake = await _stand_in(c, "node3", "node1")
        try:
            fake.send("node1", NODE_CODEC.encode(TxGossip((b"\x93not a transaction", known))))
            want = {"malformed": 1.0, "already-committed": 1.0}
            deadline = time.monotonic() + 20
            while (refused := await _refused(c, "node1")) != want:
                assert time.monotonic() < deadline, f"node1 counted {refused}, expected {want}"
                await asyncio.sleep(0.1)
        finally:
            await fake.stop()
