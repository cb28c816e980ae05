"""'medchain node join': a node folder ready to follow a network and be proposed as a validator."""

import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

from node.cli.main import main
from node.config import load_config
from node.lab.consortium import load_consortium
from node.lab.testnet import generate_testnet
from node.p2p.certs import certificate_key_of_pem

CONSORTIUM = Path(__file__).parents[2] / "configs" / "consortium-4.toml"


def _network(tmp_path: Path) -> Path:
    generate_testnet(tmp_path / "net", 0, consortium=load_consortium(CONSORTIUM), base_port=30100)
    return tmp_path / "net" / "genesis.json"


def _join(home: Path, genesis: Path, *extra: str):
    args = ["node", "join", "--home", str(home), "--genesis", str(genesis), "--p2p", "127.0.0.1:30200",
            "--api", "127.0.0.1:30201", *extra]
    return CliRunner().invoke(main, args)


def test_join_writes_a_validator_home_and_its_description(tmp_path: Path):
    genesis = _network(tmp_path)
    home = tmp_path / "st-mary-2"
    result = _join(home, genesis, "--org", "st-mary", "--peer", "regulator=127.0.0.1:30100",
                   "--peers", "st-mary=127.0.0.1:30102, city-general=[::1]:30104", "--advertise", "mary2.example:30200")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc == json.loads((home / "join.json").read_text())
    assert doc["name"] == "st-mary-2" and doc["org"] == "st-mary" and doc["address"] == "mary2.example:30200"
    assert certificate_key_of_pem(doc["cert"]).hex() == doc["key"]
    config = load_config(home)
    assert config.role == "validator" and config.p2p_listen == "127.0.0.1:30200"
    assert [(p.name, p.address) for p in config.peers] == [
        ("regulator", "127.0.0.1:30100"), ("st-mary", "127.0.0.1:30102"), ("city-general", "[::1]:30104")]
    assert (home / "genesis.json").read_bytes() == genesis.read_bytes()
    assert tomllib.loads((home / "config.toml").read_text())["genesis"] == "genesis.json"
    again = _join(home, genesis, "--org", "st-mary")
    assert again.exit_code == 2 and "already has a node key" in again.output


def test_a_node_of_a_new_organisation_carries_the_organisation_in_its_description(tmp_path: Path):
    genesis = _network(tmp_path)
    admin = tmp_path / "riverside-admin.json"
    assert CliRunner().invoke(main, ["key", "new", "--out", str(admin)]).exit_code == 0
    result = _join(tmp_path / "riverside", genesis, "--org", "riverside", "--org-name", "Riverside Hospital",
                   "--org-kind", "hospital", "--org-admin", str(admin))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["org"], doc["org_name"], doc["org_kind"]) == ("riverside", "Riverside Hospital", "hospital")
    assert doc["org_admin"] == json.loads(admin.read_text())["public"]


def test_join_refuses_what_cannot_work_naming_it(tmp_path: Path):
    genesis = _network(tmp_path)
    cases = [
        (["--org", "nobody"], "a new organisation needs --org-name, --org-kind and --org-admin"),
        (["--org", "nobody", "--org-name", "N", "--org-kind", "castle", "--org-admin", "ab" * 32], "--org-kind"),
        (["--org", "st-mary", "--org-name", "Again"], "is in genesis already"),
        (["--org", "st-mary", "--name", "regulator"], "already a node in genesis"),
        (["--org", "st-mary", "--peer", "regulator"], "NAME=HOST:PORT"),
        (["--org", "st-mary", "--peer", "regulator=nowhere"], "--peer regulator"),
    ]
    for n, (extra, words) in enumerate(cases):
        home = tmp_path / f"j{n}"
        result = _join(home, genesis, *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert words in result.output, (extra, result.output)
        assert not (home / "node_key.json").exists(), "a refused join left a key behind"
