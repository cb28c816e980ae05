"""Measure the store: synchronous block commits, WAL appends, and opening a long chain.

    medchain bench storage [--dir DIR] [--count 200] [--seconds 2] [--blocks 10000] [--json]

Runs in a fresh temporary directory (or under ``--dir``: use it to measure the
disk a node will really use, since fsync cost is a property of the disk).
Blocks are built before timing starts, and each measurement runs back to
back: "commit_block" is the whole call (checks, encode, tx index, state, head,
one ``write_batch(sync=True)``); "write_batch only" times just the LevelDB
write of the same kind of batch, already built.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consensus.config import ChainTip
from consensus.events import WalSigned
from consensus.messages import CONSENSUS_CODEC, Block, BlockHeader, CommitCertificate, Prepare, Vote
from primitives.errors import InvariantViolation
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from storage import blockstore, metadata, state
from storage.chainstore import ChainStore
from storage.database import Batch, Database

CHAIN = "bench"
GENESIS = ChainTip(0, sha256(b"bench/genesis"), sha256(b"bench/genesis-app"), 1_000_000)
TX_BYTES = 200


class _Chain:
    """Builds the next block on a tip: ``txs`` transactions of ``TX_BYTES`` each."""

    def __init__(self, txs: int) -> None:
        self.txs = txs
        self.counter = 0

    def next(self, tip: ChainTip) -> tuple[Block, CommitCertificate, dict[bytes, bytes | None], bytes]:
        txs = []
        for _ in range(self.txs):
            self.counter += 1
            txs.append(self.counter.to_bytes(8, "big").ljust(TX_BYTES, b"\x01"))
        header = BlockHeader(
            CHAIN, tip.height + 1, tip.block_hash, 0, 0, tip.timestamp_ms + 1,
            merkle_root(txs), len(txs), tip.app_hash,
        )
        block = Block(header, tuple(txs))
        cert = CommitCertificate(block.height, 0, block.hash, tuple(Vote(i, bytes(64)) for i in range(3)))
        writes: dict[bytes, bytes | None] = {b"tx/" + sha256(tx): b"ok" for tx in txs}
        return block, cert, writes, sha256(tip.app_hash + block.hash)


Commit = tuple[Block, CommitCertificate, dict[bytes, bytes | None], bytes]


def _rate(seconds: float, once: Callable[[], None]) -> float:
    count, start = 0, time.perf_counter()
    while True:
        once()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count / elapsed


def _build(chain: _Chain, tip: ChainTip, count: int) -> list[Commit]:
    """``count`` linked blocks on ``tip``, built before any timing starts."""
    commits: list[Commit] = []
    for _ in range(count):
        block, cert, _writes, app_hash = item = chain.next(tip)
        commits.append(item)
        tip = ChainTip(block.height, block.hash, app_hash, block.header.timestamp_ms, cert.view)
    return commits


def _batch(item: Commit) -> Batch:
    """The batch ``commit_block`` writes for ``item``, built directly."""
    block, cert, writes, app_hash = item
    batch = Batch()
    blockstore.add_block(batch, block, cert)
    state.add_state_writes(batch, writes)
    metadata.put_head(batch, ChainTip(block.height, block.hash, app_hash, block.header.timestamp_ms, cert.view))
    return batch


def _commits(directory: Path, txs: int, count: int) -> dict[str, float]:
    """Back-to-back: ``count`` commit_block calls, then ``count`` raw writes of the next blocks' batches."""
    items = _build(_Chain(txs), GENESIS, 2 * count)
    with ChainStore.open(directory, CHAIN, GENESIS.block_hash) as store:
        start = time.perf_counter()
        for item in items[:count]:
            store.commit_block(*item)
        commit_per_s = count / (time.perf_counter() - start)
    batches = [_batch(item) for item in items[count:]]
    with Database.open(directory) as db:
        start = time.perf_counter()
        for batch in batches:
            db.write(batch, sync=True)
        write_per_s = count / (time.perf_counter() - start)
    return {
        "txs": txs, "blocks": count, "commit_per_s": commit_per_s, "write_batch_per_s": write_per_s,
        "batch_bytes": batches[0].size_bytes(),
    }


def _wal(directory: Path, seconds: float) -> float:
    record = WalSigned(CONSENSUS_CODEC.encode(Prepare(0, 1, bytes(32), 1, bytes(64))))
    with ChainStore.open(directory, CHAIN, GENESIS.block_hash) as store:
        return _rate(seconds, lambda: store.append_wal([record]))


def _open_long_chain(directory: Path, blocks: int) -> dict[str, float]:
    start = time.perf_counter()
    ChainStore.open(directory, CHAIN, GENESIS.block_hash).close()
    chain, tip = _Chain(10), GENESIS
    with Database.open(directory) as db:
        for _ in range(blocks):  # unsynced batches: only the open is measured
            (item,) = _build(chain, tip, 1)
            db.write(_batch(item), sync=False)
            tip = ChainTip(item[0].height, item[0].hash, item[3], item[0].header.timestamp_ms, item[1].view)
    built = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with ChainStore.open(directory, CHAIN, GENESIS.block_hash) as store:
            if store.head() != tip or store.block(blocks) is None:
                raise InvariantViolation("the long chain did not read back: the store lost blocks")
        times.append(time.perf_counter() - start)
    return {"blocks": blocks, "build_s": built, "open_first_ms": times[0] * 1000, "open_best_ms": min(times) * 1000}


def measure(directory: Path | None, count: int, seconds: float, blocks: int) -> dict[str, Any]:
    """Every measurement in a fresh temporary folder (under ``directory`` if given), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="medchain-bench-", dir=directory) as tmp:
        root = Path(tmp)
        big = _commits(root / "big", 1_000, count)
        small = _commits(root / "small", 1, 10 * count)
        wal = _wal(root / "wal", seconds)
        opened = _open_long_chain(root / "long", blocks)
    return {"block_1000": big, "block_1": small, "wal_append_per_s": wal, "open": opened}


def format_table(report: dict[str, Any]) -> str:
    big, small, wal, opened = report["block_1000"], report["block_1"], report["wal_append_per_s"], report["open"]
    lines = [f"{'measurement':<44}{'per second':>12}{'txs/s':>12}{'batch KiB':>11}"]
    for row in (big, small):
        label = f"block of {int(row['txs']):,} tx x {TX_BYTES} B"
        kib = row["batch_bytes"] / 1024
        lines.append(f"{label + ', commit_block':<44}{row['commit_per_s']:>12,.0f}"
                     f"{row['commit_per_s'] * row['txs']:>12,.0f}{kib:>11.1f}")
        lines.append(f"{label + ', write_batch only':<44}{row['write_batch_per_s']:>12,.0f}"
                     f"{row['write_batch_per_s'] * row['txs']:>12,.0f}{kib:>11.1f}")
    lines.append(f"{'WAL append, 1 PREPARE record':<44}{wal:>12,.0f}")
    lines.append(f"\nopen a store of {opened['blocks']:,} blocks: first {opened['open_first_ms']:.1f} ms, "
                 f"best of 3 {opened['open_best_ms']:.1f} ms (built in {opened['build_s']:.1f} s, unsynced)")
    return "\n".join(lines)
