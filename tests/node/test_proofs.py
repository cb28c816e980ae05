"""Proofs check every field they show, and say what they prove: on a real 4-validator consortium.

One cluster serves the module: the demo story fills it with records, reads, an
erasure and a pack's journey; the tests take real proofs from its nodes, tamper
with them, bind them to the events they are attached to, and verify them
offline through ``medchain proof verify``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from click.testing import CliRunner, Result

from node.cli.main import main as cli
from node.genesis import Genesis, load_genesis
from node.healthcare.claims import InvalidProof, check_pack_history, check_record_history, read_claim
from node.healthcare.documents import PackDocument, ProvenRecordDocument, RecordDocument
from node.lab.counterfeit import Network
from node.lab.story import Story
from node.proofs import check_proof
from tests.harness import Cluster
from tests.node.shapes import assert_matches

CONSORTIUM = Path(__file__).resolve().parents[2] / "configs" / "consortium-4.toml"
PROTOCOL = "trial protocol NCT-0042 v3\n"
pytestmark = pytest.mark.asyncio(loop_scope="module")


class Net:
    def __init__(self, cluster: Cluster, network: Network, anchor: dict[str, Any], steps: dict[str, Any]) -> None:
        self.cluster = cluster
        self.network = network
        self.anchor = anchor
        self.steps = steps
        self.genesis_path = network.root / "genesis.json"
        self.genesis: Genesis = load_genesis(self.genesis_path)

    async def get(self, path: str) -> Any:
        status, body = await self.cluster.get(self.cluster.names[0], path)
        assert status == 200, (path, body)
        return body


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    root = tmp_path_factory.mktemp("proofs")
    async with Cluster(root, consortium=CONSORTIUM) as cluster:
        await cluster.wait_all(lambda s: s is not None and len(s["peers"]) >= 3, 30, "a connected cluster")
        network = Network.load(root)
        steps = {s.title: s.data for s in await Story(network, say=lambda line: None).play()}
        status, anchored = await cluster.post_tx(cluster.names[0], cluster.anchor_tx(PROTOCOL), wait=True)
        assert status == 200 and anchored["status"] == "committed", anchored
        yield Net(cluster, network, anchored, steps)


def verify_cli(proof: Any, tmp: Path, *extra: str) -> Result:
    path = tmp / "proof.json"
    path.write_text(json.dumps(proof))
    return CliRunner().invoke(cli, ["proof", "verify", str(path), *extra])


async def cli_at(net: Net, *args: str) -> Result:
    """A client command against the first node, off the event loop (the CLI runs its own)."""
    api = net.cluster.api(net.cluster.names[0])
    return await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--node", api])


def history_cli(history: Any, net: Net, tmp: Path) -> Result:
    path = tmp / "history.json"
    path.write_text(json.dumps(history))
    return CliRunner().invoke(cli, ["proof", "history", str(path), "--genesis", str(net.genesis_path), "--json"])


def tampered(value: Any) -> Any:
    """One small change of a proof member: a hex digit, a number, a name."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise AssertionError(f"no tampering for {value!r}")
    if isinstance(value, int):
        return value + 1
    if all(c in "0123456789abcdef" for c in value) and value:
        mid = len(value) // 2
        return value[:mid] + ("0" if value[mid] != "0" else "1") + value[mid + 1:]
    return value + "x"


