"""``medchain bench``'s options, the find-max search and the sweep's rows: pure logic, and the CLI's usage errors.

No cluster starts here: every refused command line fails while its options are read.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from node.cli.main import main as cli
from node.lab.bench import RunPlan
from node.lab.bench_find_max import FACTOR, MAX_RATE, REFINE_STEPS, judge, next_rate, summary
from node.lab.bench_network import NetworkSpec
from node.lab.bench_options import Options, usage_problem
from node.lab.bench_series import find_max_lines, sweep_table
from node.lab.bench_sweep import parse_sizes, row

CONSORTIUM_4 = str(Path(__file__).resolve().parents[2] / "configs" / "consortium-4.toml")


def one_line_usage_error(args: list[str], *words: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate", "800", "--closed-loop"], ["--rate", "--closed-loop", "one or the other"]),
        (["--rate", "800", "--mode", "closed"], ["--rate", "--closed-loop"]),
        (["--mode", "rate", "--closed-loop"], ["--mode rate", "--closed-loop"]),
        (["--in-flight", "100"], ["--in-flight", "--closed-loop"]),
        (["--nodes", "7", "--consortium", CONSORTIUM_4], ["--nodes", "--consortium"]),
        (["--sweep-nodes", "4,7", "--target", "."], ["--target", "--sweep-nodes"]),
        (["--target", ".", "--nodes", "7"], ["--target", "--nodes"]),
        (["--target", ".", "--dir", "x"], ["--target", "--dir"]),
        (["--sweep-nodes", "4,7", "--nodes", "4"], ["--sweep-nodes", "--nodes"]),
        (["--sweep-nodes", "4,7", "--find-max"], ["--sweep-nodes", "--find-max"]),
        (["--find-max", "--closed-loop"], ["--find-max", "--closed-loop"]),
        (["--p99-bound", "0.5"], ["--p99-bound", "--find-max"]),
        (["--max-steps", "3"], ["--max-steps", "--find-max"]),
        (["--profile", "quick", "--rate", "100"], ["--profile", "--rate"]),
        (["--workload", "mix", "--sweep-nodes", "4,7"], ["--sweep-nodes", "consortium"]),
        (["--workload", "both", "--find-max"], ["--find-max", "consortium"]),
        (["--workload", "mix", "--nodes", "5"], ["--consortium FILE", "5 validators"]),
        (["--sweep-nodes", "4,x"], ["--sweep-nodes", "4,7,10,16"]),
        (["--sweep-nodes", "4,4"], ["--sweep-nodes", "twice"]),
        (["--sweep-nodes", "0,4"], ["--sweep-nodes", "1 to 64"]),
        (["--txs", "1000001"], ["--txs"]),
        (["--target", "/no/such/folder"], ["--target"]),
    ],
)
def test_conflicting_or_bad_options_are_one_line_usage_errors(args: list[str], words: list[str]) -> None:
    one_line_usage_error(["bench", *args, "--quiet"], *words)
    one_line_usage_error(["bench", "cluster", *args, "--quiet"], *words)  # the alias reads the same options


def test_the_other_benchmarks_take_no_cluster_bench_options() -> None:
    one_line_usage_error(["bench", "--rate", "5", "signing"], "--rate is an option of the cluster benchmark")


def test_a_target_without_a_cluster_is_named(tmp_path: Path) -> None:
    one_line_usage_error(["bench", "--target", str(tmp_path), "--quiet"], "no cluster at", "cluster up")


def test_txs_allows_a_million_presigned_transactions() -> None:
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert "1,000,000" in result.output
    one_line_usage_error(["bench", "--txs", "1000001", "--quiet"], "at most 1e+06")


# ---------------------------------------------------------------- options to runs


def test_the_loop_and_the_network_follow_the_options() -> None:
    (plan,) = Options(closed_loop=True, in_flight=300, duration=5).plans()
    assert (plan.mode, plan.concurrency, plan.seconds, plan.name) == ("closed", 300, 5, "closed-300")
    (plan,) = Options(rate=800).plans()
    assert (plan.mode, plan.rate, plan.name) == ("rate", 800, "rate-800")
    assert Options(nodes=7).network() == NetworkSpec(7)
    mix = Options(workload="mixed", nodes=7).network()
    assert mix.consortium is not None and mix.consortium.name == "consortium-7.toml"
    assert Options(workload="mixed").chosen_workload() == "mix"
    assert Options(target=Path("net"), nodes=9).network() == NetworkSpec(target=Path("net"))


def test_defaults_never_conflict_only_given_options_do() -> None:
    assert usage_problem(Options(), set()) is None
    assert usage_problem(Options(closed_loop=True), {"closed_loop"}) is None  # --rate left at its default
    assert usage_problem(Options(closed_loop=True), {"closed_loop", "rate"}) is not None


# ---------------------------------------------------------------- the find-max search


def test_the_search_doubles_until_a_step_fails_then_bisects_the_bracket() -> None:
    tried: list[tuple[float, bool]] = []
    truth = 700.0  # rates up to this one are sustainable
    while (rate := next_rate(tried, 100, max_steps=20)) is not None:
        tried.append((rate, rate <= truth))
    rates = [r for r, _ in tried]
    assert rates[:4] == [100, 100 * FACTOR, 100 * FACTOR**2, 100 * FACTOR**3]  # 800 is the first failure
    assert len(rates) == 4 + REFINE_STEPS and rates[4] == 600 and rates[5] == 700
    assert max(r for r, ok in tried if ok) == 700


def test_the_search_goes_down_when_the_first_step_fails_and_stops_at_max_steps() -> None:
    assert next_rate([(500, False)], 500, max_steps=8) == 250
    assert next_rate([(500, False), (250, True)], 500, max_steps=8) == 375
    assert next_rate([(500, True), (1000, True)], 500, max_steps=2) is None
    assert next_rate([(MAX_RATE, True)], MAX_RATE, max_steps=8) is None
    assert next_rate([(1.5, False)], 1.5, max_steps=8) is None  # nothing below 1 tx/s


def _run(rate: float, committed: float, p99: float | None, never: int = 0) -> dict[str, Any]:
    return {"name": f"step-{rate:g}", "rate": rate, "throughput_tx_s": committed,
            "latency_with_failures_s": {"p99": p99}, "failures": {"never_committed": never}}


def test_a_step_is_sustainable_within_the_bound_and_keeping_up() -> None:
    assert judge(_run(100, 99, 0.4), 1.0).sustainable
    assert not judge(_run(100, 99, 1.2), 1.0).sustainable  # p99 over the bound
    assert "90%" in judge(_run(100, 50, 0.4), 1.0).why  # fell behind the offered rate
    assert not judge(_run(100, float("nan"), float("nan")), 1.0).sustainable  # nothing committed


def test_the_summary_names_the_highest_sustainable_rate_and_every_step() -> None:
    steps = [judge(_run(100, 100, 0.2), 1.0), judge(_run(200, 120, 2.0, never=30), 1.0)]
    found = summary(steps, RunPlan("x", "rate", 3, rate=100), 1.0, 8)
    assert found["highest_sustainable_tx_s"] == 100 and len(found["steps"]) == 2
    text = "\n".join(find_max_lines(found))
    assert "step-200" in text and "not sustainable" in text and "highest sustainable rate: 100.0" in text


# ---------------------------------------------------------------- the sweep's rows


def test_sweep_sizes_parse_and_a_row_has_its_own_ceiling() -> None:
    assert parse_sizes("4,7,10,16") == (4, 7, 10, 16)
    run = {"validators": 8, "name": "n8", "throughput_tx_s": 500.0, "ceiling_tx_s": 4000.0, "share_of_ceiling": 0.125,
           "latency_s": {"p50": 0.1, "p99": 0.5}, "failures": {"never_committed": 0}, "node_cpu_ms_per_tx": 4.0,
           "nodes": {"wire_bytes_per_tx": 3000.0}, "mean_txs_per_block": 10.0}
    r = row(run)
    assert (r.node_cpu_ms_per_tx_per_node, r.wire_bytes_per_block, r.ceiling_tx_s) == (0.5, 30_000.0, 4000.0)
    table = "\n".join(sweep_table({"rows": [asdict(r)], "ceiling_rule": "rule", "messages_per_block": "not reported"}))
    assert "12.5 %" in table and "30,000" in table and "not reported" in table
