"""End-to-end: a 5-second benchmark run writes a well-formed report, every plot, and commits what it says it did.

The committed count is checked against the chain itself: node0's LevelDB,
opened after the bench stopped the cluster, every block read back and every
one of the load's anchors counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.cli.main import main as cli
from node.config import load_config
from node.genesis import load_genesis
from node.healthcare.transactions import Anchor, parse_with_body
from storage.chainstore import ChainStore

TOP = {"command", "started_at", "commit", "dirty", "machine", "workload", "plans", "ceiling", "runs", "goals"}
MACHINE = {"cores", "cpu_model", "memory_gb", "load_average_before", "python", "platform"}
LATENCY = {"p50", "p90", "p99", "p99.9", "max"}
RUN = {
    "plan", "window", "throughput_tx_s", "share_of_ceiling", "latency_s", "latency_with_failures_s", "failures",
    "latency_curve", "latency_hdr", "timeline", "nodes", "cpu_pct", "peak_rss_mb", "committed", "offered", "failed",
}
NODES = {
    "wire_bytes_sent", "wire_bytes_per_tx", "disk_bytes_added", "disk_bytes_per_tx_per_node", "view_changes",
    "rejected_in_blocks_by_code", "gossip_refused_by_code", "pauses",
}


def load_in_chain(node_home: Path, tag: str) -> int:
    """The load's anchors (labelled ``bench <tag> #i``, i > 0: #0 is the readiness probe) in the node's chain."""
    config = load_config(node_home)
    genesis = load_genesis(config.path(config.genesis))
    found = 0
    with ChainStore.open(config.path(config.data_dir), genesis.chain_id, genesis.hash) as store:
        head = store.head()
        assert head is not None
        for height in range(1, head.height + 1):
            block = store.block(height)
            assert block is not None
            for raw in block.txs:
                _, body = parse_with_body(raw)
                if isinstance(body, Anchor) and body.label.startswith(f"bench {tag} #"):
                    found += body.label != f"bench {tag} #0"
    return found


def check_run(run: dict[str, Any]) -> None:
    assert set(run) >= RUN and set(run["nodes"]) >= NODES
    assert set(run["latency_s"]) == LATENCY == set(run["latency_with_failures_s"])
    lat = run["latency_s"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    failures = run["failures"]
    assert failures["submitted"] == failures["committed"] + failures["never_committed"] > 0
    window = run["window"]
    assert 0 <= window["start_s"] < window["end_s"] <= run["seconds"] and window["rule"]
    assert window["warmup_s"] == window["start_s"] and window["drain_s"] >= 0
    assert run["throughput_tx_s"] > 0 and 0 < run["share_of_ceiling"] < 1
    assert len(run["timeline"]["committed_tx_s"]) >= 5 and run["latency_curve"][-1][0] == 100.0
    assert run["latency_hdr"] and run["plan"]["seconds"] == 5.0
    assert run["nodes"]["wire_bytes_per_tx"] > 0 and run["nodes"]["disk_bytes_per_tx_per_node"] > 0
    assert set(run["nodes"]["view_changes"]) == {f"node{i}" for i in range(4)}
    # every node appended to its consensus WAL and stored blocks during the run: both are timed
    assert all(p["wal"]["count"] > 0 and p["store"]["count"] > 0 for p in run["nodes"]["pauses"].values())
    assert "client" in run["cpu_pct"] and all(run["peak_rss_mb"][f"node{i}"] > 0 for i in range(4))


def test_a_five_second_run_writes_every_field_and_plot_and_matches_the_chain(tmp_path: Path) -> None:
    networks, out = tmp_path / "networks", tmp_path / "report"
    args = ["bench", "cluster", "--mode", "rate", "--rate", "60", "--seconds", "5", "--txs", "400",
            "--verify-seconds", "0.1", "--dir", str(networks), "--out", str(out), "--json", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(result.stdout)
    assert set(report) >= TOP and set(report["machine"]) >= MACHINE
    assert report["command"].startswith("medchain bench cluster --rate 60 --mode rate --duration 5")
    assert report["commit"] and report["ceiling"]["tx_per_s"] > 0
    (run,) = report["runs"]
    check_run(run)

    markdown = (out / "report.md").read_text()
    for text in (report["command"], report["commit"], "Steady window", "Never committed", "p99.9", "Ceiling"):
        assert text in markdown, text
    for plot in ("rate-60-over-time.png", "rate-60-latency-distribution.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({plot})" in markdown

    assert run["committed"] == load_in_chain(networks / "run1-rate-60" / "node0", "rate-60") > 200


def test_out_refuses_a_folder_that_already_holds_a_report(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{}")
    result = CliRunner().invoke(cli, ["bench", "cluster", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 2 and "already holds a report" in result.output
