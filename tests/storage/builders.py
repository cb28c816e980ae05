"""Builders for storage tests: a chain of linked blocks with certificates and state writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from consensus.config import ChainTip
from consensus.messages import Block, BlockHeader, CommitCertificate, Vote
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from storage.chainstore import ChainStore
from storage.keys import u64
from storage.state import StateWrites

CHAIN = "storage-test"
GENESIS = ChainTip(0, sha256(b"storage-test/genesis"), sha256(b"storage-test/genesis-app"), 1_000_000)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Step:
    """Everything ``commit_block`` takes for one block."""

    block: Block
    certificate: CommitCertificate
    writes: StateWrites
    app_hash: bytes


def open_store(path: Path, chain_id: str = CHAIN, genesis_hash: bytes = GENESIS.block_hash) -> ChainStore:
    return ChainStore.open(path, chain_id, genesis_hash)


def head_or_genesis(store: ChainStore) -> ChainTip:
    """The store's head, or (at genesis) the tests' genesis tip, as the node does."""
    return store.head() or GENESIS


def txs_for(height: int, count: int, size: int = 48) -> tuple[bytes, ...]:
    """``count`` distinct transactions of about ``size`` bytes, unique to ``height``."""
    return tuple(f"tx {height}/{i} ".encode().ljust(size, b".") for i in range(count))


def certificate_for(block: Block, view: int = 0) -> CommitCertificate:
    votes = tuple(Vote(i, bytes([i + 1]) * 64) for i in range(3))
    return CommitCertificate(block.height, view, block.hash, votes)


def next_step(tip: ChainTip, txs: tuple[bytes, ...], *, view: int = 0, chain_id: str = CHAIN) -> Step:
    height = tip.height + 1
    header = BlockHeader(
        chain_id, height, tip.block_hash, 0, view, tip.timestamp_ms + 1, merkle_root(txs), len(txs), tip.app_hash,
    )
    block = Block(header, txs)
    writes: dict[bytes, bytes | None] = {b"count": u64(height), b"h/" + u64(height): block.hash}
    if height > 2:
        writes[b"h/" + u64(height - 2)] = None  # keep only the last two heights
    return Step(block, certificate_for(block, view), writes, sha256(tip.app_hash + block.hash))


def tip_after(step: Step) -> ChainTip:
    b = step.block
    return ChainTip(b.height, b.hash, step.app_hash, b.header.timestamp_ms, step.certificate.view)


def build_chain(n: int, txs_per_block: int = 3, start: ChainTip = GENESIS) -> list[Step]:
    steps: list[Step] = []
    tip = start
    for _ in range(n):
        step = next_step(tip, txs_for(tip.height + 1, txs_per_block))
        steps.append(step)
        tip = tip_after(step)
    return steps


def commit(store: ChainStore, step: Step) -> ChainTip:
    return store.commit_block(step.block, step.certificate, step.writes, step.app_hash)


def check_consistent(store: ChainStore) -> ChainTip:
    """Assert the head, blocks, certificates, tx index and state agree; return the head."""
    head = head_or_genesis(store)
    app_hash = GENESIS.app_hash
    prev = GENESIS.block_hash
    for height in range(1, head.height + 1):
        found = store.certified_block(height)
        assert found is not None, f"block {height} missing below head {head.height}"
        block, cert = found
        assert block.header.prev_hash == prev and cert.block_hash == block.hash
        assert block.header.app_hash == app_hash
        for index, tx in enumerate(block.txs):
            assert store.tx_location(sha256(tx)) == (height, index)
        app_hash = sha256(app_hash + block.hash)
        prev = block.hash
    assert (head.block_hash, head.app_hash) == (prev, app_hash)
    assert store.block(head.height + 1) is None and store.certificate(head.height + 1) is None
    assert store.get(b"count") == (u64(head.height) if head.height else None)
    return head
