"""Scenario files (``configs/scenarios/*.toml``) read into frozen values, with one-line errors.

A scenario names the cluster, the load, a timeline of perturbations and what
must hold afterwards::

    name = "primary-crash"
    description = "the primary is killed -9 and restarted 6 s later"
    seed = 7                        # link-fault randomness and symbolic targets
    settle_s = 15                   # after the load: at most this long for the honest nodes to converge
    undo_at_end = true              # faults still in force when the load ends are undone (false: left in force)

    [cluster]
    validators = 4                  # or: consortium = "consortium-4.toml" (configs/)
    observers = 0
    progress_timeout_ms = 1000      # optional node settings (see NODE_SETTINGS)

    [load]
    kind = "anchors"                # or "mix" (the healthcare mix; needs a consortium)
    rate = 20                       # tx/s, open loop; each waits for its commit
    duration_s = 20

    [[timeline]]
    at_s = 5
    action = "kill"
    nodes = "primary"               # names, or primary | f | f+1 | any | all | validators | observers
    for_s = 6                       # the fault's end (here: the restart)

    [expect]
    outcome = "progress"            # or "stall-no-fork"
    commits_resume_within_s = 5

Every table refuses keys it does not know; every error names the file, the
key and what is wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.lab.chaos.record import Expectations
from primitives.errors import UsageError

SCENARIO_DIR = Path(__file__).resolve().parents[3] / "configs" / "scenarios"
CONFIG_DIR = SCENARIO_DIR.parent
SYMBOLS = ("primary", "f", "f+1", "any", "all", "validators", "observers")
BEHAVIOURS = ("equivocate", "silent", "bad-sig", "vote-unknown", "stale", "garbage")
LINK_SETTINGS: dict[str, type] = {
    "cut": bool, "loss": float, "delay_ms": int, "jitter_ms": int, "duplicate": float, "reorder": float,
}
# [cluster] key -> (section of the node's config.toml, setting)
NODE_SETTINGS = {
    "progress_timeout_ms": ("consensus", "progress_timeout_ms"),
    "batch_timeout_ms": ("consensus", "batch_timeout_ms"),
    "checkpoint_interval": ("consensus", "checkpoint_interval"),
    "max_block_txs": ("consensus", "max_block_txs"),
    "mempool_max_txs": ("mempool", "max_txs"),
    "mempool_max_bytes": ("mempool", "max_bytes"),
}
TOP_KEYS = ("name", "description", "seed", "settle_s", "undo_at_end", "cluster", "load", "timeline", "expect")
COMMON_KEYS = {"at_s", "action"}
ACTION_KEYS: dict[str, set[str]] = {
    "kill": {"nodes", "for_s"},
    "pause": {"nodes", "for_s"},
    "restart": {"nodes"},
    "kill-loop": {"for_s", "every_s", "down_s"},
    "rolling-restart": {"nodes", "gap_s"},
    "wipe": {"nodes"},
    "snapshot": {"nodes", "name"},
    "restore": {"nodes", "snapshot"},
    "partition": {"nodes", "groups", "for_s"},
    "link": {"nodes", "to", "for_s", "flap_s", "both_ways", *LINK_SETTINGS},
    "byzantine": {"nodes", "behaviour", "for_s"},
    "clock": {"nodes", "skew_ms", "for_s"},
    "flood": {"rate", "for_s"},
}
NEEDS_NODES = {"kill", "pause", "restart", "wipe", "snapshot", "restore", "link", "byzantine", "clock"}


class ScenarioError(UsageError):
    """A scenario file that cannot be run: the message names the file, the key and the problem."""


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    validators: int = 4
    observers: int = 0
    consortium: str | None = None  # a file in configs/ (or a path): its validators and observers
    settings: tuple[tuple[str, int], ...] = ()  # NODE_SETTINGS keys, in file order


@dataclass(frozen=True, slots=True)
class LoadSpec:
    kind: str = "anchors"
    rate: float = 20.0
    duration_s: float = 20.0
    flood_rate: float = 0.0  # default rate of a "flood" step


@dataclass(frozen=True, slots=True)
class Step:
    """One perturbation of the timeline; only the fields its action uses are set."""

    at_s: float
    action: str
    nodes: tuple[str, ...] = ()
    for_s: float | None = None
    groups: tuple[tuple[str, ...], ...] = ()
    to: tuple[str, ...] = ("all",)
    settings: tuple[tuple[str, Any], ...] = ()  # link settings
    flap_s: float | None = None
    both_ways: bool = True
    behaviour: str | None = None
    skew_ms: int = 0
    every_s: float = 5.0
    down_s: float = 2.0
    gap_s: float = 2.0
    name: str = ""  # snapshot: its name; restore: the snapshot it restores
    rate: float = 0.0

    def describe(self) -> str:
        parts = [f"{self.at_s:g}s {self.action}"]
        if self.nodes:
            parts.append(",".join(self.nodes))
        if self.groups:
            parts.append(" / ".join(",".join(g) for g in self.groups))
        extra = {
            "behaviour": self.behaviour, "skew_ms": self.skew_ms or None, "name": self.name or None,
            "rate": self.rate or None, "for_s": self.for_s, "flap_s": self.flap_s,
        }
        parts += [f"{k}={v}" for k, v in (*self.settings, *extra.items()) if v is not None]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ExpectSpec:
    outcome: str = "progress"
    commits_resume_within_s: float | None = None
    evidence_from: tuple[str, ...] = ()  # names, or "byzantine": every node made Byzantine
    honest_p99_latency_s: float | None = None
    min_acked: int = 1
    store_intact: bool = False  # check every node's store after the run (the "store" verdict)

    def expectations(self, byzantine: list[str]) -> Expectations:
        names = [n for e in self.evidence_from for n in (byzantine if e == "byzantine" else [e])]
        return Expectations(
            outcome="stall-no-fork" if self.outcome == "stall-no-fork" else "progress",
            commits_resume_within_s=self.commits_resume_within_s,
            evidence_from=list(dict.fromkeys(names)),
            honest_p99_latency_s=self.honest_p99_latency_s,
            min_acked=self.min_acked,
        )


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    source: str
    seed: int = 1
    settle_s: float = 15.0
    undo_at_end: bool = True
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    load: LoadSpec = field(default_factory=LoadSpec)
    timeline: tuple[Step, ...] = ()
    expect: ExpectSpec = field(default_factory=ExpectSpec)


# ---------------------------------------------------------------- finding and reading files


def find_scenario(text: str) -> Path:
    """SCENARIO as given: a path to a file, or the name of a file in configs/scenarios (with or without .toml)."""
    given = Path(text)
    if given.is_file():
        return given
    named = SCENARIO_DIR / (text if text.endswith(".toml") else f"{text}.toml")
    if "/" not in text and named.is_file():
        return named
    known = ", ".join(p.stem for p in shipped())
    raise ScenarioError(f"no scenario file {text!r} (neither a file nor one of: {known})")


def shipped() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.toml"))


def load_scenario(path: Path) -> Scenario:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from None
    return parse_scenario(raw, str(path))


def parse_scenario(raw: Mapping[str, Any], source: str) -> Scenario:
    top = _Table(raw, source, "")
    top.refuse_unknown(set(TOP_KEYS))
    description = top.text("description")
    if "\n" in description:
        raise ScenarioError(f"{source}: 'description' must be one line")
    load = _load(top.table("load"))
    timeline = tuple(_steps(top, load))
    return Scenario(
        name=top.text("name"),
        description=description,
        source=source,
        seed=top.integer("seed", 1, low=0),
        settle_s=top.number("settle_s", 15.0, low=1),
        undo_at_end=top.flag("undo_at_end", True),
        cluster=_cluster(top.table("cluster")),
        load=load,
        timeline=timeline,
        expect=_expect(top.table("expect")),
    )


def parse_step(raw: Mapping[str, Any], source: str, where: str, flood_rate: float = 0.0) -> Step:
    t = _Table(raw, source, where)
    action = t.text("action")
    if action not in ACTION_KEYS:
        raise ScenarioError(f"{t.at('action')}: unknown action {action!r} (known: {', '.join(ACTION_KEYS)})")
    t.refuse_unknown(COMMON_KEYS | ACTION_KEYS[action], f" for action {action!r}")
    nodes = t.targets("nodes")
    if action in NEEDS_NODES and not nodes:
        raise ScenarioError(f"{t.at('nodes')}: action {action!r} needs 'nodes'")
    step = Step(
        at_s=t.number("at_s", low=0), action=action, nodes=nodes, for_s=t.optional_number("for_s"),
        groups=tuple(t.groups("groups")), to=t.targets("to") or ("all",), flap_s=t.optional_number("flap_s"),
        settings=tuple((k, t.typed(k, kind)) for k, kind in LINK_SETTINGS.items() if k in raw),
        both_ways=t.flag("both_ways", True),
        behaviour=t.choice("behaviour", BEHAVIOURS) if "behaviour" in raw else None,
        skew_ms=t.integer("skew_ms", 0), every_s=t.number("every_s", 5.0, low=0.5),
        down_s=t.number("down_s", 2.0, low=0.1), gap_s=t.number("gap_s", 2.0, low=0),
        name=t.text("name" if action == "snapshot" else "snapshot") if action in ("snapshot", "restore") else "",
        rate=t.number("rate", flood_rate or None, low=0.1) if action == "flood" else 0.0,
    )
    _check_step(step, t)
    return step


def _check_step(step: Step, t: _Table) -> None:
    required = {"byzantine": ("behaviour", step.behaviour), "clock": ("skew_ms", step.skew_ms or None),
                "link": ("a link setting (cut, loss, delay_ms, ...)", step.settings or None)}
    if step.action in required and required[step.action][1] is None:
        raise ScenarioError(f"{t.where()}: action {step.action!r} needs {required[step.action][0]}")
    if step.action == "partition" and not (step.groups or step.nodes):
        raise ScenarioError(f"{t.at('groups')}: a partition needs 'groups' (two or more lists) or 'nodes'")
    if step.action == "kill-loop" and (step.for_s is None or step.down_s >= step.every_s):
        raise ScenarioError(f"{t.where()}: kill-loop needs 'for_s', and 'down_s' below 'every_s'")


def _steps(top: _Table, load: LoadSpec) -> list[Step]:
    entries = top.raw.get("timeline", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ScenarioError(f"{top.at('timeline')}: must be [[timeline]] tables")
    steps = [parse_step(e, top.source, f"[[timeline]] #{i + 1}", load.flood_rate) for i, e in enumerate(entries)]
    taken: dict[str, float] = {}
    for i, step in enumerate(steps):
        where = f"{top.source}: [[timeline]] #{i + 1}"
        if step.at_s >= load.duration_s:
            raise ScenarioError(f"{where}.at_s: {step.at_s:g} is not before the load's end ({load.duration_s:g} s)")
        if step.action == "snapshot":
            taken[step.name] = step.at_s
        if step.action == "restore" and taken.get(step.name, step.at_s) >= step.at_s:
            raise ScenarioError(f"{where}.snapshot: no snapshot named {step.name!r} is taken before {step.at_s:g} s")
    return steps


def _cluster(t: _Table) -> ClusterSpec:
    t.refuse_unknown({"validators", "observers", "consortium", *NODE_SETTINGS})
    consortium = t.raw.get("consortium")
    if consortium is not None and "validators" in t.raw:
        raise ScenarioError(f"{t.at('consortium')}: give 'validators' or 'consortium', not both")
    return ClusterSpec(
        validators=t.integer("validators", 4, low=1, high=31),
        observers=t.integer("observers", 0, low=0, high=16),
        consortium=t.text("consortium") if consortium is not None else None,
        settings=tuple((k, t.integer(k, low=1)) for k in t.raw if k in NODE_SETTINGS),
    )


def _load(t: _Table) -> LoadSpec:
    t.refuse_unknown({"kind", "rate", "duration_s", "flood_rate"})
    return LoadSpec(
        kind=t.choice("kind", ("anchors", "mix"), "anchors"),
        rate=t.number("rate", 20.0, low=0.1, high=5_000),
        duration_s=t.number("duration_s", 20.0, low=1, high=3_600),
        flood_rate=t.number("flood_rate", 0.0, low=0, high=50_000),
    )


def _expect(t: _Table) -> ExpectSpec:
    t.refuse_unknown(set(ExpectSpec.__dataclass_fields__))
    return ExpectSpec(
        outcome=t.choice("outcome", ("progress", "stall-no-fork"), "progress"),
        commits_resume_within_s=t.optional_number("commits_resume_within_s"),
        evidence_from=t.targets("evidence_from"),
        honest_p99_latency_s=t.optional_number("honest_p99_latency_s"),
        min_acked=t.integer("min_acked", 1, low=0),
        store_intact=t.flag("store_intact", False),
    )


def check_names(scenario: Scenario, names: list[str]) -> None:
    """Every node the scenario names (not symbolically) is one of ``names``."""
    named = [n for step in scenario.timeline for n in (*step.nodes, *step.to, *(m for g in step.groups for m in g))]
    named += list(scenario.expect.evidence_from)
    unknown = sorted({n for n in named if n not in SYMBOLS and n != "byzantine" and n not in names})
    if unknown:
        raise ScenarioError(f"{scenario.source}: no node named {', '.join(unknown)} in this network; "
                            f"its nodes: {', '.join(names)}")


# ---------------------------------------------------------------- typed reads of one table


class _Table:
    def __init__(self, raw: Any, source: str, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{source}: {where or 'the file'} must be a table")
        self.raw, self.source, self.prefix = raw, source, where

    def where(self) -> str:
        return f"{self.source}: {self.prefix}" if self.prefix else self.source

    def at(self, key: str) -> str:
        return f"{self.source}: {self.prefix + '.' if self.prefix else ''}{key}"

    def refuse_unknown(self, known: set[str], context: str = "") -> None:
        unknown = sorted(set(self.raw) - known)
        if unknown:
            raise ScenarioError(f"{self.at(unknown[0])}: unknown key{context} (known: {', '.join(sorted(known))})")

    def table(self, key: str) -> _Table:
        return _Table(self.raw.get(key, {}), self.source, f"[{key}]")

    def _get(self, key: str, default: Any, check: Callable[[Any], bool], what: str) -> Any:
        if key not in self.raw:
            if default is None:
                raise ScenarioError(f"{self.at(key)}: missing (it must be {what})")
            return default
        value = self.raw[key]
        if not check(value):
            raise ScenarioError(f"{self.at(key)}: must be {what}, got {value!r}")
        return value

    def text(self, key: str) -> str:
        found: str = self._get(key, None, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
        return found

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        found: str = self._get(key, default, lambda v: v in options, f"one of {', '.join(options)}")
        return found

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._get(key, default, lambda v: isinstance(v, bool), "true or false"))

    def integer(self, key: str, default: int | None = None, low: int | None = None, high: int | None = None) -> int:
        what = "a whole number" + (f" from {low}" if low is not None else "") + (f" to {high}" if high else "")
        ok: Callable[[Any], bool] = lambda v: (  # noqa: E731
            isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low) and (high is None or v <= high)
        )
        return int(self._get(key, default, ok, what))

    def number(self, key: str, default: float | None = None, low: float = 0, high: float | None = None) -> float:
        what = f"a number of at least {low:g}" + (f" and at most {high:g}" if high is not None else "")
        ok: Callable[[Any], bool] = lambda v: (  # noqa: E731
            isinstance(v, int | float) and not isinstance(v, bool) and v >= low and (high is None or v <= high)
        )
        return float(self._get(key, default, ok, what))

    def optional_number(self, key: str) -> float | None:
        return self.number(key, low=0.01) if key in self.raw else None

    def typed(self, key: str, kind: type) -> Any:
        if kind is bool:
            return self.flag(key, False)
        if kind is int:
            return self.integer(key, low=0)
        return self.number(key, low=0, high=1)

    def targets(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and _is_target(v) for v in items):
            raise ScenarioError(f"{self.at(key)}: must be a node name or one of {', '.join(SYMBOLS)} (or a list), "
                                f"got {value!r}")
        return tuple(items)

    def groups(self, key: str) -> list[tuple[str, ...]]:
        value = self.raw.get(key, [])
        ok = isinstance(value, list) and all(isinstance(g, list) and g for g in value)
        if not ok or len(value) == 1 or not all(isinstance(n, str) and _is_target(n) for g in value for n in g):
            raise ScenarioError(f"{self.at(key)}: must be two or more non-empty lists of nodes, got {value!r}")
        return [tuple(g) for g in value]


def _is_target(text: str) -> bool:
    return text in SYMBOLS or text == "byzantine" or (
        0 < len(text) <= 32 and all(c.isalnum() or c == "-" for c in text) and text[0].isalnum()
    )
