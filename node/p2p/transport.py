"""Node-to-node transport: one WebSocket per peer pair over mutually authenticated TLS.

* TLS 1.3 both ways; each side trusts exactly the genesis certificates
  (``node.p2p.certs``), so a stranger fails the handshake.
* Then an application handshake: both send ``Hello`` (protocol version, chain
  id, name, key, a fresh nonce) and then ``HelloProof``, a signature over the
  *peer's* nonce, so a recorded handshake cannot be replayed.  A peer whose key
  is not in genesis under that name, whose TLS certificate key differs from the
  key it claims, whose chain id differs or whose protocol version is unknown is
  refused with a reason.
* Frames are binary WebSocket messages with a hard size limit; an oversized or
  undecodable frame closes that connection (the peer's fault), nothing else.
* The lower key dials the higher one; a broken link is redialled with jittered
  exponential backoff.  A newer authenticated connection replaces an older one.
* ``LinkFaults`` is the one place where a link is cut, delayed, made lossy,
  made to duplicate or reorder frames, per peer and at run time (fault experiments).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from aiohttp import WSMsgType, web

from node.config import ConfigError, join_address, parse_address
from node.p2p.certs import certificate_key
from node.p2p.listener import TlsListener
from primitives.codec import Bytes, Kind, MessageCodec, Text, UInt
from primitives.errors import DecodeError, PeerError
from primitives.signing import SigningKey, VerifyKey

log = logging.getLogger("medchain.p2p")

PROTOCOL_VERSION = 1
DOMAIN_HELLO = b"medchain/v1/p2p-hello"
DEFAULT_MAX_FRAME = 8 * 1024 * 1024
WS_CLOSE_TIMEOUT_S = 2.0  # how long closing a link waits for the peer's close frame
HANDSHAKE_TIMEOUT = 5.0
SEND_QUEUE = 20_000


@dataclass(frozen=True, slots=True)
class Hello:
    TAG: ClassVar[int] = 1
    version: int
    chain_id: str
    name: str
    key: bytes
    nonce: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), Text(64), Text(64), Bytes(32, exact=True), Bytes(32, exact=True))


@dataclass(frozen=True, slots=True)
class HelloProof:
    TAG: ClassVar[int] = 2
    signature: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Bytes(64, exact=True),)


HANDSHAKE_CODEC = MessageCodec([Hello, HelloProof], max_bytes=4096)


@dataclass(slots=True)
class LinkFault:
    cut: bool = False
    loss: float = 0.0
    delay_ms: int = 0
    jitter_ms: int = 0
    duplicate: float = 0.0
    reorder: float = 0.0
    """Probability that a frame is held back an extra 1..REORDER_HOLD_MS, so later frames overtake it."""


REORDER_HOLD_MS = 50


class LinkFaults:
    """Per-peer link misbehaviour, consulted for every frame in and out; seeded, so a run replays."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: dict[str, LinkFault] = {}
        self._rng = random.Random(seed)
        self.dropped = 0
        self.reordered = 0

    def reseed(self, seed: int | str) -> None:
        self._rng = random.Random(seed)

    def set(self, peer: str, **settings: Any) -> LinkFault:
        rule = self._rules.setdefault(peer, LinkFault())
        for key, value in settings.items():
            if not hasattr(rule, key):
                raise ValueError(f"unknown link fault setting {key!r}")
            setattr(rule, key, value)
        return rule

    def clear(self, peer: str | None = None) -> None:
        if peer is None:
            self._rules.clear()
        else:
            self._rules.pop(peer, None)

    def rules(self) -> dict[str, LinkFault]:
        return dict(self._rules)

    def incoming_allowed(self, peer: str) -> bool:
        rule = self._rules.get(peer)
        if rule is not None and rule.cut:
            self.dropped += 1
            return False
        return True

    def outgoing_delays(self, peer: str) -> list[float]:
        """Delays (seconds) of the copies to send: [] drops the frame, [0.0] is normal."""
        rule = self._rules.get(peer)
        if rule is None:
            return [0.0]
        if rule.cut or (rule.loss and self._rng.random() < rule.loss):
            self.dropped += 1
            return []
        copies = 2 if rule.duplicate and self._rng.random() < rule.duplicate else 1
        return [self._delay_ms(rule) / 1000 for _ in range(copies)]

    def _delay_ms(self, rule: LinkFault) -> float:
        delay = rule.delay_ms + self._rng.uniform(0, rule.jitter_ms)
        if rule.reorder and self._rng.random() < rule.reorder:
            self.reordered += 1
            delay += self._rng.uniform(1, REORDER_HOLD_MS)
        return delay


