"""Consortium files: the shipped ones, every bad input, the network they generate, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main as cli
from node.config import read_key
from node.consortium import ConsortiumError, load_consortium
from node.genesis import load_genesis
from node.testnet import generate_testnet
from tests.node.harness import free_base_port

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_shipped_consortia() -> None:
    four = load_consortium(CONFIGS / "consortium-4.toml")
    assert [o.kind for o in four.validators] == ["regulator", "hospital", "hospital", "pharmacy"]
    assert {o.kind for o in four.organisations if o.node == "none"} == {"manufacturer", "distributor"}
    seven = load_consortium(CONFIGS / "consortium-7.toml")
    assert (len(seven.validators), len(seven.observers)) == (7, 1)
    assert {"manufacturer", "distributor", "regulator", "pharmacy", "hospital", "lab"} <= {
        o.kind for o in seven.organisations}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("this is = not toml [", "not valid TOML"),
        ('chain_id = "x"', "[[organisation]]"),
        ('[[organisation]]\nid = "a b"\nname = "A"\nkind = "hospital"\nnode = "validator"', "organisation[0].id"),
        ('[[organisation]]\nid = "a"\nname = "A"\nkind = "spa"\nnode = "validator"', "organisation[0].kind"),
        ('[[organisation]]\nid = "a"\nname = "A"\nkind = "lab"\nnode = "leader"', "organisation[0].node"),
        ('[[organisation]]\nid = "a"\nname = ""\nkind = "lab"\nnode = "validator"', "organisation[0].name"),
        ('[[organisation]]\nid = "a"\nname = "A"\nkind = "lab"\nnode = "none"', "no organisation runs a validator"),
        ('[[organisation]]\nid = "a"\nname = "A"\nkind = "lab"\nnode = "validator"\n'
         '[[organisation]]\nid = "a"\nname = "B"\nkind = "lab"\nnode = "validator"', "organisation[1].id"),
        ('[[organisation]]\nid = "a"\nname = "A"\nkind = "lab"\nnode = "validator"\ncolour = "red"', "colour"),
    ],
)
def test_bad_consortium_files_name_the_entry_and_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConsortiumError) as err:
        load_consortium(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConsortiumError, match="no consortium file"):
        load_consortium(tmp_path / "nope.toml")


def test_generated_network_names_nodes_after_organisations(tmp_path: Path) -> None:
    plan = load_consortium(CONFIGS / "consortium-4.toml")
    generate_testnet(tmp_path / "net", 0, 0, free_base_port(4), consortium=plan)
    genesis = load_genesis(tmp_path / "net" / "genesis.json")
    assert [m.name for m in genesis.validators] == [o.id for o in plan.validators]
    index = json.loads((tmp_path / "net" / "consortium.json").read_text())
    for org in genesis.organisations:
        admin = read_key(tmp_path / "net" / "orgs" / org.id / "admin.json")
        assert admin.verify_key == org.admin_key
        assert org.nodes == ((org.id,) if index[org.id]["node"] else ())
        assert (tmp_path / "net" / org.id / "config.toml").exists() == bool(org.nodes)
    assert index["acme-pharma"]["api"] is None and index["st-mary"]["api"].startswith("http://127.0.0.1:")


def test_cli_testnet_with_a_consortium_and_its_conflicts(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["testnet", "--consortium", str(CONFIGS / "consortium-7.toml"), "--out",
                             str(tmp_path / "n7"), "--base-port", str(free_base_port(8))])
    assert ok.exit_code == 0, ok.output
    assert "7 validators, 1 observers" in ok.output and "central-lab" in ok.output
    clash = runner.invoke(cli, ["testnet", "--consortium", str(CONFIGS / "consortium-4.toml"), "--nodes", "3",
                                "--out", str(tmp_path / "x")])
    assert clash.exit_code == 2 and "drop --nodes" in clash.output


def test_cluster_up_with_a_consortium(tmp_path: Path) -> None:
    root = tmp_path / "c4"
    medchain = [sys.executable, "-m", "node"]
    try:
        up = subprocess.run([*medchain, "cluster", "up", "--consortium", str(CONFIGS / "consortium-4.toml"), "--dir",
                             str(root), "--base-port", str(free_base_port(4)), "--json"],
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        rows = json.loads(up.stdout)
        assert sorted(r["name"] for r in rows) == ["city-general", "northside-pharmacy", "regulator", "st-mary"]
        assert all(r["role"] == "validator" and r["height"] >= 1 for r in rows)
    finally:
        subprocess.run([*medchain, "cluster", "down", "--dir", str(root)], capture_output=True, timeout=60)
