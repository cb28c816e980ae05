"""Every shipped scenario, run whole on real processes (slow: about 40-90 s each; ./scripts/test-slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.lab.chaos.runner import run_scenario
from node.lab.chaos.scenario import load_scenario, shipped
from node.lab.progress import Progress

SCENARIOS = shipped()


def test_at_least_fourteen_scenarios_ship():
    assert len(SCENARIOS) >= 14


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_a_shipped_scenario_meets_its_expectations(path: Path, tmp_path: Path):
    result = run_scenario(load_scenario(path), tmp_path / path.stem, Progress(quiet=True))
    failed = [f"{v.name}: {v.summary}" for v in result.verdicts.items if not v.ok]
    assert result.verdicts.expectation_met, (result.verdicts.outcome, failed, result.record.notes)
    assert {p.name for p in result.files} == {"report.json", "report.md", "timeline.png"}
