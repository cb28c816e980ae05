"""Shared builders for tests: deterministic keys, replicas, blocks, signed messages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from consensus.config import ChainTip, ReplicaConfig
from consensus.events import Executed, Output, Received, Verdict
from consensus.messages import (
    CONSENSUS_CODEC,
    Block,
    BlockHeader,
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
)
from consensus.replica import Replica
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey

CHAIN = "test-chain"
GENESIS_HASH = sha256(b"genesis")
GENESIS_APP = sha256(b"genesis-app")
T0 = 1_000_000

M = TypeVar("M", PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)


def keys(n: int) -> list[SigningKey]:
    return [SigningKey.from_seed_text(f"validator-{i}") for i in range(n)]


def genesis_tip() -> ChainTip:
    return ChainTip(0, GENESIS_HASH, GENESIS_APP, T0 - 1000)


def config(n: int, index: int, **overrides: Any) -> ReplicaConfig:
    ks = keys(n)
    return ReplicaConfig(CHAIN, tuple(k.verify_key for k in ks), index, ks[index], **overrides)


def replica(n: int, index: int, tip: ChainTip | None = None, **overrides: Any) -> Replica:
    return Replica(config(n, index, **overrides), tip or genesis_tip())


def block(
    height: int = 1,
    *,
    txs: tuple[bytes, ...] = (b"tx-1",),
    prev: bytes = GENESIS_HASH,
    proposer: int = 0,
    view: int = 0,
    ts: int = T0,
    app: bytes = GENESIS_APP,
    chain: str = CHAIN,
) -> Block:
    header = BlockHeader(chain, height, prev, proposer, view, ts, merkle_root(txs), len(txs), app)
    return Block(header, txs)


def sign(message: M, key: SigningKey, chain: str = CHAIN) -> M:
    return replace(message, signature=key.sign(message.DOMAIN, chain, message.signing_payload()))


def encode(message: Any) -> bytes:
    return CONSENSUS_CODEC.encode(message)


def decoded_sends(out: Output) -> list[Any]:
    return [CONSENSUS_CODEC.decode(s.data) for s in out.send]


def sent_of(out: Output, cls: type[M]) -> list[M]:
    return [m for m in decoded_sends(out) if isinstance(m, cls)]


def pre_prepare(b: Block, view: int = 0, sender: int = 0, n: int = 4) -> PrePrepare:
    return sign(PrePrepare(view, b.height, b, sender, b""), keys(n)[sender])


def prepare(b: Block, sender: int, view: int = 0, n: int = 4) -> Prepare:
    return sign(Prepare(view, b.height, b.hash, sender, b""), keys(n)[sender])


def commit(b: Block, sender: int, view: int = 0, n: int = 4) -> Commit:
    return sign(Commit(view, b.height, b.hash, sender, b""), keys(n)[sender])


def deliver(r: Replica, message: Any, now: int = T0) -> Output:
    return r.handle(Received(encode(message)), now)


def accept_block(r: Replica, b: Block, now: int = T0) -> Output:
    """Answer the replica's validation request for ``b`` with 'valid'."""
    return r.handle(Verdict(b.hash, True), now)


def execute(r: Replica, b: Block, now: int = T0) -> Output:
    return r.handle(Executed(b.height, app_after(b)), now)


def app_after(b: Block) -> bytes:
    return sha256(b.header.app_hash + b.hash)