async def test_every_field_of_a_real_proof_is_checked(net: Net, tmp_path: Path) -> None:
    proof = await net.get(f"/proofs/{net.anchor['tx_id']}")
    genesis = str(net.genesis_path)
    good = verify_cli(proof, tmp_path, "--genesis", genesis, "--json")
    assert good.exit_code == 0, good.output
    shown = json.loads(good.stdout)
    assert (shown["height"], shown["tx_id"], shown["chain_id"]) == (
        net.anchor["height"], net.anchor["tx_id"], net.genesis.chain_id)
    assert shown["block_hash"] == proof["block_hash"] and shown["tx_index"] == proof["tx_index"]
    for name in proof:
        bad = dict(proof, **{name: tampered(proof[name])})
        with pytest.raises(InvalidProof):
            check_proof(bad, net.genesis)
        refused = verify_cli(bad, tmp_path, "--genesis", genesis, "--json")
        assert refused.exit_code == 1, f"tampered {name} still verified: {refused.output}"
        assert json.loads(refused.stdout)["valid"] is False
        retyped = dict(proof, **{name: str(proof[name]) if isinstance(proof[name], int) else [proof[name]]})
        with pytest.raises(InvalidProof):
            check_proof(retyped, net.genesis)
        missing = {k: v for k, v in proof.items() if k != name}
        with pytest.raises(InvalidProof):
            check_proof(missing, net.genesis)
    with pytest.raises(InvalidProof, match="unknown member"):
        check_proof({**proof, "kind": "Dispense"}, net.genesis)


async def test_an_anchor_proof_names_the_document_it_proves(net: Net, tmp_path: Path) -> None:
    proof = await net.get(f"/proofs/{net.anchor['tx_id']}")
    genesis = str(net.genesis_path)
    doc = tmp_path / "protocol.txt"
    doc.write_text(PROTOCOL)
    proven = verify_cli(proof, tmp_path, "--genesis", genesis, "--file", str(doc), "--json")
    assert proven.exit_code == 0, proven.output
    shown = json.loads(proven.stdout)
    header = await net.get(f"/blocks/{net.anchor['height']}")
    assert shown["valid"] is True and shown["kind"] == "Anchor"
    assert shown["subject"] == {"doc_hash": hashlib.sha256(PROTOCOL.encode()).hexdigest(), "label": PROTOCOL}
    assert (shown["chain_id"], shown["height"], shown["block_hash"], shown["block_time_ms"]) == (
        net.genesis.chain_id, net.anchor["height"], header["hash"], header["header"]["timestamp_ms"])
    assert shown["signer"] == net.cluster.client.verify_key.hex()
    other = tmp_path / "other.txt"
    other.write_text(PROTOCOL + "amended\n")
    refused = verify_cli(proof, tmp_path, "--genesis", genesis, "--file", str(other))
    assert refused.exit_code == 1 and "SHA-256" in refused.stderr, refused.output
    plain = verify_cli(proof, tmp_path, "--genesis", genesis)
    assert plain.exit_code == 0, plain.output
    assert "action     Anchor" in plain.stdout and net.cluster.client.verify_key.hex() in plain.stdout


def _pack_of_the_story(net: Net) -> tuple[str, str]:
    alert = net.steps["regulator's live alerts"]["alerts"][0]  # the clone of the dispensed pack
    return alert["gtin"], alert["serial"]


