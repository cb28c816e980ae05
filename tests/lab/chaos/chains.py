"""Builders for the chaos checks' tests: real signed anchors, real commit certificates, real app hashes.

``build_chain`` executes every block on the healthcare application, so the
chains it builds replay from genesis; ``write_network`` puts them into real
ChainStores laid out as a testnet folder (DIR/genesis.json, DIR/<node>/data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from consensus.messages import Block, BlockHeader, CommitCertificate, Vote
from node.genesis import Genesis, parse_genesis
from node.healthcare.application import Application
from node.healthcare.ledger.state import DictState
from node.healthcare.transactions import Anchor, make_transaction
from node.lab.chaos.record import Ack, Expectations, RunRecord, Sample
from node.runtime import genesis_tip
from node.transaction import tx_id
from primitives.codec import encode
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey
from storage.chainstore import ChainStore
from storage.database import Batch, Database
from storage.keys import block_key
from tests.helpers import CHAIN, T0, commit, keys

CLIENT = SigningKey.from_seed_text("chaos-client-0")
OBSERVER = SigningKey.from_seed_text("chaos-observer-0")
VALIDATORS = ["node0", "node1", "node2", "node3"]
OBSERVERS = ["node4"]


def genesis() -> Genesis:
    return parse_genesis({
        "chain_id": CHAIN,
        "genesis_time_ms": 0,
        "validators": [{"name": n, "key": k.verify_key.hex()} for n, k in zip(VALIDATORS, keys(4), strict=True)],
        "observers": [{"name": "node4", "key": OBSERVER.verify_key.hex()}],
        "clients": [{"name": "client0", "key": CLIENT.verify_key.hex()}],
    })


def anchor(i: int) -> bytes:
    return make_transaction(CLIENT, CHAIN, Anchor(sha256(f"doc-{i}".encode()), f"doc {i}"), 1000 + i)


def certify(block: Block, signers: tuple[int, ...] = (0, 1, 2)) -> CommitCertificate:
    votes = tuple(Vote(s, commit(block, s).signature) for s in signers)
    return CommitCertificate(block.height, 0, block.hash, votes)


@dataclass(frozen=True)
class Step:
    block: Block
    certificate: CommitCertificate
    writes: dict[bytes, bytes | None]
    app_hash: bytes  # after the block

    @property
    def certified(self) -> tuple[Block, CommitCertificate]:
        return self.block, self.certificate


def build_chain(g: Genesis, batches: list[list[bytes]], wrong_app_at: int | None = None) -> list[Step]:
    """One block per batch, executed on the application; ``wrong_app_at``: that header lies about the state."""
    app, state = Application.from_genesis(g), DictState()
    app_hash, prev = genesis_tip(g).app_hash, g.hash
    steps = []
    for h, txs in enumerate(batches, 1):
        claimed = sha256(b"not the state") if h == wrong_app_at else app_hash
        header = BlockHeader(CHAIN, h, prev, 0, 0, T0 + h, merkle_root(tuple(txs)), len(txs), claimed)
        block = Block(header, tuple(txs))
        result = app.execute_block(block, state, app_hash)
        state.apply(result.writes)
        steps.append(Step(block, certify(block), result.writes, result.app_hash))
        app_hash, prev = result.app_hash, block.hash
    return steps


def batches(blocks: int, per_block: int = 3) -> list[list[bytes]]:
    return [[anchor(h * 100 + i) for i in range(per_block)] for h in range(blocks)]


def write_store(path: Path, g: Genesis, steps: list[Step]) -> None:
    with ChainStore.open(path, g.chain_id, g.hash) as store:
        for s in steps:
            # The store checks each header's app_hash against its head: a lying header is written as the node had it.
            head = store.head()
            if head is not None and s.block.header.app_hash != head.app_hash:
                store._head = replace(head, app_hash=s.block.header.app_hash)
            store.commit_block(s.block, s.certificate, s.writes, s.app_hash)


def write_network(root: Path, g: Genesis, chains: dict[str, list[Step]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "genesis.json").write_text(json.dumps(g.raw))
    for node, steps in chains.items():
        write_store(root / node / "data", g, steps)
    return root


def doctor_block(data_dir: Path, block: Block) -> None:
    """Overwrite the stored block at ``block.height`` behind the store's back (the certificate stays)."""
    db = Database.open(data_dir)
    try:
        batch = Batch()
        batch.put(block_key(block.height), encode(block))
        db.write(batch, sync=True)
    finally:
        db.close()


def acks_for(steps: list[Step], node: str = "node0") -> list[Ack]:
    return [
        Ack(tx_id(raw).hex(), node, float(s.block.height), float(s.block.height) + 0.2, s.block.height)
        for s in steps for raw in s.block.txs
    ]


def steady_samples(nodes: list[str], until: float, step: float = 0.5, rate: float = 1.0) -> list[Sample]:
    """Every node one block per 1/rate seconds, sampled every ``step`` seconds."""
    out = []
    t = 0.0
    while t <= until + 1e-9:
        out += [Sample(round(t, 3), n, int(t * rate), view=0) for n in nodes]
        t += step
    return out


def record(acks: list[Ack] | None = None, samples: list[Sample] | None = None, **expect: object) -> RunRecord:
    return RunRecord(
        scenario="test", seed=1, validators=list(VALIDATORS), observers=list(OBSERVERS), byzantine=[],
        expectations=Expectations(**expect),  # type: ignore[arg-type]
        started_at=0.0, duration_s=10.0, samples=samples or [], acks=acks or [],
    )
