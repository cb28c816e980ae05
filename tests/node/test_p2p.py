"""The node-to-node transport over real sockets: mutual TLS, the Hello/HelloProof handshake, frame limits,
reconnects and LinkFaults.

Every test runs in-process ``Transport`` objects on 127.0.0.1 with real TLS and real aiohttp.  Nothing waits on
a bare sleep: each wait polls a condition against a deadline (``wait_for``).  Identities are created in key
order, so the first name given to ``Net.identities`` has the lowest key and dials all the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.p2p.certs import client_context, server_context, write_node_tls
from node.p2p.transport import DEFAULT_MAX_FRAME, HANDSHAKE_CODEC, Hello, HelloProof, LinkFaults, Transport
from primitives.errors import PeerError
from primitives.signing import SigningKey

CHAIN = "p2p-test-chain"
LOGGER = "medchain.p2p"


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Identity:
    name: str
    key: SigningKey
    tls_dir: Path
    cert_pem: str
    port: int


@dataclass
class Inbox:
    """What a transport handed to its callbacks, with arrival times on the loop clock."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    changes: list[tuple[str, bool]] = field(default_factory=list)

    def on_message(self, peer: str, payload: bytes) -> None:
        self.messages.append((peer, payload))
        self.arrivals.append(asyncio.get_running_loop().time())

    def on_peer_change(self, peer: str, up: bool) -> None:
        self.changes.append((peer, up))

    def payloads(self, peer: str) -> list[bytes]:
        return [payload for sender, payload in self.messages if sender == peer]


@dataclass
class Node:
    identity: Identity
    transport: Transport
    inbox: Inbox

    @property
    def name(self) -> str:
        return self.identity.name

    def connected(self) -> set[str]:
        return set(self.transport.connected_peers())


class FutureVersionTransport(Transport):
    """Speaks protocol version 99: sends that Hello, then waits for whatever the peer does next."""

    async def _handshake(self, ws: Any, ssl_object: Any, expect: str | None) -> str:
        hello = Hello(99, self.chain_id, self.name, self.key.verify_key.raw, os.urandom(32))
        await ws.send_bytes(HANDSHAKE_CODEC.encode(hello))
        await self._receive_handshake(ws, Hello)
        await self._receive_handshake(ws, HelloProof)
        raise PeerError("a version-1 peer went on with a version-99 handshake")