async def test_each_event_of_a_pack_history_proves_its_kind_and_pack(net: Net, tmp_path: Path) -> None:
    gtin, serial = _pack_of_the_story(net)
    pack = await net.get(f"/drugs/packs/{gtin}/{serial}")
    assert_matches(pack, PackDocument, "pack")
    kinds = [e["kind"] for e in pack["history"]]
    assert kinds == ["commission", "ship", "receive", "ship", "receive", "dispense", "recall"], kinds
    claims = check_pack_history(pack, net.genesis)
    assert [c.kind for c in claims] == ["Commission", "Ship", "Receive", "Ship", "Receive", "Dispense", "Recall"]
    dispense = claims[5]
    assert dispense.subject == {"gtin": gtin, "serial": serial}
    assert claims[0].subject["lot"] == pack["lot"] and serial in claims[0].subject["serials"]
    assert claims[6].subject["lot"] == pack["lot"]
    shown = verify_cli(pack["history"][5]["proof"], tmp_path, "--genesis", str(net.genesis_path), "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["kind"] == "Dispense" and json.loads(shown.stdout)["subject"]["serial"] == serial
    for i, j in ((1, 3), (5, 6), (0, 5), (2, 4)):
        swapped = copy.deepcopy(pack)
        swapped["history"][i]["proof"], swapped["history"][j]["proof"] = (
            pack["history"][j]["proof"], pack["history"][i]["proof"])
        with pytest.raises(InvalidProof):
            check_pack_history(swapped, net.genesis)
    saved = await cli_at(net, "drug", "history", f"{gtin}:{serial}", "--proofs", "--json")
    assert saved.exit_code == 0, saved.output
    offline = history_cli(json.loads(saved.stdout), net, tmp_path)
    assert offline.exit_code == 0, offline.output
    assert [e["kind"] for e in json.loads(offline.stdout)["events"]] == [c.kind for c in claims]
    refused = history_cli(swapped, net, tmp_path)
    assert refused.exit_code == 1 and json.loads(refused.stdout)["valid"] is False
    another = copy.deepcopy(pack)
    another["serial"] = next(s for s in claims[0].subject["serials"] if s != serial)
    with pytest.raises(InvalidProof, match="not about pack"):
        check_pack_history(another, net.genesis)
    document = tmp_path / "doc.txt"
    document.write_text(PROTOCOL)
    not_anchor = verify_cli(pack["history"][5]["proof"], tmp_path, "--genesis", str(net.genesis_path),
                            "--file", str(document))
    assert not_anchor.exit_code == 1 and "not a document anchor" in not_anchor.stderr, not_anchor.output


async def test_each_event_of_a_record_history_proves_its_kind_and_record(net: Net, tmp_path: Path) -> None:
    rid = net.steps["erasure"]["record"]
    plain = await net.get(f"/ehr/records/{rid}")
    assert "proof" not in plain["versions"][0] and "erase_proof" not in plain
    assert_matches(plain, RecordDocument, "record")
    record = await net.get(f"/ehr/records/{rid}?proofs=1")
    assert_matches(record, ProvenRecordDocument, "record with proofs")
    claims = check_record_history(record, net.genesis)
    assert [c.kind for c in claims] == ["AddRecord", "RecordAccess", "EraseRecords"]
    assert all(c.subject.get("record_id") == rid for c in claims[:2])
    assert claims[2].subject["record_ids"] == [rid] and claims[2].subject["patient"] == record["patient"]
    swapped = copy.deepcopy(record)
    swapped["versions"][0]["proof"], swapped["access_log"][0]["proof"] = (
        record["access_log"][0]["proof"], record["versions"][0]["proof"])
    with pytest.raises(InvalidProof):
        check_record_history(swapped, net.genesis)
    other_rid = net.steps["records filed"]["condition"]
    other = await net.get(f"/ehr/records/{other_rid}?proofs=1")
    assert [c.kind for c in check_record_history(other, net.genesis)] == ["AddRecord", "RecordAccess"]
    borrowed = copy.deepcopy(record)
    borrowed["access_log"][0]["proof"] = other["access_log"][0]["proof"]
    with pytest.raises(InvalidProof):
        check_record_history(borrowed, net.genesis)
    erasure = copy.deepcopy(record)
    erasure["erase_proof"] = other["versions"][0]["proof"]
    with pytest.raises(InvalidProof, match="EraseRecords"):
        check_record_history(erasure, net.genesis)
    cli_doc = await cli_at(net, "ehr", "history", rid, "--proofs", "--json")
    assert cli_doc.exit_code == 0, cli_doc.output
    offline = history_cli(json.loads(cli_doc.stdout), net, tmp_path)
    assert offline.exit_code == 0, offline.output
    assert [e["kind"] for e in json.loads(offline.stdout)["events"]] == ["AddRecord", "RecordAccess", "EraseRecords"]
    assert history_cli(erasure, net, tmp_path).exit_code == 1
    unproven = history_cli(plain, net, tmp_path)
    assert unproven.exit_code == 1 and "carries no proof" in json.loads(unproven.stdout)["reason"]
    assert read_claim(record["erase_proof"], net.genesis).proven.height == record["erased_height"]
