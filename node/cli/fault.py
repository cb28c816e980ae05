"""``medchain fault``: faults on a running cluster, through its nodes' admin interface.

Link faults and partitions, Byzantine behaviours of a validator, clock skew,
and the seed of every node's random fault choices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from consensus.byzantine import BEHAVIOURS
from node.api.admin import MAX_SKEW_MS
from node.cli.common import cluster_dir_option, json_option, print_json
from node.lab import faults

DIR_OPTION = cluster_dir_option(
    "The network's folder (as given to 'medchain cluster up'); its operator.json signs the requests."
)


def _show(result: dict[str, faults.LinkRules], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    for node, rules in result.items():
        faulty = ", ".join(f"{peer}: {_rule_text(rule)}" for peer, rule in sorted(rules.items()))
        click.echo(f"{node}: {faulty or 'all links clear'}")


def _show_states(result: dict[str, faults.FaultState], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    for node, state in result.items():
        links = ", ".join(f"{peer}: {_rule_text(rule)}" for peer, rule in sorted(state["links"].items()))
        click.echo(f"{node}: behaviour {state['byzantine'] or 'honest'}, clock skew {state['clock_skew_ms']:+d} ms, "
                   f"links: {links or 'all clear'}")


def _rule_text(rule: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in rule.items() if v and k != "cut"]
    return "cut" if rule.get("cut") else " ".join(parts) or "clear"


@click.group("fault")
def fault_group() -> None:
    """Faults on a running cluster: links, partitions, Byzantine validators, clock skew, seeds.

    Every request is signed with DIR/operator.json and sent to the nodes' admin interface.
    """


@fault_group.command("partition")
@click.argument("groups", nargs=-1, required=True)
@DIR_OPTION
@json_option("Print every affected node's link faults as JSON.")
def partition_command(groups: tuple[str, ...], root: Path, as_json: bool) -> None:
    """Cut every link between nodes of different GROUPS (comma lists separated by '/').

    Example: medchain fault partition --dir ./net node0,node1 / node2,node3
    """
    _show(faults.partition(root, faults.parse_groups(list(groups))), as_json)


@fault_group.command("heal")
@DIR_OPTION
@json_option("Print every node's link faults (none) as JSON.")
def heal_command(root: Path, as_json: bool) -> None:
    """Clear every link fault on every node of DIR."""
    _show(faults.heal(root), as_json)


@fault_group.command("link")
@click.argument("source", metavar="FROM")
@click.argument("target", metavar="TO")
@DIR_OPTION
@click.option("--cut", is_flag=True, default=False, help="Cut the link (frames dropped both ways at FROM).")
@click.option("--loss", type=click.FloatRange(0, 1), default=None, help="Probability that FROM drops a frame to TO.")
@click.option("--delay-ms", type=click.IntRange(0), default=None, help="Fixed delay of FROM's frames to TO (ms).")
@click.option("--jitter-ms", type=click.IntRange(0), default=None, help="Random extra delay, up to this (ms).")
@click.option("--duplicate", type=click.FloatRange(0, 1), default=None,
              help="Probability that FROM sends a frame to TO twice.")
@click.option("--reorder", type=click.FloatRange(0, 1), default=None,
              help="Probability that FROM holds a frame to TO back a little, so later frames overtake it.")
@json_option("Print FROM's link faults as JSON.")
def link_command(
    source: str, target: str, root: Path, cut: bool, loss: float | None, delay_ms: int | None,
    jitter_ms: int | None, duplicate: float | None, reorder: float | None, as_json: bool,
) -> None:
    """Set the link faults of node FROM towards node TO (what is not given stays as it was)."""
    given = {"loss": loss, "delay_ms": delay_ms, "jitter_ms": jitter_ms, "duplicate": duplicate, "reorder": reorder}
    settings: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if cut:
        settings["cut"] = True
    if not settings:
        raise click.UsageError("give at least one of --cut, --loss, --delay-ms, --jitter-ms, --duplicate, --reorder")
    _show(faults.set_link(root, source, target, settings), as_json)


@fault_group.command("byzantine")
@click.argument("node")
@click.argument("behaviour", type=click.Choice([*BEHAVIOURS, "off"]))
@DIR_OPTION
@json_option("Print the node's fault state as JSON.")
def byzantine_command(node: str, behaviour: str, root: Path, as_json: bool) -> None:
    """Switch validator NODE to a Byzantine BEHAVIOUR, or back to honest with 'off'.

    It signs with its own key, so what it does leaves evidence (GET /evidence on the others).
    """
    _show_states(faults.set_byzantine(root, node, None if behaviour == "off" else behaviour), as_json)


@fault_group.command("clock")
@click.argument("node")
@DIR_OPTION
@click.option("--skew-ms", type=click.IntRange(-MAX_SKEW_MS, MAX_SKEW_MS), required=True,
              help="Offset of NODE's clock in ms, negative for behind (0 puts it right).")
@json_option("Print the node's fault state as JSON.")
def clock_command(node: str, root: Path, skew_ms: int, as_json: bool) -> None:
    """Skew NODE's clock: the timestamps of the blocks it proposes move by --skew-ms."""
    _show_states(faults.set_clock(root, node, skew_ms), as_json)


@fault_group.command("seed")
@click.argument("seed", type=click.IntRange(0))
@DIR_OPTION
@json_option("Print every node's fault state as JSON.")
def seed_command(seed: int, root: Path, as_json: bool) -> None:
    """Reseed every node's random fault choices (loss, reordering, lies) from SEED, so a run replays."""
    _show_states(faults.reseed(root, seed), as_json)
