"""Crashes (kill -9), pauses (SIGSTOP) and restarts of real node processes under load."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from node.client.http import ApiFailure, NodeUnreachable
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio


class Load:
    """Submit anchors round-robin with ?wait=commit; remember every acknowledged one, count every failure.

    A request fails only when the node it went to was faulted while it was in
    flight (nodes marked down get none), so each fault may fail at most
    ``concurrency`` requests: ``check_errors`` holds a run to that bound.
    """

    def __init__(self, c: Cluster, concurrency: int = 8) -> None:
        self.c = c
        self.concurrency = concurrency
        self.acked: dict[str, int] = {}  # tx id -> height reported
        self.sent = 0
        self.errors: Counter[str] = Counter()  # what went wrong -> how often
        self.unconfirmed = 0  # answered, but not committed within the wait
        self.stop = asyncio.Event()
        self.down: set[str] = set()
        self.tasks = [asyncio.create_task(self._worker(i)) for i in range(concurrency)]

    async def _worker(self, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            names = [n for n in self.c.names if n not in self.down]
            name = names[(w + i) % len(names)]
            i += 1
            self.sent += 1
            tx = self.c.anchor_tx(f"load-{w}-{i}-{random.random()}")
            try:
                code, body = await self.c.post_tx(name, tx, wait=True, timeout=20)
            except (NodeUnreachable, ApiFailure) as e:
                self.errors[f"{name}: {type(e).__name__}: {e}"] += 1
                await asyncio.sleep(0.05)
                continue
            if code != 200:
                self.errors[f"{name}: HTTP {code}: {body}"] += 1
            elif body.get("status") == "committed":
                self.acked[body["tx_id"]] = body["height"]
            else:
                self.unconfirmed += 1

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)  # a worker that died of anything unexpected fails the test here

    def check(self, faults: int, min_acked: int) -> None:
        """At least ``min_acked`` acknowledged; no more failed requests than ``faults`` can explain."""
        report = f"{len(self.acked)} acknowledged of {self.sent} sent, {self.unconfirmed} unconfirmed, " \
                 f"client errors: {dict(self.errors)}"
        assert len(self.acked) >= min_acked, report
        assert sum(self.errors.values()) <= faults * self.concurrency, report


async def _back(c: Cluster, load: Load, name: str) -> None:
    """Restart ``name`` and give it load again once its API answers."""
    c.restart(name)
    await c.wait_all(lambda s: s is not None, 30, f"{name}'s API to answer", [name])
    load.down.discard(name)


async def _same_head(c: Cluster, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    statuses: list = []
    while asyncio.get_running_loop().time() < deadline:
        statuses = [await c.status(n) for n in c.names]
        if all(statuses) and len({(s["height"], s["head_hash"], s["app_hash"]) for s in statuses}) == 1:
            return statuses[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"nodes did not converge on one head: {statuses}")


async def _check_chain(c: Cluster, load: Load) -> None:
    head = await _same_head(c)
    seen: dict[str, int] = {}
    for h in range(1, head["height"] + 1):
        code, block = await c.get(c.names[h % len(c.names)], f"/blocks/{h}")
        assert code == 200
        for tid in block["txs"]:
            assert tid not in seen, f"tx {tid} committed at heights {seen[tid]} and {h}"
            seen[tid] = h
    lost = [tid for tid in load.acked if tid not in seen]
    assert not lost, f"{len(lost)} acknowledged transactions are missing from the chain"
    moved = [tid for tid, h in load.acked.items() if seen[tid] != h]
    assert not moved, "an acknowledged transaction sits at another height than reported"


async def _progress(c: Cluster, names: list[str], blocks: int, timeout: float = 30) -> None:
    statuses = [await c.status(n) for n in names]
    start = max(int(s["height"]) for s in statuses if s is not None)
    await c.wait_all(lambda s: s is not None and s["height"] >= start + blocks, timeout,
                     f"{blocks} more blocks", names)


async def test_killed_backup_and_killed_primary_recover_under_load(tmp_path: Path):
    async with Cluster(tmp_path / "net") as c:
        load = Load(c)
        await _progress(c, c.names, 3)
        # a backup crashes and comes back: it catches up and rejoins
        primary = (await c.status("node0"))["primary"]
        backup = next(n for n in c.names if n != primary)
        load.down.add(backup)
        c.kill(backup)
        await _progress(c, [n for n in c.names if n != backup], 3)
        await _back(c, load, backup)
        await _progress(c, c.names, 3, timeout=45)
        # the primary crashes: a view change follows and commits resume
        load.down.add(primary)
        c.kill(primary)
        others = [n for n in c.names if n != primary]
        await c.wait_all(lambda s: s is not None and s["view"] >= 1, 30, "a view change", others)
        # every view change is one info line saying old and new view, why and who leads now
        lines = [json.loads(line) for line in (c.root / others[0] / "node.log").read_text().splitlines()
                 if '"view-change"' in line]
        assert lines and lines[-1]["level"] == "info"
        assert {"old_view", "new_view", "reason", "primary", "height"} <= set(lines[-1])
        assert lines[-1]["new_view"] > lines[-1]["old_view"]
        await _progress(c, others, 3, timeout=45)
        await _back(c, load, primary)
        await _progress(c, c.names, 2, timeout=45)
        await load.finish()
        load.check(faults=2, min_acked=20)
        await _check_chain(c, load)


async def test_repeated_kills_at_random_moments_lose_no_acknowledged_transaction(tmp_path: Path):
    rng = random.Random(7)
    async with Cluster(tmp_path / "net") as c:
        load = Load(c)
        await _progress(c, c.names, 2)
        for _ in range(10):
            victim = rng.choice(c.names)
            await asyncio.sleep(rng.uniform(0.05, 1.0))
            load.down.add(victim)
            c.kill(victim)
            await _progress(c, [n for n in c.names if n != victim], 1, timeout=45)
            await _back(c, load, victim)
        await _progress(c, c.names, 2, timeout=60)
        await load.finish()
        load.check(faults=10, min_acked=20)
        await _check_chain(c, load)


async def test_a_paused_validator_resumes_without_a_fork_and_catches_up(tmp_path: Path):
    async with Cluster(tmp_path / "net", progress_timeout_ms=500) as c:
        load = Load(c)
        await _progress(c, c.names, 2)
        victim = (await c.status("node0"))["primary"]  # the hardest case: freeze the primary
        load.down.add(victim)
        c.pause(victim)
        others = [n for n in c.names if n != victim]
        await _progress(c, others, 5, timeout=45)  # well past the view-change timeout
        c.resume(victim)
        load.down.discard(victim)
        await _progress(c, c.names, 2, timeout=45)
        await load.finish()
        load.check(faults=1, min_acked=10)
        await _check_chain(c, load)


async def test_a_full_mempool_answers_503_and_loses_nothing_it_accepted(tmp_path: Path):
    async with Cluster(tmp_path / "net", mempool_max_txs=40) as c:
        txs = [c.anchor_tx(f"burst-{i}") for i in range(600)]
        accepted, refused, retry_after = [], 0, set()
        node2 = c.node("node2")

        async def post(tx: bytes) -> None:
            nonlocal refused
            reply = await node2.send("POST", "/txs", data=tx, timeout=60)
            body = reply.json()
            if reply.status == 202:
                accepted.append(body["tx_id"])
            else:
                assert reply.status == 503, body
                assert body["error"] == "mempool-full"
                refused += 1
                retry_after.add(reply.headers.get("Retry-After"))

        await asyncio.gather(*(post(tx) for tx in txs))
        assert refused > 0 and accepted, (refused, len(accepted))
        assert retry_after == {"1"}
        await c.wait_all(lambda s: s is not None and s["mempool"]["txs"] == 0, 60, "mempools to drain")
        for tid in accepted:
            code, body = await c.get("node0", f"/txs/{tid}")
            assert code == 200 and body["status"] == "committed", body