@dataclass(slots=True)
class Link:
    peer: str
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))
    writer: asyncio.Task[None] | None = None


@dataclass(slots=True)
class PeerStats:
    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    dropped_out: int = 0
    penalties: int = 0
    connects: int = 0


class Transport:
    def __init__(
        self,
        name: str,
        key: SigningKey,
        chain_id: str,
        members: dict[str, VerifyKey],
        listen: tuple[str, int],
        peers: dict[str, tuple[str, int]],
        server_ssl: ssl.SSLContext,
        client_ssl: ssl.SSLContext,
        max_frame: int = DEFAULT_MAX_FRAME,
        heartbeat_s: float = 15.0,
    ) -> None:
        self.name = name
        self.key = key
        self.chain_id = chain_id
        self.members = members
        self.listen = listen
        self.peers = {p: a for p, a in peers.items() if p != name}
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.max_frame = max_frame
        self.heartbeat_s = heartbeat_s
        self.faults = LinkFaults()
        self.on_message: Callable[[str, bytes], None] = lambda peer, payload: None
        self.on_peer_change: Callable[[str, bool], None] = lambda peer, up: None
        self.links: dict[str, Link] = {}
        self.stats: dict[str, PeerStats] = {}
        self.refused_total = 0
        self._runner: web.AppRunner | None = None
        self.listener: TlsListener | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._running = True
        app = web.Application()
        app.router.add_get("/p2p", self._accept)
        # At shutdown the links are closed first; a handler still running after that is cut off at once rather
        # than after aiohttp's default minute.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=WS_CLOSE_TIMEOUT_S)
        await self._runner.setup()
        assert self._runner.server is not None
        # Our own accept loop, not a TCPSite: it bounds unauthenticated TLS handshakes in time and number.
        self.listener = TlsListener(self.listen, self.server_ssl, self._runner.server)
        await self.listener.start()
        self._session = aiohttp.ClientSession()
        for peer in self.peers:
            if self._should_dial(peer):
                self._tasks.append(asyncio.create_task(self._dial_loop(peer), name=f"dial-{peer}"))

    async def stop(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Together, not one after another: each close waits up to WS_CLOSE_TIMEOUT_S for a peer that may be
        # stopping too, and a node stopped by SIGTERM is killed if it takes more than a few seconds.
        await asyncio.gather(*(self._close(link, "shutting down") for link in list(self.links.values())))
        if self._session is not None:
            await self._session.close()
        if self.listener is not None:
            await self.listener.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def add_member(self, name: str, key: VerifyKey, cert_pem: str, address: str = "") -> None:
        """A node the ledger added (``node.governance``): trust its certificate, accept it, and dial it when
        this side dials (the lower key) at ``address`` unless the config already gave one.  A member whose key
        changed is disconnected, to authenticate again with the new key."""
        if name == self.name:
            return
        old = self.members.get(name)
        if old == key:
            return
        if cert_pem:
            self.server_ssl.load_verify_locations(cadata=cert_pem)
            self.client_ssl.load_verify_locations(cadata=cert_pem)
        self.members[name] = key
        if address and name not in self.peers:
            try:
                self.peers[name] = parse_address(address, f"node {name}")
            except ConfigError as exc:
                log.warning("node %s: %s", name, exc)
        link = self.links.get(name)
        if link is not None:
            self._tasks.append(asyncio.create_task(self._close(link, "its key changed"), name=f"rekey-{name}"))
        log.info("member added: %s", name, extra={"event": "member-added", "peer": name})
        dialling = any(t.get_name() == f"dial-{name}" and not t.done() for t in self._tasks)
        if self._running and name in self.peers and self._should_dial(name) and not dialling:
            self._tasks.append(asyncio.create_task(self._dial_loop(name), name=f"dial-{name}"))

    def _should_dial(self, peer: str) -> bool:
        theirs = self.members.get(peer)
        return theirs is not None and self.key.verify_key.raw < theirs.raw

    # ------------------------------------------------------------ sending

    def connected_peers(self) -> list[str]:
        return list(self.links)

    def send(self, peer: str, payload: bytes) -> bool:
        link = self.links.get(peer)
        stats = self._stats(peer)
        if link is None:
            stats.dropped_out += 1
            return False
        for delay in self.faults.outgoing_delays(peer):
            if delay <= 0:
                self._enqueue(link, payload)
            else:
                asyncio.get_running_loop().call_later(delay, self._enqueue, link, payload)
        return True

    def broadcast(self, payload: bytes, only: list[str] | None = None) -> None:
        allowed = None if only is None else set(only)
        for peer in list(self.links):
            if allowed is None or peer in allowed:
                self.send(peer, payload)

    def _enqueue(self, link: Link, payload: bytes) -> None:
        try:
            link.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self._stats(link.peer).dropped_out += 1

    async def _write_loop(self, link: Link) -> None:
        stats = self._stats(link.peer)
        while True:
            payload = await link.queue.get()
            if link.ws.closed:
                return
            try:
                await link.ws.send_bytes(payload)
            except (ConnectionError, RuntimeError):
                return
            stats.bytes_out += len(payload)
            stats.frames_out += 1

    # ------------------------------------------------------------ connections

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        # close() waits this long for the peer's close frame (a paused peer never sends it), as the dialling side does
        ws = web.WebSocketResponse(max_msg_size=self.max_frame, heartbeat=self.heartbeat_s, timeout=WS_CLOSE_TIMEOUT_S)
        try:
            await ws.prepare(request)
        except ConnectionError as exc:
            # The dialling peer gave up before the link opened (it timed out, or was stopped): a disconnect, no fault.
            # aiohttp writes the answer below to a closed connection, which it treats as the client having gone.
            log.info("a dialling peer left before its link opened: %s", exc or type(exc).__name__,
                     extra={"event": "peer-lost"})
            return web.Response(status=400, text="the connection closed before the link opened")
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        await self._serve(ws, ssl_object, direction="in")
        return ws

    async def _dial_loop(self, peer: str) -> None:
        host, port = self.peers[peer]
        attempt = 0
        assert self._session is not None
        while self._running:
            try:
                ws = await self._session.ws_connect(
                    f"https://{join_address(host, port)}/p2p", ssl=self.client_ssl, max_msg_size=self.max_frame,
                    heartbeat=self.heartbeat_s,
                    timeout=aiohttp.ClientWSTimeout(ws_close=WS_CLOSE_TIMEOUT_S),
                )
            except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
                log.debug("dial %s failed: %s", peer, exc)
            else:
                ssl_object = ws.get_extra_info("ssl_object")
                try:
                    served = await self._serve(ws, ssl_object, direction="out", expect=peer)
                except (ConnectionError, aiohttp.ClientError) as exc:  # the peer went away: an ordinary end
                    log.info("link to %s ended: %s", peer, exc or type(exc).__name__,
                             extra={"event": "peer-lost", "peer": peer})
                    served = True
                except Exception:  # a bug in a callback must not end redialling for good
                    log.exception("link to %s ended by an error", peer)
                    served = True
                if served:
                    attempt = 0
            attempt += 1
            backoff = min(0.1 * 2 ** min(attempt, 6), 3.0) * random.uniform(0.5, 1.5)
            await asyncio.sleep(backoff)

    async def _handshake(
        self, ws: Any, ssl_object: Any, expect: str | None
    ) -> str:
        nonce = os.urandom(32)
        hello = Hello(PROTOCOL_VERSION, self.chain_id, self.name, self.key.verify_key.raw, nonce)
        await ws.send_bytes(HANDSHAKE_CODEC.encode(hello))
        theirs = await self._receive_handshake(ws, Hello)
        if theirs.version != PROTOCOL_VERSION:
            raise PeerError(f"unknown protocol version {theirs.version} (we speak {PROTOCOL_VERSION})")
        if theirs.chain_id != self.chain_id:
            raise PeerError(f"peer is on chain {theirs.chain_id!r}, we are on {self.chain_id!r}")
        member = self.members.get(theirs.name)
        if member is None or member.raw != theirs.key:
            raise PeerError(f"peer {theirs.name!r} with key {theirs.key.hex()[:16]}... is not in genesis")
        if expect is not None and theirs.name != expect:
            raise PeerError(f"dialled {expect!r} but {theirs.name!r} answered")
        if theirs.name == self.name:
            raise PeerError("connected to ourselves")
        if ssl_object is None:
            raise PeerError("no TLS session")
        if certificate_key(ssl_object.getpeercert(binary_form=True)) != theirs.key:
            raise PeerError(f"peer {theirs.name!r}: TLS certificate key differs from the key it claims")
        payload = theirs.nonce + nonce
        await ws.send_bytes(HANDSHAKE_CODEC.encode(HelloProof(self.key.sign(DOMAIN_HELLO, self.chain_id, payload))))
        proof = await self._receive_handshake(ws, HelloProof)
        if not member.verify(DOMAIN_HELLO, self.chain_id, nonce + theirs.nonce, proof.signature):
            raise PeerError(f"peer {theirs.name!r}: handshake signature does not verify")
        name: str = theirs.name
        return name

    async def _receive_handshake(self, ws: Any, cls: type[Any]) -> Any:
        msg = await ws.receive(timeout=HANDSHAKE_TIMEOUT)
        if msg.type != WSMsgType.BINARY:
            raise PeerError(f"expected a binary handshake frame, got {msg.type.name}")
        try:
            decoded = HANDSHAKE_CODEC.decode(msg.data)
        except DecodeError as exc:
            raise PeerError(f"bad handshake frame: {exc}") from None
        if not isinstance(decoded, cls):
            raise PeerError(f"expected {cls.__name__}, got {type(decoded).__name__}")
        return decoded

    async def _serve(self, ws: Any, ssl_object: Any, direction: str, expect: str | None = None) -> bool:
        try:
            peer = await asyncio.wait_for(self._handshake(ws, ssl_object, expect), HANDSHAKE_TIMEOUT * 2)
        except (PeerError, TimeoutError, ConnectionError, RuntimeError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                await ws.close()
                raise
            self.refused_total += 1
            log.warning("refused %s connection: %s", direction, exc, extra={"event": "peer-refused"})
            await ws.close(code=4001, message=str(exc)[:120].encode())
            return False
        old = self.links.get(peer)
        if old is not None:
            await self._close(old, "replaced by a newer connection")
        link = Link(peer, ws)
        link.writer = asyncio.create_task(self._write_loop(link))
        self.links[peer] = link
        self._stats(peer).connects += 1
        log.info("connected to %s (%s)", peer, direction, extra={"event": "peer-up", "peer": peer})
        self.on_peer_change(peer, True)
        try:
            await self._read_loop(link)
        finally:
            if self.links.get(peer) is link:
                del self.links[peer]
                await self._close(link, "closed")
                log.info("disconnected from %s", peer, extra={"event": "peer-down", "peer": peer})
                self.on_peer_change(peer, False)
        return True

    async def _read_loop(self, link: Link) -> None:
        try:
            await self._read_frames(link)
        except ConnectionError as exc:  # e.g. answering a ping on a connection the peer already closed
            log.info("link to %s ended: %s", link.peer, exc, extra={"event": "peer-lost", "peer": link.peer})

    async def _read_frames(self, link: Link) -> None:
        stats = self._stats(link.peer)
        async for msg in link.ws:
            if msg.type == WSMsgType.BINARY:
                stats.bytes_in += len(msg.data)
                stats.frames_in += 1
                if self.faults.incoming_allowed(link.peer):
                    self.on_message(link.peer, msg.data)
            elif msg.type == WSMsgType.ERROR:
                error = link.ws.exception()
                if isinstance(error, (ConnectionError, aiohttp.ServerTimeoutError)):  # gone, or silent past
                    log.info("link to %s lost: %s", link.peer, error,  # the heartbeat: a disconnect, no fault
                             extra={"event": "peer-lost", "peer": link.peer})
                else:
                    log.warning("link to %s failed: %s", link.peer, error)
                    stats.penalties += 1
                break
            elif msg.type != WSMsgType.TEXT:
                break
            else:
                self.penalize(link.peer, "text frame")
                break

    async def _close(self, link: Link, why: str) -> None:
        if link.writer is not None:
            link.writer.cancel()
        if not link.ws.closed:
            try:
                await link.ws.close(message=why.encode())
            except (ConnectionError, aiohttp.ClientError) as exc:  # its transport was already closing
                log.debug("closing the link to %s: %s", link.peer, exc)

    # ------------------------------------------------------------ bookkeeping

    def _stats(self, peer: str) -> PeerStats:
        stats = self.stats.get(peer)
        if stats is None:
            stats = self.stats[peer] = PeerStats()
        return stats

    def penalize(self, peer: str, reason: str) -> None:
        stats = self._stats(peer)
        stats.penalties += 1
        log.warning("peer %s misbehaved: %s", peer, reason, extra={"event": "peer-penalty", "peer": peer})
        link = self.links.get(peer)
        if link is not None and stats.penalties % 10 == 0:
            asyncio.get_running_loop().create_task(link.ws.close(code=4002, message=b"too many bad frames"))

    def peer_stats(self) -> dict[str, dict[str, int]]:
        out = {}
        for peer in sorted(set(self.peers) | set(self.stats)):
            s = self._stats(peer)
            out[peer] = {
                "connected": int(peer in self.links), "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
                "frames_in": s.frames_in, "frames_out": s.frames_out, "dropped_out": s.dropped_out,
                "penalties": s.penalties, "connects": s.connects,
            }
        return out
