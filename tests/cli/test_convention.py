"""One command-line convention, proved by walking every command of ``medchain``.

Every command: help text for itself and each option; a usage error is one line
on stderr with exit code 2; every command that prints data takes ``--json``.
Every client command: ``--node`` or ``MEDCHAIN_NODE``, ``host:port`` without a
scheme, a bad address or a dead node as a one-line error, never a traceback.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from node.cli.common import MedchainGroup
from node.cli.main import main as cli
from node.cli.main import walk
from node.p2p.certs import make_certificate
from primitives.errors import UsageError
from primitives.signing import SigningKey
from tests.harness import free_base_port

GTIN = "09506000134352"
HEX32 = "ab" * 32
PID = "cd" * 16
ROOT = Path(__file__).resolve().parents[2]


ALL = [(path[1:], command) for path, command in walk(cli)][1:]
LEAVES = [(path, command) for path, command in ALL if not isinstance(command, click.Group)]


def name(path: tuple[str, ...]) -> str:
    return " ".join(path)


# What each client command needs besides a node to get as far as calling it; {key}, {file}, {obs} are filled in.
CLIENT_ARGS: dict[str, list[str]] = {
    "alerts": [],
    "anchor put": ["{file}", "--key", "{key}"],
    "anchor verify": ["{file}"],
    "consent grant": ["--org", "hosp-a", "--key", "{key}"],
    "consent list": ["--patient", PID],
    "consent revoke": ["--org", "hosp-a", "--key", "{key}"],
    "drug commission": ["--gtin", GTIN, "--lot", "L1", "--expiry", "301231", "--count", "2", "--key", "{key}"],
    "drug destroy": [f"{GTIN}:S1", "--reason", "broken", "--key", "{key}"],
    "drug dispense": [f"{GTIN}:S1", "--key", "{key}"],
    "drug export-epcis": [f"{GTIN}:S1"],
    "drug history": [f"{GTIN}:S1"],
    "drug quarantine": [f"{GTIN}:S1", "--reason", "suspect", "--key", "{key}"],
    "drug recall": ["--gtin", GTIN, "--lot", "L1", "--reason", "contaminated", "--key", "{key}"],
    "drug receive": ["SH-1", "--key", "{key}"],
    "drug release": [f"{GTIN}:S1", "--reason", "cleared", "--key", "{key}"],
    "drug ship": [f"{GTIN}:S1", "--to", "pharmacy", "--shipment", "SH-1", "--key", "{key}"],
    "drug verify": [f"{GTIN}:S1"],
    "ehr accesses": ["--patient", PID],
    "ehr add": ["--patient", PID, "--file", "{obs}", "--key", "{key}"],
    "ehr amend": [PID, "--replaces", "1", "--file", "{obs}", "--key", "{key}"],
    "ehr erase": ["--all", "--key", "{key}"],
    "ehr history": [PID],
    "ehr read": [PID, "--key", "{key}"],
    "license grant": ["pharmacy", "dispense", "--key", "{key}"],
    "license revoke": ["pharmacy", "dispense", "--key", "{key}"],
    "org enrol": [HEX32, "--role", "physician", "--key", "{key}"],
    "org list": [],
    "org member": [HEX32],
    "org revoke": [HEX32, "--key", "{key}"],
    "patient register": ["--key", "{key}"],
    "status": [],
    "validators approve": [HEX32, "--key", "{key}"],
    "validators list": [],
    "validators pending": [],
    "validators propose-add": ["--joiner", "{joiner}", "--key", "{key}"],
    "validators propose-promote": ["node9", "--key", "{key}"],
    "validators propose-remove": ["node9", "--key", "{key}"],
    "validators propose-replace": ["node9", "--joiner", "{joiner}", "--key", "{key}"],
}
# Commands that work on local files or processes, not through a node's API.
OFFLINE = {
    "cluster add", "cluster down", "cluster kill", "cluster pause", "cluster restart", "cluster resume",
    "cluster status", "cluster up", "cluster wipe", "cluster snapshot", "cluster restore", "cluster check-store",
    "key new", "key show", "node init", "node join", "node reset", "node rotate-kek", "node show-id", "node start",
    "proof history",
    "proof verify", "sim", "testnet",
    # the lab tools start or find their own cluster (by folder, not by --node); 'bench' itself runs 'bench cluster'
    "bench cluster", "bench verify", "bench signing", "bench storage", "bench catchup", "counterfeit", "story",
    "chaos list", "chaos random", "chaos run", "chaos run-all",
    # signed with the network's operator key, sent to every affected node of the folder
    "fault heal", "fault link", "fault partition", "fault byzantine", "fault clock", "fault seed",
}
# Runs a node in the foreground: it prints log lines, not data.
NO_JSON = {"node start"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    where = tmp_path_factory.mktemp("convention")
    key = where / "me.json"
    assert CliRunner().invoke(cli, ["key", "new", "--out", str(key)]).exit_code == 0
    doc = where / "doc.txt"
    doc.write_text("a document\n")
    obs = where / "obs.json"
    obs.write_text(json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "BP"}}))
    node_key = SigningKey.from_seed_text("convention-joiner")
    joiner = where / "join.json"
    joiner.write_text(json.dumps({"name": "node9", "key": node_key.verify_key.hex(), "org": "hosp-a",
                                  "cert": make_certificate(node_key)[0], "address": "127.0.0.1:9"}))
    return {"key": str(key), "file": str(doc), "obs": str(obs), "joiner": str(joiner)}


@pytest.fixture(scope="module")
def dead() -> str:
    """host:port where no node listens."""
    return f"127.0.0.1:{free_base_port(1)}"


def run(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env={"MEDCHAIN_NODE": None, **(env or {})})


def one_line_error(result: Result, *words: str) -> str:
    """The result is exactly one ``error:`` line on stderr, exit code 2; returns it."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == "", result.stdout
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


