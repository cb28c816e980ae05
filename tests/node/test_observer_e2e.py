"""An observer follows the chain, checks every certificate, and refuses a forged one."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from consensus.messages import Block, BlockHeader, CommitCertificate, Vote
from node.config import parse_address, read_key
from node.lab import cluster as clusters
from node.p2p.certs import client_context, server_context
from node.p2p.transport import Transport
from node.p2p.wire import NODE_CODEC, CertifiedBlock, HeadAnnounce, SyncResponse
from primitives.merkle import merkle_root
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio


async def test_observer_follows_and_refuses_a_block_with_a_forged_certificate(tmp_path: Path):
    async with Cluster(tmp_path / "net", validators=4, observers=1) as c:
        for i in range(3):
            code, _ = await c.post_tx(f"node{i}", c.anchor_tx(f"follow-{i}"), wait=True)
            assert code == 200
        validators = ["node0", "node1", "node2", "node3"]
        head = (await c.status("node1"))["height"]
        await c.wait_all(lambda s: s is not None and s["height"] >= head, 30, "the observer to follow", ["node4"])
        # Compare at one height: node1 may still be executing the block the observer already fetched elsewhere.
        async with asyncio.timeout(10):
            while True:
                obs, ref = await c.status("node4"), await c.status("node1")
                if obs["height"] == ref["height"]:
                    break
                await asyncio.sleep(0.05)
        assert obs["role"] == "observer" and obs["head_hash"] == ref["head_hash"]

        # node0 goes down; an impostor with node0's keys feeds the observer a forged block
        c.kill("node0")
        root = c.root
        key = read_key(root / "node0" / "node_key.json")
        trusted = [m.cert_pem for m in c.genesis.nodes]
        node0 = next(n for n in clusters.load_cluster(root) if n.name == "node0")
        node4 = next(n for n in clusters.load_cluster(root) if n.name == "node4")
        fake = Transport(
            "node0", key, c.genesis.chain_id, {m.name: m.key for m in c.genesis.nodes},
            parse_address(node0.p2p), {"node4": parse_address(node4.p2p)},
            server_context(root / "node0" / "tls", trusted), client_context(root / "node0" / "tls", trusted),
        )
        await fake.start()
        try:
            deadline = time.monotonic() + 20
            while "node4" not in fake.connected_peers():
                assert time.monotonic() < deadline, "impostor never connected to the observer"
                await asyncio.sleep(0.05)
            obs = await c.status("node4")
            h = obs["height"]
            txs = (c.anchor_tx("forged"),)
            header = BlockHeader(
                c.genesis.chain_id, h + 1, bytes.fromhex(obs["head_hash"]), 0, 0, int(time.time() * 1000),
                merkle_root(txs), 1, bytes.fromhex(obs["app_hash"]),
            )
            block = Block(header, txs)
            forged = CommitCertificate(h + 1, 0, block.hash, tuple(Vote(v, bytes(64)) for v in (0, 1, 2)))
            fake.send("node4", NODE_CODEC.encode(HeadAnnounce(h + 1, block.hash)))
            fake.send("node4", NODE_CODEC.encode(SyncResponse(h + 1, (CertifiedBlock(block, forged),))))
            deadline = time.monotonic() + 20
            while True:
                code, metrics = await _metrics(c, "node4")
                if "medchain_blocks_refused_total 1.0" in metrics:
                    break
                assert time.monotonic() < deadline, "observer did not refuse the forged block"
                await asyncio.sleep(0.1)
            code, body = await c.get("node4", f"/blocks/{h + 1}")
            assert code == 404 or body["hash"] != block.hash.hex()
        finally:
            await fake.stop()
        # the observer keeps following the honest chain
        code, ack = await c.post_tx("node2", c.anchor_tx("after forgery"), wait=True)
        assert code == 200
        await c.wait_all(lambda s: s is not None and s["height"] >= ack["height"], 30, "observer catch-up", ["node4"])
        code, block_json = await c.get("node4", f"/blocks/{ack['height']}")
        assert code == 200 and ack["tx_id"] in block_json["txs"]
        honest = [await c.status(n) for n in validators[1:]]
        assert {s["head_hash"] for s in honest} >= {(await c.status("node4"))["head_hash"]}


async def _metrics(c: Cluster, name: str) -> tuple[int, str]:
    reply = await c.node(name).send("GET", "/metrics")
    return reply.status, reply.text
