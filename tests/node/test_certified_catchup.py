"""Catch-up executes certified blocks without verifying client signatures; live blocks keep verifying them.

One node of a 4-validator, 1-observer testnet runs in-process (``node.runtime.Node``
with a real ChainStore in ``tmp_path`` and a real Transport); the other
validators do not run: the test holds their keys and plays their part, sending
signed consensus messages or certified blocks as frames from a peer.  Client
signature checks are counted at ``VerifyKey.verify`` (the ``medchain/v1/tx``
domain), the one place every Ed25519 check goes through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from consensus.messages import (
    CONSENSUS_CODEC,
    DOMAIN_COMMIT,
    Block,
    BlockHeader,
    Commit,
    CommitCertificate,
    Prepare,
    PrePrepare,
    Vote,
    vote_payload,
)
from node.config import load_config, parse_address, read_key
from node.genesis import load_genesis
from node.healthcare.ledger.state import Overlay
from node.healthcare.node_app import healthcare_app
from node.healthcare.transactions import Anchor, make_transaction
from node.lab.testnet import client_key, generate_testnet
from node.p2p.certs import client_context, server_context
from node.p2p.transport import Transport
from node.p2p.wire import NODE_CODEC, CertifiedBlock, ConsensusFrame, HeadAnnounce, SyncRequest, SyncResponse
from node.runtime import SYNC_AHEAD, Node
from node.transaction import DOMAIN_TX, tx_id
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey, VerifyKey
from storage.chainstore import ChainStore
from tests.harness import free_base_port
from tests.helpers import sign

pytestmark = pytest.mark.asyncio
VALIDATOR, OBSERVER = "node3", "node4"
PEER = "node0"


@dataclass
class Net:
    node: Node
    keys: list[SigningKey]  # validators 0..3
    client: SigningKey
    client_verifies: list[int]  # [client signatures verified so far, by any code in this process]

    def anchors(self, label: str, count: int = 5) -> list[bytes]:
        now = int(time.time() * 1000)
        return [make_transaction(self.client, self.node.chain_id, Anchor(sha256(f"{label}{i}".encode()), label), now)
                for i in range(count)]

    def next_block(self, txs: list[bytes], prev: Block | None = None) -> Block:
        """The block after the node's head (or after ``prev``, on the node's current app hash)."""
        tip = self.node.tip
        prev_hash = prev.hash if prev is not None else tip.block_hash
        height = prev.height + 1 if prev is not None else tip.height + 1
        ts = max(int(time.time() * 1000), tip.timestamp_ms + 1)
        header = BlockHeader(self.node.chain_id, height, prev_hash, 0, 0, ts, merkle_root(txs), len(txs), tip.app_hash)
        return Block(header, tuple(txs))

    def certificate(self, block: Block, voters: tuple[int, ...] = (0, 1, 2)) -> CommitCertificate:
        payload = vote_payload(block.height, 0, block.hash)
        votes = tuple(Vote(i, self.keys[i].sign(DOMAIN_COMMIT, self.node.chain_id, payload)) for i in voters)
        return CommitCertificate(block.height, 0, block.hash, votes)

    async def serve(self, block: Block, certificate: CommitCertificate, head: int | None = None) -> None:
        """``block`` arrives from a peer (whose head is ``head``, by default that block) as a catch-up
        response; returns once the node has handled it."""
        response = SyncResponse(head or block.height, (CertifiedBlock(block, certificate),))
        self.node.transport.on_message(PEER, NODE_CODEC.encode(response))
        await handled(self.node)

    def consensus(self, message: PrePrepare | Prepare | Commit) -> None:
        signed = sign(message, self.keys[message.sender], self.node.chain_id)
        self.node.transport.on_message(PEER, NODE_CODEC.encode(ConsensusFrame(CONSENSUS_CODEC.encode(signed))))


async def handled(node: Node) -> None:
    """Wait until the node's driver has taken everything queued before this call (its inbox is served in order)."""
    done = asyncio.Event()

    async def mark() -> None:
        done.set()

    node.inbox.put_nowait(mark)
    await asyncio.wait_for(done.wait(), 10)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
    assert predicate(), what


