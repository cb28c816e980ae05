"""End-to-end disk faults on a real 4-validator cluster: wipe-and-rejoin, snapshot and restore, kill -9 under load.

Each test keeps a little load going, applies the fault through the functions
the chaos runner calls (from a worker thread, as it does), waits until the
faulty node is back at the others' height, then stops the cluster and reads
every node's store offline: each must pass ``check_store`` and every node must
hold the same block hash at every height.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli.main import main as cli
from node.client.http import ApiFailure, NodeUnreachable
from node.healthcare.vault import KEYS_DIRNAME, VAULT_DIRNAME
from node.lab import cluster as clusters
from node.lab.disk_faults import check_store, data_dir, restore_node, wipe_node
from primitives.hashing import sha256
from storage import blockstore
from storage.chainstore import ChainStore
from storage.integrity import open_offline
from storage.keys import certificate_key
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio

VICTIM = "node3"


@contextlib.asynccontextmanager
async def load(c: Cluster, names: list[str]) -> AsyncIterator[list[int]]:
    """Anchors submitted to ``names`` in the background, a few at a time; yields the count of accepted ones."""
    accepted = [0]
    stop = asyncio.Event()
    counter = itertools.count()

    async def one() -> None:
        while not stop.is_set():
            try:
                code, _ = await c.post_tx(random.choice(names), c.anchor_tx(f"load {next(counter)}"), timeout=5)
                accepted[0] += code == 202
            except (NodeUnreachable, ApiFailure, OSError):
                pass
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(one()) for _ in range(4)]
    try:
        yield accepted
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def invoke(*args: str) -> Result:
    """``medchain cluster ARGS`` (from a worker thread: the command runs its own event loop)."""
    return CliRunner().invoke(cli, ["cluster", *args])


async def height(c: Cluster, name: str) -> int:
    status = await c.status(name)
    return -1 if status is None else int(status["height"])


async def caught_up(c: Cluster, name: str, timeout: float = 30) -> int:
    """Wait until ``name`` reaches the height the others had when this was called; that height."""
    others = [n for n in c.names if n != name]
    target = max([await height(c, n) for n in others])
    await c.wait_all(lambda s: s is not None and s["height"] >= target, timeout, f"{name} at {target}", [name])
    return target


def started_at(proc: clusters.NodeProcess) -> int:
    """The height this run of the node started from, as its "started" log line says."""
    with (Path(proc.home) / clusters.LOG_NAME).open("rb") as log:
        log.seek(proc.log_offset)
        lines = [json.loads(line) for line in log.read().splitlines() if line.strip()]
    started = [line["msg"] for line in lines if line.get("event") == "started"]
    assert len(started) == 1, started
    return int(started[0].rsplit(" ", 1)[1])


def stores_agree(root: Path) -> dict[str, int]:
    """Stop the cluster; assert every store is intact and all hold one hash per height; each node's height."""
    clusters.stop_all(root, timeout=10)
    chains: dict[str, list[bytes]] = {}
    for home in clusters.node_homes(root):
        assert check_store(home) == [], home.name
        db, _ = open_offline(data_dir(home))
        with db:
            chain = []
            for h in itertools.count(1):
                block = blockstore.read_block(db, h)
                if block is None:
                    break
                chain.append(block.hash)
        chains[home.name] = chain
    longest = max(chains.values(), key=len)
    for name, chain in chains.items():
        assert chain == longest[: len(chain)], f"{name} holds another block at some height"
    return {name: len(chain) for name, chain in chains.items()}


