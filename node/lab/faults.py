"""Link faults on a running network, driven through each node's admin interface.

Every request is signed with the network's operator key (NETWORK/operator.json,
written by ``testnet``).  A node's link faults apply to its own side of a link:
a cut drops frames both ways, loss, delay and duplication apply to what it sends.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from node.api.admin import sign_request
from node.client.http import NodeClient, Reply, unreachable
from node.config import load_config
from node.genesis import load_genesis
from node.lab.cluster import node_homes
from node.lab.testnet import operator_key
from primitives.errors import UsageError

LinkRules = dict[str, dict[str, Any]]
TIMEOUT = aiohttp.ClientTimeout(total=10)


class AdminClient:
    """Signed admin requests to the nodes of one network folder."""

    def __init__(self, network: Path) -> None:
        self.key = operator_key(network)
        self.chain_id = load_genesis(network / "genesis.json").chain_id
        self.apis = {home.name: load_config(home).api_listen for home in node_homes(network)}

    def check_names(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self.apis]
        if unknown:
            raise UsageError(f"no node named {', '.join(unknown)} in this network; its nodes: {', '.join(self.apis)}")

    async def post(self, node: str, path: str, doc: dict[str, Any]) -> LinkRules:
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json", **sign_request(self.key, self.chain_id, "POST", path, body)}
        async with NodeClient(self.apis[node]) as client:
            try:
                async with client.session.post(client.base + path, data=body, headers=headers, timeout=TIMEOUT) as resp:
                    reply = Reply(resp.status, resp.headers, await resp.text(errors="replace"))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise unreachable(client.base, exc) from None
        found: LinkRules = reply.result()["links"]
        return found

    async def post_all(self, calls: list[tuple[str, str, dict[str, Any]]]) -> dict[str, LinkRules]:
        """Send each (node, path, doc); every node's link faults after its last call."""
        out: dict[str, LinkRules] = {}
        for node, path, doc in calls:
            out[node] = await self.post(node, path, doc)
        return out


def parse_groups(words: list[str]) -> list[list[str]]:
    """``["node0,node1", "/", "node2"]`` (or ``"node0,node1/node2"``) as groups of node names."""
    groups = [[n for n in part.split(",") if n.strip()] for part in " ".join(words).replace(" ", "").split("/")]
    if len(groups) < 2 or any(not g for g in groups):
        raise UsageError("give two or more non-empty groups separated by '/', e.g. node0,node1 / node2,node3")
    names = [n for g in groups for n in g]
    if len(set(names)) != len(names):
        raise UsageError("a node appears in more than one group")
    return groups


def partition(network: Path, groups: list[list[str]]) -> dict[str, LinkRules]:
    """Cut every link between nodes of different groups (nodes in no group keep all their links)."""
    admin = AdminClient(network)
    admin.check_names([n for g in groups for n in g])
    calls = [
        (node, "/admin/links", {"peer": peer, "cut": True})
        for group in groups
        for node in group
        for other in groups
        if other is not group
        for peer in other
    ]
    return asyncio.run(admin.post_all(calls))


def heal(network: Path) -> dict[str, LinkRules]:
    """Clear every link fault on every node."""
    admin = AdminClient(network)
    return asyncio.run(admin.post_all([(node, "/admin/links/clear", {}) for node in admin.apis]))


def set_link(network: Path, source: str, target: str, settings: dict[str, Any]) -> dict[str, LinkRules]:
    """Set ``source``'s link faults towards ``target``."""
    admin = AdminClient(network)
    admin.check_names([source, target])
    if source == target:
        raise UsageError("FROM and TO must be two different nodes")
    return asyncio.run(admin.post_all([(source, "/admin/links", {"peer": target, **settings})]))