@pytest.fixture
def client_verifies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    count = [0]
    real = VerifyKey.verify

    def counting(key: VerifyKey, domain: bytes, chain_id: str, payload: bytes, signature: bytes) -> bool:
        if domain == DOMAIN_TX:
            count[0] += 1
        return real(key, domain, chain_id, payload, signature)

    monkeypatch.setattr(VerifyKey, "verify", counting)
    return count


async def _started(tmp_path: Path, name: str, client_verifies: list[int]) -> AsyncIterator[Net]:
    net = tmp_path / "net"
    genesis = generate_testnet(net, 4, 1, free_base_port(5), chain_id="certified-catchup")
    home = net / name
    config = load_config(home)
    key = read_key(home / "node_key.json")
    assert load_genesis(config.path(config.genesis)).chain_id == genesis.chain_id
    store = ChainStore.open(config.path(config.data_dir), genesis.chain_id, genesis.hash)
    trusted = [m.cert_pem for m in genesis.nodes]
    transport = Transport(
        config.name, key, genesis.chain_id, {m.name: m.key for m in genesis.nodes},
        parse_address(config.p2p_listen), {p.name: parse_address(p.address) for p in config.peers},
        server_context(home / "tls", trusted), client_context(home / "tls", trusted),
    )
    node = Node(config, genesis, key, store, transport, healthcare_app(home))
    await node.start()
    try:
        keys = [read_key(net / f"node{i}" / "node_key.json") for i in range(4)]
        yield Net(node, keys, client_key(net, 0), client_verifies)
    finally:
        await node.stop()
        store.close()


@pytest.fixture(params=[VALIDATOR, OBSERVER])
async def anyone(tmp_path: Path, request: pytest.FixtureRequest, client_verifies: list[int]) -> AsyncIterator[Net]:
    async for net in _started(tmp_path, request.param, client_verifies):
        yield net


@pytest.fixture
async def validator(tmp_path: Path, client_verifies: list[int]) -> AsyncIterator[Net]:
    async for net in _started(tmp_path, VALIDATOR, client_verifies):
        yield net


def _statuses(node: Node, txs: list[bytes]) -> list[str]:
    return [node.tx_status(tx_id(data))["status"] for data in txs]


async def test_a_live_block_has_its_client_signatures_verified_a_synced_one_not(validator: Net) -> None:
    node = validator.node
    live_txs = validator.anchors("live")
    live = validator.next_block(live_txs)
    validator.consensus(PrePrepare(0, 1, live, 0, b""))
    for sender in (1, 2):
        validator.consensus(Prepare(0, 1, live.hash, sender, b""))
    for sender in (0, 1, 2):
        validator.consensus(Commit(0, 1, live.hash, sender, b""))
    await until(lambda: node.tip.height == 1, "the live block committed")
    assert validator.client_verifies[0] == len(live_txs)  # each checked once, while validating the proposal
    synced_txs = validator.anchors("synced")
    synced = validator.next_block(synced_txs)
    await validator.serve(synced, validator.certificate(synced))
    assert node.tip.height == 2 and node.tip.block_hash == synced.hash
    assert validator.client_verifies[0] == len(live_txs)  # none for the synced block
    assert _statuses(node, live_txs + synced_txs) == ["committed"] * (len(live_txs) + len(synced_txs))


async def test_catch_up_verifies_the_certificate_and_no_client_signature(anyone: Net) -> None:
    node = anyone.node
    txs = anyone.anchors("caught up")
    first = anyone.next_block(txs)
    await anyone.serve(first, anyone.certificate(first))
    assert node.tip.height == 1 and _statuses(node, txs) == ["committed"] * len(txs)
    assert anyone.client_verifies[0] == 0


async def test_a_block_without_a_valid_quorum_certificate_is_never_executed(anyone: Net) -> None:
    node = anyone.node
    txs = anyone.anchors("uncertified")
    block = anyone.next_block(txs)
    good = anyone.certificate(block)
    short = anyone.certificate(block, voters=(0, 1))
    forged_vote = replace(good, votes=(*good.votes[:2], Vote(2, bytes(64))))
    other_block = replace(good, block_hash=sha256(b"another block"))
    for bad in (short, forged_vote, other_block):
        await anyone.serve(block, bad)
        assert node.tip.height == 0 and _statuses(node, txs) == ["unknown"] * len(txs)
    await anyone.serve(block, good)  # the same block, certified: applied
    assert node.tip.height == 1 and _statuses(node, txs) == ["committed"] * len(txs)


