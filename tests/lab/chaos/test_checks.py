"""The chaos invariant checks catch what they claim to (non-vacuity), on real stores and in memory."""

from dataclasses import replace

import pytest

from consensus.certificates import Verifier
from consensus.events import Evidence
from consensus.messages import CommitCertificate, Vote
from node.config import NodeConfig
from node.lab.chaos.checks import agreement, check_run, durability, evidence, judge, latency, validity
from node.lab.chaos.record import Ack, Expectations, FaultWindow
from node.lab.chaos.replay import data_dir, replay, summarise
from node.lab.chaos.verdict import Verdict
from node.transaction import tx_id
from primitives.errors import UsageError
from storage.chainstore import ChainStore
from tests.helpers import CHAIN, block, keys, prepare
from tests.lab.chaos.chains import (
    VALIDATORS,
    acks_for,
    anchor,
    batches,
    build_chain,
    certify,
    doctor_block,
    genesis,
    record,
    steady_samples,
    write_network,
)

NODES = [*VALIDATORS, "node4"]
G = genesis()
VERIFIER = Verifier(CHAIN, [m.key for m in G.validators])


def _summary(name, steps, head_app_hash=None, ev=()):
    head = head_app_hash if head_app_hash is not None else (steps[-1].app_hash if steps else None)
    return summarise(name, [s.certified for s in steps], VERIFIER, G.hash, head, ev)


@pytest.fixture(scope="module")
def chain():
    return build_chain(G, batches(6))


def _healthy_record(steps):
    r = record(acks_for(steps), steady_samples(NODES, 10.0), commits_resume_within_s=5.0)
    r.windows.append(FaultWindow("kill", ["node1"], 2.0, 4.0))
    return r


# ------------------------------------------------------------ on real stores (check_run)


def test_a_healthy_run_passes_every_check(tmp_path, chain):
    net = write_network(tmp_path / "net", G, {n: chain for n in NODES})
    verdicts = check_run(net, _healthy_record(chain))
    failing = [(v.name, v.summary) for v in verdicts.items if not v.ok]
    assert failing == [] and verdicts.expectation_met and verdicts.outcome == "ok"
    assert verdicts.get("validity").data["replayed_height"] == 6


def test_a_store_doctored_to_hold_another_block_at_one_height_is_caught_by_agreement(tmp_path, chain):
    net = write_network(tmp_path / "net", G, {n: chain for n in NODES})
    other = build_chain(G, [*batches(2), [anchor(999)], *batches(6)[3:]])[2].block
    doctor_block(net / "node2" / "data", other)
    verdicts = check_run(net, _healthy_record(chain))
    ag = verdicts.get("agreement")
    assert not ag.ok and ag.data["fork_heights"] == [3]
    assert "height 3" in ag.details[0] and "node2" in ag.details[0] and other.hash.hex()[:16] in ag.details[0]
    assert verdicts.outcome == "FORK" and not verdicts.expectation_met
    assert not verdicts.get("validity").ok  # the stored certificate is not for the doctored block


def test_an_ack_for_a_transaction_missing_from_the_stores_is_caught_by_durability(tmp_path, chain):
    net = write_network(tmp_path / "net", G, {n: chain[:5] for n in NODES})  # the last block never reached a store
    verdicts = check_run(net, _healthy_record(chain))
    du = verdicts.get("durability")
    assert not du.ok and du.data["missing"] == 3
    assert tx_id(chain[5].block.txs[0]).hex()[:16] in " ".join(du.details)


def test_the_checks_refuse_a_store_still_in_use(tmp_path, chain):
    net = write_network(tmp_path / "net", G, {n: chain for n in NODES})
    with ChainStore.open(net / "node1" / "data", G.chain_id, G.hash), pytest.raises(UsageError, match="node1"):
        check_run(net, _healthy_record(chain))


def test_a_node_without_a_data_directory_is_an_empty_chain(tmp_path, chain):
    net = write_network(tmp_path / "net", G, {n: chain for n in NODES if n != "node3"})
    verdicts = check_run(net, _healthy_record(chain))
    ag = verdicts.get("agreement")
    assert ag.ok and ag.data["heights"]["node3"] == 0 and "node3" in ag.data["notes"]


# ------------------------------------------------------------ agreement and durability in memory


def test_agreement_holds_for_prefixes_of_one_chain(chain):
    assert agreement([_summary("a", chain), _summary("b", chain[:3]), _summary("c", [])]).ok


