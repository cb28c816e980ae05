"""On a real consortium: a pack's EPCIS export, read over HTTP, does not move when its maker's licences change."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.client.ledger import LedgerClient
from node.healthcare.ledger import bodies as b
from node.lab.counterfeit import Network
from tests.harness import Cluster

CONSORTIUM = Path(__file__).resolve().parents[2] / "configs" / "consortium-4.toml"
GTIN = "07031234000019"  # GS1 Norway allocated the company prefix 703123 (6 digits)
EPC = "urn:epc:id:sgtin:703123.0400001.S1"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Cluster, Network]]:
    root = tmp_path_factory.mktemp("consortium")
    async with Cluster(root, consortium=CONSORTIUM) as cluster:
        await cluster.wait_all(lambda s: s is not None and len(s["peers"]) >= 3, 30, "a connected cluster")
        yield cluster, Network.load(root)


async def test_the_export_is_the_same_before_and_after_licence_changes(net: tuple[Cluster, Network]) -> None:
    cluster, network = net
    assert cluster.session is not None
    (regulator,), (maker,) = network.of_kind("regulator"), network.of_kind("manufacturer")
    api = network.api_for(regulator)
    reg = LedgerClient(api, network.admin(regulator), cluster.session)
    mfr = LedgerClient(api, network.admin(maker), cluster.session)

    async def ok(client: LedgerClient, body: Any) -> None:
        status = await client.submit(body)
        assert status["status"] == "committed", f"{type(body).__name__}: {status}"

    async def export() -> str:
        status, doc = await cluster.get(regulator, f"/drugs/packs/{GTIN}/S1/epcis")
        assert status == 200, doc
        assert [e["epcList"] for e in doc["epcisBody"]["eventList"]] == [[EPC]]
        return json.dumps({**doc, "creationDate": ""})

    await ok(reg, b.GrantLicence(maker, "manufacture", "703123"))
    await ok(mfr, b.Commission(GTIN, "L1", "301231", ("S1",)))
    before = await export()
    for change in (
        b.RevokeLicence(maker, "manufacture", "703123"),
        b.GrantLicence(maker, "manufacture", "7031234"),
        b.GrantLicence(maker, "manufacture", "70312340"),
    ):
        await ok(reg, change)
        assert await export() == before, f"the export moved after {change}"
