"""``medchain fault``'s refusals before any node is reached, and the operator key in config.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.main import main as cli
from node.config import ConfigError, load_config
from node.lab.testnet import generate_testnet, operator_key
from tests.harness import free_base_port


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    generate_testnet(root, 4, base_port=free_base_port(4))
    return root


def refused(args: list[str]) -> str:
    result = CliRunner().invoke(cli, ["fault", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_every_node_lists_the_operator_key_the_testnet_wrote(network: Path) -> None:
    key = operator_key(network).verify_key.hex()
    assert {load_config(network / f"node{i}").operator_key for i in range(4)} == {key}


def test_a_malformed_operator_key_is_refused_by_name(network: Path, tmp_path: Path) -> None:
    text = (network / "node0" / "config.toml").read_text()
    key = load_config(network / "node0").operator_key
    (tmp_path / "config.toml").write_text(text.replace(key, "abc"))
    with pytest.raises(ConfigError, match="operator_key"):
        load_config(tmp_path)


def test_a_partition_naming_an_unknown_node_is_refused(network: Path) -> None:
    assert "node9" in refused(["partition", "--dir", str(network), "node0,node1", "/", "node9"])


def test_a_partition_needs_two_groups(network: Path) -> None:
    assert "two or more" in refused(["partition", "--dir", str(network), "node0,node1"])


def test_a_node_in_two_groups_is_refused(network: Path) -> None:
    assert "more than one group" in refused(["partition", "--dir", str(network), "node0,node1", "/", "node1"])


def test_a_link_fault_needs_a_setting(network: Path) -> None:
    assert "--cut" in refused(["link", "node0", "node1", "--dir", str(network)])


def test_a_link_to_itself_is_refused(network: Path) -> None:
    assert "different" in refused(["link", "node0", "node0", "--cut", "--dir", str(network)])


def test_a_loss_over_one_is_refused(network: Path) -> None:
    assert "--loss" in refused(["link", "node0", "node1", "--loss", "1.5", "--dir", str(network)])


def test_heal_with_no_node_running_says_so(network: Path) -> None:
    assert "cannot reach" in refused(["heal", "--dir", str(network)])


def test_an_unknown_behaviour_is_refused_naming_the_choices(network: Path) -> None:
    line = refused(["byzantine", "node0", "lying", "--dir", str(network)])
    assert "equivocate" in line and "garbage" in line and "off" in line


def test_a_behaviour_for_an_unknown_node_is_refused(network: Path) -> None:
    assert "node9" in refused(["byzantine", "node9", "silent", "--dir", str(network)])


def test_clock_skew_needs_a_value(network: Path) -> None:
    assert "--skew-ms" in refused(["clock", "node0", "--dir", str(network)])


def test_a_negative_seed_is_refused(network: Path) -> None:
    assert "SEED" in refused(["seed", "--dir", str(network), "--", "-3"])


def test_a_reorder_over_one_is_refused(network: Path) -> None:
    assert "--reorder" in refused(["link", "node0", "node1", "--reorder", "2", "--dir", str(network)])


def test_reseeding_with_no_node_running_says_so(network: Path) -> None:
    assert "cannot reach" in refused(["seed", "1", "--dir", str(network)])
