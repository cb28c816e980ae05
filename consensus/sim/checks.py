"""The invariants every simulated run is checked against, as it happens.

* agreement: no two honest replicas commit different blocks at one height
  (checked on every commit, normal or by sync);
* no double signing: no honest replica ever sends two messages it signed
  itself that bind different blocks (or states) to one (phase, view, height)
  -- watched on every message an honest replica emits, across its crashes
  and restarts, since this memory lives outside the replicas;
* a replica's store grows one height at a time, each block naming the last.

Liveness (every honest replica keeps deciding once faults heal) is judged by
the cluster at the end of a run, since it needs the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import (
    CONSENSUS_CODEC,
    Block,
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    SignedMessage,
    ViewChange,
)
from primitives.errors import DecodeError
from primitives.hashing import sha256

SignSlot = tuple[int, str, int, int]  # (replica, phase, view, height)
_MEMO_LIMIT = 4_096


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    """``agreement``, ``double-sign``, ``store-order`` or ``stalled``."""
    height: int
    replicas: tuple[int, ...]
    hashes: tuple[str, ...]
    time_ms: int
    detail: str = ""

    @property
    def is_safety(self) -> bool:
        return self.kind != "stalled"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "height": self.height,
            "replicas": list(self.replicas),
            "hashes": list(self.hashes),
            "time_ms": self.time_ms,
            "detail": self.detail,
        }


def signed_slot(message: SignedMessage) -> tuple[str, int, int, bytes]:
    """(phase, view, height) of a signed message and what it binds there."""
    match message:
        case PrePrepare():
            return "pre-prepare", message.view, message.height, message.block.hash
        case Prepare():
            return "prepare", message.view, message.height, message.block_hash
        case Commit():
            return "commit", message.view, message.height, message.block_hash
        case ViewChange():
            prepared = b"" if message.prepared is None else message.prepared.block.hash
            return "view-change", message.new_view, message.height, prepared
        case NewView():
            block = b"" if message.block is None else message.block.hash
            return "new-view", message.view, message.height, block
        case Checkpoint():
            return "checkpoint", 0, message.height, message.block_hash + message.app_hash
    raise TypeError(type(message).__name__)


class SafetyMonitor:
    """Watches commits and emitted messages of the honest replicas."""

    def __init__(self, honest: frozenset[int]) -> None:
        self.honest = honest
        self.decided: dict[int, tuple[bytes, int]] = {}
        self.signed: dict[SignSlot, bytes] = {}
        self.heads: dict[int, tuple[int, bytes]] = {}
        self.violations: list[Violation] = []
        self._checked: dict[bytes, None] = {}
        self.emitted_checked = 0

    def on_commit(self, replica: int, block: Block, now: int) -> None:
        if replica not in self.honest:
            return
        height, prev = self.heads.get(replica, (0, b""))
        if block.height != height + 1 or (height and block.header.prev_hash != prev):
            self._report("store-order", block.height, (replica,), (block.hash,), now,
                         f"replica {replica} at height {height} committed height {block.height}")
        self.heads[replica] = (block.height, block.hash)
        first = self.decided.get(block.height)
        if first is None:
            self.decided[block.height] = (block.hash, replica)
        elif first[0] != block.hash:
            self._report("agreement", block.height, (first[1], replica), (first[0], block.hash), now,
                         f"replicas {first[1]} and {replica} decided different blocks at height {block.height}")

    def on_emit(self, replica: int, data: bytes, now: int) -> None:
        if replica not in self.honest:
            return
        digest = sha256(data)  # not the bytes themselves: a memo of whole blocks would dwarf the engines
        if digest in self._checked:
            return
        if len(self._checked) >= _MEMO_LIMIT:
            self._checked.clear()
        self._checked[digest] = None
        try:
            message = CONSENSUS_CODEC.decode(data)
        except DecodeError:
            return
        if message.sender != replica:
            return  # handing on someone else's message (a NEW-VIEW proof) signs nothing new
        self.emitted_checked += 1
        phase, view, height, target = signed_slot(message)
        slot = (replica, phase, view, height)
        earlier = self.signed.setdefault(slot, target)
        if earlier != target:
            self._report("double-sign", height, (replica,), (earlier, target), now,
                         f"replica {replica} signed two different {phase}s in view {view}")

    def forget_below(self, height: int) -> None:
        """Long runs: drop entries for heights every honest replica has passed."""
        for h in [h for h in self.decided if h < height]:
            del self.decided[h]
        for slot in [s for s in self.signed if s[3] < height]:
            del self.signed[slot]

    def _report(self, kind: str, height: int, replicas: tuple[int, ...], hashes: tuple[bytes, ...],
                now: int, detail: str) -> None:
        self.violations.append(Violation(kind, height, replicas, tuple(h.hex() for h in hashes), now, detail))
