"""Gossip: a validator that reaches the others only through one peer still takes part."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.harness import Cluster, next_event

pytestmark = pytest.mark.asyncio


def _cut_links(root: Path, a: str, b: str) -> None:
    """Remove a and b from each other's peer lists: neither ever dials the other."""
    for me, other in ((a, b), (b, a)):
        path = root / me / "config.toml"
        text = path.read_text()
        text = re.sub(r'\s*\{ name = "' + other + r'", address = "[^"]+" \},', "", text)
        path.write_text(text)


async def test_a_validator_behind_one_peer_votes_through_relays_and_commits_events_stream(tmp_path: Path):
    root = tmp_path / "net"
    c = Cluster(root)
    _cut_links(root, "node3", "node0")
    _cut_links(root, "node3", "node1")
    async with c:
        status = await c.status("node3")
        assert status is not None
        await c.wait_all(lambda s: s is not None and s["peers"] == ["node2"], 20, "node3 linked to node2 only",
                         ["node3"])
        # a transaction submitted to the isolated validator is gossiped on and committed
        code, body = await c.post_tx("node3", c.anchor_tx("relayed"), wait=True)
        assert code == 200 and body["status"] == "committed", body
        # node3 heard the primary's proposals only as compact frames relayed by node2, and rebuilt them
        metrics = (await c.node("node3").send("GET", "/metrics")).text
        rebuilt = [float(v) for v in re.findall(r'medchain_compact_proposals_total\{outcome="\w+"\} (\S+)', metrics)]
        assert sum(rebuilt) >= 1, metrics[-2000:]
        # after storing a block, a node hands its freed heap back to the OS (node/memory.py), timed as a stage
        trims = re.search(r'medchain_block_seconds_count\{clock="cpu",stage="trim"\} (\S+)', metrics)
        assert trims is not None and float(trims.group(1)) >= 1, metrics[-3000:]
        # every consensus WAL append is timed: a backup appends its signed votes and prepared certificates
        appends = re.search(r"medchain_wal_append_seconds_count (\S+)", metrics)
        assert appends is not None and float(appends.group(1)) >= 2, metrics[-3000:]
        # the Server-Sent Events stream reports the next commit
        async with c.events("node1") as stream:
            code, ack = await c.post_tx("node0", c.anchor_tx("streamed"), wait=True)
            assert code == 200
            async with asyncio.timeout(20):
                event = await next_event(stream)
                while event["height"] < ack["height"]:
                    event = await next_event(stream)
            assert event["height"] == ack["height"] and event["txs"] >= 1
        # without node0 a quorum (3 of 4) needs node3's votes, which only travel through node2
        c.kill("node0")
        others = ["node1", "node2", "node3"]
        code, body = await c.post_tx("node1", c.anchor_tx("needs node3"), wait=True, timeout=60)
        assert code == 200 and body["status"] == "committed", body
        await c.wait_all(lambda s: s is not None and s["height"] >= body["height"], 30, "all three", others)
