"""The operators' CLI: help for every command, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.main import main as cli
from node.cli.main import walk
from tests.harness import free_base_port


@pytest.mark.parametrize("path", [path[1:] for path, _ in walk(cli)][1:])
def test_every_command_explains_itself(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_an_unreachable_node_is_a_one_line_error_with_exit_2():
    port = free_base_port(1)
    result = CliRunner().invoke(cli, ["status", "--node", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot reach the node") and result.output.count("\n") == 1


def test_bad_arguments_and_unreadable_configs_exit_2(tmp_path: Path):
    runner = CliRunner()
    assert runner.invoke(cli, ["testnet", "--nodes", "0", "--out", str(tmp_path / "x")]).exit_code == 2
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text("not = [valid")
    result = runner.invoke(cli, ["node", "start", "--home", str(tmp_path / "home")])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    result = runner.invoke(cli, ["cluster", "status", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "no cluster" in result.output
    bogus = tmp_path / "proof.json"
    bogus.write_text("{}")
    (tmp_path / "g.json").write_text("[]")
    result = runner.invoke(cli, ["proof", "verify", str(bogus), "--genesis", str(tmp_path / "g.json")])
    assert result.exit_code == 2 and "genesis" in result.output


def test_testnet_writes_a_network_and_refuses_to_overwrite_it(tmp_path: Path):
    out = tmp_path / "net"
    result = CliRunner().invoke(cli, ["testnet", "--nodes", "4", "--observers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    genesis = json.loads((out / "genesis.json").read_text())
    assert [m["name"] for m in genesis["validators"]] == ["node0", "node1", "node2", "node3"]
    assert [m["name"] for m in genesis["observers"]] == ["node4"]
    for i in range(5):
        assert (out / f"node{i}" / "config.toml").exists() and (out / f"node{i}" / "tls" / "cert.pem").exists()
    show = CliRunner().invoke(cli, ["node", "show-id", "--home", str(out / "node2")])
    assert show.output.strip() == genesis["validators"][2]["key"]
    again = CliRunner().invoke(cli, ["testnet", "--nodes", "4", "--out", str(out)])
    assert again.exit_code == 2 and "already holds a network" in again.output


def test_a_data_directory_in_use_is_refused_with_its_name(tmp_path: Path):
    out = tmp_path / "net"
    base = free_base_port(1)
    made = CliRunner().invoke(cli, ["testnet", "--nodes", "1", "--out", str(out), "--base-port", str(base)])
    assert made.exit_code == 0
    home = out / "node0"
    first = subprocess.Popen([sys.executable, "-m", "node", "node", "start", "--home", str(home)],
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        # wait until the first process holds the database (its start-up log line)
        assert first.stderr is not None
        for _ in range(200):
            line = first.stderr.readline().decode()
            if '"event": "started"' in line or not line:
                break
        second = subprocess.run([sys.executable, "-m", "node", "node", "start", "--home", str(home)],
                                capture_output=True, timeout=30)
        assert second.returncode == 2
        message = second.stderr.decode()
        assert "locked" in message and str(home / "data") in message
        assert first.poll() is None, "the first node must keep running"
    finally:
        first.terminate()
        assert first.wait(timeout=15) == 0, "SIGTERM is a clean shutdown with exit code 0"
