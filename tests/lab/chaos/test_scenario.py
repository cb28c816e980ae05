"""Scenario files: every shipped one parses; a bad one is refused in one line naming the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from node.lab.chaos.scenario import (
    ScenarioError,
    Step,
    check_names,
    find_scenario,
    load_scenario,
    parse_scenario,
    shipped,
)

MINIMAL = """
name = "t"
description = "a test"
[load]
duration_s = 20
[[timeline]]
at_s = 5
action = "kill"
nodes = "primary"
for_s = 3
"""
COVERED = {  # the issue's list of situations -> the shipped scenario that plays it
    "primary crash loop": "primary-crash-loop", "rolling restart": "rolling-restart",
    "minority partition": "minority-partition", "majority partition then heal": "majority-partition-heal",
    "flapping links": "flapping-links", "one slow node": "slow-node", "lossy mesh": "lossy-mesh",
    "equivocating primary": "equivocating-primary", "f silent validators": "silent-validators",
    "f Byzantine plus one crashed": "beyond-f-stall", "mempool flood": "mempool-flood",
    "wipe-and-rejoin under load": "wipe-under-load", "clock skew on the primary": "clock-skew-primary",
    "pause f+1": "pause-f-plus-one", "restart f+1": "restart-f-plus-one",
    "restore from different heights": "restore-different-heights", "kill -9 during writes": "kill-during-writes",
    "a wiped validator rejoins": "wiped-validator-rejoins",
}


def parse(text: str, **changes: Any) -> Any:
    raw = tomllib.loads(text)
    for key, value in changes.items():
        if key.startswith("step_"):
            raw["timeline"][0][key.removeprefix("step_")] = value
        elif "." in key:
            table, name = key.split(".")
            raw.setdefault(table, {})[name] = value
        else:
            raw[key] = value
    return parse_scenario(raw, "t.toml")


def refused(text: str = MINIMAL, **changes: Any) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse(text, **changes)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("t.toml"), message
    return message


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.stem)
def test_every_shipped_scenario_parses_with_a_one_line_description(path: Path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description and "\n" not in scenario.description
    assert scenario.timeline, "a scenario without faults"
    assert 10 <= scenario.load.duration_s <= 60


def test_the_issues_list_is_covered_by_at_least_fourteen_files():
    names = {p.stem for p in shipped()}
    assert len(names) >= 14
    assert set(COVERED.values()) <= names


def test_the_beyond_f_scenario_expects_a_stall_and_keeps_its_faults():
    scenario = load_scenario(find_scenario("beyond-f-stall"))
    assert scenario.expect.outcome == "stall-no-fork" and not scenario.undo_at_end


def test_a_minimal_scenario_gets_the_defaults():
    s = parse(MINIMAL)
    assert (s.cluster.validators, s.load.kind, s.load.rate, s.seed, s.undo_at_end) == (4, "anchors", 20.0, 1, True)
    assert s.timeline == (Step(5.0, "kill", ("primary",), for_s=3.0),)
    assert s.expect.expectations([]).outcome == "progress"


def test_node_settings_and_expectations_are_read():
    s = parse(MINIMAL, **{"cluster.progress_timeout_ms": 900, "cluster.mempool_max_txs": 50,
                          "expect.evidence_from": ["byzantine", "node2"], "expect.store_intact": True})
    assert s.cluster.settings == (("progress_timeout_ms", 900), ("mempool_max_txs", 50))
    assert s.expect.store_intact
    assert s.expect.expectations(["node1"]).evidence_from == ["node1", "node2"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"colour": "blue"}, ["t.toml: colour", "unknown key"]),
        ({"cluster.cores": 2}, ["[cluster].cores", "unknown key"]),
        ({"load.kind": "spam"}, ["[load].kind", "anchors, mix"]),
        ({"load.rate": -1}, ["[load].rate", "at least"]),
        ({"expect.outcome": "fine"}, ["[expect].outcome", "stall-no-fork"]),
        ({"expect.extra": 1}, ["[expect].extra", "unknown key"]),
        ({"step_action": "explode"}, ["[[timeline]] #1.action", "unknown action 'explode'"]),
        ({"step_behaviour": "silent"}, ["[[timeline]] #1.behaviour", "unknown key for action 'kill'"]),
        ({"step_at_s": "soon"}, ["[[timeline]] #1.at_s", "must be a number"]),
        ({"step_at_s": 30}, ["[[timeline]] #1.at_s", "before the load's end"]),
        ({"step_nodes": "node 1"}, ["[[timeline]] #1.nodes", "node name"]),
        ({"step_nodes": 3}, ["[[timeline]] #1.nodes"]),
        ({"cluster.validators": 0}, ["[cluster].validators", "from 1"]),
        ({"cluster.consortium": "c.toml"}, None),  # validators is not given: fine
        ({"description": "two\nlines"}, ["description", "one line"]),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(changes: dict[str, Any], words: list[str] | None):
    if words is None:
        parse(MINIMAL, **changes)
        return
    message = refused(**changes)
    for word in words:
        assert word in message, message


def test_actions_need_their_parameters():
    assert "needs behaviour" in refused(step_action="byzantine")
    assert "needs skew_ms" in refused(step_action="clock")
    assert "link setting" in refused(step_action="link")
    assert "needs 'nodes'" in refused(MINIMAL.replace('nodes = "primary"', ""))
    text = MINIMAL.replace('action = "kill"', 'action = "restore"').replace("for_s = 3", 'snapshot = "s1"')
    assert "no snapshot named 's1'" in refused(text)
    flood = MINIMAL.replace('action = "kill"', 'action = "flood"').replace('nodes = "primary"', "")
    assert "[[timeline]] #1.rate" in refused(flood)
    assert parse(flood, **{"load.flood_rate": 500}).timeline[0].rate == 500


def test_a_partition_needs_two_groups():
    text = MINIMAL.replace('action = "kill"', 'action = "partition"').replace('nodes = "primary"', "")
    assert "'groups'" in refused(text)
    assert "two or more" in refused(text, step_groups=[["node0"]])
    assert parse(text, step_groups=[["node0"], ["node1", "f"]]).timeline[0].groups == (("node0",), ("node1", "f"))


def test_names_are_checked_against_the_network():
    scenario = parse(MINIMAL, step_nodes=["node7", "primary"])
    with pytest.raises(ScenarioError, match="no node named node7"):
        check_names(scenario, ["node0", "node1"])
    check_names(parse(MINIMAL), ["node0"])


def test_a_scenario_is_found_by_name_or_path(tmp_path: Path):
    assert find_scenario("primary-crash").name == "primary-crash.toml"
    assert find_scenario("primary-crash.toml").stem == "primary-crash"
    own = tmp_path / "mine.toml"
    own.write_text(MINIMAL)
    assert load_scenario(find_scenario(str(own))).name == "t"
    with pytest.raises(ScenarioError, match="primary-crash"):
        find_scenario("no-such-scenario")
    own.write_text("name = ")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(own)
