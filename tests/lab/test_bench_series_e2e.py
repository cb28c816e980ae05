"""End-to-end, at the smallest: ``medchain bench`` on a cluster the test started (left running), a two-size
sweep that writes its table and plot, and a ``--find-max`` search of a few steps.  No figure is asserted
beyond "something committed": the machine is shared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.cli.main import main as cli
from node.lab import cluster as clusters
from tests.harness import free_base_port

PNG = b"\x89PNG\r\n\x1a\n"
QUICK = ["--verify-seconds", "0.1", "--json", "--quiet"]


def bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["bench", *args, *QUICK])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_target_drives_a_running_cluster_and_leaves_it_running(tmp_path: Path) -> None:
    net = tmp_path / "net"
    up = CliRunner().invoke(cli, ["cluster", "up", "--nodes", "4", "--dir", str(net),
                                  "--base-port", str(free_base_port(4)), "--json"])
    assert up.exit_code == 0, up.output
    try:
        first = bench("--target", str(net), "--rate", "30", "--duration", "2")
        again = bench("--target", str(net), "--rate", "30", "--duration", "2")  # the same labels, new anchors
        for report in (first, again):
            (run,) = report["runs"]
            assert run["committed"] == run["offered"] > 0 and run["failures"]["never_committed"] == 0
            assert run["validators"] == 4 and report["network"] == f"the running cluster in {net}"
        nodes = clusters.load_cluster(net)
        assert len(nodes) == 4 and all(clusters.is_alive(n.pid) for n in nodes)
        assert not list(net.glob("run*"))  # nothing generated into the target
    finally:
        assert CliRunner().invoke(cli, ["cluster", "down", "--dir", str(net)]).exit_code == 0


def test_a_tiny_sweep_writes_its_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    report = bench("--sweep-nodes", "4,5", "--rate", "30", "--duration", "3", "--out", str(out))
    rows = report["sweep"]["rows"]
    assert [r["validators"] for r in rows] == [4, 5] and all(r["committed_tx_s"] > 0 for r in rows)
    assert rows[0]["ceiling_tx_s"] / rows[1]["ceiling_tx_s"] == 5 / 4  # each size its own ceiling
    assert [len(r["cpu_pct"]) for r in report["runs"]] == [5, 6]  # the nodes and the client
    assert (out / "sweep.png").read_bytes()[:8] == PNG
    markdown = (out / "report.md").read_text()
    assert "## Sweep over the number of validators" in markdown and "](sweep.png)" in markdown


def test_find_max_reports_a_rate_and_the_steps_it_tried() -> None:
    report = bench("--find-max", "--rate", "20", "--duration", "2", "--max-steps", "2", "--p99-bound", "10")
    found = report["find_max"]
    assert [s["rate"] for s in found["steps"]] == [20, 40]  # doubling while sustainable, two steps allowed
    assert found["highest_sustainable_tx_s"] in (20, 40) and found["p99_bound_s"] == 10
    assert [r["name"] for r in report["runs"]] == ["step1-20", "step2-40"]
    assert "bisections" in found["rule"] and found["step_seconds"] == 2
