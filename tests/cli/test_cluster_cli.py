"""The command line against a real cluster started with ``medchain cluster up``: the newcomer's failures, fixed.

One single-validator cluster serves the whole module (real node processes,
sockets, LevelDB); the last test brings it down, the fixture makes sure.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli.main import main as cli
from node.lab import cluster as clusters
from tests.harness import free_base_port


@dataclass(frozen=True)
class Running:
    root: Path
    base_port: int

    @property
    def api(self) -> str:
        """host:port of node0's API, without a scheme."""
        return f"127.0.0.1:{self.base_port + 1}"


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"MEDCHAIN_NODE": None, **(env or {})})


def ok(*args: str, env: dict[str, str | None] | None = None) -> Result:
    result = run(*args, env=env)
    assert result.exit_code == 0, (args, result.output)
    return result


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("cli-cluster") / "net"
    base = free_base_port(1)
    try:
        up = ok("cluster", "up", "--nodes", "1", "--dir", str(root), "--base-port", str(base), "--json")
        rows = json.loads(up.stdout)
        assert [r["name"] for r in rows] == ["node0"] and rows[0]["height"] >= 1
        yield Running(root, base)
    finally:
        if (root / "cluster.json").exists():
            clusters.stop_all(root)


def test_status_takes_host_port_and_medchain_node(cluster: Running):
    """status ignored MEDCHAIN_NODE, and --node host:port ended in a 48-line traceback."""
    shown = ok("status", "--node", cluster.api).stdout
    assert "chain_id:" in shown and "node0" in shown
    assert " txs, " in shown and "[" not in shown and "{" not in shown, "status prints for people, not Python reprs"
    doc = json.loads(ok("status", "--json", env={"MEDCHAIN_NODE": cluster.api}).stdout)
    key = ok("node", "show-id", "--home", str(cluster.root / "node0")).stdout.strip()
    assert doc["node_key"] == key and doc["height"] >= 1


def test_anchor_and_proof_print_json_for_scripts(cluster: Running, tmp_path: Path):
    """anchor put and proof verify had no --json; anchor ignored MEDCHAIN_NODE."""
    env: dict[str, str | None] = {"MEDCHAIN_NODE": cluster.api}
    doc = tmp_path / "protocol.txt"
    doc.write_text("trial protocol v3\n")
    key = str(cluster.root / "clients" / "client0.json")
    put = json.loads(ok("anchor", "put", str(doc), "--key", key, "--wait", "--json", env=env).stdout)
    assert put["status"] == "committed" and len(put["sha256"]) == 64
    other = tmp_path / "other.txt"
    other.write_text("another document\n")
    assert ok("anchor", "put", str(other), "--key", key, "--wait", env=env).stdout.startswith(f"anchored {other}")
    proof = tmp_path / "proof.json"
    wrote = json.loads(ok("anchor", "verify", str(doc), "--out", str(proof), "--json", env=env).stdout)
    assert wrote["tx_id"] == put["tx_id"] and wrote["height"] == put["height"]
    genesis = str(cluster.root / "genesis.json")
    verdict = json.loads(ok("proof", "verify", str(proof), "--genesis", genesis, "--json").stdout)
    assert (verdict["valid"], verdict["tx_id"], verdict["height"]) == (True, put["tx_id"], put["height"])
    assert verdict["kind"] == "Anchor" and verdict["subject"]["doc_hash"] == put["sha256"]
    printed = json.loads(ok("anchor", "verify", str(doc), env=env).stdout)
    assert printed == json.loads(proof.read_text())
    printed["tx"] = printed["tx"][:-2] + ("00" if printed["tx"][-2:] != "00" else "01")
    proof.write_text(json.dumps(printed))
    bad = run("proof", "verify", str(proof), "--genesis", genesis, "--json")
    assert bad.exit_code == 1 and json.loads(bad.stdout)["valid"] is False


def test_cluster_up_over_a_running_cluster_fails_naming_the_node(cluster: Running, tmp_path: Path):
    """It exited 0 and showed the other cluster's height; the tour then failed with a misleading not-admin."""
    other = tmp_path / "hc2"
    try:
        result = run("cluster", "up", "--nodes", "1", "--dir", str(other), "--base-port", str(cluster.base_port))
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: node0: ") and result.stderr.count("\n") == 1, result.stderr
        assert "answers as another node" in result.stderr and "address already in use" in result.stderr
        down = ok("cluster", "down", "--dir", str(other)).stdout
        assert down == "node0: already stopped\n", "cluster up stops what it started when it fails"
    finally:
        if (other / "cluster.json").exists():
            clusters.stop_all(other)
    assert ok("status", "--node", cluster.api).exit_code == 0, "the running cluster is left alone"


def test_a_node_that_cannot_bind_its_port_fails_cluster_up_with_its_log_line(tmp_path: Path):
    base = free_base_port(1)
    root = tmp_path / "net"
    with socket.socket() as squatter:  # not a node: nothing answers on the API port, the node just cannot start
        squatter.bind(("127.0.0.1", base))
        squatter.listen()
        try:
            result = run("cluster", "up", "--nodes", "1", "--dir", str(root), "--base-port", str(base))
        finally:
            if (root / "cluster.json").exists():
                clusters.stop_all(root)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("error: node0 exited while starting; ")
    assert str(root / "node0" / "node.log") in result.stderr and "address already in use" in result.stderr


def test_a_restarted_node_answers_as_soon_as_cluster_restart_returns(cluster: Running):
    """cluster restart returned as soon as the process was spawned: the next command found no node."""
    ok("cluster", "kill", "node0", "--dir", str(cluster.root))
    restarted = json.loads(ok("cluster", "restart", "node0", "--dir", str(cluster.root), "--json").stdout)
    doc = json.loads(ok("status", "--json", "--node", cluster.api).stdout)
    assert doc["node_id"] == "node0" and restarted["pid"] == clusters.find(clusters.load_cluster(cluster.root),
                                                                             "node0").pid


def test_cluster_down_says_which_nodes_were_already_stopped(cluster: Running):
    """Runs last: brings the module's cluster down, twice."""
    assert ok("cluster", "down", "--dir", str(cluster.root)).stdout == "node0: stopped\n"
    again = json.loads(ok("cluster", "down", "--dir", str(cluster.root), "--json").stdout)
    assert again == [{"name": "node0", "outcome": "already stopped"}]
    rows = json.loads(ok("cluster", "status", "--dir", str(cluster.root), "--json").stdout)
    assert rows[0]["alive"] is False
