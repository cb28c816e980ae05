"""A consortium across hosts on one machine: each node in its own Linux network namespace with its own address.

Four namespaces, each joined to a bridge by a veth pair, hold one validator
each; the network is written by ``medchain testnet --hosts`` so that nodes
bind and reach each other by those addresses only.  A fifth namespace waits
for a new hospital, whose node joins through governance at its own address.  The test process talks to
them from the root namespace through the bridge.  A partition is made by
bringing a node's link down, not in the application.  Every namespace, veth
and bridge made here is removed at the end, also when a test fails.

It needs root and iproute2 (``ip netns``), as CI has.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from node.genesis import load_genesis
from node.healthcare.transactions import Anchor, make_transaction
from node.lab.consortium import load_consortium
from node.lab.counterfeit import Network
from node.lab.story import Story
from node.lab.testnet import client_key, generate_testnet
from node.proofs import verify_proof
from primitives.hashing import sha256

ROOT = Path(__file__).resolve().parents[2]
CAN_RUN = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("ip") is not None
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not CAN_RUN, reason="needs root and iproute2 (ip netns), as CI has"),
]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@dataclass
class Hosts:
    """Namespaces ``{tag}n{i}`` at ``{subnet}.{i+1}``, veths ``{tag}v{i}`` on bridge ``{tag}br`` (``.254``)."""

    tag: str
    subnet: str
    count: int
    made: list[tuple[str, str]] = field(default_factory=list)  # ("netns" | "link", name), to remove

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i + 1}"

    def ns(self, i: int) -> str:
        return f"{self.tag}n{i}"

    def veth(self, i: int) -> str:
        return f"{self.tag}v{i}"

    def build(self) -> None:
        bridge = f"{self.tag}br"
        ip("link", "add", bridge, "type", "bridge")
        self.made.append(("link", bridge))
        ip("addr", "add", f"{self.subnet}.254/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for i in range(self.count):
            ns, outside, inside = self.ns(i), self.veth(i), f"{self.tag}p{i}"
            ip("netns", "add", ns)
            self.made.append(("netns", ns))
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            self.made.append(("link", outside))
            ip("link", "set", inside, "netns", ns)
            ip("link", "set", outside, "master", bridge)
            ip("link", "set", outside, "up")
            ip("-n", ns, "link", "set", inside, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def remove(self) -> list[str]:
        """Remove everything made, newest first; what is still there after (nothing, normally)."""
        left = []
        for kind, name in reversed(self.made):
            if kind == "netns":
                ip("netns", "del", name, check=False)
                if name in ip("netns", "list", check=False).stdout.split():
                    left.append(f"namespace {name}")
            else:
                ip("link", "del", name, check=False)  # a veth goes with its peer's namespace: already gone
                if ip("link", "show", name, check=False).returncode == 0:
                    left.append(f"link {name}")
        self.made.clear()
        return left


RUNS = itertools.count()


@contextlib.contextmanager
def namespaces(count: int) -> Iterator[Hosts]:
    """Names and a subnet of this process's own (a test run beside it, or another set here, gets others)."""
    run = next(RUNS)
    hosts = Hosts(f"mc{os.getpid() % 10000}x{run}", f"10.{213 + run % 40}.{os.getpid() % 250}", count)
    try:
        hosts.build()
        yield hosts
    finally:
        left = hosts.remove()
        assert not left, f"could not remove {left}"


@dataclass
class Net:
    hosts: Hosts
    root: Path
    names: list[str]
    apis: dict[str, str]
    session: aiohttp.ClientSession
    procs: dict[str, subprocess.Popen[bytes]]

    async def get(self, name: str, path: str) -> Any:
        async with self.session.get(self.apis[name] + path, timeout=aiohttp.ClientTimeout(total=5)) as reply:
            return await reply.json()

    async def heights(self) -> dict[str, int | None]:
        async def one(name: str) -> int | None:
            try:
                return int((await self.get(name, "/status"))["height"])
            except (aiohttp.ClientError, TimeoutError):
                return None
        return dict(zip(self.names, await asyncio.gather(*(one(n) for n in self.names)), strict=True))

    async def anchor(self, name: str, label: str) -> dict[str, Any]:
        genesis = load_genesis(self.root / "genesis.json")
        tx = make_transaction(client_key(self.root), genesis.chain_id, Anchor(sha256(label.encode()), label),
                              int(time.time() * 1000))
        async with self.session.post(self.apis[name] + "/txs?wait=commit&timeout=30", data=tx,
                                     timeout=aiohttp.ClientTimeout(total=40)) as reply:
            assert reply.status == 200, await reply.text()
            return await reply.json()  # type: ignore[no-any-return]


