"""Cluster commands run in parallel, as separate `medchain` processes, on a real cluster's node processes.

Four `medchain cluster restart` at once must leave ``cluster.json`` naming
each node's live process (the read-modify-write of the file is locked), and
`cluster down` must leave no node process behind, whatever the file says
(it also finds nodes by their home folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import psutil

from node.lab import cluster as clusters
from node.lab.testnet import generate_testnet
from tests.harness import free_base_port


def medchain(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "node", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def node_pids(root: Path) -> dict[str, set[int]]:
    """Node name -> pids of the live node processes started from that node's folder (found by psutil)."""
    homes = {str(home.resolve()): home.name for home in clusters.node_homes(root)}
    found: dict[str, set[int]] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE or "--home" not in cmdline[:-1]:
            continue
        name = homes.get(str(Path(cmdline[cmdline.index("--home") + 1]).resolve()))
        if name is not None:
            found.setdefault(name, set()).add(proc.info["pid"])
    return found


def test_parallel_restarts_keep_every_pid_and_down_leaves_no_process(tmp_path: Path) -> None:
    root = tmp_path / "net"
    generate_testnet(root, 4, 0, free_base_port(4), chain_id="parallel")
    nodes = clusters.start_all(root)
    try:
        for node in nodes:
            clusters.signal_node(root, node.name, "kill")
        restarts = [medchain("cluster", "restart", node.name, "--dir", str(root)) for node in nodes]
        for proc in restarts:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        status = medchain("cluster", "status", "--dir", str(root), "--json")
        out, err = status.communicate(timeout=60)
        assert status.returncode == 0, err
        rows = {row["name"]: row for row in json.loads(out)}
        running = node_pids(root)
        for node in nodes:
            assert rows[node.name]["alive"], f"{node.name} shown down: {rows[node.name]}"
            assert running.get(node.name) == {rows[node.name]["pid"]}, (node.name, running, rows[node.name])
    finally:
        down = medchain("cluster", "down", "--dir", str(root))
        _, err = down.communicate(timeout=60)
    assert down.returncode == 0, err
    assert node_pids(root) == {}


def test_down_stops_a_node_the_cluster_file_does_not_name(tmp_path: Path) -> None:
    root = tmp_path / "net"
    generate_testnet(root, 1, 0, free_base_port(1), chain_id="stale")
    (node,) = clusters.start_all(root)
    stale = [{**asdict(node), "pid": os.getpid() + 1_000_000}]  # a pid no process has
    (root / "cluster.json").write_text(json.dumps({"nodes": stale}))
    assert node_pids(root) == {node.name: {node.pid}}
    assert clusters.stop_all(root) == [(node.name, "stopped")]
    assert node_pids(root) == {}
