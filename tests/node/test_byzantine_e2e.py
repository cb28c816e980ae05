"""Byzantine behaviours and clock skew switched on in live validators, through the signed admin interface.

Four validator processes and an observer, real TLS links and LevelDB stores.
An equivocating primary forks nothing and leaves evidence naming it on an
honest node; a backup's forged signatures, votes for unknown blocks,
silence, stale replays or garbage frames slow nothing down; a primary whose
clock runs a minute ahead has its proposals refused and is replaced by a
view change.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from click.testing import CliRunner

from node.cli.main import main as cli
from node.client.http import ApiFailure
from node.lab.faults import AdminClient
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="module")
VALIDATORS = ["node0", "node1", "node2", "node3"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with Cluster(tmp_path_factory.mktemp("byzantine"), validators=4, observers=1) as cluster:
        await commit(cluster, "node1", "ready")
        yield cluster


@pytest.fixture(scope="module")
def admin(net: Cluster) -> AdminClient:
    return AdminClient(net.root)


async def commit(cluster: Cluster, name: str, label: str, timeout: float = 20) -> dict[str, Any]:
    status, body = await cluster.post_tx(name, cluster.anchor_tx(label), wait=True, timeout=timeout)
    assert status == 200 and body["status"] == "committed", (status, body)
    return body


async def fault(cluster: Cluster, *args: str) -> Any:
    """``medchain fault ARGS --dir ROOT --json`` (in a thread: the command runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["fault", *args, "--dir", str(cluster.root), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def primary(cluster: Cluster) -> str:
    status = await cluster.status("node1")
    assert status is not None
    name: str = status["primary"]
    return name


async def block_hashes(cluster: Cluster, name: str, heights: range) -> list[str]:
    out = []
    for h in heights:
        code, body = await cluster.get(name, f"/blocks/{h}")
        assert code == 200, (name, h, body)
        out.append(body["hash"])
    return out


async def evidence_against(cluster: Cluster, culprit: str, timeout: float) -> dict[str, list[Any]]:
    """Every honest node's evidence naming ``culprit``, once some node has any."""
    deadline = time.monotonic() + timeout
    found: dict[str, list[Any]] = {}
    while time.monotonic() < deadline:
        for name in VALIDATORS:
            if name != culprit:
                code, items = await cluster.get(name, "/evidence")
                found[name] = [e for e in items if e["validator"] == culprit] if code == 200 else []
        if any(found.values()):
            return found
        await asyncio.sleep(0.2)
    return found


async def test_the_admin_answer_is_the_whole_fault_state_and_observers_refuse_a_behaviour(
    net: Cluster, admin: AdminClient
) -> None:
    state = await admin.post("node2", "/admin/seed", {"seed": 7})
    assert state == {"links": {}, "byzantine": None, "clock_skew_ms": 0}
    assert set(await fault(net, "seed", "7")) == set(net.names)
    links = await fault(net, "link", "node0", "node1", "--reorder", "0.5")
    assert links["node0"]["node1"]["reorder"] == 0.5
    assert await fault(net, "heal") == {n: {} for n in net.names}
    with pytest.raises(ApiFailure, match="observer"):
        await admin.byzantine("node4", "silent")
    with pytest.raises(ApiFailure, match="behaviour must be one of"):
        await admin.post("node2", "/admin/byzantine", {"behaviour": "lying"})
    with pytest.raises(ApiFailure, match="skew_ms"):
        await admin.post("node2", "/admin/clock", {"skew_ms": "soon"})


async def test_an_equivocating_primary_forks_nothing_and_leaves_evidence_naming_it(
    net: Cluster, admin: AdminClient
) -> None:
    culprit = await primary(net)
    assert (await fault(net, "byzantine", culprit, "equivocate"))[culprit]["byzantine"] == "equivocate"
    try:
        honest = [n for n in VALIDATORS if n != culprit]
        found: dict[str, list[Any]] = {}
        for round_ in range(4):  # a few heights: the fork must reach a replica that can tell (timing varies)
            await asyncio.gather(*(
                commit(net, honest[i % 3], f"under an equivocating primary {round_}.{i}") for i in range(3)
            ))
            found = await evidence_against(net, culprit, timeout=4)
            if any(found.values()):
                break
        statuses = [await net.status(n) for n in net.names]
        assert any(found.values()), f"no honest node holds evidence against {culprit}: {found}; {statuses}"
        assert {e["kind"] for items in found.values() for e in items} <= {"pre-prepare", "prepare", "commit"}
    finally:
        state = await admin.post(culprit, "/admin/byzantine", {"behaviour": "none"})
        assert state["byzantine"] is None
    await commit(net, culprit, "the former equivocator is honest again")
    statuses = await net.wait_all(lambda s: s is not None, timeout=5, what="every node's status")
    top = min(s["height"] for s in statuses if s is not None)
    chains = await asyncio.gather(*(block_hashes(net, n, range(1, top + 1)) for n in net.names))
    assert all(chain == chains[0] for chain in chains), "two nodes hold different blocks at one height"


@pytest.mark.parametrize("behaviour", ["bad-sig", "vote-unknown", "silent", "stale", "garbage"])
async def test_a_misbehaving_backup_slows_nothing_down_and_rejoins_when_switched_off(
    net: Cluster, admin: AdminClient, behaviour: str
) -> None:
    current = await primary(net)
    liar = next(n for n in VALIDATORS if n != current)
    await admin.byzantine(liar, behaviour)
    try:
        await commit(net, current, f"while {liar} runs {behaviour}")
        await asyncio.sleep(0.5)  # let the periodic part (stale replays, garbage bursts) act a few times
        await commit(net, current, f"still while {liar} runs {behaviour}")
    finally:
        await admin.byzantine(liar, None)
    await commit(net, liar, f"after {liar} stopped {behaviour}")
    log = (net.root / liar / "node.log").read_text()
    assert f"Byzantine behaviour '{behaviour}' switched on" in log
    assert f"Byzantine behaviour '{behaviour}' switched off" in log
    if behaviour == "garbage":  # the others saw its frames and penalised it
        logs = [(net.root / n / "node.log").read_text() for n in VALIDATORS if n != liar]
        assert any(f"undecodable frame from {liar}" in text for text in logs)


async def test_a_primary_whose_clock_runs_a_minute_ahead_is_refused_and_replaced(
    net: Cluster, admin: AdminClient
) -> None:
    skewed = await primary(net)
    before = await net.status("node1")
    assert before is not None
    state = await fault(net, "clock", skewed, "--skew-ms", "60000")
    assert state[skewed]["clock_skew_ms"] == 60_000
    try:
        other = next(n for n in VALIDATORS if n != skewed)
        body = await commit(net, other, "proposed by whoever replaces the skewed primary", timeout=25)
        code, block = await net.get(other, f"/blocks/{body['height']}")
        assert code == 200 and block["header"]["proposer"] != skewed, block["header"]
        assert abs(block["header"]["timestamp_ms"] - time.time() * 1000) < 30_000
        after = await net.status(other)
        assert after is not None and after["view"] > before["view"] and after["primary"] != skewed
    finally:
        await admin.clock(skewed, 0)
    await commit(net, skewed, "the skewed node's clock is right again")