async def wait_for(what: str, predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.25)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    consortium = load_consortium(ROOT / "configs" / "consortium-4.toml")
    names = [o.id for o in consortium.validators]
    with namespaces(len(names) + 1) as hosts:  # the last one for the node that joins
        root = tmp_path_factory.mktemp("hosts")
        hosts_file = root / "hosts.toml"
        hosts_file.write_text("".join(
            f'[[node]]\nname = "{n}"\nhost = "{hosts.address(i)}"\nlisten = "{hosts.address(i)}"\n\n'
            for i, n in enumerate(names)))
        generate_testnet(root / "net", 0, consortium=consortium, hosts=hosts_file)
        root = root / "net"
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for i, name in enumerate(names):
                log = (root / name / "node.out").open("wb")
                procs[name] = subprocess.Popen(
                    ["ip", "netns", "exec", hosts.ns(i), sys.executable, "-m", "node", "node", "start",
                     "--home", str(root / name), "--log-level", "info"],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
            apis = {n: f"http://{hosts.address(i)}:26601" for i, n in enumerate(names)}
            async with aiohttp.ClientSession() as session:
                network = Net(hosts, root, names, apis, session, procs)

                async def connected() -> bool:
                    try:
                        statuses = await asyncio.gather(*(network.get(n, "/status") for n in names))
                    except (aiohttp.ClientError, TimeoutError):
                        return False
                    return all(len(s["peers"]) == len(names) - 1 for s in statuses)

                await wait_for("every node up and connected to the three others", connected, 60)
                yield network
        finally:
            for proc in procs.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)


async def test_nodes_bind_and_reach_each_other_by_their_own_addresses_only(net: Net) -> None:
    for i, name in enumerate(net.names):
        config = (net.root / name / "config.toml").read_text()
        assert "127.0.0.1" not in config and "localhost" not in config
        assert f'p2p_listen = "{net.hosts.address(i)}:26600"' in config
        doc = await net.get(name, "/network")
        assert sorted(m["name"] for m in doc["members"] if m["connected"] and not m["self"]) == sorted(
            n for n in net.names if n != name)
    consortium = json.loads((net.root / "consortium.json").read_text())
    assert {org: v["api"] for org, v in consortium.items() if v["api"]} == net.apis


async def test_a_consortium_story_runs_across_the_namespaces(net: Net) -> None:
    steps = await Story(Network.load(net.root), say=lambda line: None).play()
    titles = [s.title for s in steps]
    for expected in ("records filed", "erasure", "dispense", "cloned pack", "recall"):
        assert expected in titles


async def test_a_node_cut_off_by_its_link_falls_behind_and_catches_up_without_a_fork(net: Net) -> None:
    status = await net.get(net.names[0], "/status")
    victim = next(n for n in net.names if n != status["primary"])
    k = net.names.index(victim)
    others = [n for n in net.names if n != victim]
    ip("link", "set", net.hosts.veth(k), "down")
    try:
        committed = [await net.anchor(others[0], f"while {victim} is cut off #{i}") for i in range(3)]
        top = max(c["height"] for c in committed)
        heights = await net.heights()
        assert heights[victim] is None or heights[victim] < top, "the cut-off node followed the chain"
    finally:
        ip("link", "set", net.hosts.veth(k), "up")

    async def caught_up() -> bool:
        return all(h is not None and h >= top for h in (await net.heights()).values())

    await wait_for(f"{victim} to catch up to height {top}", caught_up, 60)
    for height in range(1, top + 1):
        hashes = {(await net.get(n, f"/blocks/{height}"))["hash"] for n in net.names}
        assert len(hashes) == 1, f"the nodes disagree at height {height}: {hashes}"
    genesis = load_genesis(net.root / "genesis.json")
    proof = await net.get(victim, f"/proofs/{committed[-1]['tx_id']}")
    assert verify_proof(proof, genesis) is None


