"""An offline check of a stopped node's store: is what the commit path wrote whole and consistent?

Rules:

* it reads only, from a store no process holds: a running node's lock makes
  the open fail with ``DatabaseLocked`` (LevelDB may still replay its own log
  into a table on open, as any open after a crash does);
* what it checks: LevelDB's checksums over every key and value; the schema
  version, the chain identity (and, when given, that it is the expected
  chain) and the head; for every height from 1 to the head, a block and a
  commit certificate that decode and name that height, the certificate naming
  the block's hash, ``prev_hash`` linking to the block below (block 1 to the
  genesis hash), the block's ``tx_root`` and ``tx_count`` matching its
  transactions; the head naming the top block (hash, time, commit view) and
  nothing stored above it; the hash index and the tx index, both ways (every
  block and transaction indexed at its place, every entry pointing at a block
  that holds it there); every WAL record decoding, with its height and its
  height-index entry, below the next sequence number; every evidence record
  decoding;
* what it does not check: certificate signatures (that needs the validator
  set) and ``app_hash`` (that needs the application to replay the chain);
* each problem is one line naming the height or the key; after
  ``MAX_PROBLEMS`` lines the rest are only counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import plyvel

from consensus.config import ChainTip
from consensus.events import WAL_CODEC
from consensus.messages import CONSENSUS_CODEC, Block, CommitCertificate
from primitives.errors import DecodeError, UsageError
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from storage import blockstore, metadata, wal
from storage.database import Database, Reader, open_leveldb
from storage.errors import CorruptRecord, DatabaseLocked, StorageError
from storage.keys import (
    BLOCK,
    CERTIFICATE,
    EVIDENCE,
    HEIGHT_BY_HASH,
    META_WAL_NEXT,
    TX,
    TX_LOCATION_SIZE,
    WAL,
    WAL_BY_HEIGHT,
    block_key,
    certificate_key,
    pack_tx_location,
    prefix_end,
    read_u64,
    u64,
    unpack_tx_location,
    wal_height_key,
)
from storage.records import EvidenceRecord, IdentityRecord, decode_stored

MAX_PROBLEMS = 100
PAGE = 10_000  # index entries read per LevelDB iterator
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """Whose chain a data directory holds, and how far."""

    chain_id: str
    genesis_hash: bytes
    height: int


class Findings:
    """The problems found so far: the first ``MAX_PROBLEMS`` in full, the rest counted."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.lines) < MAX_PROBLEMS:
            self.lines.append(line)
        else:
            self.more += 1

    def result(self) -> list[str]:
        return self.lines + ([f"... and {self.more} more problem(s)"] if self.more else [])


def open_offline(path: Path) -> tuple[Database, Any]:
    """The store in ``path`` (which must exist) and its raw plyvel handle; ``DatabaseLocked`` if a node holds it."""
    if not (path / "CURRENT").is_file():
        raise StorageError(f"{path} holds no LevelDB store (no CURRENT file)")
    raw = open_leveldb(path, "data directory", compression=None)
    return Database(path, raw), raw


def read_summary(path: Path) -> StoreSummary:
    """Chain id, genesis hash and head height of the (stopped) store in ``path``; ``StorageError`` if it has none."""
    db, _ = open_offline(path)
    with db:
        version = metadata.read_version(db)
        if version is None:
            raise StorageError(f"{path} is not a medchain store (no schema version)")
        identity = metadata.read_identity(db)
        head = metadata.read_head(db)
        return StoreSummary(identity.chain_id, identity.genesis_hash, 0 if head is None else head.height)


def check_data_dir(path: Path, chain_id: str | None = None, genesis_hash: bytes | None = None) -> list[str]:
    """The problems of the stopped store in ``path`` (empty: intact); ``DatabaseLocked`` if a process holds it.

    With ``chain_id`` and ``genesis_hash``, a store of another chain is a problem too.
    """
    if not path.is_dir():
        return [f"no data directory at {path}"]
    try:
        db, raw = open_offline(path)
    except DatabaseLocked:
        raise
    except StorageError as exc:
        return [str(exc)]
    findings = Findings()
    with db:
        _check_checksums(raw, findings)
        try:
            _check_store(db, findings, chain_id, genesis_hash)
        except CorruptRecord as exc:
            findings.add(str(exc))
    return findings.result()


def _check_checksums(raw: Any, findings: Findings) -> None:
    try:
        with raw.iterator(verify_checksums=True, fill_cache=False) as it:
            for _ in it:
                pass
    except plyvel.Error as exc:
        arg = exc.args[0] if exc.args else exc
        text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
        findings.add(f"LevelDB reports damage: {text}")