class Net:
    """Builds identities and transports in ``tmp_path``; stops whatever is still running at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: list[Transport] = []
        self._made = 0

    def identities(self, *names: str) -> list[Identity]:
        keys = sorted((SigningKey.generate() for _ in names), key=lambda k: k.verify_key.raw)
        out = []
        for name, key in zip(names, keys, strict=True):
            self._made += 1
            tls_dir = self.root / f"{self._made}-{name}" / "tls"
            out.append(Identity(name, key, tls_dir, write_node_tls(tls_dir, key), free_port()))
        return out

    async def start(
        self,
        me: Identity,
        group: list[Identity],
        *,
        trusted: list[Identity] | None = None,
        tls_of: Identity | None = None,
        chain_id: str = CHAIN,
        cls: type[Transport] = Transport,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> Node:
        """Start ``me`` as a member of ``group`` (its genesis), trusting ``trusted`` certificates (default: group)."""
        pems = [i.cert_pem for i in (group if trusted is None else trusted)]
        tls_dir = (tls_of or me).tls_dir
        transport = cls(
            me.name,
            me.key,
            chain_id,
            {i.name: i.key.verify_key for i in group},
            ("127.0.0.1", me.port),
            {i.name: ("127.0.0.1", i.port) for i in group},
            server_context(tls_dir, pems),
            client_context(tls_dir, pems),
            max_frame=max_frame,
        )
        inbox = Inbox()
        transport.on_message = inbox.on_message
        transport.on_peer_change = inbox.on_peer_change
        await transport.start()
        self.running.append(transport)
        return Node(me, transport, inbox)

    async def stop(self, node: Node) -> None:
        self.running.remove(node.transport)
        await node.transport.stop()

    async def stop_all(self) -> None:
        while self.running:
            await self.running.pop().stop()


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    network = Net(tmp_path)
    try:
        yield network
    finally:
        await network.stop_all()


async def mesh(*nodes: Node) -> None:
    """Wait until every node lists every other one as connected."""
    others = {n.name: {m.name for m in nodes if m is not n} for n in nodes}
    await wait_for(lambda: all(others[n.name] <= n.connected() for n in nodes), what=f"a full mesh of {sorted(others)}")


async def pair(net: Net) -> tuple[Node, Node]:
    """Two connected members; the first dials the second."""
    a, b = net.identities("a", "b")
    na, nb = await net.start(a, [a, b]), await net.start(b, [a, b])
    await mesh(na, nb)
    return na, nb


def refusals(caplog: pytest.LogCaptureFixture, direction: str) -> list[str]:
    prefix = f"refused {direction} connection: "
    return [r.getMessage()[len(prefix) :] for r in caplog.records if r.getMessage().startswith(prefix)]


async def round_trip(x: Node, y: Node, tag: bytes) -> None:
    """One frame each way between connected nodes, delivered."""
    assert x.transport.send(y.name, tag + b" x->y")
    assert y.transport.send(x.name, tag + b" y->x")
    await wait_for(lambda: tag + b" x->y" in y.inbox.payloads(x.name), what=f"{tag!r} at {y.name}")
    await wait_for(lambda: tag + b" y->x" in x.inbox.payloads(y.name), what=f"{tag!r} at {x.name}")


# ---------------------------------------------------------------- connecting and exchanging


async def test_three_members_connect_pairwise_and_exchange_frames_exactly(net: Net) -> None:
    ids = net.identities("a", "b", "c")
    nodes = [await net.start(i, ids) for i in ids]
    await mesh(*nodes)

    def direct(src: str, dst: str) -> bytes:
        return f"{src}->{dst} ".encode() + bytes(range(256))

    def everyone(src: str) -> bytes:
        return f"from {src} to all ".encode() + b"\x00\xff" * 50

    for src in nodes:
        for dst in nodes:
            if dst is not src:
                assert src.transport.send(dst.name, direct(src.name, dst.name))
        src.transport.broadcast(everyone(src.name))
    nodes[2].transport.broadcast(b"only a", only=["a"])

    expected = {
        dst.name: Counter(
            [(src.name, direct(src.name, dst.name)) for src in nodes if src is not dst]
            + [(src.name, everyone(src.name)) for src in nodes if src is not dst]
            + ([("c", b"only a")] if dst.name == "a" else [])
        )
        for dst in nodes
    }
    await wait_for(
        lambda: all(len(n.inbox.messages) >= sum(expected[n.name].values()) for n in nodes), what="every inbox"
    )
    for node in nodes:
        assert Counter(node.inbox.messages) == expected[node.name]
        # One link carries both frames in order: the direct frame was sent first.
        for peer in {n.name for n in nodes} - {node.name}:
            assert node.inbox.payloads(peer)[:2] == [direct(peer, node.name), everyone(peer)]

    by_name = {n.name: n for n in nodes}
    sent = {(s.name, d.name): [direct(s.name, d.name), everyone(s.name)] for s in nodes for d in nodes if s is not d}
    sent["c", "a"].append(b"only a")
    # The sender counts a frame once its write returns, which may be after the receiver has it.
    await wait_for(
        lambda: all(by_name[s].transport.stats[d].frames_out == len(f) for (s, d), f in sent.items()),
        what="sender stats",
    )
    for (sender, receiver), frames in sent.items():
        out, into = by_name[sender].transport.stats[receiver], by_name[receiver].transport.stats[sender]
        assert (out.frames_out, out.bytes_out) == (len(frames), sum(map(len, frames)))
        assert (into.frames_in, into.bytes_in) == (len(frames), sum(map(len, frames)))
        assert out.connects == into.connects == 1
        assert by_name[sender].transport.peer_stats()[receiver]["connected"] == 1
    for node in nodes:
        assert sorted(node.inbox.changes) == sorted((n.name, True) for n in nodes if n is not node)
        assert node.transport.refused_total == 0


async def test_send_to_a_peer_without_a_link_returns_false_and_counts_a_drop(net: Net) -> None:
    a, b = net.identities("a", "b")
    na = await net.start(a, [a, b])  # b never starts
    assert na.transport.send("b", b"nobody home") is False
    assert na.transport.stats["b"].dropped_out == 1
    assert na.transport.peer_stats()["b"]["connected"] == 0


# ---------------------------------------------------------------- refusals


async def test_a_stranger_outside_genesis_is_refused_and_members_keep_talking(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    stranger, *ids = net.identities("stranger", "a", "b", "c")
    members = [await net.start(i, ids) for i in ids]
    await mesh(*members)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    caplog.clear()

    # The stranger believes itself a member and trusts everyone; with the lowest key it dials all three.
    intruder = await net.start(stranger, [stranger, *ids])

    def dial_failures(peer: str) -> int:
        return sum(1 for r in caplog.records if r.getMessage().startswith(f"dial {peer} failed"))

    # Two failed dials each: refused, backed off, redialled and refused again.
    await wait_for(lambda: all(dial_failures(i.name) >= 2 for i in ids), what="the stranger's dials to fail twice")
    assert intruder.connected() == set()
    assert intruder.inbox.changes == []
    for node in members:
        assert "stranger" not in node.connected()
        assert "stranger" not in node.transport.stats
        assert node.connected() == {i.name for i in ids} - {node.name}
        assert all(up for _, up in node.inbox.changes)
    for x in members:
        for y in members:
            if x.name < y.name:
                await round_trip(x, y, f"after stranger {x.name}{y.name}".encode())


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("chain", "peer is on chain 'other-chain', we are on 'p2p-test-chain'"),
        ("version", "unknown protocol version 99 (we speak 1)"),
    ],
)
async def test_a_trusted_member_on_another_chain_or_protocol_version_is_refused_with_a_reason(
    net: Net, caplog: pytest.LogCaptureFixture, variant: str, reason: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    bad, good = net.identities("bad", "good")  # bad has the lower key, so it dials good
    accepting = await net.start(good, [bad, good])
    if variant == "chain":
        dialling = await net.start(bad, [bad, good], chain_id="other-chain")
    else:
        dialling = await net.start(bad, [bad, good], cls=FutureVersionTransport)

    # Refused, redialled after backoff, refused again.
    await wait_for(lambda: accepting.transport.refused_total >= 2, what="two refusals at the accepting side")
    assert refusals(caplog, "in")[:2] == [reason, reason]
    assert accepting.connected() == set() and dialling.connected() == set()
    assert accepting.inbox.changes == [] and dialling.inbox.changes == []
    assert accepting.transport.stats.get("bad") is None or accepting.transport.stats["bad"].connects == 0


async def test_an_impostor_with_a_members_certificate_claiming_another_member_is_refused(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    a, b, c = net.identities("a", "b", "c")
    nb, nc = await net.start(b, [a, b, c]), await net.start(c, [a, b, c])
    await mesh(nb, nc)

    # The impostor holds b's TLS certificate and key (so TLS succeeds) and claims to be a, with a's key.
    # Even holding a's signing key it must fail: the certificate's key is b's, not the key it claims.
    impostor = await net.start(replace(a, port=free_port()), [a, b, c], tls_of=b)
    await wait_for(lambda: nb.transport.refused_total >= 1 and nc.transport.refused_total >= 1, what="refusals")
    assert set(refusals(caplog, "in")) == {"peer 'a': TLS certificate key differs from the key it claims"}
    assert impostor.connected() == set()
    assert "a" not in nb.connected() and "a" not in nc.connected()

    real = await net.start(a, [a, b, c])
    await mesh(real, nb, nc)
    # The impostor keeps redialling; each new refusal leaves the real a's link alone.
    seen = nb.transport.refused_total
    await wait_for(lambda: nb.transport.refused_total > seen, what="another refusal of the impostor")
    assert nb.transport.stats["a"].connects == 1 and nc.transport.stats["a"].connects == 1
    await round_trip(real, nb, b"real a")
    await round_trip(real, nc, b"real a")
    assert impostor.inbox.messages == []
    assert impostor.connected() == set()


# ---------------------------------------------------------------- hostile frames and bytes


@pytest.mark.parametrize("receiver", ["acceptor", "dialler"])
async def test_an_oversized_frame_closes_only_that_link_and_the_dialler_reconnects(net: Net, receiver: str) -> None:
    a, b = net.identities("a", "b")  # a dials b
    limit = 64 * 1024
    na = await net.start(a, [a, b], max_frame=limit if receiver == "dialler" else DEFAULT_MAX_FRAME)
    nb = await net.start(b, [a, b], max_frame=limit if receiver == "acceptor" else DEFAULT_MAX_FRAME)
    await mesh(na, nb)
    big_sender, small = (na, nb) if receiver == "acceptor" else (nb, na)

    assert big_sender.transport.send(small.name, b"before")
    assert big_sender.transport.send(small.name, b"\x01" * (100 * 1024))
    # Both ends must count the new link: until then one of them may still hold the closing one.
    await wait_for(
        lambda: na.transport.stats["b"].connects == nb.transport.stats["a"].connects == 2, what="the link to come back"
    )
    await mesh(na, nb)
    assert small.transport.stats[big_sender.name].penalties == 1
    assert small.inbox.payloads(big_sender.name) == [b"before"]
    assert (big_sender.name, False) in small.inbox.changes
    assert small.inbox.changes[-1] == (big_sender.name, True)

    await round_trip(na, nb, b"after the big frame")
    assert small.inbox.payloads(big_sender.name)[-1].startswith(b"after the big frame")


async def _poke(port: int, data: bytes, tls: ssl.SSLContext | None = None) -> bytes:
    """Send ``data`` over a raw (or anonymous TLS) socket, half-close if raw, and read until the server closes.

    A raw half-close matters: a TLS server rightly waits for the rest of a record whose length header promised
    more bytes than were sent, so without it the server would hold the socket until its handshake timeout.
    """
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=tls), 5)
    except (ssl.SSLError, ConnectionError):
        return b""  # refused during the TLS handshake: that is a clean refusal too
    try:
        writer.write(data)
        if tls is None:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    except (ssl.SSLError, ConnectionError):
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


async def test_random_bytes_and_plain_http_on_the_p2p_port_do_not_disturb_the_peers(net: Net) -> None:
    na, nb = await pair(net)
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname = False
    anonymous.verify_mode = ssl.CERT_NONE
    http = b"GET /p2p HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    for node in (na, nb):
        port = node.identity.port
        # Each poke returns only because the server closed the socket: it handled the junk and moved on.
        await _poke(port, os.urandom(4096))
        await _poke(port, http)
        await _poke(port, b"\x16\x03\x01" + os.urandom(2000))  # looks like a TLS record, is not one
        await _poke(port, http, tls=anonymous)  # TLS without a client certificate
    for i in range(3):
        await round_trip(na, nb, f"after junk {i}".encode())
    assert na.transport.stats["b"].connects == nb.transport.stats["a"].connects == 1
    assert na.connected() == {"b"} and nb.connected() == {"a"}


async def test_a_trusted_tls_client_sending_a_junk_handshake_is_refused_with_a_close_reason(net: Net) -> None:
    a, b, c = net.identities("a", "b", "c")
    na, nb = await net.start(a, [a, b, c]), await net.start(b, [a, b, c])
    await mesh(na, nb)
    # c's real certificate gets through TLS; what follows is not a Hello.
    pems = [i.cert_pem for i in (a, b, c)]
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"https://127.0.0.1:{b.port}/p2p", ssl=client_context(c.tls_dir, pems))
        await ws.send_bytes(os.urandom(200))
        while (await ws.receive(timeout=5)).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            pass  # skip b's own Hello
        assert ws.close_code == 4001
    assert nb.transport.refused_total == 1
    assert "c" not in nb.connected()
    await round_trip(na, nb, b"after junk handshake")


# ---------------------------------------------------------------- reconnecting and stopping


@pytest.mark.parametrize("restarts", ["acceptor", "dialler"])
async def test_a_peer_that_stops_and_starts_again_on_the_same_port_is_reconnected(net: Net, restarts: str) -> None:
    a, b = net.identities("a", "b")  # a dials b
    na, nb = await net.start(a, [a, b]), await net.start(b, [a, b])
    await mesh(na, nb)
    gone, stays = (nb, na) if restarts == "acceptor" else (na, nb)

    await net.stop(gone)
    await wait_for(lambda: stays.connected() == set(), what="the link to drop")
    assert stays.inbox.changes == [(gone.name, True), (gone.name, False)]
    assert stays.transport.send(gone.name, b"into the void") is False

    back = await net.start(gone.identity, [a, b])
    await mesh(back, stays)
    await round_trip(back, stays, b"after restart")
    assert stays.transport.stats[gone.name].connects == 2
    assert stays.inbox.changes[-1] == (gone.name, True)


async def test_stop_closes_cleanly_and_peers_observe_the_disconnect(net: Net) -> None:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    try:
        ids = net.identities("a", "b", "c")
        na, nb, nc = [await net.start(i, ids) for i in ids]
        await mesh(na, nb, nc)
        await round_trip(na, nb, b"warm")

        await net.stop(nb)  # b accepts from a and dials c: both kinds of link close
        assert nb.connected() == set()
        assert all(task.done() for task in nb.transport._tasks)
        await wait_for(lambda: all(("b", False) in n.inbox.changes for n in (na, nc)), what="a and c to see b leave")
        assert "b" not in na.connected() and "b" not in nc.connected()
        await round_trip(na, nc, b"without b")

        await net.stop_all()
        current = asyncio.current_task()
        await wait_for(lambda: asyncio.all_tasks() == {current}, what="every transport task to finish")
        for node in (na, nc):
            assert node.connected() == set()
            assert node.inbox.changes[-1][1] is False
    finally:
        loop.set_exception_handler(None)
    assert problems == []


async def test_a_callback_that_raises_at_the_dialler_does_not_end_redialling(net: Net) -> None:
    na, nb = await pair(net)  # a dials b

    def broken(peer: str, payload: bytes) -> None:
        raise RuntimeError("bug in the node's handler")

    na.transport.on_message = broken
    assert nb.transport.send("a", b"trigger")
    await wait_for(lambda: na.connected() == set(), what="the link to drop")
    na.transport.on_message = na.inbox.on_message
    await wait_for(lambda: nb.transport.stats["a"].connects == 2, timeout=2, what="a to redial b")


# ---------------------------------------------------------------- LinkFaults


async def test_a_cut_link_delivers_nothing_either_way_until_cleared(net: Net) -> None:
    na, nb = await pair(net)
    na.transport.faults.set("b", cut=True)

    assert na.transport.send("b", b"out while cut")  # accepted, then dropped by the fault
    assert nb.transport.send("a", b"in while cut")
    await wait_for(lambda: na.transport.stats["b"].frames_in == 1, what="the frame to reach a's socket")
    assert na.inbox.messages == []
    assert na.transport.faults.dropped == 2
    assert na.transport.stats["b"].frames_out == 0
    assert na.connected() == {"b"}  # a cut drops frames, it does not close the connection

    na.transport.faults.clear()
    await round_trip(na, nb, b"healed")
    assert na.inbox.payloads("b") == [b"healed y->x"]
    assert nb.inbox.payloads("a") == [b"healed x->y"]


async def test_loss_of_one_drops_every_outgoing_frame(net: Net) -> None:
    na, nb = await pair(net)
    na.transport.faults.set("b", loss=1.0)
    for i in range(20):
        na.transport.send("b", f"lost {i}".encode())
    assert na.transport.faults.dropped == 20
    na.transport.faults.set("b", loss=0.0)
    na.transport.send("b", b"marker")
    await wait_for(lambda: nb.inbox.messages != [], what="the marker")
    assert nb.inbox.payloads("a") == [b"marker"]
    assert na.transport.stats["b"].frames_out == 1


async def test_delay_holds_each_frame_back_by_at_least_the_delay(net: Net) -> None:
    na, nb = await pair(net)
    delay = 0.2
    na.transport.faults.set("b", delay_ms=int(delay * 1000))
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    na.transport.send("b", b"slow")
    await wait_for(lambda: nb.inbox.messages != [], what="the delayed frame")
    assert nb.inbox.arrivals[0] - sent_at >= delay
    assert na.transport.faults.dropped == 0


async def test_duplicate_of_one_delivers_every_frame_twice(net: Net) -> None:
    na, nb = await pair(net)
    na.transport.faults.set("b", duplicate=1.0)
    na.transport.send("b", b"twice")
    na.transport.faults.clear("b")
    na.transport.send("b", b"once")
    await wait_for(lambda: len(nb.inbox.messages) >= 3, what="three frames")
    assert nb.inbox.payloads("a") == [b"twice", b"twice", b"once"]
    assert nb.transport.stats["a"].frames_in == 3


def test_link_fault_settings_are_checked() -> None:
    faults = LinkFaults(seed=1)
    with pytest.raises(ValueError, match="unknown link fault setting"):
        faults.set("b", latency=5)
    assert faults.outgoing_delays("b") == [0.0]
