"""``medchain sim --sizes``: PBFT measured by number of validators on a simulated geography."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from node.lab.sim import sim
from node.lab.sim_scale import sweep


def test_a_sweep_reports_what_grows_with_the_number_of_validators(tmp_path: Path) -> None:
    report = sweep([4, 7], "europe6", 100.0, heights=4, txs_per_block=50, out=tmp_path, say=lambda line: None)
    small, large = report["sizes"]
    assert (small["validators"], large["validators"]) == (4, 7)
    # all-to-all prepares and commits: messages per block grow as n^2, each replica's share as n
    assert large["messages_per_block"] / small["messages_per_block"] > 2.5
    assert large["messages_per_block_per_replica"] > small["messages_per_block_per_replica"]
    assert large["bound_tx_per_s_bandwidth"] < small["bound_tx_per_s_bandwidth"]
    for row in report["sizes"]:
        latency = row["commit_latency_ms"]
        assert 0 < latency["p50"] <= latency["p99"] and latency["count"] > 0
        assert row["view_change_ms"] >= 500, "a silent primary costs at least the 500 ms progress timeout"
        assert row["cpu_us_per_message"] > 0 and row["bound_tx_per_s_cpu"] > 0
    assert json.loads((tmp_path / "scale.json").read_text()) == json.loads(json.dumps(report))
    assert "| 7 |" in (tmp_path / "scale.md").read_text()
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_sizes_are_refused_in_one_line() -> None:
    runner = CliRunner()
    for args, says in ((["--sizes", "3,16"], "each size must be 4-256"), (["--sizes", "4,x"], "comma-separated"),
                       (["--out", "somewhere"], "--out goes with --sizes")):
        result = runner.invoke(sim, args)
        assert result.exit_code == 2, result.output
        assert says in result.output
