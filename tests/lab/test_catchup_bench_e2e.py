"""End-to-end: the catch-up benchmark at its smallest, on a real cluster whose wiped node really catches up."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
from click.testing import CliRunner

from node.cli.main import main as cli
from node.lab.catchup_bench import CatchupError, CatchupOptions, gap_timeline


def _running(pid: int, folder: Path) -> bool:
    try:
        return any(str(folder) in part for part in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def test_a_wiped_validator_catches_up_every_committed_transaction(tmp_path: Path) -> None:
    out = tmp_path / "catchup"
    result = CliRunner().invoke(cli, ["bench", "catchup", "--txs", "2000", "--runs", "1", "--dir", str(out),
                                      "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    chain = report["chain"]
    assert chain["txs"] == 2000 and chain["chain_txs"] == 2001  # the loaded ones and the warm-up probe
    (run,) = report["runs"]
    assert run["reached"] and run["head_matches"]
    # no load: the head stood still, and the wiped node holds all of it, having executed every transaction
    assert run["start_head"] == run["head"] == run["height"] == chain["height"] > 0
    assert run["txs"] == chain["chain_txs"]
    assert run["seconds"] > 0 and run["first_block_s"] is not None and run["first_block_s"] <= run["seconds"]
    # the rate counts what it executed on the clock only: not what it did before its API answered (a chain this
    # short can be caught up whole before then)
    assert 0 <= run["before_clock_txs"] <= run["txs"] and 0 <= run["before_clock_blocks"] <= run["height"]
    timed = run["txs"] - run["before_clock_txs"]
    assert abs(run["tx_per_s"] * run["seconds"] - timed) <= 0.01 * timed + 1
    assert {"node0", "node1", "node2", "node3", "client"} <= set(run["cpu_pct"])
    # its CPU on the clock may round to 0 when the chain was caught up before it started (seen once); the
    # stage CPU is its total since it started, and it executed every block
    assert run["cpu_pct"][run["node"]] >= 0 and run["stage_cpu_s"]["execute"] > 0
    assert 0 <= run["gap"][0][1] <= chain["height"]
    assert run["gap"][-1][1] == 0
    assert report["summary"]["seconds"]["median"] == run["seconds"]
    assert report["goal"] is None  # only judged at 100,000 transactions
    pids = [int(node["pid"]) for node in json.loads((out / "cluster.json").read_text())["nodes"]]
    assert len(pids) == 4 and not [pid for pid in pids if _running(pid, out)]


def test_the_gap_timeline_keeps_about_one_point_a_second_and_the_last() -> None:
    points = [(0.1 * i, 10 * i, 100) for i in range(11)]
    assert gap_timeline(points) == [(0.0, 100), (1.0, 0)]
    assert gap_timeline([(0.0, 0, 5), (0.5, 3, 5)]) == [(0.0, 5), (0.5, 2)]


def test_options_out_of_range_are_refused_in_one_line() -> None:
    for bad in (CatchupOptions(txs=0), CatchupOptions(runs=0), CatchupOptions(load=-1)):
        try:
            bad.check()
        except CatchupError as exc:
            assert "\n" not in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
