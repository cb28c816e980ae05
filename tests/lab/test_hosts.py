"""Networks across hosts: addresses of every family, and the hosts file of ``medchain testnet --hosts``."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import ConfigError, join_address, load_config, parse_address
from node.lab.testnet import generate_testnet, load_hosts
from primitives.errors import UsageError


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:26600", "127.0.0.1", 26600),
    ("0.0.0.0:1", "0.0.0.0", 1),
    ("[::1]:26600", "::1", 26600),
    ("[fd00:77::3]:443", "fd00:77::3", 443),
    ("node-a.hospital.example:26600", "node-a.hospital.example", 26600),
])
def test_addresses_of_every_family_read_and_write_back(text: str, host: str, port: int) -> None:
    assert parse_address(text) == (host, port)
    assert join_address(host, port) == text


@pytest.mark.parametrize(("text", "says"), [
    ("::1:26600", "in brackets"),
    ("[10.0.0.1]:5", "IPv6 addresses only"),
    ("under_score:80", "neither an IP address nor a host name"),
    ("host:0", "not host:port"),
    ("host:70000", "not host:port"),
    ("host", "not host:port"),
])
def test_bad_addresses_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_address(text, "p2p_listen")


HOSTS = """
[[node]]
name = "node0"
host = "10.77.0.1"

[[node]]
name = "node1"
host = "fd00:77::2"
p2p_port = 7000
api_port = 7001

[[node]]
name = "node2"
host = "node2.example.org"
listen = "10.0.0.9"

[[node]]
name = "node3"
host = "10.77.0.4"
"""


def test_a_hosts_file_places_every_node_at_its_addresses(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(HOSTS)
    generate_testnet(tmp_path / "net", 4, hosts=hosts)
    configs = {n: load_config(tmp_path / "net" / n) for n in ("node0", "node1", "node2", "node3")}
    assert configs["node0"].p2p_listen == "0.0.0.0:26600" and configs["node0"].api_listen == "0.0.0.0:26601"
    assert configs["node1"].p2p_listen == "[::]:7000" and configs["node1"].api_listen == "[::]:7001"
    assert configs["node2"].p2p_listen == "10.0.0.9:26600"
    assert {p.name: p.address for p in configs["node0"].peers} == {
        "node1": "[fd00:77::2]:7000", "node2": "node2.example.org:26600", "node3": "10.77.0.4:26600"}
    assert all("127.0.0.1" not in (tmp_path / "net" / n / "config.toml").read_text() for n in configs)


@pytest.mark.parametrize(("text", "says"), [
    ('[[node]]\nname = "node0"\n', "needs a 'name' and a 'host'"),
    ('[[node]]\nname = "node0"\nhost = "a.example"\nport = 1\n', "unknown key port"),
    ('[[node]]\nname = "node0"\nhost = "a.example"\n[[node]]\nname = "node0"\nhost = "b.example"\n', "listed twice"),
    ('[[node]]\nname = "node0"\nhost = "a.example"\n[[node]]\nname = "node1"\nhost = "a.example"\n',
     "a.example port 26600 is already used by node0"),
    ('[[node]]\nname = "node0"\nhost = "bad host"\n', "neither an IP address nor a host name"),
    ('[[node]]\nname = "node0"\nhost = "a.example"\napi_port = 26600\n', "must differ"),
    ('[[node]]\nname = "node0"\nhost = "a.example"\np2p_port = "x"\n', "p2p_port must be a port number"),
    ("node = 3\n", "expected [[node]] tables"),
    ("[[node]\n", "cannot read hosts file"),
])
def test_a_broken_hosts_file_is_refused_naming_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(text)
    with pytest.raises(UsageError, match=says.replace("[", r"\[")):
        load_hosts(hosts)


def test_the_hosts_file_must_name_exactly_the_networks_nodes(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text('[[node]]\nname = "node0"\nhost = "10.0.0.1"\n[[node]]\nname = "nodeX"\nhost = "10.0.0.2"\n')
    with pytest.raises(UsageError, match="no entry for node1; no such node nodeX"):
        generate_testnet(tmp_path / "net", 2, hosts=hosts)
    assert not (tmp_path / "net" / "genesis.json").exists()
