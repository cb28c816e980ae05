"""End-to-end: a real 4-validator cluster of separate processes over TLS, on real LevelDB."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.main import main as cli
from node.lab import cluster as clusters
from tests.harness import Cluster

pytestmark = pytest.mark.asyncio


async def _submit_all(c: Cluster, txs: list[bytes], names: list[str], concurrency: int = 64) -> list[tuple[int, dict]]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, tx: bytes) -> tuple[int, dict]:
        async with sem:
            for _ in range(200):
                code, body = await c.post_tx(names[i % len(names)], tx)
                if code != 503:
                    return code, body
                await asyncio.sleep(0.05)
            return code, body

    return list(await asyncio.gather(*(one(i, tx) for i, tx in enumerate(txs))))


async def _chain_tx_ids(c: Cluster, name: str, height: int) -> list[str]:
    ids: list[str] = []
    for h in range(1, height + 1):
        code, block = await c.get(name, f"/blocks/{h}")
        assert code == 200, block
        ids.extend(block["txs"])
    return ids


async def _converged(c: Cluster, names: list[str], at_least: int, timeout: float = 60) -> dict:
    statuses = await c.wait_all(
        lambda s: s is not None and s["height"] >= at_least, timeout, f"height >= {at_least}", names
    )
    # then wait until every node sits at the same head
    statuses = await c.wait_all(
        lambda s: s is not None, 1, "status", names
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        statuses = [await c.status(n) for n in names]
        heads = {(s["height"], s["head_hash"], s["app_hash"]) for s in statuses if s}
        if len(heads) == 1 and all(statuses):
            return statuses[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"nodes did not converge: {statuses}")


async def test_four_validators_commit_two_thousand_anchors_submitted_round_robin(tmp_path: Path):
    async with Cluster(tmp_path / "net") as c:
        names = c.names
        txs = [c.anchor_tx(f"doc-{i}") for i in range(2000)]
        acked = await asyncio.gather(*(c.post_tx(names[i % 4], txs[i], wait=True) for i in range(0, 40)))
        bad = [(code, body) for code, body in acked if code != 200 or body["status"] != "committed"]
        assert not bad, bad
        results = await _submit_all(c, txs[40:], names)
        assert all(code == 202 for code, _ in results), [r for r in results if r[0] != 202][:3]
        # every node ends at the same head and state, holding every transaction
        from node.transaction import tx_id

        await c.wait_all(
            lambda st: st is not None and st["mempool"]["txs"] == 0, 120, "every mempool to drain", names
        )
        head = await _converged(c, names, at_least=1)
        ids = await _chain_tx_ids(c, names[2], head["height"])
        assert len(ids) == len(set(ids)), "a transaction was committed twice"
        wanted = {tx_id(t).hex() for t in txs}
        assert wanted <= set(ids)
        for _code, body in acked:
            assert ids.count(body["tx_id"]) == 1
        # a replay of a committed transaction is refused
        code, body = await c.post_tx(names[3], txs[0])
        assert code == 409 and body["error"] == "already-committed"


async def test_proofs_verify_offline_and_a_changed_byte_does_not(tmp_path: Path):
    async with Cluster(tmp_path / "net") as c:
        code, body = await c.post_tx("node1", c.anchor_tx("trial protocol"), wait=True)
        assert code == 200
        await c.wait_all(lambda s: s is not None and s["height"] >= body["height"], 20, "node2 to commit", ["node2"])
        code, proof = await c.get("node2", f"/proofs/{body['tx_id']}")
        assert code == 200
        good = tmp_path / "proof.json"
        good.write_text(json.dumps(proof))
        genesis = str(tmp_path / "net" / "genesis.json")
        result = CliRunner().invoke(cli, ["proof", "verify", str(good), "--genesis", genesis])
        assert result.exit_code == 0, result.output
        for field in ("tx", "header", "certificate", "merkle_proof"):
            bad = dict(proof)
            raw = bytearray(bytes.fromhex(bad[field]))
            raw[len(raw) // 2] ^= 0x01
            bad[field] = raw.hex()
            path = tmp_path / f"bad-{field}.json"
            path.write_text(json.dumps(bad))
            result = CliRunner().invoke(cli, ["proof", "verify", str(path), "--genesis", genesis])
            assert result.exit_code != 0, field


async def test_garbage_to_the_api_and_the_p2p_port_is_refused_and_the_cluster_keeps_committing(tmp_path: Path):
    async with Cluster(tmp_path / "net") as c:
        node0 = c.node("node0")
        cases = [
            ("POST", "/txs", b"\x00\x01garbage", "application/octet-stream", 400),
            ("POST", "/txs", b"{not json", "application/json", 400),
            ("POST", "/txs", b"", "application/octet-stream", 400),
            ("POST", "/txs", b"x" * (300 * 1024), "application/octet-stream", 413),
            ("GET", "/blocks/notanumber", None, None, 400),
            ("GET", "/blocks/999999", None, None, 404),
            ("GET", "/txs/zz", None, None, 400),
            ("GET", "/proofs/" + "00" * 32, None, None, 404),
        ]
        for method, path, data, ctype, expected in cases:
            reply = await node0.send(method, path, data=data, content_type=ctype)
            body = reply.json()
            assert reply.status == expected, (path, reply.status, body)
            assert set(body) >= {"error", "message"}
        # random bytes, and a TLS client hello with a bogus certificate, at the P2P port
        p2p = next(n.p2p for n in clusters.load_cluster(c.root) if n.name == "node0")
        host, port = p2p.rsplit(":", 1)
        for payload in (random.randbytes(4096), b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01" + random.randbytes(500)):
            with socket.create_connection((host, int(port)), timeout=2) as s:
                s.sendall(payload)
                s.settimeout(2)
                with contextlib.suppress(TimeoutError, ConnectionResetError):
                    s.recv(100)
        code, body = await c.post_tx("node0", c.anchor_tx("still alive"), wait=True)
        assert code == 200 and body["status"] == "committed"