def client_args(path: str, files: dict[str, str]) -> list[str]:
    return [arg.format(**files) for arg in CLIENT_ARGS[path]]


# ---------------------------------------------------------------- the walk covers every command


def test_every_command_is_either_a_client_of_a_node_or_offline():
    leaves = {name(path) for path, _ in LEAVES}
    unclassified = leaves - set(CLIENT_ARGS) - OFFLINE
    assert not unclassified, f"classify these commands in CLIENT_ARGS or OFFLINE: {sorted(unclassified)}"
    takes_node = {name(path) for path, command in LEAVES if any(p.name == "url" for p in command.params)}
    assert takes_node == set(CLIENT_ARGS), "exactly the client commands take --node"


@pytest.mark.parametrize("path", [path for path, _ in ALL], ids=name)
def test_every_command_and_option_has_help_text(path: tuple[str, ...]):
    command = dict(ALL)[path]
    assert (command.help or command.short_help or "").strip(), f"{name(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{name(path)} {param.opts[0]} has no help text"
    shown = CliRunner().invoke(cli, [*path, "--help"])
    assert shown.exit_code == 0 and "Usage: medchain " + name(path) in shown.output


@pytest.mark.parametrize("path", [path for path, _ in ALL], ids=name)
def test_a_usage_error_is_one_line_naming_the_help_to_read(path: tuple[str, ...]):
    result = run([*path, "--no-such-option"])
    one_line_error(result, "--no-such-option", f"(see medchain {name(path)} --help)")


@pytest.mark.parametrize("path", [path for path, _ in LEAVES], ids=name)
def test_every_command_that_prints_data_takes_json(path: tuple[str, ...]):
    command = dict(ALL)[path]
    options = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
    assert ("--json" in options) == (name(path) not in NO_JSON), name(path)


# Groups that run a command themselves when called without one (``medchain bench`` runs the cluster benchmark).
RUNNABLE_GROUPS = {"bench"}


def test_a_group_that_runs_without_a_command_is_classified_and_takes_json():
    runnable = {name(path) for path, command in ALL
                if isinstance(command, click.Group) and command.invoke_without_command}
    assert runnable == RUNNABLE_GROUPS, "classify runnable groups in RUNNABLE_GROUPS (and OFFLINE-like: no --node)"
    for path in runnable:
        command = dict(ALL)[tuple(path.split())]
        options = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
        assert "--json" in options and "--node" not in options, path


