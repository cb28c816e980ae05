"""The admin interface of real node processes: only the operator's signed requests pass, and link faults set
through it (by ``medchain fault``) partition a live 4-validator cluster and heal it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from click.testing import CliRunner

from node.api.admin import ADMIN_DOMAIN, NONCE_HEADER, SIGNATURE_HEADER, TIME_HEADER, admin_payload, sign_request
from node.cli.main import main as cli
from node.lab.testnet import operator_key
from primitives.hashing import sha256
from primitives.signing import SigningKey
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with Cluster(tmp_path_factory.mktemp("admin"), validators=4) as cluster:
        await commit(cluster, "node0", "ready")
        yield cluster


async def commit(cluster: Cluster, name: str, label: str) -> None:
    status, body = await cluster.post_tx(name, cluster.anchor_tx(label), wait=True, timeout=20)
    assert status == 200 and body["status"] == "committed", (status, body)


async def admin_post(cluster: Cluster, name: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    assert cluster.session is not None
    url = cluster.api(name) + path
    async with cluster.session.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as r:
        return r.status, await r.json()


def signed(key: SigningKey, path: str, body: bytes) -> dict[str, str]:
    return sign_request(key, "test-net", "POST", path, body)


async def fault(cluster: Cluster, *args: str) -> Any:
    """``medchain fault ARGS --dir ROOT --json`` (in a thread: the command runs its own event loop)."""
    argv = ["fault", *args, "--dir", str(cluster.root), "--json"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, argv)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def tx_committed(cluster: Cluster, name: str, tx: bytes, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await cluster.get(name, f"/txs/{sha256(tx).hex()}")
        if status == 200 and body.get("status") == "committed":
            return True
        await asyncio.sleep(0.1)
    return False


BODY = json.dumps({"peer": "node1", "delay_ms": 1}).encode()


async def test_the_operators_signed_request_sets_a_link_fault(net: Cluster) -> None:
    headers = signed(operator_key(net.root), "/admin/links", BODY)
    status, body = await admin_post(net, "node0", "/admin/links", BODY, headers)
    assert status == 200 and body["links"]["node1"]["delay_ms"] == 1, body
    clear = b"{}"
    status, body = await admin_post(
        net, "node0", "/admin/links/clear", clear, signed(operator_key(net.root), "/admin/links/clear", clear)
    )
    assert status == 200 and body == {"links": {}, "byzantine": None, "clock_skew_ms": 0}, body


async def test_an_unsigned_request_is_refused(net: Cluster) -> None:
    status, body = await admin_post(net, "node0", "/admin/links", BODY, {})
    assert status == 403 and body["error"] == "forbidden" and "must be signed" in body["message"], body


async def test_a_request_signed_by_another_key_is_refused(net: Cluster) -> None:
    status, body = await admin_post(net, "node0", "/admin/links", BODY, signed(net.client, "/admin/links", BODY))
    assert status == 403 and "not signed by this network's operator key" in body["message"], body


async def test_a_request_signed_for_another_path_is_refused(net: Cluster) -> None:
    headers = signed(operator_key(net.root), "/admin/links/clear", BODY)
    status, body = await admin_post(net, "node0", "/admin/links", BODY, headers)
    assert status == 403 and "not signed by this network's operator key" in body["message"], body


async def test_a_replayed_request_is_refused(net: Cluster) -> None:
    headers = signed(operator_key(net.root), "/admin/links/clear", b"{}")
    first = await admin_post(net, "node0", "/admin/links/clear", b"{}", headers)
    assert first[0] == 200, first
    status, body = await admin_post(net, "node0", "/admin/links/clear", b"{}", headers)
    assert status == 403 and "replayed" in body["message"], body


async def test_a_stale_request_is_refused(net: Cluster) -> None:
    key = operator_key(net.root)
    old_ms, nonce = int(time.time() * 1000) - 120_000, bytes(16)
    signature = key.sign(ADMIN_DOMAIN, "test-net", admin_payload("POST", "/admin/links", BODY, old_ms, nonce))
    headers = {TIME_HEADER: str(old_ms), NONCE_HEADER: nonce.hex(), SIGNATURE_HEADER: signature.hex()}
    status, body = await admin_post(net, "node0", "/admin/links", BODY, headers)
    assert status == 403 and "stale" in body["message"], body


async def test_a_two_two_partition_stops_commits_and_heal_lets_them_resume(net: Cluster) -> None:
    result = await fault(net, "partition", "node0,node1", "/", "node2,node3")
    assert result["node0"] == {p: {**result["node0"][p], "cut": True} for p in ("node2", "node3")}
    assert set(result) == {"node0", "node1", "node2", "node3"}
    try:
        tx = net.anchor_tx("during the partition")
        status, body = await net.post_tx("node0", tx, wait=True, timeout=3)
        assert status == 504 and body["error"] == "timeout", (status, body)
    finally:
        healed = await fault(net, "heal")
    assert healed == {n: {} for n in net.names}
    assert await tx_committed(net, "node0", tx, timeout=60), "the anchor sent during the partition never committed"


async def test_one_node_cut_off_leaves_the_other_three_committing(net: Cluster) -> None:
    try:
        for peer in ("node0", "node1", "node2"):
            rules = await fault(net, "link", "node3", peer, "--cut")
            assert rules["node3"][peer]["cut"] is True
        status, body = await net.post_tx("node0", net.anchor_tx("while node3 is cut off"), wait=True, timeout=20)
        assert status == 200 and body["status"] == "committed", (status, body)
        status, body = await net.post_tx("node3", net.anchor_tx("sent to the cut-off node"), wait=True, timeout=3)
        assert status == 504 and body["error"] == "timeout", (status, body)
    finally:
        await fault(net, "heal")
