"""Every read of a node's store, over the live database or a snapshot of it.

``ChainStore`` (the live store) is a ``ChainView``; ``ChainStore.snapshot()``
returns one frozen at a moment, for reads that must agree with each other
(a block, its certificate and the head, say) while commits go on.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from consensus.config import ChainTip
from consensus.events import Evidence
from consensus.messages import Block, BlockHeader, CommitCertificate
from storage import blockstore, evidence, metadata, state
from storage.blockstore import CertifiedBlock, TxLocation
from storage.database import Database, Reader
from storage.keys import STATE, tx_key


class ChainView:
    def __init__(self, reader: Reader, release: Callable[[], None] | None = None) -> None:
        self._reader = reader
        self._release = release

    def close(self) -> None:
        """Release the snapshot (a view of the live store has nothing to release)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> ChainView:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ chain

    def head(self) -> ChainTip | None:
        """The last committed block, the state after it and its commit view; None at genesis."""
        return metadata.read_head(self._reader)

    def block(self, height: int) -> Block | None:
        return blockstore.read_block(self._reader, height)

    def block_header(self, height: int) -> BlockHeader | None:
        """The header of the block at ``height``, its transactions left undecoded."""
        return blockstore.read_block_header(self._reader, height)

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        return blockstore.read_block_by_hash(self._reader, block_hash)

    def height_of(self, block_hash: bytes) -> int | None:
        return blockstore.read_height_of(self._reader, block_hash)

    def certificate(self, height: int) -> CommitCertificate | None:
        return blockstore.read_certificate(self._reader, height)

    def certified_block(self, height: int) -> CertifiedBlock | None:
        """The block at ``height`` with its commit certificate, or None above the head."""
        return blockstore.read_certified(self._reader, height)

    def certified_range(
        self, from_height: int, max_blocks: int, max_bytes: int | None = None
    ) -> list[CertifiedBlock]:
        """Consecutive blocks with certificates from ``from_height`` (for serving catch-up)."""
        return blockstore.read_certified_range(self._reader, from_height, max_blocks, max_bytes)

    # ------------------------------------------------------------ transactions

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        """(height, index in block) of a committed transaction; tx id = sha256(tx bytes)."""
        return blockstore.read_tx_location(self._reader, tx_id)

    def tx_entry(self, tx_id: bytes) -> tuple[TxLocation, bytes] | None:
        """Location and outcome of a committed transaction (``commit_block``'s ``outcomes``; empty if
        the block was stored by an earlier version or without outcomes)."""
        return blockstore.read_tx_entry(self._reader, tx_id)

    def has_tx(self, tx_id: bytes) -> bool:
        return self._reader.get(tx_key(tx_id)) is not None

    def tx(self, tx_id: bytes) -> bytes | None:
        return blockstore.read_tx(self._reader, tx_id)

    # ------------------------------------------------------------ application state

    def get(self, key: bytes) -> bytes | None:
        """The application's value for ``key`` after the head block (a ``StateReader``)."""
        return state.read_state(self._reader, key)

    def state_reader(self) -> Callable[[bytes], bytes | None]:
        """``get`` for a hot loop of point reads (a block's execution): straight to LevelDB when it can."""
        if isinstance(self._reader, Database):
            return self._reader.point_reader(STATE)
        return self.get

    def state_items(
        self, prefix: bytes = b"", *, after: bytes | None = None, limit: int = 1_000
    ) -> list[tuple[bytes, bytes]]:
        return state.read_state_items(self._reader, prefix, after=after, limit=limit)

    # ------------------------------------------------------------ consensus

    def evidence(self, limit: int | None = None) -> list[Evidence]:
        return evidence.read_evidence(self._reader, limit)
