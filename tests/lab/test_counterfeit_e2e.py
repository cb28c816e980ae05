"""The counterfeit experiment on a real consortium-4 cluster: every kind caught by its own mechanism,
expiry judged by the ledger's time, and the alert count right on a ledger already past one page of alerts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from node.client.ledger import LedgerClient
from node.lab.counterfeit import ALERT_PAGE, CLASSES, DETECTED_BY, Experiment, Network, alerts_after, hri
from tests.harness import Cluster

CONSORTIUM = Path(__file__).resolve().parents[2] / "configs" / "consortium-4.toml"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Cluster, Network]]:
    root = tmp_path_factory.mktemp("consortium")
    async with Cluster(root, consortium=CONSORTIUM) as cluster:
        yield cluster, Network.load(root)


async def _file_unknown_scans(network: Network, count: int) -> None:
    """``count`` scans of never-commissioned serials at a pharmacy: each files one alert on the ledger."""
    pharmacy = network.of_kind("pharmacy")[0]
    async with aiohttp.ClientSession() as session:
        client = LedgerClient(network.api_for(pharmacy), None, session)
        sem = asyncio.Semaphore(16)

        async def scan(i: int) -> None:
            async with sem:
                verdict = await client.verify(hri("09506000000015", f"NOPE{i:06d}", "L1", "301231"), "flood",
                                              proofs=False)
                assert verdict["status"] == "unknown" and verdict["alert"] is not None, verdict

        await asyncio.gather(*(scan(i) for i in range(count)))


async def test_every_kind_is_caught_by_its_own_mechanism_and_alerts_count_past_one_page(
    net: tuple[Cluster, Network],
) -> None:
    _, network = net
    regulator = network.of_kind("regulator")[0]
    await _file_unknown_scans(network, ALERT_PAGE + 10)
    async with aiohttp.ClientSession() as session:
        reg = LedgerClient(network.api_for(regulator), None, session)
        async with asyncio.timeout(60):
            while len(await alerts_after(reg, None)) < ALERT_PAGE + 10:
                await asyncio.sleep(0.2)
    report = await Experiment(network, packs=8, seed=3, fakes_per_kind=2, dispense=2).run()
    summary = report.summary()
    assert summary["ok"], summary
    for cls, kinds in CLASSES.items():
        assert set(summary[cls]) == set(kinds)
        for kind, counts in summary[cls].items():
            assert counts == {"injected": 2, "detected": 2, "detected_by": DETECTED_BY[kind]}, (kind, counts)
    assert "ledger rule" in summary["unsellable"]["expired"]["detected_by"]
    assert "scan verdict" in summary["unsellable"]["recalled"]["detected_by"]
    # one alert per fake, counted among more than a page of alerts filed before the run
    assert summary["alerts"] == {"expected": 8, "recorded": 8}
