"""Blocks, their commit certificates, the hash index and the transaction index.

A block is added only together with everything that depends on it (see
``ChainStore.commit_block``): ``check_extends`` refuses a block that does not
extend the head before anything is written, and ``add_block`` puts the block,
its certificate, its hash -> height entry and one tx index entry per
transaction into the caller's batch; an entry ends with that transaction's
outcome when the caller gives one (see ``storage.keys``).

Reads decode strictly; bytes under a block or certificate key that are not
the record for that height raise ``CorruptRecord`` naming the height and key,
and leave every other read working.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

from consensus.config import ChainTip
from consensus.messages import Block, BlockHeader, CommitCertificate
from primitives.codec import decode_leading, encode
from primitives.errors import DecodeError
from primitives.hashing import HASH_SIZE, sha256
from storage.database import Batch, Reader
from storage.errors import CommitRefused, CorruptRecord
from storage.keys import (
    TX,
    TX_LOCATION_SIZE,
    block_key,
    certificate_key,
    height_by_hash_key,
    pack_tx_location,
    read_u64,
    tx_key,
    u64,
    unpack_tx_location,
)
from storage.records import decode_stored

CertifiedBlock = tuple[Block, CommitCertificate]


class TxLocation(NamedTuple):
    """Where a committed transaction sits: block height and position (index) in that block."""

    height: int
    position: int


# ---------------------------------------------------------------- writing


def check_extends(
    head: ChainTip | None, genesis_hash: bytes, chain_id: str, block: Block, cert: CommitCertificate, app_hash: bytes
) -> None:
    """Refuse (``CommitRefused``) a block that is not the next one on ``head`` (None: genesis).

    The block's app_hash (the state after its parent) is checked against the
    head's; at genesis the store does not know the initial state, the node does.
    """
    h = block.header
    next_height, parent = (1, genesis_hash) if head is None else (head.height + 1, head.block_hash)
    problem = None
    if block.height != next_height:
        problem = f"its height is not head + 1 = {next_height}"
    elif h.prev_hash != parent:
        problem = f"its prev_hash {h.prev_hash.hex()[:16]} is not the head hash {parent.hex()[:16]}"
    elif h.chain_id != chain_id:
        problem = f"it belongs to chain {h.chain_id!r}, this store holds {chain_id!r}"
    elif head is not None and h.app_hash != head.app_hash:
        problem = f"its app_hash {h.app_hash.hex()[:16]} is not the state at the head {head.app_hash.hex()[:16]}"
    elif cert.height != block.height or cert.block_hash != block.hash:
        problem = f"the certificate is for height {cert.height}, block {cert.block_hash.hex()[:16]}"
    elif type(app_hash) is not bytes or len(app_hash) != HASH_SIZE:
        problem = f"the app_hash after it must be {HASH_SIZE} bytes"
    if problem is not None:
        raise CommitRefused(f"refusing block {block.hash.hex()[:16]} at height {block.height}: {problem}")


def add_block(
    batch: Batch, block: Block, cert: CommitCertificate, outcomes: Sequence[bytes] | None = None
) -> None:
    """Put ``block`` and what depends on it into ``batch``; ``outcomes[i]`` (if given) ends tx ``i``'s entry."""
    height = block.height
    if outcomes is not None and len(outcomes) != len(block.txs):
        raise ValueError(f"{len(outcomes)} outcomes for a block of {len(block.txs)} transactions")
    batch.put(block_key(height), encode(block))
    batch.put(certificate_key(height), encode(cert))
    batch.put(height_by_hash_key(block.hash), u64(height))
    # The hot loop of a commit (one entry per transaction): kept free of calls; the ids are the
    # block's own (hashed once per block object, usually by validation already).
    entries: dict[bytes, bytes] = {}
    for index, (tid, outcome) in enumerate(zip(block.tx_hashes(), outcomes or repeat(b""))):  # noqa: B905 - checked
        key = TX + tid
        if key not in entries:  # a repeated tx is found at its first place in the block, with that place's outcome
            entries[key] = pack_tx_location(height, index, outcome)
    batch.ops.extend(entries.items())


# ---------------------------------------------------------------- reading


def _block_from(raw: bytes, height: int) -> Block:
    key, what = block_key(height), f"block at height {height}"
    block = decode_stored(Block, raw, what, key)
    if block.height != height:
        raise CorruptRecord(what, key, f"holds the block of height {block.height}")
    return block