def test_acknowledged_transaction_removed_from_the_chain_fails_durability(chain):
    acks = acks_for(chain)
    assert durability(acks, [_summary("a", chain)]).ok
    removed = _summary("a", chain)
    removed.tx_ids[2] = removed.tx_ids[2][1:]
    v = durability(acks, [removed])
    assert not v.ok and v.data["missing"] == 1 and "not in the final chain" in v.details[0]


def test_an_ack_for_a_transaction_never_committed_fails_durability(chain):
    stranger = Ack(tx_id(anchor(12345)).hex(), "node3", 1.0, 2.0)
    v = durability([*acks_for(chain), stranger], [_summary("a", chain)])
    assert not v.ok and stranger.tx_id[:16] in v.details[0] and "node3" in v.details[0]


def test_a_run_with_no_acknowledged_transaction_fails_durability(chain):
    v = durability([], [_summary("a", chain)])
    assert not v.ok and v.summary == "vacuous: nothing was acknowledged"
    few = durability(acks_for(chain)[:2], [_summary("a", chain)], min_acked=5)
    assert not few.ok and "only 2" in few.summary


def test_a_transaction_committed_twice_fails_durability():
    again = anchor(1)  # the same bytes (a transaction's signature carries a nonce)
    twice = build_chain(G, [[again, anchor(2)], [anchor(3), again]])
    v = durability(acks_for(twice), [_summary("a", twice)])
    assert not v.ok and "2 times, at heights 1, 2" in v.details[0]


def test_an_ack_at_another_height_than_the_chain_holds_fails_durability(chain):
    acks = [replace(a, height=a.height + 1) if i == 0 else a for i, a in enumerate(acks_for(chain))]
    v = durability(acks, [_summary("a", chain)])
    assert not v.ok and "acknowledged at height 2 is at height 1" in v.details[0]


# ------------------------------------------------------------ validity


def test_a_valid_chain_replays_from_genesis(tmp_path, chain):
    replayed = replay([s.certified for s in chain], G, tmp_path / "replay")
    assert replayed.problems == [] and replayed.app_after == [s.app_hash for s in chain]
    assert validity([_summary("a", chain), _summary("b", chain[:4])], replayed).ok


def test_a_block_with_a_bad_certificate_fails_validity(chain):
    weak = replace(chain[1], certificate=certify(chain[1].block, signers=(0, 1)))
    forged_vote = Vote(2, bytes(64))
    c = chain[2].certificate
    forged_cert = CommitCertificate(c.height, c.view, c.block_hash, (*c.votes[:2], forged_vote))
    forged = replace(chain[2], certificate=forged_cert)
    s = _summary("node1", [chain[0], weak, forged, *chain[3:]])
    v = validity([s], None)
    assert not v.ok
    assert any("node1 height 2: commit certificate invalid" in d for d in v.details)
    assert any("node1 height 3: commit certificate invalid: bad signature" in d for d in v.details)


def test_a_broken_prev_hash_link_fails_validity(chain):
    stray = block(2, prev=b"\x01" * 32, chain=CHAIN)
    s = summarise("node0", [chain[0].certified, (stray, certify(stray))], VERIFIER, G.hash)
    v = validity([s], None)
    assert not v.ok and "prev_hash" in v.details[0]


def test_a_block_with_a_wrong_app_hash_fails_validity(tmp_path):
    lying = build_chain(G, batches(4), wrong_app_at=3)
    replayed = replay([s.certified for s in lying], G, tmp_path / "replay")
    assert len(replayed.app_after) == 2 and "height 3" in replayed.problems[0]
    v = validity([_summary("node0", lying)], replayed)
    assert not v.ok and "replay of" in v.details[0] and "app_hash" in v.details[0]


def test_a_node_whose_head_state_differs_from_the_replay_fails_validity(tmp_path, chain):
    replayed = replay([s.certified for s in chain], G, tmp_path / "replay")
    v = validity([_summary("node0", chain), _summary("node4", chain[:3], head_app_hash=b"\x07" * 32)], replayed)
    assert not v.ok and v.details[0].startswith("node4: head state")


def test_a_wrong_app_hash_on_disk_is_caught_by_check_run(tmp_path):
    lying = build_chain(G, batches(4), wrong_app_at=2)
    net = write_network(tmp_path / "net", G, {n: lying for n in NODES})
    verdicts = check_run(net, _healthy_record(lying))
    assert not verdicts.get("validity").ok and verdicts.get("agreement").ok
    assert verdicts.outcome == "FAILED: validity"


