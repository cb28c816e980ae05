"""A live consortium changes its validators under load: real processes, sockets, TLS and LevelDB.

Four validators (one per organisation of configs/consortium-4.toml) commit a
steady stream of anchors.  A new hospital joins: its node is prepared with
'medchain node join' and started, St Mary's admin proposes it, two other admins
approve, and it votes from the stated height.  Then City General is removed the
same way, the new hospital's admin among the approvers.  Through
both switches: no fork, no acknowledged transaction lost, and a proof of a
block after both verifies offline from genesis alone; afterwards the new
validator restarts from its store, and the removed node, wiped, rebuilds the
chain from scratch across both changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from jsonschema import Draft202012Validator

from node.cli.main import main
from node.lab import cluster as clusters
from node.proofs import InvalidProof, check_proof
from tests.harness import Cluster, free_base_port

CONSORTIUM = Path(__file__).parents[2] / "configs" / "consortium-4.toml"
JOINER = "riverside"
REMOVED = "city-general"
LOAD_NODES = ["regulator", "st-mary", "northside-pharmacy"]


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, f"medchain {' '.join(args[:3])}: {result.output}"
    return json.loads(result.output)


async def cli(*args: str) -> Any:
    """A medchain command in a thread: the load keeps running on the loop meanwhile."""
    return await asyncio.to_thread(_cli, *args)


async def _signed(c: Cluster, name: str) -> int:
    reply = await c.node(name).send("GET", "/metrics", timeout=5)
    found = re.search(r'^medchain_consensus_events_total\{event="signed"\} (\S+)$', reply.text, re.MULTILINE)
    return int(float(found[1])) if found else 0


async def _hashes(c: Cluster, name: str, top: int) -> dict[int, str]:
    out: dict[int, str] = {}
    before = top + 1
    while before > 1:
        code, page = await c.get(name, f"/blocks?limit=100&before={before}", timeout=10)
        assert code == 200, page
        if not page:
            break
        out.update({b["height"]: b["hash"] for b in page})
        before = page[-1]["height"]
    return out


async def test_a_live_cluster_adds_a_validator_then_removes_one_under_load(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with Cluster(root, consortium=CONSORTIUM, progress_timeout_ms=1500) as c:
        originals = list(c.names)
        acked: dict[str, int] = {}
        stop = asyncio.Event()

        async def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                tx = c.anchor_tx(f"load {worker} {n} {time.time_ns()}")
                with contextlib.suppress(Exception):
                    code, body = await c.post_tx(LOAD_NODES[(worker + n) % len(LOAD_NODES)], tx, wait=True, timeout=20)
                    if code == 200 and body.get("status") == "committed":
                        acked[body["tx_id"]] = body["height"]

        workers = [asyncio.create_task(load(w)) for w in range(6)]
        try:
            await c.wait_all(lambda s: s is not None and s["height"] >= 3, 30, "the load to commit")
            # -- a fifth node joins: prepared, started, proposed, approved
            base = free_base_port(1)
            home = root / JOINER
            peers = [f"--peer={n.name}={n.p2p}" for n in clusters.load_cluster(root)]
            admin = root / "orgs" / JOINER / "admin.json"
            await cli("key", "new", "--out", str(admin), "--json")
            joined = await cli("node", "join", "--home", str(home), "--genesis", str(root / "genesis.json"),
                               "--org", JOINER, "--org-name", "Riverside Hospital", "--org-kind", "hospital",
                               "--org-admin", str(admin), "--p2p", f"127.0.0.1:{base}",
                               "--api", f"127.0.0.1:{base + 1}", *peers)
            assert joined["name"] == JOINER and joined["org_kind"] == "hospital" and (home / "join.json").exists()
            added = await cli("cluster", "add", JOINER, "--dir", str(root), "--json")
            assert added["name"] == JOINER and added["action"] == "add"
            status = await c.status(JOINER)
            assert status is not None and status["role"] == "observer"  # it follows until the change adds it
            switch_add = await _propose_and_approve(
                c, ["validators", "propose-add", "--joiner", str(home / "join.json")], "st-mary",
                ["regulator", "city-general"], after=25, needed=3,
            )
            everyone = [*originals, JOINER]
            await c.wait_all(lambda s: s is not None and s["height"] >= switch_add + 8, 90,
                             "every node past the addition", everyone)
            status = await c.status(JOINER)
            assert status is not None and status["role"] == "validator"
            assert await _signed(c, JOINER) > 0, "the new validator never signed a vote"
            code, listed = await c.get("regulator", "/validators")
            assert [v["name"] for v in listed["validators"]][-1] == JOINER
            code, orgs = await c.get("regulator", "/orgs")
            (riverside,) = [o for o in orgs if o["id"] == JOINER]
            assert riverside["kind"] == "hospital" and riverside["nodes"] == [JOINER]

            # -- an original validator leaves
            switch_remove = await _propose_and_approve(
                c, ["validators", "propose-remove", REMOVED], "regulator", ["northside-pharmacy", "st-mary", JOINER],
                after=15, needed=4,
            )
            await c.wait_all(lambda s: s is not None and s["height"] >= switch_remove + 3, 90,
                             "every node past the removal", everyone)
            removed_signed = await _signed(c, REMOVED)
            await c.wait_all(lambda s: s is not None and s["height"] >= switch_remove + 10, 90,
                             "every node further past the removal", everyone)
            assert await _signed(c, REMOVED) == removed_signed, "the removed validator kept signing"
            status = await c.status(REMOVED)
            assert status is not None and status["role"] == "observer"
            code, listed = await c.get(JOINER, "/validators")
            assert REMOVED not in [v["name"] for v in listed["validators"]]
            code, network = await c.get("regulator", "/network")
            roles = {m["name"]: m["role"] for m in network["members"]}
            assert roles[JOINER] == "validator" and roles[REMOVED] == "observer", roles
            assert [ch["height"] for ch in listed["changes"]] == [switch_add, switch_remove]
            await c.wait_all(lambda s: s is not None and s["height"] >= switch_remove + 12, 60, "more load")
        finally:
            stop.set()
            await asyncio.gather(*workers)

        # -- after both changes, the new validator crashes and restarts from its store, and the removed node's
        # chain is wiped: it rebuilds it from its peers, each certificate checked against the set of its height
        await cli("cluster", "kill", JOINER, "--dir", str(root), "--json")
        await cli("cluster", "restart", JOINER, "--dir", str(root), "--json")
        await cli("cluster", "wipe", REMOVED, "--dir", str(root), "--json")
        code, body = await c.post_tx("st-mary", c.anchor_tx("after the restarts"), wait=True, timeout=30)
        assert code == 200 and body["status"] == "committed", body
        acked[body["tx_id"]] = body["height"]
        await c.wait_all(lambda s: s is not None and s["height"] >= body["height"], 60,
                         "the restarted and the wiped node to catch up", everyone)

        # -- nothing acknowledged is lost, and every node holds the same chain
        top = min(s["height"] for s in await c.wait_all(lambda s: s is not None, 10, "statuses", everyone))
        chains = [await _hashes(c, name, top) for name in everyone]
        assert all(chain == chains[0] for chain in chains[1:]), "two nodes hold different blocks"
        assert len(chains[0]) == top
        assert len(acked) > 100, f"only {len(acked)} transactions were acknowledged"
        for name in (JOINER, REMOVED, "regulator"):
            for tid, height in acked.items():
                code, found = await c.get(name, f"/txs/{tid}")
                assert found["status"] == "committed" and found["height"] == height, (name, tid, found)

        # -- a proof of a block after both changes verifies offline, from genesis alone
        late = next(tid for tid, h in sorted(acked.items(), key=lambda x: -x[1]) if h > switch_remove)
        code, doc = await c.get(JOINER, f"/proofs/{late}")
        assert code == 200 and len(doc["validator_changes"]) == 2
        proven = check_proof(doc, c.genesis)
        assert proven.height > switch_remove
        proof_file = tmp_path / "proof.json"
        proof_file.write_text(json.dumps(doc))
        verified = await cli("proof", "verify", str(proof_file), "--genesis", str(root / "genesis.json"), "--json")
        assert verified["valid"] is True
        bare = {k: v for k, v in doc.items() if k != "validator_changes"}
        try:
            check_proof(bare, c.genesis)
        except InvalidProof as exc:
            assert "invalid commit certificate" in str(exc)
        else:
            raise AssertionError("a proof after the changes verified without them")


async def _propose_and_approve(c: Cluster, propose: list[str], proposer: str, approvers: list[str],
                               after: int, needed: int) -> int:
    """Propose with ``proposer``'s admin key, approve with the others'; the height the change takes effect."""
    def admin(org: str) -> str:
        return str(c.root / "orgs" / org / "admin.json")

    node = ["--node", c.api("regulator"), "--json"]
    proposed = await cli(*propose, *node, "--key", admin(proposer), "--after", str(after))
    assert proposed["status"] == "committed" and proposed["code"] == "ok", proposed
    pending = await cli("validators", "pending", *node)
    (entry,) = [p for p in pending if p["proposal"] == proposed["tx_id"]]
    assert (entry["counted"], entry["needed"]) == (1, needed)
    for org in approvers:
        approved = await cli("validators", "approve", proposed["tx_id"], *node, "--key", admin(org))
        assert approved["status"] == "committed" and approved["code"] == "ok", approved
    listed = await cli("validators", "list", *node)
    assert listed["changes"], "the approvals did not schedule the change"
    height: int = listed["changes"][-1]["height"]
    assert height == entry["height"]
    return height


async def test_an_observer_is_promoted_to_validator_and_votes(tmp_path: Path) -> None:
    """Acme's node runs as an observer; the consortium makes it a validator, and it votes from the stated height."""
    consortium = tmp_path / "consortium.toml"
    text = CONSORTIUM.read_text()
    acme = 'id = "acme-pharma"\nname = "Acme Pharmaceuticals"\nkind = "manufacturer"\nnode = "none"'
    assert acme in text
    consortium.write_text(text.replace(acme, acme.replace('node = "none"', 'node = "observer"')))
    root = tmp_path / "net"
    async with Cluster(root, consortium=consortium) as c:
        status = await c.status("acme-pharma")
        assert status is not None and status["role"] == "observer"
        code, body = await c.post_tx("regulator", c.anchor_tx("before"), wait=True)
        assert code == 200 and body["status"] == "committed"
        node = ["--node", c.api("regulator"), "--json"]
        admin = str(root / "orgs" / "acme-pharma" / "admin.json")
        proposed = await cli("validators", "propose-promote", "acme-pharma", *node, "--key", admin, "--after", "6")
        assert proposed["status"] == "committed" and proposed["code"] == "ok", proposed
        # Acme runs no validator: its own proposal counts for nothing, three validator organisations decide
        for n, org in enumerate(("regulator", "st-mary", "city-general"), 1):
            if n == 3:  # two of the three needed: a proposal without its quorum schedules nothing
                (entry,) = await cli("validators", "pending", *node)
                assert (entry["counted"], entry["needed"], entry["status"]) == (2, 3, "pending")
                assert (await cli("validators", "list", *node))["changes"] == []
            approved = await cli("validators", "approve", proposed["tx_id"], *node,
                                 "--key", str(root / "orgs" / org / "admin.json"))
            assert approved["code"] == "ok", approved
        listed = await cli("validators", "list", *node)
        switch = listed["changes"][-1]["height"]
        while (await c.status("regulator") or {}).get("height", 0) < switch + 3:
            await c.post_tx("st-mary", c.anchor_tx(f"load {time.time_ns()}"), wait=True)
        await c.wait_all(lambda s: s is not None and s["height"] >= switch + 3, 30, "every node past the switch")
        status = await c.status("acme-pharma")
        assert status is not None and status["role"] == "validator"
        assert await _signed(c, "acme-pharma") > 0, "the promoted node never voted"
        code, listed = await c.get("regulator", "/validators")  # a promotion among the proposals: as described
        assert [p["action"] for p in listed["proposals"]] == ["promote"]
        components = (await c.get("regulator", "/openapi.json"))[1]["components"]
        Draft202012Validator({"$ref": "#/components/schemas/Validators", "components": components}).validate(listed)
        code, body = await c.post_tx("acme-pharma", c.anchor_tx("through the promoted node"), wait=True)
        assert code == 200 and body["status"] == "committed", body
