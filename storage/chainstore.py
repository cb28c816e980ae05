"""A node's durable store: one LevelDB per data directory (layout in storage/keys.py).

Rules:

* ``ChainStore.open`` creates or checks the directory (schema version, chain
  id, genesis hash; see storage/metadata.py) and holds LevelDB's lock until
  ``close``: a second process gets ``DatabaseLocked``;
* ``commit_block`` is exactly one synchronous write batch holding the block,
  its certificate, the hash and transaction index entries, the application's
  state writes and the new head; a block
  that does not extend the head is refused before anything is written, so a
  crash at any moment leaves the previous head or the next, never a mix;
* the consensus WAL is a file of its own beside the LevelDB (storage/wal.py):
  ``append_wal`` is one write and one fdatasync per call; ``prune_wal`` writes
  the surviving records into a new file (a crash leaves the old or the new);
* ``has_tx`` and state reads answer a transaction never committed and a key
  never written from memory (filters of the committed ids and of the state
  keys, storage/keyfilter.py) and read LevelDB otherwise;
* ``stage`` shows one block's transactions and state writes to every read
  before its batch is written (catch-up executes the next block meanwhile);
  ``commit_block`` of that block clears them once LevelDB holds them;
* writes are serialised by a lock, so they may run on worker threads while
  reads go on elsewhere.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from consensus.config import ChainTip
from consensus.events import Evidence, WalRecord
from consensus.messages import Block, CommitCertificate
from primitives.errors import UsageError
from storage import blockstore, evidence, metadata, state
from storage.chainview import ChainView
from storage.database import Batch, Database
from storage.keyfilter import KeyFilter
from storage.keys import STATE, TX, prefix_end
from storage.state import MAX_STATE_ITEMS, StateWrites
from storage.wal import WalEntry, WalLog

FILTER_PAGE = 65_536  # keys read per page while the filters are built at open
_UNSTAGED = object()


def _filter_of(db: Database, prefix: bytes) -> KeyFilter:
    """A filter of every key under ``prefix`` (without it), read a page at a time."""
    found = KeyFilter()
    start, stop = prefix, prefix_end(prefix)
    while keys := db.keys(start, stop, limit=FILTER_PAGE):
        found.add_many([k[len(prefix):] for k in keys])
        start = keys[-1] + b"\x00"
    return found


class ChainStore(ChainView):
    def __init__(
        self, db: Database, chain_id: str, genesis_hash: bytes, head: ChainTip | None, wal: WalLog
    ) -> None:
        super().__init__(db)
        self._db = db
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self._head = head
        self._lock = threading.Lock()
        self._wal = wal
        self._evidence_next = evidence.read_next_seq(db)
        self._committed = _filter_of(db, TX)  # tx ids in the tx index
        self._state_keys = _filter_of(db, STATE)  # application state keys ever written
        # One block executed and being written (``stage``): its state writes and tx ids, read before LevelDB.
        self._staged: dict[bytes, bytes | None] = {}
        self._staged_ids: frozenset[bytes] = frozenset()
        self._staged_height = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str], chain_id: str, genesis_hash: bytes) -> ChainStore:
        """Open the store in directory ``path`` (created if missing) for this chain.

        A new directory is stamped with the schema version, ``chain_id`` and
        ``genesis_hash``; an existing one must carry the same three.
        """
        db = Database.open(path)
        try:
            head = metadata.open_chain(db, chain_id, genesis_hash)
            wal = WalLog.open(db.path, legacy=db)
        except BaseException:
            db.close()
            raise
        return cls(db, chain_id, genesis_hash, head, wal)

    @property
    def path(self) -> Path:
        return self._db.path

    def close(self) -> None:
        with self._lock:
            self._wal.close()
            self._db.close()

    def __enter__(self) -> ChainStore:
        return self

    def head(self) -> ChainTip | None:
        """The last committed block, the state after it and its commit view; None at genesis."""
        return self._head

    def snapshot(self) -> ChainView:
        """A consistent read-only view; use as a context manager (or call ``close``)."""
        snap = self._db.snapshot()
        return ChainView(snap, snap.release)

    def has_tx(self, tx_id: bytes) -> bool:
        """Whether ``tx_id`` is committed; a new transaction is answered from memory (storage/keyfilter.py)."""
        return tx_id in self._committed and (tx_id in self._staged_ids or super().has_tx(tx_id))

    def get(self, key: bytes) -> bytes | None:
        """Application state at ``key``; a key never written is answered from memory."""
        staged = self._staged.get(key, _UNSTAGED)
        if staged is not _UNSTAGED:
            return staged  # type: ignore[return-value]
        return super().get(key) if key in self._state_keys else None

    def state_reader(self) -> Callable[[bytes], bytes | None]:
        """``get`` for a block's hot loop of reads; over the staged block's writes while there is one."""
        read = super().state_reader()
        staged = self._staged  # a later block is staged only after this reader's block executed
        if not staged:
            return read

        def staged_read(key: bytes) -> bytes | None:
            value = staged.get(key, _UNSTAGED)
            return read(key) if value is _UNSTAGED else value  # type: ignore[return-value]

        return staged_read

    def state_items(
        self, prefix: bytes = b"", *, after: bytes | None = None, limit: int = 1_000
    ) -> list[tuple[bytes, bytes]]:
        staged = self._staged
        if not staged or not 0 < limit <= MAX_STATE_ITEMS:  # (a bad limit is refused there)
            return super().state_items(prefix, after=after, limit=limit)
        mine = {k: v for k, v in staged.items() if k.startswith(prefix) and (after is None or k > after)}
        # A staged delete or overwrite can hide a stored item: read that many more, so the first ``limit``
        # live items are all among what was read.
        items: dict[bytes, bytes | None] = dict(self._stored_items(prefix, after, limit + len(mine)))
        items.update(mine)
        return sorted((k, v) for k, v in items.items() if v is not None)[:limit]

    def _stored_items(self, prefix: bytes, after: bytes | None, wanted: int) -> list[tuple[bytes, bytes]]:
        """Up to ``wanted`` stored items, in pages of at most ``MAX_STATE_ITEMS``."""
        out: list[tuple[bytes, bytes]] = []
        while len(out) < wanted:
            ask = min(wanted - len(out), MAX_STATE_ITEMS)
            page = super().state_items(prefix, after=after, limit=ask)
            out += page
            if len(page) < ask:
                break
            after = page[-1][0]
        return out

    def written_state_keys(self) -> KeyFilter:
        """Every state key ever written, and some never written (``key not in`` it: the key holds nothing).

        ``state_reader`` reads LevelDB for every key; a hot loop asks this first (BlockReader).
        """
        return self._state_keys

    # ------------------------------------------------------------ writes

    def commit_block(
        self,
        block: Block,
        certificate: CommitCertificate,
        writes: StateWrites,
        app_hash: bytes,
        outcomes: Sequence[bytes] | None = None,
    ) -> ChainTip:
        """Store ``block`` as the new head, durably and atomically; return the new head.

        ``writes`` are the application's state changes for this block (value
        None deletes) and ``app_hash`` the state hash after it; ``outcomes``
        (one per transaction, opaque) are kept in the transactions' index
        entries, read back by ``tx_entry``.  Raises
        ``CommitRefused`` (nothing written) unless the block extends the head.
        """
        with self._lock:
            head = self._head
            blockstore.check_extends(head, self.genesis_hash, self.chain_id, block, certificate, app_hash)
            staged = self._staged_height == block.height
            if not staged:
                # Into the filters before the write: a read meanwhile goes to LevelDB, as it did before them.
                self._committed.add_many(block.tx_hashes())
                self._state_keys.add_many([key for key, value in writes.items() if value is not None])
            batch = Batch()
            blockstore.add_block(batch, block, certificate, outcomes)
            state.add_state_writes(batch, writes)
            new_head = ChainTip(block.height, block.hash, app_hash, block.header.timestamp_ms, certificate.view)
            metadata.put_head(batch, new_head)
            self._db.write(batch, sync=True)
            self._head = new_head
            if staged:  # LevelDB answers now
                self._staged, self._staged_ids, self._staged_height = {}, frozenset(), 0
            return new_head

    def stage(self, block: Block, writes: StateWrites) -> None:
        """Show ``block``'s transactions and state ``writes`` to every read from now on, before its
        ``commit_block`` (called next, on another thread) writes them; at most one block at a time.

        The block's head, index entries and results are read from LevelDB once written, as before.
        """
        if self._staged_height:
            raise UsageError(f"block {self._staged_height} is staged and not yet written")
        ids = block.tx_hashes()
        self._committed.add_many(ids)
        self._state_keys.add_many([key for key, value in writes.items() if value is not None])
        self._staged, self._staged_ids, self._staged_height = dict(writes), frozenset(ids), block.height

    def append_wal(self, records: Sequence[WalRecord]) -> None:
        """Persist ``records`` durably (one synchronous batch) before their messages are sent."""
        if not records:
            return
        with self._lock:
            self._wal.append(list(records))

    def prune_wal(self, below_height: int) -> int:
        """Forget WAL records of heights below ``below_height``; return how many."""
        with self._lock:
            return self._wal.prune(below_height)

    def wal_entries(self) -> list[WalEntry]:
        """The WAL's records with their sequence numbers and heights, in append order."""
        with self._lock:
            return self._wal.entries()

    def wal_records(self) -> list[WalRecord]:
        """The WAL's records in append order (what ``Replica.restore`` takes)."""
        return [entry.record for entry in self.wal_entries()]

    @property
    def evidence_count(self) -> int:
        """How many items of equivocation evidence are stored."""
        return self._evidence_next

    def add_evidence(self, item: Evidence) -> bool:
        """Persist equivocation evidence; False if the same evidence is already stored."""
        with self._lock:
            batch = Batch()
            if not evidence.add_evidence(self._db, batch, self._evidence_next, item):
                return False
            self._db.write(batch, sync=True)
            self._evidence_next += 1
            return True