# ------------------------------------------------------------ evidence and latency


def _equivocation(sender: int) -> Evidence:
    a, b = block(1, txs=(b"a",)), block(1, txs=(b"b",))
    return Evidence(sender, "prepare", prepare(a, sender), prepare(b, sender))


VALIDATOR_KEYS = [(n, k.verify_key) for n, k in zip(VALIDATORS, keys(4), strict=True)]


def test_evidence_names_the_culprit_and_its_key():
    chains = [_summary("node0", [], ev=[_equivocation(1)]), _summary("node2", [], ev=[_equivocation(1)])]
    v = evidence(chains, VALIDATOR_KEYS, ["node1"], ["node1"], VERIFIER)
    culprit = v.data["culprits"]["node1"]
    assert v.ok and culprit["key"] == keys(4)[1].verify_key.hex()
    assert culprit == {**culprit, "kinds": ["prepare"], "heights": [1], "reported_by": ["node0", "node2"]}


def test_a_misbehaving_validator_that_left_no_evidence_fails():
    v = evidence([_summary("node0", [])], VALIDATOR_KEYS, ["node1"], ["node1"], VERIFIER)
    assert not v.ok and "node1 was meant to misbehave" in v.summary


def test_evidence_against_an_honest_validator_fails():
    v = evidence([_summary("node0", [], ev=[_equivocation(2)])], VALIDATOR_KEYS, ["node1"], [], VERIFIER)
    assert not v.ok and "node2" in v.summary and "not meant to misbehave" in v.summary


def test_evidence_whose_signatures_do_not_verify_fails():
    e = _equivocation(1)
    forged = Evidence(1, "prepare", e.first, replace(e.second, signature=bytes(64)))
    v = evidence([_summary("node0", [], ev=[forged])], VALIDATOR_KEYS, ["node1"], ["node1"], VERIFIER)
    assert not v.ok and "does not verify" in v.details[0]


def test_latency_over_the_bound_fails():
    acks = [Ack(f"{i:064x}", "node0", 0.0, 0.1 if i < 90 else 3.0) for i in range(100)]
    acks.append(Ack("ff" * 32, "node0", 0.0, 60.0, honest=False))  # the flood's latency does not count
    assert latency(acks, 5.0).ok
    slow = latency(acks, 1.0)
    assert not slow.ok and slow.data["p99"] == pytest.approx(3.0)
    assert not latency([a for a in acks if not a.honest], 5.0).ok


# ------------------------------------------------------------ the expectation


def _v(name: str, ok: bool) -> Verdict:
    return Verdict(name, ok, "")


@pytest.mark.parametrize(
    ("expect", "oks", "met", "outcome"),
    [
        ("progress", {}, True, "ok"),
        ("progress", {"durability": False}, False, "FAILED: durability"),
        ("progress", {"agreement": False}, False, "FORK"),
        ("stall-no-fork", {"liveness": False}, True, "stalled, no fork"),
        ("stall-no-fork", {"liveness": False, "agreement": False}, False, "FORK"),
        ("stall-no-fork", {}, False, "did not stall"),
        ("stall-no-fork", {"liveness": False, "validity": False}, False, "FAILED: validity"),
    ],
)
def test_the_expectation_is_met_only_as_the_scenario_says(expect, oks, met, outcome):
    names = ["agreement", "durability", "validity", "liveness", "evidence"]
    verdicts = judge([_v(n, oks.get(n, True)) for n in names], Expectations(outcome=expect))
    assert (verdicts.expectation_met, verdicts.outcome) == (met, outcome)



def test_the_data_directory_is_the_one_the_node_s_config_names(tmp_path, chain):
    net = write_network(tmp_path / "net", G, {n: chain for n in NODES})
    (net / "node2" / "data").rename(net / "node2" / "chain")
    config = NodeConfig("node2", "validator", "../genesis.json", "127.0.0.1:1", "127.0.0.1:2", data_dir="chain")
    (net / "node2" / "config.toml").write_text(config.to_toml())
    assert data_dir(net, "node2") == (net / "node2" / "chain").resolve()
    assert check_run(net, _healthy_record(chain)).get("agreement").data["heights"]["node2"] == 6