async def test_a_wiped_validator_rejoins_catches_up_and_status_and_down_find_it(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root) as c:
        others = [n for n in c.names if n != VICTIM]
        async with load(c, others) as accepted:
            await c.wait_all(lambda s: s is not None and s["height"] >= 5, 30, "a few blocks", [VICTIM])
            old_pid = clusters.find(clusters.load_cluster(root), VICTIM).pid
            vault_mark = root / VICTIM / VAULT_DIRNAME / KEYS_DIRNAME / "mark"
            vault_mark.write_text("kept unless --with-vault")
            proc = await asyncio.to_thread(wipe_node, root, VICTIM)
            assert proc.pid != old_pid and not clusters.is_alive(old_pid)
            target = await caught_up(c, VICTIM)
        assert started_at(proc) == 0, "the wiped node started from data it should not have had"
        assert vault_mark.exists(), "a wipe without --with-vault must keep the vault"
        wiped = await asyncio.to_thread(invoke, "wipe", VICTIM, "--with-vault", "--dir", str(root), "--json")
        assert wiped.exit_code == 0, wiped.output
        proc = clusters.find(clusters.load_cluster(root), VICTIM)
        assert json.loads(wiped.output) == {"name": VICTIM, "action": "wipe", "pid": proc.pid}
        assert not vault_mark.exists() and (root / VICTIM / "kek").exists() and started_at(proc) == 0
        target = await caught_up(c, VICTIM)
        assert accepted[0] > 0 and target >= 5
        running = await asyncio.to_thread(invoke, "check-store", VICTIM, "--dir", str(root))
        assert running.exit_code == 2 and running.stderr.count("\n") == 1, running.output
        assert f"{VICTIM} is running" in running.stderr and "locked" in running.stderr
        status = await asyncio.to_thread(invoke, "status", "--dir", str(root), "--json")
        row = next(r for r in json.loads(status.output) if r["name"] == VICTIM)
        assert (row["pid"], row["alive"]) == (proc.pid, True) and row["height"] >= target, row
        down = await asyncio.to_thread(invoke, "down", "--dir", str(root), "--json")
        assert {r["name"]: r["outcome"] for r in json.loads(down.output)}[VICTIM] == "stopped", down.output
        assert not clusters.is_alive(proc.pid)
        heights = stores_agree(root)
        assert heights[VICTIM] >= target
        intact = invoke("check-store", VICTIM, "--dir", str(root), "--json")
        assert intact.exit_code == 0 and json.loads(intact.output) == {"name": VICTIM, "intact": True, "problems": []}
        db, raw = open_offline(data_dir(root / VICTIM))
        with db:
            raw.delete(certificate_key(2))
        damaged = invoke("check-store", VICTIM, "--dir", str(root))
        assert damaged.exit_code == 1, damaged.output
        assert damaged.output.startswith("height 2: commit certificate missing"), damaged.output


async def test_a_validator_restored_from_an_earlier_snapshot_catches_up_and_agrees(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root) as c:
        others = [n for n in c.names if n != VICTIM]
        async with load(c, c.names):
            await c.wait_all(lambda s: s is not None and s["height"] >= 3, 30, "a few blocks", [VICTIM])
            snap = tmp_path / "snap"
            took = await asyncio.to_thread(invoke, "snapshot", VICTIM, "--to", str(snap), "--dir", str(root))
            assert took.exit_code == 0, took.output
            at = int(took.output)
            assert at >= 3
            before = clusters.find(clusters.load_cluster(root), VICTIM).pid
            assert clusters.is_alive(before)  # resumed after the copy, still the same process
            again = await asyncio.to_thread(invoke, "snapshot", VICTIM, "--to", str(snap), "--dir", str(root))
            assert again.exit_code == 2 and "not an empty folder" in again.stderr, again.output
            bogus = await asyncio.to_thread(invoke, "restore", VICTIM, "--from", str(tmp_path), "--dir", str(root))
            assert bogus.exit_code == 2 and "holds no node data" in bogus.stderr, bogus.output
            ChainStore.open(tmp_path / "other", "another-chain", sha256(b"another genesis")).close()
            other = await asyncio.to_thread(invoke, "restore", VICTIM, "--from", str(tmp_path / "other"),
                                            "--dir", str(root))
            assert other.exit_code == 2 and "holds chain 'another-chain'" in other.stderr, other.output
            assert clusters.is_alive(before), "a refused restore must leave the node running"
            await c.wait_all(lambda s: s is not None and s["height"] >= at + 5, 30, "the chain to move on", others)
            proc = await asyncio.to_thread(restore_node, root, VICTIM, snap)
            assert clusters.find(clusters.load_cluster(root), VICTIM).pid == proc.pid != before
            target = await caught_up(c, VICTIM)
        assert started_at(proc) == at, "the restored node did not start from the snapshot's height"
        assert target >= at + 5
        assert (snap / "CURRENT").is_file()  # the snapshot is copied, not moved
        heights = stores_agree(root)
        assert heights[VICTIM] >= target


async def test_kill_9_during_block_writes_again_and_again_leaves_every_store_intact(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root) as c:
        others = [n for n in c.names if n != VICTIM]
        async with load(c, others):
            for round_ in range(5):
                # Once it commits again (catching up after the last restart, under load), it writes blocks all
                # the time: the kill lands among those writes.
                start = await height(c, VICTIM)
                await c.wait_all(lambda s, h=start: s is not None and s["height"] > h, 30, "a commit", [VICTIM])
                await asyncio.sleep(random.uniform(0, 0.1))
                before = await height(c, VICTIM)
                await asyncio.to_thread(clusters.signal_node, root, VICTIM, "kill")
                proc = await asyncio.to_thread(clusters.restart_node, root, VICTIM)
                assert started_at(proc) >= before, f"round {round_}: a block it had committed was lost"
            target = await caught_up(c, VICTIM)
        heights = stores_agree(root)
        assert heights[VICTIM] >= target > 0