# ---------------------------------------------------------------- client commands


@pytest.mark.parametrize("path", sorted(CLIENT_ARGS))
def test_every_client_command_reads_medchain_node_and_takes_host_port(path: str, files: dict[str, str], dead: str):
    command = dict(ALL)[tuple(path.split())]
    node = next(p for p in command.params if p.name == "url")
    assert node.envvar == "MEDCHAIN_NODE" and "--node" in node.opts
    args = [*path.split(), *client_args(path, files)]
    one_line_error(run(args, env={"MEDCHAIN_NODE": dead}), f"cannot reach the node at http://{dead}")
    one_line_error(run([*args, "--node", f"https://{dead}"]), f"cannot reach the node at https://{dead}")


@pytest.mark.parametrize("path", sorted(CLIENT_ARGS))
def test_a_bad_node_address_is_a_one_line_error(path: str, files: dict[str, str]):
    args = [*path.split(), *client_args(path, files)]
    one_line_error(run([*args, "--node", "not a url"]), "'not a url' is not a node address", "host:port")
    one_line_error(run([*args, "--node", "ftp://127.0.0.1:9"]), "http:// or https://")
    one_line_error(run(args), "--node", "MEDCHAIN_NODE")


# ---------------------------------------------------------------- the newcomer's failures


def test_a_missing_file_is_one_line_not_four(tmp_path: Path):
    """Click alone prints Usage, Try, a blank line and Error."""
    genesis = tmp_path / "genesis.json"
    genesis.write_text("{}")
    result = run(["proof", "verify", str(tmp_path / "x.json"), "--genesis", str(genesis)])
    line = one_line_error(result, "'PROOF'", "does not exist", "(see medchain proof verify --help)")
    assert "Usage:" not in line and "Try" not in line


def test_status_with_host_port_and_no_node_is_one_line_not_a_traceback(dead: str):
    """It used to print 48 lines ending in NonHttpUrlClientError."""
    one_line_error(run(["status", "--node", dead]), "cannot reach the node", dead)
    one_line_error(run(["status"], env={"MEDCHAIN_NODE": dead}), "cannot reach the node", dead)


def test_commands_that_print_documents_take_json_too(files: dict[str, str], dead: str):
    """anchor put, proof verify and drug export-epcis had no --json."""
    for path in (("anchor", "put"), ("proof", "verify"), ("drug", "export-epcis")):
        assert "--json" in CliRunner().invoke(cli, [*path, "--help"]).output, path


def _group_failing_with(exc: BaseException) -> click.Group:
    @click.group("medchain", cls=MedchainGroup)
    def root() -> None:
        """A root group."""

    @root.command("fail")
    def fail() -> None:
        """Raise."""
        raise exc

    return root


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (UsageError("the ledger says no"), "error: the ledger says no\n"),
        (FileNotFoundError(2, "No such file or directory", "k.json"), "error: No such file or directory: k.json\n"),
        (KeyError("x"), "error: unexpected KeyError: 'x' (a bug: rerun with MEDCHAIN_TRACEBACK=1 and report it)\n"),
    ],
)
def test_what_a_command_raises_ends_as_one_line(exc: BaseException, says: str):
    result = CliRunner().invoke(_group_failing_with(exc), ["fail"], env={"MEDCHAIN_TRACEBACK": None})
    assert (result.exit_code, result.stderr) == (2, says)


def test_medchain_traceback_shows_a_bug_as_it_is():
    result = CliRunner().invoke(_group_failing_with(KeyError("x")), ["fail"], env={"MEDCHAIN_TRACEBACK": "1"})
    assert isinstance(result.exception, KeyError)


def test_no_module_imports_another_modules_private_names():
    """Helpers shared between modules have public names: no ``from project.module import _name`` anywhere."""
    project = ("primitives", "consensus", "storage", "node", "tests")
    found = []
    for top in project:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in project:
                    found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_")]
    assert not found, found
