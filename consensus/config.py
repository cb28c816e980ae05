"""What a replica is told at construction: who it is and who the others are."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.membership import ValidatorChange
from primitives.errors import UsageError
from primitives.signing import SigningKey, VerifyKey


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    chain_id: str
    validators: tuple[VerifyKey, ...]
    """The genesis set (it decides height 1 and on, until a change)."""
    index: int | None
    """This replica's position in the genesis set, or None when it is not in it (it may join later)."""
    key: SigningKey
    progress_timeout_ms: int = 2_000
    """How long work may wait at one height before a view change (doubles per failed view)."""
    max_backoff_doublings: int = 6
    checkpoint_interval: int = 100
    """Sign a checkpoint every K heights; 2f+1 matching ones make it stable."""
    window: int = 200
    """High watermark: messages more than this many heights ahead are dropped."""
    max_clock_drift_ms: int = 10_000
    """A fresh proposal's timestamp may be at most this far ahead of our clock."""
    max_log_entries_per_height: int = 4_096
    """Bound on (view, block hash) vote buckets kept per height (flooding guard)."""
    changes: tuple[ValidatorChange, ...] = ()
    """Validator-set changes already scheduled by the blocks up to the tip (a restart reads them from state)."""

    def __post_init__(self) -> None:
        if not self.validators:
            raise UsageError("a replica needs at least one validator")
        if self.index is not None:
            if not 0 <= self.index < len(self.validators):
                raise UsageError(f"index {self.index} is not a validator of {len(self.validators)}")
            if self.key.verify_key != self.validators[self.index]:
                raise UsageError("the signing key does not match the validator key at this index")
        elif self.key.verify_key in self.validators:
            raise UsageError("the signing key is a genesis validator's: give its index")
        if self.progress_timeout_ms <= 0 or self.checkpoint_interval <= 0 or self.window <= 0:
            raise UsageError("timeouts, checkpoint interval and window must be positive")


@dataclass(frozen=True, slots=True)
class ChainTip:
    """The last committed block as storage knows it (height 0 = genesis)."""

    height: int
    block_hash: bytes
    app_hash: bytes
    timestamp_ms: int
    view: int = 0