async def test_a_certified_header_with_other_transactions_is_refused_and_its_peer_penalised(anyone: Net) -> None:
    node = anyone.node
    txs = anyone.anchors("named")
    block = anyone.next_block(txs)
    certificate = anyone.certificate(block)
    forged = bytearray(anyone.anchors("smuggled", 1)[0])
    forged[-10] ^= 0x01  # a signature no validator would have let through
    for other in ((*txs[:-1], bytes(forged)), tuple(txs[:-1]), tuple(reversed(txs))):
        await anyone.serve(Block(block.header, other), certificate)
        assert node.tip.height == 0 and node.tx_status(tx_id(bytes(forged)))["status"] == "unknown"
    assert node.transport.peer_stats()[PEER]["penalties"] == 3
    await anyone.serve(block, certificate)
    assert node.tip.height == 1 and _statuses(node, txs) == ["committed"] * len(txs)


async def test_the_next_batch_is_asked_for_when_one_arrives_not_after_it_is_applied(
    anyone: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catch-up pipelines: the peer reads and sends batch k+1 while this node executes batch k."""
    node = anyone.node
    asked: list[tuple[int, int]] = []  # (from_height, the node's height when it asked)

    def send(peer: str, payload: bytes) -> bool:
        message = NODE_CODEC.decode(payload)
        if isinstance(message, SyncRequest):
            assert peer == PEER
            asked.append((message.from_height, node.tip.height))
        return True

    monkeypatch.setattr(node.transport, "connected_peers", lambda: [PEER])
    monkeypatch.setattr(node.transport, "send", send)
    first = anyone.next_block(anyone.anchors("one"))
    await anyone.serve(first, anyone.certificate(first), head=5)
    assert node.tip.height == 1
    assert asked == [(2, 0)]  # asked while block 1 still waited to be applied, and not again after it
    second = anyone.next_block(anyone.anchors("two"))
    await anyone.serve(second, anyone.certificate(second), head=2)  # this answer ends at the peer's head ...
    # ... so nothing was asked for ahead of it; once applied, the node asks for 3 (the first answer said 5).
    assert node.tip.height == 2 and asked == [(2, 0), (3, 2)]


def _sync_requests(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The heights the node asks its one peer for, as it asks (its frames go nowhere else)."""
    asked: list[int] = []

    def send(peer: str, payload: bytes) -> bool:
        message = NODE_CODEC.decode(payload)
        if isinstance(message, SyncRequest):
            asked.append(message.from_height)
        return True

    monkeypatch.setattr(node.transport, "connected_peers", lambda: [PEER])
    monkeypatch.setattr(node.transport, "send", send)
    return asked


async def test_a_batch_that_does_not_follow_the_fetched_chain_is_never_fetched_ahead_of(
    anyone: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer's answer from elsewhere (stale, or invented at a far height) does not move where catch-up asks."""
    node = anyone.node
    asked = _sync_requests(node, monkeypatch)
    first = anyone.next_block(anyone.anchors("one"))
    far = Block(replace(first.header, height=50), first.txs)
    await anyone.serve(far, anyone.certificate(far), head=60)
    assert node.tip.height == 0
    assert asked == [1]  # once it was dropped, from the node's own head: not from 51
    await anyone.serve(first, anyone.certificate(first), head=60)
    assert node.tip.height == 1 and asked == [1, 2]  # the real block 1 extends the chain: 2 is asked at once


async def test_a_head_announced_ahead_is_fetched_at_once_not_at_the_next_sync_tick(
    anyone: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that learns it is behind asks straight away; a validator one block behind leaves that block
    to consensus, an observer (which follows by announcements) fetches it."""
    node = anyone.node
    asked = _sync_requests(node, monkeypatch)
    node.transport.on_message(PEER, NODE_CODEC.encode(HeadAnnounce(1, bytes(32))))
    assert asked == ([1] if node.replica is None else [])
    node._sync_inflight_until = 0.0  # the observer's request above is not answered in this test
    node.transport.on_message(PEER, NODE_CODEC.encode(HeadAnnounce(40, bytes(32))))
    assert asked[-1:] == [1]  # handled synchronously: no await between the frame and the request


async def test_each_synced_block_executes_while_the_one_before_is_written(
    anyone: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catch-up overlaps a block's LevelDB write with the next block's execution; writes stay in order, and a
    block's commit is announced (clients, events) only once it is written."""
    node = anyone.node
    chain: list[CertifiedBlock] = []
    prev_hash, app_hash, state = node.tip.block_hash, node.tip.app_hash, Overlay(node.store)
    for height in (1, 2, 3):  # blocks with the app hashes the node's rules give, computed beside the node
        txs = anyone.anchors(f"block {height}")
        header = BlockHeader(node.chain_id, height, prev_hash, 0, 0, node.tip.timestamp_ms + height,
                             merkle_root(txs), len(txs), app_hash)
        block = Block(header, tuple(txs))
        steps = node.app.execute_steps(block, state, app_hash, None, 10_000)
        with pytest.raises(StopIteration) as done:
            next(steps)
        state = Overlay(node.store, {**state.writes, **done.value.value.writes})
        prev_hash, app_hash = block.hash, done.value.value.app_hash
        chain.append(CertifiedBlock(block, anyone.certificate(block)))

    events: list[tuple[str, int]] = []
    real_commit, real_execute, real_after = node.store.commit_block, node._execute, node._after_commit

    def commit_block(block: Block, *args: object) -> object:
        events.append(("write", block.height))
        time.sleep(0.05)  # a slow disk: the loop goes on meanwhile
        done = real_commit(block, *args)  # type: ignore[arg-type]
        events.append(("written", block.height))
        return done

    reported: list[tuple[int, int]] = []  # (the height /status reports, the last height written) at each execute

    async def execute(block: Block, prechecked: object) -> object:
        events.append(("execute", block.height))
        written = [h for what, h in events if what == "written"]
        reported.append((node.status()["height"], written[-1] if written else 0))
        return await real_execute(block, prechecked)  # type: ignore[arg-type]

    def after_commit(block: Block, *args: object) -> None:
        events.append(("announced", block.height))
        real_after(block, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(node.store, "commit_block", commit_block)
    monkeypatch.setattr(node, "_execute", execute)
    monkeypatch.setattr(node, "_after_commit", after_commit)
    node.transport.on_message(PEER, NODE_CODEC.encode(SyncResponse(3, tuple(chain))))
    await handled(node)
    assert node.tip.height == 3 and node.store.head() is not None and node.store.head().height == 3
    assert all(s == "committed" for item in chain for s in _statuses(node, list(item.block.txs)))
    assert events.index(("execute", 2)) < events.index(("written", 1))  # overlapped
    assert events.index(("execute", 3)) < events.index(("written", 2))
    assert [e for e in events if e[0] in ("write", "written")] == [
        ("write", 1), ("written", 1), ("write", 2), ("written", 2), ("write", 3), ("written", 3)]
    for height in (1, 2, 3):
        assert events.index(("announced", height)) > events.index(("written", height))
    # /status never names a block that cannot be read yet (one failure seen: the bench read /blocks/{height}
    # for the height /status gave, while that block was still being written)
    assert all(status == written for status, written in reported) and node.status()["height"] == 3
    assert node.block_json(3) is not None


async def test_no_more_batches_are_fetched_while_two_wait_to_be_applied(
    anyone: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that applies slower than its peers send must not hold ever more fetched batches: neither a head
    announcement nor the sync loop asks for more while ``SYNC_AHEAD`` wait (found with a node stopped 0.6 s
    in every second under load: its private memory passed 800 MB)."""
    node = anyone.node
    asked = _sync_requests(node, monkeypatch)
    first = anyone.next_block(anyone.anchors("one"))
    second = Block(replace(first.header, height=2), first.txs)  # counted as the next batch; refused when applied
    for block in (first, second):  # both arrive before the driver applies either
        batch = (CertifiedBlock(block, anyone.certificate(block)),)
        node.transport.on_message(PEER, NODE_CODEC.encode(SyncResponse(50, batch)))
    assert node._sync_queued == SYNC_AHEAD and asked == [2]  # the first asked for the second, no further
    node.transport.on_message(PEER, NODE_CODEC.encode(HeadAnnounce(50, bytes(32))))
    node._request_blocks(node.tip.height + 1)  # what the sync loop's tick does
    assert asked == [2]
    await handled(node)
    assert node.tip.height == 1 and node._sync_queued == 0
    assert asked == [2, 3]  # once one was applied, it asks again past the one still waiting


def _batch(net: Net, block: Block, head: int = 50) -> bytes:
    return NODE_CODEC.encode(SyncResponse(head, (CertifiedBlock(block, net.certificate(block)),)))


async def test_batches_that_arrive_unasked_never_wait_more_than_sync_ahead(
    anyone: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Peers push batches to a validator whose votes show it lagging, and a Byzantine peer may send them at
    will: a node that applies slower than they come must not queue them all (a node stopped 0.6 s in every
    second under load held up to 71 batches of up to 4 MiB in its inbox, and passed 1 GB in some runs)."""
    node = anyone.node
    _sync_requests(node, monkeypatch)
    dropped = "medchain_sync_batches_dropped_total"
    first = anyone.next_block(anyone.anchors("one"))
    later = [Block(replace(first.header, height=h), first.txs) for h in range(2, 7)]  # refused when applied
    waiting = node.inbox.qsize()
    for block in [first, *later]:  # six in a row, before the driver takes any
        node.transport.on_message(PEER, _batch(anyone, block))
    node.transport.on_message(PEER, _batch(anyone, first))  # one already waiting, again
    node.transport.on_message(PEER, _batch(anyone, Block(replace(first.header, height=40), first.txs)))  # a gap
    assert node._sync_queued == SYNC_AHEAD
    assert node.inbox.qsize() - waiting == SYNC_AHEAD
    assert node.metrics.registry.get_sample_value(dropped) == 6
    await handled(node)
    assert node.tip.height == 1 and node._sync_queued == 0


async def test_a_batch_that_overlaps_what_was_fetched_is_applied_from_where_the_fetched_chain_ends(
    anyone: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch holding blocks already applied and the next one is cut, not dropped."""
    node = anyone.node
    _sync_requests(node, monkeypatch)
    first = anyone.next_block(anyone.anchors("one"))
    await anyone.serve(first, anyone.certificate(first))
    second = anyone.next_block(anyone.anchors("two"))
    both = (CertifiedBlock(first, anyone.certificate(first)), CertifiedBlock(second, anyone.certificate(second)))
    node.transport.on_message(PEER, NODE_CODEC.encode(SyncResponse(2, both)))
    await handled(node)
    assert node.tip.height == 2
    assert node.metrics.registry.get_sample_value("medchain_sync_batches_dropped_total") == 0


async def test_a_lagging_validator_is_sent_blocks_unasked_only_while_its_head_stands_still(
    validator: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Votes two heights old make the replica serve their sender; a sender whose announced head rose in the
    last ``PEER_CATCHING_UP_S`` is fetching on its own, and a batch pushed to it would be dropped there."""
    node = validator.node
    served: list[str] = []

    def send(peer: str, payload: bytes) -> bool:
        if isinstance(NODE_CODEC.decode(payload), SyncResponse):
            served.append(peer)
        return True

    monkeypatch.setattr(node.transport, "connected_peers", lambda: [PEER])
    monkeypatch.setattr(node.transport, "send", send)
    blocks: list[Block] = []
    for label in ("one", "two", "three"):
        blocks.append(validator.next_block(validator.anchors(label)))
        await validator.serve(blocks[-1], validator.certificate(blocks[-1]))
    assert node.tip.height == 3
    node.transport.on_message("node1", NODE_CODEC.encode(HeadAnnounce(1, bytes(32))))  # node1 is moving
    stale = blocks[0]
    # node0 announced 40 long ago, and 0 now: it restarted (wiped, say) and is catching up from there
    node._peer_rose[PEER] = (40, time.monotonic() - 10)
    node.transport.on_message(PEER, NODE_CODEC.encode(HeadAnnounce(0, bytes(32))))
    for sender in (0, 1, 2):  # each sends a PREPARE for height 1
        validator.consensus(Prepare(0, 1, stale.hash, sender, b""))
    await handled(node)
    assert served == ["node2"]
