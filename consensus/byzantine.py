"""Byzantine behaviours: an honest engine underneath, a faulty network card on top.

One implementation for the simulator and for a real validator.  A Byzantine
replica runs the ordinary ``Replica`` (so it keeps up with the chain and its
lies are timely), and ``Adversary`` rewrites what it sends.  It signs with the
real keys it is given -- every Byzantine key in the simulator (the Byzantine
replicas collude), only its own in a real node -- so what it does leaves
evidence.  Pure: no I/O, no clock; randomness comes from the ``random.Random``
passed in, so a seed replays the same lies.  Behaviours:

``equivocate``   a Byzantine primary's PRE-PREPARE goes out as two valid,
                 differently-hashed blocks, one to each half of the honest
                 replicas; every PREPARE and COMMIT a Byzantine replica sends
                 for either fork is re-signed for the fork its receiver saw;
``silent``       sends nothing and serves no blocks;
``bad-sig``      every message and every served certificate carries a
                 corrupted signature;
``vote-unknown`` also sends signed PREPAREs and COMMITs for random block
                 hashes, at its height and view and just above;
``stale``        also replays messages it sent or received, from earlier
                 views and heights, at random later times (``replays``);
``garbage``      also sends random bytes after each message, and bursts of
                 them when asked (``flood``): honest replicas must drop them.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

from consensus.events import Send
from consensus.messages import (
    CONSENSUS_CODEC,
    Block,
    Commit,
    CommitCertificate,
    Prepare,
    PrePrepare,
    SignedMessage,
    Vote,
)
from primitives.merkle import merkle_root
from primitives.signing import SigningKey

BEHAVIOURS: tuple[str, ...] = ("equivocate", "silent", "bad-sig", "vote-unknown", "stale", "garbage")
Delivery = tuple[int, bytes]  # (receiver, data)
STALE_HISTORY = 256
GARBAGE_BYTES = (1, 512)
GARBAGE_BURST = 4
_CACHE_LIMIT = 1_024
_FORKS_KEPT = 512


@dataclass(slots=True)
class Fork:
    """Two blocks one Byzantine primary proposed for one (view, height)."""

    hashes: tuple[bytes, bytes]
    side: dict[int, int]
    """Honest replica -> the fork (0: the engine's own block, 1: the twin) it was shown."""


class Adversary:
    """The Byzantine replicas' shared mind: the ones whose keys it holds."""

    def __init__(
        self,
        behaviour: str,
        keys: Mapping[int, SigningKey],
        n: int,
        chain_id: str,
        rng: random.Random,
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; choose one of {', '.join(BEHAVIOURS)}")
        if not keys or any(not 0 <= i < n for i in keys):
            raise ValueError(f"Byzantine replicas must be some of 0..{n - 1}, got {sorted(keys)}")
        self.behaviour = behaviour
        self.keys = dict(keys)
        self.byzantine = frozenset(keys)
        self.n = n
        self.chain_id = chain_id
        self.rng = rng
        self.honest = tuple(i for i in range(n) if i not in self.byzantine)
        self.forks: dict[bytes, tuple[Fork, int]] = {}
        self.history: dict[int, deque[bytes]] = {i: deque(maxlen=STALE_HISTORY) for i in sorted(self.byzantine)}
        self._resigned: dict[tuple[bytes, int], bytes] = {}
        self._corrupted: dict[bytes, bytes] = {}
        self._twin_blocks: dict[bytes, Block] = {}
        self.forks_made = 0
        self.forged = 0
        self.garbage_sent = 0

    def runs_engine(self, replica: int) -> bool:
        return not (self.behaviour == "silent" and replica in self.byzantine)

    @property
    def serves_blocks(self) -> bool:
        return self.behaviour != "silent"

    # ------------------------------------------------------------ outgoing

    def outgoing(self, sender: int, send: Send) -> list[Delivery]:
        """What a Byzantine ``sender`` really puts on the wire for one ``Send``."""
        targets = [send.to] if send.to is not None else [i for i in range(self.n) if i != sender]
        match self.behaviour:
            case "equivocate":
                return self._equivocate(sender, send.data, targets)
            case "silent":
                return []
            case "bad-sig":
                bad = self._corrupt(send.data)
                return [(t, bad) for t in targets]
            case "vote-unknown":
                return self._vote_unknown(sender, send.data, targets)
            case "stale":
                self.history[sender].append(send.data)
            case "garbage":
                return [d for t in targets for d in ((t, send.data), (t, self.garbage()))]
        return [(t, send.data) for t in targets]

    def received(self, receiver: int, data: bytes) -> None:
        if self.behaviour == "stale" and receiver in self.history:
            self.history[receiver].append(data)

    def replays(self, sender: int) -> list[Delivery]:
        """``stale``: a few earlier messages, sent again to random replicas."""
        history = self.history.get(sender)
        if self.behaviour != "stale" or not history:
            return []
        out: list[Delivery] = []
        for _ in range(self.rng.randint(1, 3)):
            # Prefer the older half: old views and heights are the interesting ones.
            data = history[self.rng.randrange(max(1, len(history) // 2))]
            target = self.rng.randrange(self.n)
            targets = [t for t in range(self.n) if t != sender] if target == sender else [target]
            out.extend((t, data) for t in targets)
        return out

    def garbage(self) -> bytes:
        """Random bytes of random length (seeded)."""
        self.garbage_sent += 1
        return self.rng.randbytes(self.rng.randint(*GARBAGE_BYTES))

    def flood(self, sender: int, burst: int = GARBAGE_BURST) -> list[Delivery]:
        """``garbage``: a burst of garbage to every other replica."""
        if self.behaviour != "garbage":
            return []
        return [(t, self.garbage()) for t in range(self.n) if t != sender for _ in range(burst)]

    def served_certificate(self, cert: CommitCertificate) -> CommitCertificate:
        """What a Byzantine replica hands out when asked for a committed block."""
        if self.behaviour != "bad-sig":
            return cert
        votes = tuple(Vote(v.validator, _flip(v.signature)) for v in cert.votes)
        return replace(cert, votes=votes)

    # ------------------------------------------------------------ behaviours

    def _sign(self, message: SignedMessage) -> bytes:
        key = self.keys[message.sender]
        signed = replace(message, signature=key.sign(message.DOMAIN, self.chain_id, message.signing_payload()))
        self.forged += 1
        return CONSENSUS_CODEC.encode(signed)

    def _corrupt(self, data: bytes) -> bytes:
        bad = self._corrupted.get(data)
        if bad is None:
            message = CONSENSUS_CODEC.decode(data)
            bad = CONSENSUS_CODEC.encode(replace(message, signature=_flip(message.signature)))
            if len(self._corrupted) >= _CACHE_LIMIT:
                self._corrupted.clear()
            self._corrupted[data] = bad
        return bad

    def _equivocate(self, sender: int, data: bytes, targets: list[int]) -> list[Delivery]:
        message = CONSENSUS_CODEC.decode(data)
        if message.sender != sender or message.sender not in self.keys:
            return [(t, data) for t in targets]
        if isinstance(message, PrePrepare):
            fork_at = self.forks.get(message.block.hash)
            if fork_at is None:
                fork_at = self._fork(message, data)
            fork = fork_at[0]
        elif isinstance(message, Prepare | Commit) and message.block_hash in self.forks:
            fork = self.forks[message.block_hash][0]
        else:
            return [(t, data) for t in targets]
        own_side = self.forks[_bound_hash(message)][1]
        out = []
        for t in targets:
            side = fork.side.get(t, 0)  # fellow Byzantine replicas follow the engine's own block
            out.append((t, data if side == own_side else self._twin(message, data, fork, side)))
        return out

    def _fork(self, m: PrePrepare, data: bytes) -> tuple[Fork, int]:
        block = m.block
        txs = block.txs[:-1] if len(block.txs) > 1 else block.txs
        header = replace(block.header, timestamp_ms=block.header.timestamp_ms + 1,
                         tx_root=merkle_root(txs), tx_count=len(txs))
        twin = Block(header, txs)
        honest = list(self.honest)
        self.rng.shuffle(honest)
        half = len(honest) // 2
        side = {r: (0 if k < half else 1) for k, r in enumerate(honest)}
        fork = Fork((block.hash, twin.hash), side)
        if len(self._twin_blocks) >= _FORKS_KEPT:  # long runs: forget the oldest forks
            for old in list(self._twin_blocks)[: _FORKS_KEPT // 2]:
                del self._twin_blocks[old]
            self.forks = {h: f for h, f in self.forks.items() if f[0].hashes[1] in self._twin_blocks}
        self.forks_made += 1
        self.forks[block.hash] = (fork, 0)
        self.forks[twin.hash] = (fork, 1)
        self._twin_blocks[twin.hash] = twin
        self._resigned[(data, 1)] = self._sign(replace(m, block=twin))
        return self.forks[block.hash]

    def _twin(self, message: SignedMessage, data: bytes, fork: Fork, side: int) -> bytes:
        cached = self._resigned.get((data, side))
        if cached is not None:
            return cached
        twin_hash = fork.hashes[side]
        if isinstance(message, PrePrepare):
            twin = self._twin_blocks[twin_hash]
            resigned = self._sign(replace(message, block=twin))
        elif isinstance(message, Prepare | Commit):
            resigned = self._sign(replace(message, block_hash=twin_hash))
        else:
            return data
        if len(self._resigned) >= _CACHE_LIMIT:
            self._resigned.clear()
        self._resigned[(data, side)] = resigned
        return resigned

    def _vote_unknown(self, sender: int, data: bytes, targets: list[int]) -> list[Delivery]:
        honest = [(t, data) for t in targets]
        message = CONSENSUS_CODEC.decode(data)
        if message.sender != sender or sender not in self.keys or not isinstance(message, Prepare | Commit):
            return honest
        fakes: list[Delivery] = []
        for kind in (Prepare, Commit):
            fake = kind(
                message.view + self.rng.randint(0, 1),
                message.height + self.rng.randint(0, 1),
                self.rng.randbytes(32),
                sender,
                b"",
            )
            fake_data = self._sign(fake)
            fakes.extend((t, fake_data) for t in range(self.n) if t != sender)
        return fakes + honest if self.rng.random() < 0.5 else honest + fakes


def _bound_hash(message: SignedMessage) -> bytes:
    if isinstance(message, PrePrepare):
        return message.block.hash
    if isinstance(message, Prepare | Commit):
        return message.block_hash
    raise TypeError(type(message).__name__)


def _flip(signature: bytes) -> bytes:
    return bytes([signature[0] ^ 0x01]) + signature[1:]