def _check_store(db: Database, findings: Findings, chain_id: str | None, genesis_hash: bytes | None) -> None:
    version = metadata.read_version(db)
    if version is None:
        findings.add("no schema version: not a medchain store")
        return
    if version != metadata.SCHEMA_VERSION:
        findings.add(f"schema version {version}, this medchain reads {metadata.SCHEMA_VERSION}")
        return
    identity = _identity(db, findings, chain_id, genesis_hash)
    try:
        head = metadata.read_head(db)
    except CorruptRecord as exc:
        findings.add(str(exc))
        top, head = None, None  # the head is unreadable: the walk goes as far as the blocks do
    else:
        top = 0 if head is None else head.height
    chain = ChainWalk(db, findings, identity)
    chain.walk(top, head)
    _check_tx_index(db, findings, chain.tx_locations)
    _check_hash_index(db, findings, chain.heights)
    _check_legacy_wal(db, findings)
    for problem in wal.check_folder(db.path):
        findings.add(problem)
    _check_evidence(db, findings)


def _identity(
    db: Database, findings: Findings, chain_id: str | None, genesis_hash: bytes | None
) -> IdentityRecord | None:
    try:
        identity = metadata.read_identity(db)
    except CorruptRecord as exc:
        findings.add(str(exc))
        return None
    if chain_id is not None and identity.chain_id != chain_id:
        findings.add(f"the store belongs to chain {identity.chain_id!r}, not {chain_id!r}")
    if genesis_hash is not None and identity.genesis_hash != genesis_hash:
        findings.add(f"the store's genesis hash {identity.genesis_hash.hex()[:16]} is not {genesis_hash.hex()[:16]}")
    return identity


class ChainWalk:
    """Every height from 1 to the head: blocks, certificates, links; collects what the indexes must hold."""

    def __init__(self, db: Database, findings: Findings, identity: IdentityRecord | None) -> None:
        self.db = db
        self.findings = findings
        self.identity = identity
        self.tx_locations: dict[bytes, bytes] = {}  # tx index key -> packed location, as add_block writes it
        self.heights: dict[bytes, int] = {}  # block hash -> height

    def walk(self, top: int | None, head: ChainTip | None) -> None:
        """Heights 1 to ``top`` (None: the head is unreadable) and ``head``, the head record as read."""
        if top is None:  # the head is unreadable: walk what is there
            last = self.db.keys(BLOCK, prefix_end(BLOCK), reverse=True, limit=1)
            top = read_u64(last[0][len(BLOCK):]) if last else 0
        prev: bytes | None = None if self.identity is None else self.identity.genesis_hash
        block: Block | None = None
        cert: CommitCertificate | None = None
        for height in range(1, top + 1):
            block, cert = self._read(height)
            if block is not None:
                self._check_block(height, block, cert, prev)
            prev = None if block is None else block.hash
        self._check_head(top, head, block, cert)
        for prefix, what in ((BLOCK, "block"), (CERTIFICATE, "certificate")):
            above = self.db.keys(prefix + u64(top + 1), prefix_end(prefix), limit=1)
            if above:
                height = read_u64(above[0][1:])
                self.findings.add(f"height {height}: a {what} is stored above the head (height {top})")

    def _read(self, height: int) -> tuple[Block | None, CommitCertificate | None]:
        block = self._read_one(height, "block", block_key(height), blockstore.read_block)
        cert = self._read_one(height, "commit certificate", certificate_key(height), blockstore.read_certificate)
        return block, cert

    def _read_one(self, height: int, what: str, key: bytes, read: Callable[[Reader, int], R | None]) -> R | None:
        try:
            item = read(self.db, height)
        except CorruptRecord as exc:
            self.findings.add(f"height {height}: {exc}")
            return None
        if item is None:
            self.findings.add(f"height {height}: {what} missing (key {key.hex()})")
        return item

    def _check_block(self, height: int, block: Block, cert: CommitCertificate | None, prev: bytes | None) -> None:
        add, h = self.findings.add, block.header
        below = "the genesis hash" if height == 1 else f"the hash of block {height - 1}"
        if prev is not None and h.prev_hash != prev:
            add(f"height {height}: prev_hash {h.prev_hash.hex()[:16]} is not {below} {prev.hex()[:16]}")
        if self.identity is not None and h.chain_id != self.identity.chain_id:
            add(f"height {height}: the block is of chain {h.chain_id!r}, the store of {self.identity.chain_id!r}")
        if h.tx_count != len(block.txs) or merkle_root(block.txs) != h.tx_root:
            add(f"height {height}: the block's tx_root/tx_count do not match its {len(block.txs)} transaction(s)")
        if cert is not None and cert.block_hash != block.hash:
            add(f"height {height}: the certificate is for block {cert.block_hash.hex()[:16]}, "
                f"the stored block is {block.hash.hex()[:16]}")
        self.heights[block.hash] = height
        entries: dict[bytes, bytes] = {}
        for index, tx in enumerate(block.txs):
            entries.setdefault(TX + sha256(tx), pack_tx_location(height, index))
        self.tx_locations.update(entries)  # a later block's entry replaces an earlier one, as on commit

    def _check_head(
        self, top: int, head: ChainTip | None, block: Block | None, cert: CommitCertificate | None
    ) -> None:
        if head is None or block is None:  # none, or unreadable (already reported)
            return
        if head.block_hash != block.hash:
            self.findings.add(f"head: names block {head.block_hash.hex()[:16]}, height {top} holds "
                              f"{block.hash.hex()[:16]}")
        if head.timestamp_ms != block.header.timestamp_ms:
            self.findings.add(f"head: time {head.timestamp_ms} is not block {top}'s {block.header.timestamp_ms}")
        if cert is not None and head.view != cert.view:
            self.findings.add(f"head: commit view {head.view} is not the view {cert.view} of block {top}'s certificate")


