"""The lab commands' arguments: help for every option, bad input refused with exit 2 before any work starts."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from node.cli.main import main as cli
from node.cli.main import walk
from node.lab.counterfeit import Report

LAB_NAMES = {"bench", "counterfeit", "story"}


LAB = [(path[1:], command) for path, command in walk(cli) if path[1:2] and path[1] in LAB_NAMES]


@pytest.mark.parametrize(("path", "command"), LAB, ids=[" ".join(p) for p, _ in LAB])
def test_every_lab_command_and_option_has_help(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help and len(command.help) > 20, f"{' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def _refused(args: list[str], *words: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate", "0"], ["--rate", "above 0"]),
        (["--rate", "60000"], ["--rate", "at most 50000"]),
        (["--seconds", "nan"], ["--seconds"]),
        (["--concurrency", "many"], ["--concurrency", "not a whole number"]),
        (["--rate", "fast"], ["--rate", "not a number"]),
        (["--connections", "513"], ["--connections"]),
        (["--txs", "0"], ["--txs"]),
        (["--verify-seconds", "-1"], ["--verify-seconds"]),
        (["--profile", "huge"], ["--profile"]),
        (["--workload", "ehr"], ["--workload"]),
        (["--mode", "open"], ["--mode"]),
    ],
)
def test_bench_cluster_refuses_bad_options(args: list[str], words: list[str]) -> None:
    _refused(["bench", "cluster", *args], *words)


def test_bench_cluster_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    _refused(["bench", "cluster", "--dir", str(tmp_path), "--quiet"], "not empty")


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--packs", "0"], ["--packs"]), (["--scans", "100001"], ["--scans"]), (["--packs", "x"], ["--packs"])],
)
def test_bench_verify_refuses_bad_options(args: list[str], words: list[str]) -> None:
    _refused(["bench", "verify", *args], *words)


def test_bench_verify_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    _refused(["bench", "verify", "--dir", str(tmp_path), "--packs", "10", "--quiet"], "not empty")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--packs", "7"], ["--packs", "at least 8"]),
        (["--fakes", "0"], ["--fakes"]),
        (["--fakes", "3", "--dispense", "2"], ["--dispense", "at least --fakes"]),
        (["--concurrency", "0"], ["--concurrency"]),
        (["--latency", "-1"], ["--latency"]),
        (["--base-port", "80"], ["--base-port"]),
    ],
)
def test_counterfeit_refuses_bad_sizes(args: list[str], words: list[str]) -> None:
    _refused(["counterfeit", *args], *words)


def test_counterfeit_on_a_running_cluster_takes_no_fresh_cluster_options(tmp_path: Path) -> None:
    _refused(["counterfeit", "--dir", str(tmp_path), "--keep"], "--keep")


def test_counterfeit_and_story_name_a_folder_without_a_consortium(tmp_path: Path) -> None:
    _refused(["counterfeit", "--dir", str(tmp_path), "--packs", "8"], "no consortium")
    _refused(["story", "--dir", str(tmp_path)], "no consortium")
    _refused(["story"], "--dir")


def test_bench_storage_measures_a_tiny_store(tmp_path: Path) -> None:
    args = ["bench", "storage", "--dir", str(tmp_path), "--count", "1", "--seconds", "0.01", "--blocks", "5"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["block_1000"]["txs"] == 1000 and report["block_1000"]["commit_per_s"] > 0
    assert report["block_1"]["blocks"] == 10 and report["wal_append_per_s"] > 0
    assert report["open"]["blocks"] == 5
    assert list(tmp_path.iterdir()) == []  # its temporary stores are gone
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0 and "WAL append" in table.stdout and "open a store of 5 blocks" in table.stdout


def test_counterfeit_help_documents_every_json_key() -> None:
    text = CliRunner().invoke(cli, ["counterfeit", "--help"]).output
    missing = [key for key in Report(8).summary() if key not in text]
    assert not missing, f"counterfeit --help does not say what these --json keys hold: {missing}"
