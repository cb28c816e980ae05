"""The node driver (``node.runtime.Node``) in-process, with a real ChainStore in ``tmp_path`` and a real Transport.

Only validator 0 (the primary of view 0) runs: it proposes, signs and sends, but
nothing commits, which is all these claims need.  Its transport is a real
``Transport`` that also records, on every send, what the store's WAL held then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from consensus.events import WalSigned
from consensus.messages import CONSENSUS_CODEC, Prepare, PrePrepare, ViewChange
from node.config import load_config, parse_address, read_key
from node.genesis import load_genesis
from node.healthcare.node_app import healthcare_app
from node.healthcare.transactions import Anchor, make_transaction
from node.lab.testnet import client_key, generate_testnet
from node.p2p.certs import client_context, server_context
from node.p2p.transport import Transport
from node.p2p.wire import NODE_CODEC, CompactProposal, ConsensusFrame
from node.runtime import Node
from primitives.hashing import sha256
from storage.chainstore import ChainStore
from tests.harness import free_base_port

pytestmark = pytest.mark.asyncio
PROGRESS_TIMEOUT_MS = 500


@dataclass(frozen=True)
class Sent:
    """One consensus message handed to the transport: what it was, whether the WAL held it, and when."""

    message: object
    persisted: bool
    at: float


class WalCheckingTransport(Transport):
    """A real transport that, on every consensus send, reads the store's WAL for the message's signed bytes."""

    store: ChainStore
    sent: list[Sent]

    def broadcast(self, payload: bytes, only: list[str] | None = None) -> None:
        self._check(payload)
        super().broadcast(payload, only=only)

    def send(self, peer: str, payload: bytes) -> None:
        self._check(payload)
        super().send(peer, payload)

    def _check(self, payload: bytes) -> None:
        frame = NODE_CODEC.decode(payload)
        if isinstance(frame, ConsensusFrame | CompactProposal):
            wal = {r.message for r in self.store.wal_records() if isinstance(r, WalSigned)}
            at = asyncio.get_running_loop().time()
            if isinstance(frame, ConsensusFrame):
                self.sent.append(Sent(CONSENSUS_CODEC.decode(frame.data), frame.data in wal, at))
                return
            # A PRE-PREPARE goes out compact: the WAL must hold the whole message it stands for.
            whole = [m for m in map(CONSENSUS_CODEC.decode, wal)
                     if isinstance(m, PrePrepare) and m.signature == frame.signature]
            self.sent.append(Sent(whole[0] if whole else frame, bool(whole), at))


@pytest.fixture
async def primary(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    """Validator 0 of a 4-validator testnet, started in-process; ``request.param`` is its wall clock, if any."""
    genesis = generate_testnet(tmp_path / "net", 4, 0, free_base_port(4), chain_id="driver-test",
                               progress_timeout_ms=PROGRESS_TIMEOUT_MS)
    home = tmp_path / "net" / "node0"
    config = load_config(home)
    key = read_key(home / "node_key.json")
    assert load_genesis(config.path(config.genesis)).validator_index(key.verify_key) == 0
    store = ChainStore.open(config.path(config.data_dir), genesis.chain_id, genesis.hash)
    trusted = [m.cert_pem for m in genesis.nodes]
    transport = WalCheckingTransport(
        config.name, key, genesis.chain_id, {m.name: m.key for m in genesis.nodes},
        parse_address(config.p2p_listen), {p.name: parse_address(p.address) for p in config.peers},
        server_context(home / "tls", trusted), client_context(home / "tls", trusted),
    )
    transport.store, transport.sent = store, []
    clock: Callable[[], float] = getattr(request, "param", time.time)
    node = Node(config, genesis, key, store, transport, healthcare_app(home), wall_clock=clock)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()
        store.close()


def _anchor(node: Node, label: str) -> bytes:
    client = client_key(node.cfg.path(node.cfg.genesis).parent, 0)
    return make_transaction(client, node.chain_id, Anchor(sha256(label.encode()), label), int(time.time() * 1000))


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
    assert predicate(), what


async def test_every_signed_message_is_durably_in_the_wal_before_the_transport_gets_it(primary: Node):
    transport = primary.transport
    assert isinstance(transport, WalCheckingTransport)
    await primary.submit(_anchor(primary, "wal first"), wait_commit=False, timeout=1)
    kinds = lambda: {type(s.message) for s in transport.sent}  # noqa: E731
    await _until(lambda: {PrePrepare, Prepare} <= kinds(), "the primary to send PRE-PREPARE and PREPARE")
    assert transport.sent and all(s.persisted for s in transport.sent), transport.sent


class SteppingClock:
    """A wall clock that an administrator (or a bad NTP source) steps an hour forward at every read."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        self.offset += 3600.0
        return time.time() + self.offset


@pytest.mark.parametrize("primary", [SteppingClock()], indirect=True)
async def test_a_wall_clock_step_moves_no_timer_it_fires_at_its_monotonic_deadline(primary: Node):
    loop = asyncio.get_running_loop()
    before = loop.time()
    await primary.submit(_anchor(primary, "timers"), wait_commit=False, timeout=1)
    await _until(lambda: "progress" in primary.timer_deadlines(), "the progress timer to be armed")
    deadline = primary.timer_deadlines()["progress"]
    # armed for the replica's timeout counted from the moment it was armed, whatever the wall clock did since
    assert before + PROGRESS_TIMEOUT_MS / 1000 <= deadline <= loop.time() + PROGRESS_TIMEOUT_MS / 1000
    transport = primary.transport
    assert isinstance(transport, WalCheckingTransport)
    await _until(lambda: any(isinstance(s.message, ViewChange) for s in transport.sent), "the view change", 20)
    fired = next(s.at for s in transport.sent if isinstance(s.message, ViewChange))
    assert fired >= deadline, (fired, deadline)