async def test_every_namespace_and_link_is_removed_even_when_a_test_fails() -> None:
    with pytest.raises(RuntimeError, match="the test failed"), namespaces(2) as hosts:
        made = list(hosts.made)
        assert [kind for kind, _ in made].count("netns") == 2
        raise RuntimeError("the test failed")
    namespaces_now = ip("netns", "list").stdout.split()
    for kind, name in made:
        if kind == "netns":
            assert name not in namespaces_now
        else:
            assert ip("link", "show", name, check=False).returncode != 0, f"{name} is still there"


async def test_a_new_hospital_on_its_own_host_joins_through_governance(net: Net, tmp_path: Path) -> None:
    """'medchain node join' in the fifth namespace, proposed and approved by admins: it validates at its address."""
    from click.testing import CliRunner

    from node.cli.main import main

    def run(*args: str) -> Any:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0, f"medchain {' '.join(args[:3])}: {result.output}"
        return json.loads(result.output)

    async def cli(*args: str) -> Any:  # in a thread: the CLI's client runs its own event loop
        return await asyncio.to_thread(run, *args)

    k = len(net.names)
    address = net.hosts.address(k)
    home, admin = net.root / "riverside", tmp_path / "riverside-admin.json"
    await cli("key", "new", "--out", str(admin), "--json")
    peers = ",".join(f"{n}={net.hosts.address(i)}:26600" for i, n in enumerate(net.names))
    await cli("node", "join", "--home", str(home), "--genesis", str(net.root / "genesis.json"), "--org", "riverside",
        "--org-name", "Riverside Hospital", "--org-kind", "hospital", "--org-admin", str(admin),
        "--p2p", f"{address}:26600", "--api", f"{address}:26601", "--peers", peers)
    log = (home / "node.out").open("wb")
    net.procs["riverside"] = subprocess.Popen(
        ["ip", "netns", "exec", net.hosts.ns(k), sys.executable, "-m", "node", "node", "start",
         "--home", str(home), "--log-level", "info"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    node = ["--node", net.apis["regulator"], "--json"]
    proposed = await cli("validators", "propose-add", "--joiner", str(home / "join.json"), "--after", "8",
                   "--key", str(net.root / "orgs" / "st-mary" / "admin.json"), *node)
    assert proposed["code"] == "ok", proposed
    for org in ("regulator", "city-general"):
        admin_key = str(net.root / "orgs" / org / "admin.json")
        approved = await cli("validators", "approve", proposed["tx_id"], "--key", admin_key, *node)
        assert approved["code"] == "ok", approved
    listed = await cli("validators", "list", *node)
    switch = listed["changes"][-1]["height"]
    net.names.append("riverside")
    net.apis["riverside"] = f"http://{address}:26601"
    label = itertools.count()
    while ((await net.heights())["regulator"] or 0) < switch + 3:
        await net.anchor("regulator", f"toward the switch #{next(label)}")

    async def joined() -> bool:
        try:
            status = await net.get("riverside", "/status")
        except (aiohttp.ClientError, TimeoutError):
            return False
        return status["role"] == "validator" and status["height"] >= switch + 3 and len(status["peers"]) == k

    await wait_for("the new hospital's node to validate, linked to the four others", joined, 60)
    validators = await net.get("st-mary", "/validators")
    assert validators["validators"][-1] == {
        "name": "riverside", "key": proposed_key(home), "org": "riverside", "address": f"{address}:26600"}
    committed = await net.anchor("riverside", "through the new hospital")

    async def has_it() -> bool:  # the anchor was committed where it was sent; another node may be a step behind
        return ((await net.heights())["city-general"] or 0) >= committed["height"]

    await wait_for("city-general to hold the block", has_it, 30)
    proof = await net.get("city-general", f"/proofs/{committed['tx_id']}")
    assert proof.get("format") == "medchain-inclusion-proof/v1", proof
    assert len(proof["validator_changes"]) == 1
    assert verify_proof(proof, load_genesis(net.root / "genesis.json")) is None


def proposed_key(home: Path) -> str:
    key: str = json.loads((home / "join.json").read_text())["key"]
    return key