def _scan(db: Database, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) under ``prefix``, read a page at a time."""
    start, stop = prefix, prefix_end(prefix)
    while True:
        items = db.items(start, stop, limit=PAGE)
        yield from items
        if len(items) < PAGE:
            return
        start = items[-1][0] + b"\x00"


def _location(raw: bytes) -> str:
    try:
        height, index = unpack_tx_location(raw)
    except DecodeError:
        return f"an undecodable location {raw.hex()}"
    return f"height {height} position {index}"


def _check_tx_index(db: Database, findings: Findings, expected: dict[bytes, bytes]) -> None:
    for key, value in _scan(db, TX):
        want = expected.pop(key, None)
        if value[:TX_LOCATION_SIZE] == want:  # the outcome after it is the node's, not checked here
            continue
        tx = key[len(TX):].hex()[:16]
        if want is None:
            findings.add(f"tx index: {tx} points to {_location(value)}, but no block up to the head holds it")
        else:
            findings.add(f"tx index: {tx} points to {_location(value)}, but the transaction is at {_location(want)}")
    for key, want in expected.items():
        findings.add(f"tx index: transaction {key[len(TX):].hex()[:16]} at {_location(want)} has no entry")


def _check_hash_index(db: Database, findings: Findings, heights: dict[bytes, int]) -> None:
    for key, value in _scan(db, HEIGHT_BY_HASH):
        block_hash = key[len(HEIGHT_BY_HASH):]
        want = heights.pop(block_hash, None)
        try:
            height: int | str = read_u64(value)
        except DecodeError:
            height = f"undecodable {value.hex()}"
        if height != want:
            findings.add(f"hash index: block {block_hash.hex()[:16]} is said to be at height {height}, "
                         f"but {'no block up to the head has that hash' if want is None else f'it is at {want}'}")
    for block_hash, height in heights.items():
        findings.add(f"hash index: block {block_hash.hex()[:16]} at height {height} has no entry")


def _check_legacy_wal(db: Database, findings: Findings) -> None:
    """WAL records an earlier version kept in LevelDB (moved into the WAL file at the next open)."""
    raw_next = db.get(META_WAL_NEXT)
    next_seq = read_u64(raw_next) if raw_next is not None and len(raw_next) == 8 else None
    if raw_next is not None and next_seq is None:
        findings.add(f"WAL: the next sequence number (key {META_WAL_NEXT.hex()}) does not decode")
    seqs: set[int] = set()
    for key, value in _scan(db, WAL):
        problem = _wal_problem(db, key, value, next_seq)
        if problem is not None:
            findings.add(f"WAL record (key {key.hex()}): {problem}")
        if len(key) == 9:
            seqs.add(read_u64(key[1:]))
    for key, _ in _scan(db, WAL_BY_HEIGHT):
        if len(key) != 17 or read_u64(key[9:]) not in seqs:
            findings.add(f"WAL height index entry {key.hex()} names no WAL record")


def _wal_problem(db: Database, key: bytes, value: bytes, next_seq: int | None) -> str | None:
    if len(key) != 9 or len(value) < 8:
        return "malformed key or value"
    seq, height = read_u64(key[1:]), read_u64(value[:8])
    try:
        record = WAL_CODEC.decode(value[8:])
        recorded = wal.record_height(record)
    except (DecodeError, UsageError) as exc:
        return f"does not decode: {exc}"
    if recorded != height:
        return f"stored with height {height}, but the record is of height {recorded}"
    if db.get(wal_height_key(height, seq)) is None:
        return f"no height index entry (key {wal_height_key(height, seq).hex()})"
    if next_seq is not None and seq >= next_seq:
        return f"sequence number {seq} is not below the next one, {next_seq}"
    return None


def _check_evidence(db: Database, findings: Findings) -> None:
    for key, value in _scan(db, EVIDENCE):
        try:
            record = decode_stored(EvidenceRecord, value, f"evidence record {key[1:].hex()}", key)
            CONSENSUS_CODEC.decode(record.first)
            CONSENSUS_CODEC.decode(record.second)
        except CorruptRecord as exc:
            findings.add(str(exc))
        except DecodeError as exc:
            findings.add(f"evidence record {key[1:].hex()} (key {key.hex()}): a message does not decode: {exc}")
