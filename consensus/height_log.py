"""Everything a replica has heard about one height (PBFT's message log, per sequence number).

Votes are grouped by (view, block hash).  The first signed message of each
(sender, phase, view) is remembered, so a second one with a different block is
recognised as equivocation and the pair becomes evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.messages import Block, Commit, Prepare, PrePrepare, SignedMessage, Vote

VoteKey = tuple[int, bytes]  # (view, block hash)


@dataclass(slots=True)
class HeightLog:
    height: int
    proposals: dict[int, Block] = field(default_factory=dict)
    """view -> the block the primary of that view proposed (or NEW-VIEW mandated)."""
    blocks: dict[bytes, Block] = field(default_factory=dict)
    prepares: dict[VoteKey, dict[int, bytes]] = field(default_factory=dict)
    commits: dict[VoteKey, dict[int, bytes]] = field(default_factory=dict)
    verdicts: dict[bytes, bool] = field(default_factory=dict)
    validating: set[bytes] = field(default_factory=set)
    first_seen: dict[tuple[int, str, int], SignedMessage] = field(default_factory=dict)
    reproposed: set[int] = field(default_factory=set)
    """Views whose proposal is a block NEW-VIEW carried over from an earlier view."""

    def bucket_count(self) -> int:
        return len(self.prepares) + len(self.commits)

    def remember(self, message: PrePrepare | Prepare | Commit) -> SignedMessage | None:
        """Record ``message``; return an earlier conflicting one from the same sender, if any."""
        phase = type(message).__name__
        key = (message.sender, phase, message.view)
        earlier = self.first_seen.get(key)
        if earlier is None:
            self.first_seen[key] = message
            return None
        if _block_hash(earlier) != _block_hash(message):
            return earlier
        return None

    def add_vote(self, table: dict[VoteKey, dict[int, bytes]], message: Prepare | Commit) -> int:
        votes = table.setdefault((message.view, message.block_hash), {})
        votes.setdefault(message.sender, message.signature)
        return len(votes)

    def votes(self, table: dict[VoteKey, dict[int, bytes]], view: int, block_hash: bytes) -> tuple[Vote, ...]:
        found = table.get((view, block_hash), {})
        return tuple(Vote(v, s) for v, s in sorted(found.items()))

    def block(self, block_hash: bytes) -> Block | None:
        return self.blocks.get(block_hash)


def _block_hash(message: SignedMessage) -> bytes:
    if isinstance(message, PrePrepare):
        return message.block.hash
    if isinstance(message, Prepare | Commit):
        return message.block_hash
    raise TypeError(f"no block hash in {type(message).__name__}")
