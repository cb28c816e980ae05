"""Reading the stopped nodes' stores for the checks, and replaying a chain from genesis.

``summarise`` walks one node's certified blocks once and keeps what the checks
need, so no chain is held in memory whole: the block hash and transaction ids
at every height, and what is wrong with the chain on its own (a commit
certificate that does not verify against the genesis validators, a broken
prev_hash link, a tx_root that is not the root of the block's transactions).

``replay`` runs a chain through a fresh application (``Application.from_genesis``)
on a fresh store, as a new node would, and returns the application state hash
after every height.  A header's ``app_hash`` is the state *before* its block;
the first header that disagrees with the replay stops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from consensus.certificates import Verifier
from consensus.events import Evidence
from node.genesis import Genesis
from node.healthcare.application import Application
from node.lab import disk_faults
from node.runtime import genesis_tip, outcomes
from node.transaction import tx_id
from primitives.errors import UsageError
from primitives.merkle import merkle_root
from storage.blockstore import CertifiedBlock
from storage.chainstore import ChainStore
from storage.errors import CommitRefused, DatabaseLocked

READ_BATCH = 64


@dataclass(slots=True)
class ChainSummary:
    """One node's chain as the checks see it; ``hashes[h - 1]`` is the block hash at height h."""

    name: str
    hashes: list[bytes] = field(default_factory=list)
    tx_ids: list[tuple[bytes, ...]] = field(default_factory=list)
    head_app_hash: bytes | None = None  # the state after the head, as the node stored it
    evidence: list[Evidence] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # certificate, link and tx_root problems
    note: str = ""  # e.g. "no data directory"

    @property
    def height(self) -> int:
        return len(self.hashes)


@dataclass(slots=True)
class Replayed:
    """``app_after[h - 1]``: the state hash after height h, from genesis on a fresh application."""

    chain: str
    app_after: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def summarise(
    name: str,
    blocks: Iterable[CertifiedBlock],
    verifier: Verifier,
    genesis_hash: bytes,
    head_app_hash: bytes | None = None,
    evidence: Iterable[Evidence] = (),
) -> ChainSummary:
    """Walk ``blocks`` (heights 1, 2, ... in order) once; see the module's docstring."""
    out = ChainSummary(name, head_app_hash=head_app_hash, evidence=list(evidence))
    prev = genesis_hash
    for expected, (block, cert) in enumerate(blocks, 1):
        if block.height != expected:
            out.problems.append(f"{name}: height {expected} holds a block of height {block.height}")
            break
        reason = verifier.check_commit_certificate(cert, block)
        if reason is not None:
            out.problems.append(f"{name} height {expected}: commit certificate invalid: {reason}")
        if block.header.prev_hash != prev:
            out.problems.append(
                f"{name} height {expected}: prev_hash {block.header.prev_hash.hex()[:16]} "
                f"is not the hash of the block below, {prev.hex()[:16]}"
            )
        if block.header.tx_root != merkle_root(block.txs) or block.header.tx_count != len(block.txs):
            out.problems.append(f"{name} height {expected}: tx_root or tx_count does not match the transactions")
        out.hashes.append(block.hash)
        out.tx_ids.append(tuple(tx_id(raw) for raw in block.txs))
        prev = block.hash
    return out


def replay(blocks: Iterable[CertifiedBlock], genesis: Genesis, workdir: Path, chain: str = "") -> Replayed:
    """Execute ``blocks`` from genesis on a fresh application and a fresh store in ``workdir`` (empty)."""
    app = Application.from_genesis(genesis)
    app_hash = genesis_tip(genesis).app_hash
    out = Replayed(chain)
    with ChainStore.open(workdir, genesis.chain_id, genesis.hash) as store:
        for block, cert in blocks:
            h = block.height
            if block.header.app_hash != app_hash:
                out.problems.append(
                    f"height {h}: the header's app_hash {block.header.app_hash.hex()[:16]} is not the state "
                    f"replayed from genesis before it, {app_hash.hex()[:16]}"
                )
                break
            result = app.execute_block(block, store, app_hash)
            try:
                store.commit_block(block, cert, result.writes, result.app_hash, outcomes(result))
            except CommitRefused as exc:
                out.problems.append(f"height {h}: {exc}")
                break
            app_hash = result.app_hash
            out.app_after.append(app_hash)
    return out


def stored_blocks(store: ChainStore) -> Iterator[CertifiedBlock]:
    """Every certified block from height 1 to the head, read in batches."""
    head = store.head()
    top = head.height if head is not None else 0
    height = 1
    while height <= top:
        batch = store.certified_range(height, min(READ_BATCH, top - height + 1))
        if not batch:
            return
        yield from batch
        height += len(batch)


def data_dir(network: Path, node: str) -> Path:
    """The node's data directory: as its config.toml says, else ``network/node/data``."""
    home = network / node
    return disk_faults.data_dir(home) if (home / "config.toml").exists() else home / "data"


def open_store(network: Path, node: str, genesis: Genesis) -> ChainStore | None:
    """The node's store, or None when it has no data directory; a running node is a clear error."""
    path = data_dir(network, node)
    if not path.is_dir():
        return None
    try:
        return ChainStore.open(path, genesis.chain_id, genesis.hash)
    except DatabaseLocked:
        raise UsageError(f"{node}'s store {path} is in use: stop every node before the checks") from None


def read_node(network: Path, node: str, genesis: Genesis, verifier: Verifier) -> ChainSummary:
    store = open_store(network, node, genesis)
    if store is None:
        return ChainSummary(node, note="no data directory")
    with store:
        head = store.head()
        return summarise(
            node, stored_blocks(store), verifier, genesis.hash,
            head.app_hash if head is not None else None, store.evidence(),
        )


def replay_node(network: Path, node: str, genesis: Genesis, workdir: Path) -> Replayed:
    store = open_store(network, node, genesis)
    if store is None:
        return Replayed(node)
    with store:
        return replay(stored_blocks(store), genesis, workdir, node)
