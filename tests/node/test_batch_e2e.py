"""POST /txs/batch on one real 4-validator cluster (processes, TLS, LevelDB), through ``NodeClient.submit_batch``.

The cluster's batch limits are lowered in its config files ([api] batch_max_txs
= 50, batch_max_bytes = 64 KiB) so the 413s are cheap to reach.  In order: a
batch of anchors commits with one result per transaction; a batch mixing good
transactions with malformed, badly signed, replayed and repeated ones gets a
result for each and commits the good ones; oversized batches (count, bytes)
and undecodable bodies are refused whole, with nothing admitted; last, with
two validators paused (no quorum, so nothing can commit), a commit wait ends
in per-transaction timeouts, and once they are resumed the node commits them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from node.api.batch import MEDIA_TYPE, encode_batch
from node.client.http import ApiFailure, SyncNodeClient
from node.documents import BatchReply
from node.lab import cluster as clusters
from node.transaction import tx_id
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_TXS = 50
MAX_BYTES = 64 * 1024


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("batch"), validators=4)
    for home in clusters.node_homes(cluster.root):
        text = (home / "config.toml").read_text()
        defaults = "[api]\nbatch_max_txs = 1000\nbatch_max_bytes = 4194304\n"
        assert defaults in text, "the testnet's config no longer writes the default batch limits"
        (home / "config.toml").write_text(
            text.replace(defaults, f"[api]\nbatch_max_txs = {MAX_TXS}\nbatch_max_bytes = {MAX_BYTES}\n"))
    async with cluster:
        yield cluster


def anchors(net: Cluster, label: str, count: int) -> list[bytes]:
    return [net.anchor_tx(f"{label} {i}") for i in range(count)]


def bad_signature(tx: bytes) -> bytes:
    """``tx`` with one bit of its signature (the encoding's last bytes) flipped: it still decodes."""
    return tx[:-1] + bytes([tx[-1] ^ 1])


async def statuses(net: Cluster, txs: list[bytes]) -> list[str]:
    return [(await net.get(net.names[0], f"/txs/{tx_id(tx).hex()}"))[1]["status"] for tx in txs]


def check_ids(reply: BatchReply, txs: list[bytes]) -> None:
    assert reply["count"] == len(txs) == len(reply["results"])
    assert [r["tx_id"] for r in reply["results"]] == [tx_id(tx).hex() for tx in txs]
    counted: dict[str, int] = {}
    for r in reply["results"]:
        counted[r["status"]] = counted.get(r["status"], 0) + 1
    assert {k: v for k, v in reply["counts"].items() if v} == counted


async def test_a_batch_of_anchors_commits_each_with_its_own_result(net: Cluster) -> None:
    txs = anchors(net, "commit", 30)
    reply = await net.node(net.names[0]).submit_batch(txs, wait=True, timeout=30)
    check_ids(reply, txs)
    assert reply["counts"]["committed"] == 30, reply["counts"]
    for r in reply["results"]:
        assert r["status"] == "committed" and r["code"] == "ok" and r["height"] >= 1, r
    where = {(r["height"], r["index"]) for r in reply["results"]}
    assert len(where) == 30, "two transactions at the same place in the chain"
    assert await statuses(net, txs) == ["committed"] * 30


async def test_a_batch_without_wait_answers_202_with_each_pending(net: Cluster) -> None:
    txs = anchors(net, "no wait", 5)
    reply = await net.node(net.names[1]).send("POST", "/txs/batch", data=encode_batch(txs), content_type=MEDIA_TYPE)
    assert reply.status == 202, reply.text
    body = reply.json()
    check_ids(body, txs)
    assert [r["status"] for r in body["results"]] == ["pending"] * 5
    again = await net.node(net.names[1]).submit_batch(txs, wait=True, timeout=30)
    assert [r["status"] for r in again["results"]] == ["committed"] * 5


async def test_partial_failure_gives_each_its_result_and_commits_the_rest(net: Cluster) -> None:
    committed = net.anchor_tx("committed before")
    status, _ = await net.post_tx(net.names[0], committed, wait=True, timeout=30)
    assert status == 200
    good = anchors(net, "partial", 4)
    txs = [good[0], b"\x01\x02 not a transaction", good[1], bad_signature(good[2]), committed, good[0], good[3]]
    client = net.node(net.names[0])

    reply = await client.submit_batch(txs, wait=True, timeout=30)
    check_ids(reply, txs)
    got = [(r["status"], r.get("error")) for r in reply["results"]]
    assert got == [
        ("committed", None), ("refused", "malformed"), ("committed", None), ("refused", "bad-signature"),
        ("committed", None), ("refused", "duplicate"), ("committed", None),
    ], reply["results"]
    assert "item 0" in reply["results"][5]["message"]
    assert all(r["message"] for r in reply["results"] if r["status"] == "refused")
    assert await statuses(net, [good[0], good[1], good[3]]) == ["committed"] * 3
    assert await statuses(net, [good[2]]) == ["unknown"]

    # Without a wait, a replay of a committed transaction is refused as POST /txs refuses it.
    replay = await client.send("POST", "/txs/batch", data=encode_batch([committed]), content_type=MEDIA_TYPE)
    assert replay.status == 202
    assert [(r["status"], r.get("error")) for r in replay.json()["results"]] == [("refused", "already-committed")]


async def test_a_json_batch_is_read_as_well(net: Cluster) -> None:
    txs = anchors(net, "json", 3)
    reply = await net.node(net.names[2]).send("POST", "/txs/batch?wait=commit&timeout=30",
                                              doc={"txs": [tx.hex() for tx in txs]}, timeout=40)
    assert reply.status == 200, reply.text
    assert [r["status"] for r in reply.json()["results"]] == ["committed"] * 3


async def test_the_synchronous_client_submits_a_batch_too(net: Cluster) -> None:
    txs = anchors(net, "sync", 2)

    def submit() -> BatchReply:
        with SyncNodeClient(net.api(net.names[3])) as node:
            return node.submit_batch(txs, wait=True, timeout=30)

    reply = await asyncio.to_thread(submit)
    check_ids(reply, txs)
    assert reply["counts"]["committed"] == 2, reply


async def refused_whole(net: Cluster, body: bytes, content_type: str = MEDIA_TYPE) -> tuple[int, dict[str, Any]]:
    reply = await net.node(net.names[0]).send("POST", "/txs/batch", data=body, content_type=content_type)
    answer = reply.json()
    assert set(answer) == {"error", "message"} and "\n" not in answer["message"], answer
    return reply.status, answer


async def test_an_oversized_batch_is_refused_413_naming_the_limit_and_nothing_is_admitted(net: Cluster) -> None:
    many = anchors(net, "too many", MAX_TXS + 1)
    status, answer = await refused_whole(net, encode_batch(many))
    assert (status, answer["error"]) == (413, "too-large"), answer
    assert f"{MAX_TXS + 1} transactions" in answer["message"] and "batch_max_txs" in answer["message"]
    with pytest.raises(ApiFailure) as failure:
        await net.node(net.names[0]).submit_batch(many)
    assert failure.value.status == 413

    heavy = [net.anchor_tx("heavy"), b"\x00" * MAX_BYTES]
    status, answer = await refused_whole(net, encode_batch(heavy))
    assert (status, answer["error"]) == (413, "too-large"), answer
    assert f"{MAX_BYTES} bytes" in answer["message"] and "batch_max_bytes" in answer["message"]
    assert set(await statuses(net, [*many, heavy[0]])) == {"unknown"}


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"\xc1 garbage", MEDIA_TYPE, "bad-batch"),
        (b"", MEDIA_TYPE, "empty-body"),
        (encode_batch([]), MEDIA_TYPE, "empty-batch"),
        (b'{"txs": "00"}', "application/json", "bad-json"),
        (b"{not json", "application/json", "bad-json"),
    ],
)
async def test_an_undecodable_body_is_a_400(net: Cluster, body: bytes, content_type: str, code: str) -> None:
    status, answer = await refused_whole(net, body, content_type)
    assert (status, answer["error"]) == (400, code), answer


async def test_a_commit_wait_without_quorum_ends_in_per_transaction_timeouts(net: Cluster) -> None:
    watcher, *others = net.names
    committed = anchors(net, "before the pause", 1)
    assert (await net.node(watcher).submit_batch(committed, wait=True))["counts"]["committed"] == 1
    stalled = anchors(net, "stalled", 3)
    for name in others[:2]:  # two of four validators: no quorum, nothing commits
        net.pause(name)
    try:
        reply = await net.node(watcher).submit_batch([*stalled, *committed], wait=True, timeout=1.5)
    finally:
        for name in others[:2]:
            net.resume(name)
    check_ids(reply, [*stalled, *committed])
    assert [r["status"] for r in reply["results"]] == ["timeout"] * 3 + ["committed"], reply["results"]
    assert "1.5s" in reply["results"][0]["message"]

    # The node goes on: the stalled transactions commit once the quorum is back, and a new batch does too.
    after = await net.node(watcher).submit_batch([*stalled, net.anchor_tx("after the pause")], wait=True, timeout=60)
    assert [r["status"] for r in after["results"]] == ["committed"] * 4, after["results"]
