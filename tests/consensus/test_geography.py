"""The simulator's geography: modelled latencies against the measured round trips they are fitted to, and
messages that take their link's latency and their size over its bandwidth."""

from __future__ import annotations

import random

import pytest

from consensus.sim import Scenario, run_many
from consensus.sim.geography import (
    CALIBRATION_RTT_MS,
    EUROPE6,
    LOCAL_MS,
    Geography,
    distance_km,
    geography,
    modelled_one_way_ms,
)
from consensus.sim.network import LinkModel, Network
from primitives.errors import UsageError


@pytest.mark.parametrize(("pair", "measured"), sorted(CALIBRATION_RTT_MS.items()))
def test_the_model_gives_the_measured_round_trips_within_15_percent(pair: tuple[str, str], measured: float) -> None:
    modelled = 2 * modelled_one_way_ms(*pair)
    assert abs(modelled - measured) / measured <= 0.15, (pair, modelled, measured)


def test_the_europe6_matrix_is_symmetric_local_on_its_diagonal_and_grows_with_distance() -> None:
    geo = geography("europe6")
    k = len(EUROPE6)
    for i in range(k):
        assert geo.one_way_ms[i][i] == LOCAL_MS
        for j in range(k):
            assert geo.one_way_ms[i][j] == pytest.approx(geo.one_way_ms[j][i])
    london, paris, madrid, stockholm = (EUROPE6.index(c) for c in ("London", "Paris", "Madrid", "Stockholm"))
    assert distance_km("London", "Paris") == pytest.approx(344, abs=5)
    assert geo.one_way_ms[london][paris] < geo.one_way_ms[london][madrid] < geo.one_way_ms[madrid][stockholm]


def test_a_message_takes_its_links_latency_plus_its_size_over_the_bandwidth() -> None:
    geo = Geography.of_cities(EUROPE6, bandwidth_mbps=10, jitter=0.0)
    net = Network(12, LinkModel(), random.Random(1), geo)
    madrid, stockholm = EUROPE6.index("Madrid"), EUROPE6.index("Stockholm")
    far = net.transit(madrid, stockholm, 0)[0]
    assert far == round(geo.latency_ms(madrid, stockholm))
    assert net.transit(0, 6, 0)[0] == 1, "validators 0 and 6 share a region: a data centre apart"
    assert net.transit(madrid, stockholm, 125_000)[0] == round(geo.latency_ms(madrid, stockholm) + 100)
    assert net.bytes_sent == 125_000


def test_bandwidth_slows_blocks_and_safety_holds() -> None:
    def per_block(mbps: float) -> float:
        summary = run_many(Scenario(nodes=6, heights=6, regions="europe6", bandwidth_mbps=mbps), 1, 0)
        assert summary["safety_violations"] == 0 and summary["stalled_runs"] == 0
        return float(summary["virtual_ms_per_block"])  # type: ignore[arg-type]

    assert per_block(1) > 2 * per_block(1000)


def test_an_unknown_geography_is_refused() -> None:
    with pytest.raises(UsageError, match="no geography 'mars'"):
        Scenario(regions="mars")


@pytest.mark.parametrize("behaviour", ["equivocate", "silent"])
def test_byzantine_replicas_on_the_geography_never_fork_or_stall(behaviour: str) -> None:
    scenario = Scenario(nodes=7, byzantine=2, behaviour=behaviour, heights=8, regions="europe6",
                        drop=0.05, partition=True)
    summary = run_many(scenario, 2, 0)
    assert summary["safety_violations"] == 0, summary["failures"]
    assert summary["stalled_runs"] == 0, summary["failures"]
    assert summary["min_height"] >= 8