def _certificate_from(raw: bytes | None, height: int) -> CommitCertificate:
    key, what = certificate_key(height), f"commit certificate at height {height}"
    if raw is None:
        raise CorruptRecord(what, key, "missing next to its block")
    cert = decode_stored(CommitCertificate, raw, what, key)
    if cert.height != height:
        raise CorruptRecord(what, key, f"holds the certificate of height {cert.height}")
    return cert


def read_block(reader: Reader, height: int) -> Block | None:
    raw = reader.get(block_key(height))
    return None if raw is None else _block_from(raw, height)


def read_block_header(reader: Reader, height: int) -> BlockHeader | None:
    """The header of the block at ``height`` without decoding its transactions."""
    raw = reader.get(block_key(height))
    if raw is None:
        return None
    key, what = block_key(height), f"block at height {height}"
    try:
        header = decode_leading(BlockHeader, raw)
    except DecodeError as exc:
        raise CorruptRecord(what, key, str(exc)) from None
    if header.height != height:
        raise CorruptRecord(what, key, f"holds the block of height {header.height}")
    return header


def read_certificate(reader: Reader, height: int) -> CommitCertificate | None:
    raw = reader.get(certificate_key(height))
    return None if raw is None else _certificate_from(raw, height)


def read_height_of(reader: Reader, block_hash: bytes) -> int | None:
    key = height_by_hash_key(block_hash)
    raw = reader.get(key)
    if raw is None:
        return None
    try:
        return read_u64(raw)
    except DecodeError as exc:
        raise CorruptRecord(f"height of block {block_hash.hex()[:16]}", key, str(exc)) from None


def read_block_by_hash(reader: Reader, block_hash: bytes) -> Block | None:
    height = read_height_of(reader, block_hash)
    if height is None:
        return None
    block = read_block(reader, height)
    if block is None or block.hash != block_hash:
        raise CorruptRecord(
            f"hash index of block {block_hash.hex()[:16]}", height_by_hash_key(block_hash),
            f"points at height {height}, which holds {'nothing' if block is None else 'another block'}",
        )
    return block


def read_certified(reader: Reader, height: int) -> CertifiedBlock | None:
    raw = reader.get(block_key(height))
    if raw is None:
        return None
    return _block_from(raw, height), _certificate_from(reader.get(certificate_key(height)), height)


def read_certified_range(
    reader: Reader, from_height: int, max_blocks: int, max_bytes: int | None = None
) -> list[CertifiedBlock]:
    """Consecutive committed blocks from ``from_height`` with their certificates.

    At most ``max_blocks``; stops before the total stored size would pass
    ``max_bytes`` (but always returns the first block if there is one).
    """
    found: list[CertifiedBlock] = []
    total = 0
    first = max(from_height, 1)
    for height in range(first, first + max(max_blocks, 0)):
        block_raw = reader.get(block_key(height))
        if block_raw is None:
            break
        cert_raw = reader.get(certificate_key(height))
        total += len(block_raw) + len(cert_raw or b"")
        if found and max_bytes is not None and total > max_bytes:
            break
        found.append((_block_from(block_raw, height), _certificate_from(cert_raw, height)))
    return found


def read_tx_location(reader: Reader, tx_id: bytes) -> TxLocation | None:
    found = read_tx_entry(reader, tx_id)
    return None if found is None else found[0]


def read_tx_entry(reader: Reader, tx_id: bytes) -> tuple[TxLocation, bytes] | None:
    """The location and outcome of a committed transaction (the outcome is empty in earlier versions' entries)."""
    key = tx_key(tx_id)
    raw = reader.get(key)
    if raw is None:
        return None
    try:
        return TxLocation(*unpack_tx_location(raw)), raw[TX_LOCATION_SIZE:]
    except DecodeError as exc:
        raise CorruptRecord(f"tx index entry of {tx_id.hex()[:16]}", key, str(exc)) from None


def read_tx(reader: Reader, tx_id: bytes) -> bytes | None:
    where = read_tx_location(reader, tx_id)
    if where is None:
        return None
    block = read_block(reader, where.height)
    if block is None or where.position >= len(block.txs) or sha256(block.txs[where.position]) != tx_id:
        raise CorruptRecord(
            f"tx index entry of {tx_id.hex()[:16]}", tx_key(tx_id),
            f"points at height {where.height} index {where.position}, which does not hold that transaction",
        )
    return block.txs[where.position]
