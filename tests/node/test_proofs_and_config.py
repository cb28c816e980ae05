"""Offline proofs, genesis and config parsing: pure logic, clear errors."""

import json
from pathlib import Path

import pytest

from consensus.messages import CommitCertificate, Vote
from node.config import ConfigError, load_config, read_key, write_key
from node.genesis import GenesisError, parse_genesis
from node.proofs import build_proof, verify_proof
from node.transaction import sign_transaction
from primitives.signing import SigningKey
from tests.helpers import CHAIN, block, commit, keys


def _genesis(n=4):
    return parse_genesis({
        "chain_id": CHAIN,
        "genesis_time_ms": 0,
        "validators": [{"name": f"node{i}", "key": k.verify_key.hex()} for i, k in enumerate(keys(n))],
    })


def _txs(n):
    """Signed transactions with opaque bodies (the core never reads a body)."""
    signer = SigningKey.generate()
    return tuple(sign_transaction(signer, CHAIN, f"body-{i}".encode(), 0) for i in range(n))


def _certified(txs):
    b = block(txs=txs)
    votes = tuple(Vote(s, commit(b, s).signature) for s in (0, 1, 2))
    return b, CommitCertificate(b.height, 0, b.hash, votes)


def test_a_proof_verifies_for_every_transaction_of_a_block():
    b, cert = _certified(_txs(7))
    for i in range(7):
        assert verify_proof(build_proof(b, cert, i), _genesis()) is None


@pytest.mark.parametrize("field", ["tx", "header", "certificate", "merkle_proof"])
def test_one_changed_byte_breaks_a_proof(field):
    b, cert = _certified(_txs(3))
    doc = build_proof(b, cert, 1)
    raw = bytearray(bytes.fromhex(doc[field]))
    raw[len(raw) // 2] ^= 0x01
    doc[field] = raw.hex()
    assert verify_proof(doc, _genesis()) is not None


def test_a_proof_with_a_too_small_certificate_or_another_chain_fails():
    b, cert = _certified(_txs(1))
    weak = CommitCertificate(cert.height, cert.view, cert.block_hash, cert.votes[:2])
    assert "certificate" in verify_proof(build_proof(b, weak, 0), _genesis())
    other = parse_genesis({**_genesis().raw, "chain_id": "other"})
    assert "chain" in verify_proof(build_proof(b, cert, 0), other)
    assert verify_proof({"format": "nope"}, _genesis()) is not None
    assert verify_proof(None, _genesis()) is not None


def test_committed_bytes_that_are_no_signed_transaction_prove_nothing():
    b, cert = _certified((b"not a transaction",))
    assert "not a transaction" in verify_proof(build_proof(b, cert, 0), _genesis())


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ([], "object"),
        ({"chain_id": "", "genesis_time_ms": 0, "validators": []}, "chain_id"),
        ({"chain_id": "c", "genesis_time_ms": -1, "validators": []}, "genesis_time_ms"),
        ({"chain_id": "c", "genesis_time_ms": 0, "validators": []}, "at least one validator"),
        ({"chain_id": "c", "genesis_time_ms": 0, "validators": [{"name": "a", "key": "zz"}]}, "validators[0].key"),
        ({"chain_id": "c", "genesis_time_ms": 0, "validators": [{"name": "a", "key": "00" * 32}] * 2}, "twice"),
    ],
)
def test_broken_genesis_files_name_what_is_wrong(raw, needle):
    with pytest.raises(GenesisError, match=None) as err:
        parse_genesis(raw)
    assert needle in str(err.value)


def _write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


GOOD = (
    'name = "n0"\nrole = "validator"\ngenesis = "g.json"\n'
    'p2p_listen = "127.0.0.1:5000"\napi_listen = "127.0.0.1:5001"\n'
)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("this is = not toml [", "not valid TOML"),
        (GOOD.replace('"validator"', '"king"'), "role"),
        (GOOD.replace("127.0.0.1:5000", "nowhere"), "host:port"),
        (GOOD + "[consensus]\nprogress_timeout_ms = -5\n", "positive integer"),
        (GOOD + "[consensus]\nwarp_speed = 9\n", "unknown setting"),
        (GOOD + "[p2p]\nheartbeat_s = 0\n", "[p2p].heartbeat_s must be a positive integer"),
        (GOOD + 'peers = [{name = "x"}]\n', "peers[0]"),
    ],
)
def test_broken_configs_name_what_is_wrong(tmp_path, text, needle):
    _write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert needle in str(err.value)


def test_a_good_config_loads_and_a_missing_one_says_how_to_make_one(tmp_path):
    _write_config(tmp_path / "a", GOOD)
    assert load_config(tmp_path / "a").name == "n0"
    assert load_config(tmp_path / "a").p2p.heartbeat_s == 15
    _write_config(tmp_path / "b", GOOD + "[p2p]\nheartbeat_s = 4\n")
    assert load_config(tmp_path / "b").p2p.heartbeat_s == 4
    with pytest.raises(ConfigError, match="node init"):
        load_config(tmp_path / "missing")


def test_key_files_round_trip_and_reject_tampering(tmp_path):
    key = SigningKey.generate()
    write_key(tmp_path / "k.json", key)
    assert (tmp_path / "k.json").stat().st_mode & 0o777 == 0o600
    assert read_key(tmp_path / "k.json").verify_key == key.verify_key
    doc = json.loads((tmp_path / "k.json").read_text())
    doc["public"] = "00" * 32
    (tmp_path / "k.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="does not match"):
        read_key(tmp_path / "k.json")
