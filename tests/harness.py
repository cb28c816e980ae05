"""Real multi-process clusters for end-to-end tests: real processes, sockets, TLS, LevelDB."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from node.client.http import ApiFailure, NodeClient, NodeUnreachable
from node.client.sse import ServerSentEvent, SseComment, SseItem
from node.genesis import Genesis, load_genesis
from node.healthcare.transactions import Anchor, make_transaction
from node.lab import cluster as clusters
from node.lab.testnet import client_key, generate_testnet
from primitives.hashing import sha256
from primitives.signing import SigningKey


def free_base_port(count: int) -> int:
    """A base port with ``2 * count`` consecutive free ports on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        base = 20000 + base % 12000  # stay below the kernel's ephemeral range (32768-)
        if base + 2 * count >= 32700:
            continue
        ok = True
        for port in range(base, base + 2 * count):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


class Cluster:
    def __init__(
        self,
        root: Path,
        validators: int = 4,
        observers: int = 0,
        progress_timeout_ms: int = 1000,
        mempool_max_txs: int | None = None,
        consortium: Path | None = None,
        heartbeat_s: int | None = None,
    ):
        self.root = root
        plan = None
        if consortium is not None:
            from node.lab.consortium import load_consortium

            plan = load_consortium(consortium)
            validators = sum(1 for o in plan.organisations if o.node == "validator")
            observers = sum(1 for o in plan.organisations if o.node == "observer")
        base = free_base_port(validators + observers)
        extra: dict[str, Any] = {"consortium": plan} if plan is not None else {}
        self.genesis: Genesis = generate_testnet(
            root, validators, observers, base, chain_id="test-net", progress_timeout_ms=progress_timeout_ms, **extra
        )
        if mempool_max_txs is not None:
            for home in clusters.node_homes(root):
                text = (home / "config.toml").read_text()
                (home / "config.toml").write_text(text.replace("max_txs = 50000", f"max_txs = {mempool_max_txs}"))
        if heartbeat_s is not None:
            for home in clusters.node_homes(root):
                text = (home / "config.toml").read_text()
                assert "heartbeat_s = 15" in text, "the testnet's config no longer writes the default heartbeat"
                (home / "config.toml").write_text(text.replace("heartbeat_s = 15", f"heartbeat_s = {heartbeat_s}"))
        self.client: SigningKey = client_key(root, 0)
        self.nodes: list[clusters.NodeProcess] = []
        self.session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self.nodes = clusters.start_all(self.root)

    def kill(self, name: str) -> None:
        clusters.signal_node(self.root, name, "kill")

    def restart(self, name: str) -> None:
        clusters.signal_node(self.root, name, "restart")

    def pause(self, name: str) -> None:
        clusters.signal_node(self.root, name, "pause")

    def resume(self, name: str) -> None:
        clusters.signal_node(self.root, name, "resume")

    async def __aenter__(self) -> Cluster:
        self.start()
        self.session = aiohttp.ClientSession()  # one connection pool for every node's client
        await self.wait_all(lambda s: s is not None, timeout=30, what="every node's API to answer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()
        clusters.stop_all(self.root, timeout=10)

    def api(self, name: str) -> str:
        return next(n.api for n in clusters.load_cluster(self.root) if n.name == name)

    @property
    def names(self) -> list[str]:
        return [n.name for n in clusters.load_cluster(self.root)]

    def node(self, name: str) -> NodeClient:
        """The client of one node's API, on the cluster's shared session."""
        assert self.session is not None, "use the cluster as `async with Cluster(...) as c`"
        return NodeClient(self.api(name), self.session)

    async def get(self, name: str, path: str, timeout: float = 3) -> tuple[int, Any]:
        """GET ``path`` at node ``name``: the HTTP status and the JSON body, whatever the status."""
        reply = await self.node(name).send("GET", path, timeout=timeout)
        return reply.status, reply.json()

    async def post_tx(self, name: str, tx: bytes, wait: bool = False, timeout: float = 30) -> tuple[int, Any]:
        path = "/txs" + (f"?wait=commit&timeout={timeout}" if wait else "")
        reply = await self.node(name).send("POST", path, data=tx, timeout=timeout + 10)
        return reply.status, reply.json()

    @contextlib.asynccontextmanager
    async def events(self, name: str, path: str = "/events") -> AsyncIterator[AsyncIterator[SseItem]]:
        """The event stream of node ``name`` once the node has subscribed us: nothing sent after entry is missed."""
        stream = self.node(name).events(path)
        try:
            async with asyncio.timeout(10):
                greeting = await anext(stream)
            assert isinstance(greeting, SseComment), f"{path} did not open with the node's greeting: {greeting}"
            yield stream
        finally:
            await stream.aclose()

    async def status(self, name: str) -> dict[str, Any] | None:
        """The node's ``/status``, or None while it does not answer with one."""
        try:
            code, body = await self.get(name, "/status", timeout=2)
        except (NodeUnreachable, ApiFailure):
            return None
        return body if code == 200 else None

    async def wait_all(
        self, predicate: Callable[[dict[str, Any] | None], bool], timeout: float, what: str,
        names: list[str] | None = None,
    ) -> list[dict[str, Any] | None]:
        deadline = time.monotonic() + timeout
        statuses: list[dict[str, Any] | None] = []
        while time.monotonic() < deadline:
            statuses = list(await asyncio.gather(*(self.status(n) for n in (names or self.names))))
            if all(predicate(s) for s in statuses):
                return statuses
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last statuses: {statuses}")

    def anchor_tx(self, label: str) -> bytes:
        return make_transaction(
            self.client, self.genesis.chain_id, Anchor(sha256(label.encode()), label), int(time.time() * 1000)
        )


async def next_event(stream: AsyncIterator[SseItem], event: str = "commit") -> Any:
    """The JSON data of the next ``event`` on ``stream``."""
    async for item in stream:
        if isinstance(item, ServerSentEvent) and item.event == event:
            return item.json()
    raise AssertionError(f"the stream ended before the next {event} event")


def load(root: Path) -> Genesis:
    return load_genesis(root / "genesis.json")
