"""Consortium files: the shipped ones, every bad input, the network they generate, the CLI, and a real cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from node.cli.main import main as cli
from node.config import load_config, read_key
from node.genesis import load_genesis
from node.lab import cluster as clusters
from node.lab.consortium import ConsortiumError, load_consortium
from node.lab.testnet import generate_testnet
from tests.harness import free_base_port

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FOUR, SEVEN = CONFIGS / "consortium-4.toml", CONFIGS / "consortium-7.toml"
FOUR_VALIDATORS = ["regulator", "st-mary", "city-general", "northside-pharmacy"]


def _org(org_id: str = "a", name: str = "A", kind: str = "lab", node: str = "validator", extra: str = "") -> str:
    return f'[[organisation]]\nid = "{org_id}"\nname = "{name}"\nkind = "{kind}"\nnode = "{node}"\n{extra}'


# ---------------------------------------------------------------- the shipped files


def test_consortium_4_has_four_validators_and_members_without_nodes() -> None:
    four = load_consortium(FOUR)
    assert four.chain_id == "medchain-consortium-4"
    assert len(four.organisations) == 6 and len(four.validators) == 4 and not four.observers
    assert [o.id for o in four.validators] == FOUR_VALIDATORS
    assert [o.kind for o in four.validators] == ["regulator", "hospital", "hospital", "pharmacy"]
    assert sorted(o.kind for o in four.organisations if o.node == "none") == ["distributor", "manufacturer"]


def test_consortium_7_has_seven_validators_an_observer_and_members_without_nodes() -> None:
    seven = load_consortium(SEVEN)
    assert seven.chain_id == "medchain-consortium-7"
    assert (len(seven.organisations), len(seven.validators), len(seven.observers)) == (10, 7, 1)
    assert Counter(o.kind for o in seven.validators) == {"regulator": 1, "hospital": 3, "pharmacy": 2, "distributor": 1}
    assert [(o.id, o.kind) for o in seven.observers] == [("central-lab", "lab")]
    assert sorted(o.kind for o in seven.organisations if o.node == "none") == ["distributor", "manufacturer"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("this is = not toml [", "not valid TOML"),
        ('chain_id = "x"', "[[organisation]]"),
        ("organisation = []", "[[organisation]]"),
        ('organisation = ["st-mary"]', "organisation[0] must be a table"),
        (_org() + 'colour = "red"', "organisation[0]: unknown field(s) colour"),
        ('colour = "red"\n' + _org(), "unknown top-level key(s) colour"),
        ('chain_id = ""\n' + _org(), "chain_id must be a string of 1 to 64 characters"),
        ("chain_id = 7\n" + _org(), "chain_id must be a string"),
        ('[[organisation]]\nname = "A"\nkind = "lab"\nnode = "validator"', "organisation[0].id must be"),
        (_org(org_id="a b"), "organisation[0].id must be 1 to 32 ASCII letters"),
        (_org(org_id="-a"), "organisation[0].id must be"),
        (_org(org_id="x" * 33), "organisation[0].id must be"),
        (_org(org_id="sjöberg"), "organisation[0].id must be"),
        (_org(org_id="orgs"), "organisation[0].id cannot be 'orgs'"),
        (_org(org_id="clients"), "organisation[0].id cannot be 'clients'"),
        (_org() + _org(name="B"), "organisation[1].id: 'a' is used twice"),
        (_org(org_id="st-mary") + _org(org_id="St-Mary"), "organisation[1].id: 'St-Mary' is used twice"),
        (_org(name=""), "organisation[0].name must be a non-empty string"),
        ('[[organisation]]\nid = "a"\nkind = "lab"\nnode = "validator"', "organisation[0].name must be"),
        (_org(kind="spa"), "organisation[0].kind must be one of hospital, pharmacy"),
        ('[[organisation]]\nid = "a"\nname = "A"\nnode = "validator"', "organisation[0].kind must be one of"),
        (_org() + _org(org_id="b", node="leader"), "organisation[1].node must be one of validator, observer, none"),
        ('[[organisation]]\nid = "a"\nname = "A"\nkind = "lab"\nnode = 1', "organisation[0].node must be one of"),
        (_org(node="none") + _org(org_id="b", node="observer"), "no organisation runs a validator"),
    ],
)
def test_bad_consortium_files_name_the_file_the_entry_and_the_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConsortiumError) as err:
        load_consortium(path)
    message = str(err.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConsortiumError, match=r"no consortium file at .*nope\.toml"):
        load_consortium(tmp_path / "nope.toml")


def test_node_defaults_to_none_and_chain_id_to_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "ward.toml"
    path.write_text(_org() + '[[organisation]]\nid = "b"\nname = "B"\nkind = "manufacturer"\n')
    plan = load_consortium(path)
    assert plan.chain_id == "medchain-ward" and [o.node for o in plan.organisations] == ["validator", "none"]


# ---------------------------------------------------------------- the generated network


def test_consortium_4_network_names_nodes_after_organisations(tmp_path: Path) -> None:
    out, base = tmp_path / "net", free_base_port(4)
    plan = load_consortium(FOUR)
    returned = generate_testnet(out, 0, 0, base, consortium=plan)
    genesis = load_genesis(out / "genesis.json")
    assert genesis.hash == returned.hash and genesis.chain_id == "medchain-consortium-4"
    assert [m.name for m in genesis.validators] == FOUR_VALIDATORS and not genesis.observers
    assert [(o.id, o.name, o.kind) for o in genesis.organisations] == [
        (o.id, o.name, o.kind) for o in plan.organisations
    ]
    for org in genesis.organisations:
        runs_validator = org.id in FOUR_VALIDATORS
        assert org.nodes == ((org.id,) if runs_validator else ())
        assert genesis.org_of_node(org.id) == (org if runs_validator else None)
        assert read_key(out / "orgs" / org.id / "admin.json").verify_key == org.admin_key
        assert (out / org.id / "config.toml").exists() == runs_validator
    assert len({o.admin_key for o in genesis.organisations}) == 6
    assert [c.name for c in genesis.clients] == ["client0", "client1", "client2"]
    assert [h.name for h in clusters.node_homes(out)] == FOUR_VALIDATORS
    for i, name in enumerate(FOUR_VALIDATORS):
        config = load_config(out / name)
        assert (config.name, config.role) == (name, "validator")
        assert (config.p2p_listen, config.api_listen) == (f"127.0.0.1:{base + 2 * i}", f"127.0.0.1:{base + 2 * i + 1}")
    index = json.loads((out / "consortium.json").read_text())
    expected: dict[str, Any] = {}
    for o in plan.organisations:
        i = FOUR_VALIDATORS.index(o.id) if o.id in FOUR_VALIDATORS else None
        expected[o.id] = {
            "name": o.name,
            "kind": o.kind,
            "node": o.id if i is not None else None,
            "role": "validator" if i is not None else None,
            "admin_key_file": f"orgs/{o.id}/admin.json",
            "api": f"http://127.0.0.1:{base + 2 * i + 1}" if i is not None else None,
        }
    assert index == expected and list(index) == [o.id for o in plan.organisations]


def test_consortium_7_network_puts_the_observer_after_the_validators(tmp_path: Path) -> None:
    out = tmp_path / "net"
    genesis = generate_testnet(out, 0, 0, free_base_port(8), chain_id="my-chain", consortium=load_consortium(SEVEN))
    assert genesis.chain_id == "my-chain"
    assert len(genesis.validators) == 7 and [m.name for m in genesis.observers] == ["central-lab"]
    assert [h.name for h in clusters.node_homes(out)] == [m.name for m in genesis.nodes]
    assert load_config(out / "central-lab").role == "observer"
    lab = genesis.organisation("central-lab")
    assert lab is not None and lab.nodes == ("central-lab",)
    assert json.loads((out / "consortium.json").read_text())["central-lab"]["role"] == "observer"


def test_a_plain_network_has_no_organisations(tmp_path: Path) -> None:
    out = tmp_path / "net"
    generate_testnet(out, 4, 1, free_base_port(5))
    raw = json.loads((out / "genesis.json").read_text())
    assert "organisations" not in raw and [m["name"] for m in raw["validators"]] == ["node0", "node1", "node2", "node3"]
    assert not (out / "consortium.json").exists() and not (out / "orgs").exists()
    assert [h.name for h in clusters.node_homes(out)] == ["node0", "node1", "node2", "node3", "node4"]


# ---------------------------------------------------------------- the CLI


def test_cli_testnet_with_a_consortium_lists_the_organisations(tmp_path: Path) -> None:
    out, base = tmp_path / "n7", free_base_port(8)
    result = CliRunner().invoke(
        cli, ["testnet", "--consortium", str(SEVEN), "--out", str(out), "--base-port", str(base)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote network medchain-consortium-7" in result.output and "7 validators, 1 observers" in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "observer" in lines["central-lab"] and f"http://127.0.0.1:{base + 2 * 7 + 1}" in lines["central-lab"]
    assert "manufacturer" in lines["acme-pharma"] and "orgs/acme-pharma/admin.json" in lines["acme-pharma"]
    assert load_genesis(out / "genesis.json").organisation("pharmaroute") is not None


@pytest.mark.parametrize("command", [["testnet", "--out"], ["cluster", "up", "--dir"]])
@pytest.mark.parametrize(("flag", "value"), [("--nodes", "3"), ("--observers", "1"), ("--nodes", "4")])
def test_consortium_and_node_counts_exclude_each_other(tmp_path: Path, command: list[str], flag: str, value: str):
    result = CliRunner().invoke(cli, [*command, str(tmp_path / "x"), "--consortium", str(FOUR), flag, value])
    assert result.exit_code == 2 and result.output == f"error: --consortium decides the nodes: drop {flag}\n"
    assert not (tmp_path / "x").exists()


def test_cli_names_a_missing_consortium_file_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["testnet", "--consortium", str(tmp_path / "c.toml"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and result.output.startswith("error: no consortium file at")
    assert result.output.count("\n") == 1


def test_cluster_up_refuses_a_folder_holding_another_network(tmp_path: Path) -> None:
    generate_testnet(tmp_path, 0, 0, free_base_port(8), consortium=load_consortium(SEVEN))
    result = CliRunner().invoke(cli, ["cluster", "up", "--consortium", str(FOUR), "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "already holds another network" in result.output
    assert not (tmp_path / "cluster.json").exists(), "no node may start"


# ---------------------------------------------------------------- a real cluster


def _medchain(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, timeout=timeout)


def test_cluster_up_with_consortium_4_commits_and_goes_down(tmp_path: Path) -> None:
    root = tmp_path / "c4"
    try:
        up = _medchain(
            "cluster",
            "up",
            "--consortium",
            str(FOUR),
            "--dir",
            str(root),
            "--base-port",
            str(free_base_port(4)),
            timeout=150,
        )
        assert up.returncode == 0, up.stderr
        assert "acme-pharma" in up.stdout and "orgs/st-mary/admin.json" in up.stdout
        deadline, rows = time.monotonic() + 30, []
        while time.monotonic() < deadline:  # up waits for the first commit on one node; the others follow
            status = _medchain("cluster", "status", "--dir", str(root), "--json")
            assert status.returncode == 0, status.stderr
            rows = json.loads(status.stdout)
            if all((r["height"] or 0) >= 1 for r in rows):
                break
            time.sleep(0.2)
        assert [r["name"] for r in rows] == FOUR_VALIDATORS
        assert all(r["role"] == "validator" and r["alive"] and (r["height"] or 0) >= 1 for r in rows), rows
        pids = [n.pid for n in clusters.load_cluster(root)]
        down = _medchain("cluster", "down", "--dir", str(root))
        assert down.returncode == 0 and down.stdout.count(": stopped") == 4, down.stdout + down.stderr
        assert not any(clusters.is_alive(pid) for pid in pids)
    finally:
        if (root / "cluster.json").exists():
            _medchain("cluster", "down", "--dir", str(root))
