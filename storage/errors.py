"""Errors of the storage package.

Every error names the data directory (and, for a bad record, the key) so an
operator can act on the one line it prints.  ``CommitRefused`` is our caller's
fault (a block that does not extend the head); the others are about the disk.
"""

from __future__ import annotations

from primitives.errors import MedchainError, UsageError


class StorageError(MedchainError):
    """The store cannot do what was asked (base of every storage error)."""


class DatabaseLocked(StorageError):
    """Another process holds the LevelDB lock of the data directory."""


class SchemaMismatch(StorageError):
    """The directory was written by a storage schema version this code does not read."""


class ChainMismatch(StorageError):
    """The directory holds another chain (chain id or genesis hash differ)."""


class CorruptRecord(StorageError):
    """Bytes under a key (or in a file, with ``key`` empty) are not the record they must be."""

    def __init__(self, what: str, key: bytes, reason: str) -> None:
        super().__init__(f"corrupt {what}{f' (key {key.hex()})' if key else ''}: {reason}")
        self.what = what
        self.key = key
        self.reason = reason


class CommitRefused(StorageError, UsageError):
    """A block offered for commit does not extend the stored head; nothing was written."""


class StoreClosed(StorageError):
    """The store was closed and can no longer be used."""
