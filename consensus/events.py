"""What goes into a replica and what comes out of it.

A replica (``consensus.replica.Replica``) takes one input event at a time,
``replica.handle(event, now_ms)``, and returns an ``Output``.  Time enters only
as the ``now_ms`` argument.  The caller (the node's driver, or the simulator)
must carry out an output in this order:

1. **persist** every record in ``output.persist`` (durably: fsync) -- they
   say what this replica signed and what it saw prepared, so that after a
   crash it never signs two different blocks for one (view, height, phase);
2. **send** ``output.send`` -- only after step 1, never before;
3. **commit** ``output.commit`` -- store each block with its certificate, apply
   it to the application, then feed back ``Executed(height, app_hash, changes)``
   (``changes``: validator-set changes that block scheduled, see membership.py);
4. everything else (validate, timers, sync, evidence) in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from consensus.membership import ValidatorChange
from consensus.messages import Block, CommitCertificate, PreparedCertificate, SignedMessage
from primitives.codec import MAX_MESSAGE_BYTES, Bytes, Kind, MessageCodec, Nested

# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Received:
    """Bytes that arrived from the network (decoded and checked by the replica)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the replica asked for has expired."""

    name: str
    token: int


@dataclass(frozen=True, slots=True)
class Propose:
    """A batch of transactions the replica may propose if it is the primary.

    The driver decides when a batch is ready (``max_block_txs`` reached or its
    batch timer fired) and must not offer more than the configured limits.
    """

    txs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PendingWork:
    """Transactions are waiting: if no block commits in time, change view."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The application's judgement of a block the replica asked to validate."""

    block_hash: bytes
    valid: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Executed:
    """The block at ``height`` was stored and applied; the state is ``app_hash``.

    ``changes``: the validator-set changes the block scheduled (each effective at
    ``height + ACTIVATION_DELAY`` or later), in the order the ledger scheduled them.
    """

    height: int
    app_hash: bytes
    changes: tuple[ValidatorChange, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncedBlock:
    """A committed block fetched from a peer by catch-up, with its certificate."""

    block: Block
    certificate: CommitCertificate


Event = Received | TimerFired | Propose | PendingWork | Verdict | Executed | SyncedBlock

# ---------------------------------------------------------------- outputs

TIMER_PROGRESS = "progress"
TIMER_VIEW_CHANGE = "view-change"


@dataclass(frozen=True, slots=True)
class WalSigned:
    """This replica signed ``message`` (persist before it is sent)."""

    TAG: ClassVar[int] = 1
    message: bytes  # the message's canonical tagged bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Bytes(MAX_MESSAGE_BYTES),)


@dataclass(frozen=True, slots=True)
class WalPrepared:
    """This replica holds a prepared certificate (persist before COMMIT leaves)."""

    TAG: ClassVar[int] = 2
    certificate: PreparedCertificate
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Nested(PreparedCertificate),)


WalRecord = WalSigned | WalPrepared
WAL_CODEC = MessageCodec([WalSigned, WalPrepared])


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` to validator ``to``, or to every other validator if None."""

    data: bytes
    to: int | None = None


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """Store and apply ``block``; it is final.  Feed ``Executed`` back after."""

    block: Block
    certificate: CommitCertificate
    via_sync: bool = False


@dataclass(frozen=True, slots=True)
class ValidateBlock:
    """Ask the application whether ``block`` is valid; answer with ``Verdict``."""

    block: Block


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Fire ``TimerFired(name, token)`` at ``deadline_ms`` (replaces ``name``)."""

    name: str
    deadline_ms: int
    token: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class RequestSync:
    """This replica is behind: fetch committed blocks from ``from_height`` on.

    ``peers`` are validators seen at a higher height (ask them first).
    """

    from_height: int
    peers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ServeSync:
    """Validator ``peer`` is behind: send it committed blocks from ``from_height``."""

    peer: int
    from_height: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two conflicting messages signed by one validator for one (view, height, phase)."""

    validator: int
    kind: str
    first: SignedMessage
    second: SignedMessage


@dataclass(frozen=True, slots=True)
class ViewChanged:
    """For logs and metrics: the replica entered ``new_view`` (NEW-VIEW accepted)."""

    old_view: int
    new_view: int
    height: int
    primary: int
    reason: str


@dataclass(frozen=True, slots=True)
class StableCheckpoint:
    """2f+1 validators signed the same state at ``height``: history below is settled."""

    height: int
    block_hash: bytes
    app_hash: bytes


@dataclass(slots=True)
class Output:
    persist: list[WalRecord] = field(default_factory=list)
    send: list[Send] = field(default_factory=list)
    commit: list[CommitBlock] = field(default_factory=list)
    validate: list[ValidateBlock] = field(default_factory=list)
    timers: list[SetTimer | CancelTimer] = field(default_factory=list)
    sync: list[RequestSync | ServeSync] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    view_changes: list[ViewChanged] = field(default_factory=list)
    checkpoints: list[StableCheckpoint] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        self.persist.extend(other.persist)
        self.send.extend(other.send)
        self.commit.extend(other.commit)
        self.validate.extend(other.validate)
        self.timers.extend(other.timers)
        self.sync.extend(other.sync)
        self.evidence.extend(other.evidence)
        self.view_changes.extend(other.view_changes)
        self.checkpoints.extend(other.checkpoints)

    def is_empty(self) -> bool:
        return not (
            self.persist or self.send or self.commit or self.validate or self.timers
            or self.sync or self.evidence or self.view_changes or self.checkpoints
        )

