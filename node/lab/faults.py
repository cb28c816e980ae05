"""Faults on a running network, driven through each node's admin interface.

Every request is signed with the network's operator key (NETWORK/operator.json,
written by ``testnet``).  A node's link faults apply to its own side of a link:
a cut drops frames both ways, loss, delay, duplication and reordering apply to
what it sends.  A validator can also be switched to a Byzantine behaviour
(``consensus.byzantine.BEHAVIOURS``) and its clock skewed; a seed makes every
node's random fault choices replay the same way.  Every node answers with its
whole fault state: ``{"links": {...}, "byzantine": behaviour or None,
"clock_skew_ms": int}``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from consensus.byzantine import BEHAVIOURS
from node.api.admin import LINK_SETTINGS, sign_request
from node.client.http import NodeClient, Reply, unreachable
from node.config import load_config
from node.genesis import load_genesis
from node.lab.cluster import node_homes
from node.lab.testnet import operator_key
from primitives.errors import UsageError
from primitives.hashing import sha256

LinkRules = dict[str, dict[str, Any]]
FaultState = dict[str, Any]
Call = tuple[str, str, dict[str, Any]]  # (node, path, body)
TIMEOUT = aiohttp.ClientTimeout(total=10)


def node_seed(seed: int, node: str) -> int:
    """The seed one node gets from a scenario's seed: distinct per node, the same every run."""
    return int.from_bytes(sha256(f"{seed}/{node}".encode())[:8], "big") >> 1


class AdminClient:
    """Signed admin requests to the nodes of one network folder."""

    def __init__(self, network: Path) -> None:
        self.key = operator_key(network)
        self.chain_id = load_genesis(network / "genesis.json").chain_id
        self.apis = {home.name: load_config(home).api_listen for home in node_homes(network)}
        self.names: list[str] = list(self.apis)

    def check_names(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self.apis]
        if unknown:
            raise UsageError(f"no node named {', '.join(unknown)} in this network; its nodes: {', '.join(self.apis)}")

    async def post(self, node: str, path: str, doc: dict[str, Any]) -> FaultState:
        """One signed request; the node's whole fault state after it."""
        self.check_names([node])
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json", **sign_request(self.key, self.chain_id, "POST", path, body)}
        async with NodeClient(self.apis[node]) as client:
            try:
                async with client.session.post(client.base + path, data=body, headers=headers, timeout=TIMEOUT) as resp:
                    reply = Reply(resp.status, resp.headers, await resp.text(errors="replace"))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise unreachable(client.base, exc) from None
        found: FaultState = reply.result()
        return found

    async def post_all(self, calls: list[Call]) -> dict[str, FaultState]:
        """Send each (node, path, doc) in order; every node's fault state after its last call."""
        out: dict[str, FaultState] = {}
        for node, path, doc in calls:
            out[node] = await self.post(node, path, doc)
        return out

    async def partition(self, groups: list[list[str]]) -> None:
        await self.post_all(partition_calls(self, groups))

    async def heal(self) -> None:
        """Clear the link faults of every node (Byzantine behaviours and clock skews stay)."""
        await asyncio.gather(*(self.post(n, "/admin/links/clear", {}) for n in self.names))

    async def link(self, source: str, target: str, settings: dict[str, Any]) -> None:
        await self.post_all(link_calls(self, source, target, settings))

    async def seed(self, seed: int) -> None:
        """Reseed every node, each with a seed derived from (``seed``, its name)."""
        await asyncio.gather(*(self.post(n, "/admin/seed", {"seed": node_seed(seed, n)}) for n in self.names))

    async def byzantine(self, node: str, behaviour: str | None) -> None:
        await self.post(node, "/admin/byzantine", byzantine_doc(behaviour))

    async def clock(self, node: str, skew_ms: int) -> None:
        await self.post(node, "/admin/clock", {"skew_ms": skew_ms})


def parse_groups(words: list[str]) -> list[list[str]]:
    """``["node0,node1", "/", "node2"]`` (or ``"node0,node1/node2"``) as groups of node names."""
    groups = [[n for n in part.split(",") if n.strip()] for part in " ".join(words).replace(" ", "").split("/")]
    if len(groups) < 2 or any(not g for g in groups):
        raise UsageError("give two or more non-empty groups separated by '/', e.g. node0,node1 / node2,node3")
    names = [n for g in groups for n in g]
    if len(set(names)) != len(names):
        raise UsageError("a node appears in more than one group")
    return groups


def partition_calls(admin: AdminClient, groups: list[list[str]]) -> list[Call]:
    """Cut every link between nodes of different groups (nodes in no group keep all their links)."""
    admin.check_names([n for g in groups for n in g])
    return [
        (node, "/admin/links", {"peer": peer, "cut": True})
        for group in groups
        for node in group
        for other in groups
        if other is not group
        for peer in other
    ]


def link_calls(admin: AdminClient, source: str, target: str, settings: dict[str, Any]) -> list[Call]:
    admin.check_names([source, target])
    if source == target:
        raise UsageError("FROM and TO must be two different nodes")
    unknown = sorted(set(settings) - set(LINK_SETTINGS))
    if unknown:
        raise UsageError(f"unknown link setting {', '.join(unknown)}; known: {', '.join(LINK_SETTINGS)}")
    return [(source, "/admin/links", {"peer": target, **settings})]


def byzantine_doc(behaviour: str | None) -> dict[str, Any]:
    if behaviour is not None and behaviour not in BEHAVIOURS:
        raise UsageError(f"unknown behaviour {behaviour!r}; choose one of {', '.join(BEHAVIOURS)}, or off")
    return {"behaviour": behaviour or "none"}


def _links(states: dict[str, FaultState]) -> dict[str, LinkRules]:
    return {node: state["links"] for node, state in states.items()}


# ---------------------------------------------------------------- synchronous forms (the CLI)


def partition(network: Path, groups: list[list[str]]) -> dict[str, LinkRules]:
    """Cut every link between nodes of different groups; every affected node's link faults."""
    admin = AdminClient(network)
    return _links(asyncio.run(admin.post_all(partition_calls(admin, groups))))


def heal(network: Path) -> dict[str, LinkRules]:
    """Clear every link fault on every node."""
    admin = AdminClient(network)
    return _links(asyncio.run(admin.post_all([(node, "/admin/links/clear", {}) for node in admin.names])))


def set_link(network: Path, source: str, target: str, settings: dict[str, Any]) -> dict[str, LinkRules]:
    """Set ``source``'s link faults towards ``target``."""
    admin = AdminClient(network)
    return _links(asyncio.run(admin.post_all(link_calls(admin, source, target, settings))))


def set_byzantine(network: Path, node: str, behaviour: str | None) -> dict[str, FaultState]:
    """Switch ``node`` to a Byzantine behaviour, or back to honest with None; its fault state."""
    admin = AdminClient(network)
    admin.check_names([node])
    return asyncio.run(admin.post_all([(node, "/admin/byzantine", byzantine_doc(behaviour))]))


def set_clock(network: Path, node: str, skew_ms: int) -> dict[str, FaultState]:
    """Skew ``node``'s clock by ``skew_ms`` (0 puts it right); its fault state."""
    admin = AdminClient(network)
    admin.check_names([node])
    return asyncio.run(admin.post_all([(node, "/admin/clock", {"skew_ms": skew_ms})]))


def reseed(network: Path, seed: int) -> dict[str, FaultState]:
    """Reseed every node's fault choices from ``seed``; every node's fault state."""
    admin = AdminClient(network)
    return asyncio.run(admin.post_all([(n, "/admin/seed", {"seed": node_seed(seed, n)}) for n in admin.names]))
