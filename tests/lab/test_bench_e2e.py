"""End-to-end: the cluster and verification benchmarks at their smallest, on real clusters that they stop."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
from click.testing import CliRunner

from node.cli.main import main as cli


def _running(pid: int, folder: Path) -> bool:
    """A process with this pid runs with ``folder`` on its command line (a node of the run, not a reused pid)."""
    try:
        return any(str(folder) in part for part in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def _pids(state: Path) -> list[int]:
    return [int(node["pid"]) for node in json.loads(state.read_text())["nodes"]]


def test_a_short_open_loop_run_reports_and_stops_its_cluster(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", "cluster", "--mode", "rate", "--rate", "40", "--seconds", "1.5", "--verify-seconds", "0.1"]
    result = CliRunner().invoke(cli, [*args, "--dir", str(out), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (run,) = report["runs"]
    assert run["name"] == "rate-40" and run["committed"] == run["offered"] > 0
    latency = run["latency_s"]
    assert set(latency) == {"p50", "p90", "p99", "p99.9", "max"}
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"] <= latency["max"]
    assert run["window"]["rule"].startswith("the whole load period")  # 1.5 s: too short to trim
    assert run["failures"]["never_committed"] == 0
    assert {f"node{i}" for i in range(4)} | {"client"} <= set(run["cpu_pct"])
    assert all(run["rss_mb"][name] > 0 and run["peak_rss_mb"][name] >= run["rss_mb"][name] for name in run["rss_mb"])
    assert 0 < run["machine_busy_pct"] <= 100 and run["node_cpu_ms_per_tx"] > 0
    assert report["ceiling"]["verify_per_s"] > 0
    (state,) = out.glob("*/cluster.json")
    pids = _pids(state)
    assert len(pids) == 4 and not [pid for pid in pids if _running(pid, out)]


def test_a_tiny_verification_bench_reports_and_stops_its_cluster(tmp_path: Path) -> None:
    out = tmp_path / "verify"
    args = ["bench", "verify", "--packs", "10", "--scans", "5", "--dir", str(out), "--json", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["packs"] == 10
    for case in ("with_proofs", "no_proofs"):
        c = report["cases"][case]
        assert c["scans"] == 5 and c["not_verified"] == 0
        q = c["client_ms"]
        assert 0 < q["p50"] <= q["p95"] <= q["p99"] <= q["max"]
    pids = _pids(out / "cluster.json")
    assert len(pids) == 4 and not [pid for pid in pids if _running(pid, out)]
