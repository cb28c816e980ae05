"""The invariants a chaos run is judged by, checked offline from the stopped nodes' stores.

Each check is a pure function of chains already read (``replay.ChainSummary``)
and of the run's record, so a test can hand it chains built in memory;
``check_run`` alone opens the stores.  Only honest nodes count
(``record.honest``: validators and observers not named Byzantine).

* agreement: no two honest nodes hold different blocks at one height;
* durability: every acknowledged transaction is in the longest honest chain
  exactly once, no honest chain holds a transaction twice, and fewer
  acknowledgements than ``min_acked`` fail (a run that proved nothing);
* validity: every block's commit certificate verifies against the genesis
  validators, prev_hash links and tx_roots hold, and the longest honest chain
  replays from genesis to every header's app_hash and every node's head state;
* liveness: see ``liveness``;
* evidence: who left signed evidence, with their keys; a validator expected to
  misbehave that left none fails, and so does evidence against a validator
  that was not meant to misbehave (honest validators never equivocate);
* latency (when expected): p99 of honest acknowledged transactions.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consensus.certificates import Verifier
from consensus.events import Evidence
from node.genesis import load_genesis
from node.lab.chaos.liveness import liveness
from node.lab.chaos.record import Ack, Expectations, RunRecord
from node.lab.chaos.replay import ChainSummary, Replayed, read_node, replay_node
from node.lab.chaos.verdict import Verdict, Verdicts
from node.lab.percentiles import percentiles
from primitives.signing import VerifyKey

MAX_DETAILS = 20
__all__ = ["Verdict", "Verdicts", "agreement", "check_run", "durability", "evidence", "judge", "latency", "validity"]


def _short(h: bytes) -> str:
    return h.hex()[:16]


def agreement(chains: Sequence[ChainSummary]) -> Verdict:
    top = max((c.height for c in chains), default=0)
    forks: list[int] = []
    details: list[str] = []
    for h in range(1, top + 1):
        holders: dict[bytes, list[str]] = {}
        for c in chains:
            if c.height >= h:
                holders.setdefault(c.hashes[h - 1], []).append(c.name)
        if len(holders) > 1:
            forks.append(h)
            if len(details) < MAX_DETAILS:
                sides = "; ".join(f"{', '.join(names)} hold {_short(bh)}" for bh, names in holders.items())
                details.append(f"height {h}: {sides}")
    data: dict[str, Any] = {
        "heights": {c.name: c.height for c in chains}, "fork_heights": forks[:MAX_DETAILS],
        "forks": len(forks), "notes": {c.name: c.note for c in chains if c.note},
    }
    if forks:
        return Verdict("agreement", False, f"FORK: honest nodes disagree at {len(forks)} height(s), first {forks[0]}",
                       details, data)
    compared = sum(1 for c in chains if c.height)
    return Verdict("agreement", True, f"{compared} honest chain(s) agree on every height up to {top}", details, data)


def _tx_heights(chain: ChainSummary) -> dict[bytes, list[int]]:
    where: dict[bytes, list[int]] = {}
    for h, ids in enumerate(chain.tx_ids, 1):
        for t in ids:
            where.setdefault(t, []).append(h)
    return where


def _acked(acks: Sequence[Ack], details: list[str]) -> dict[bytes, Ack]:
    out: dict[bytes, Ack] = {}
    for a in acks:
        try:
            out.setdefault(bytes.fromhex(a.tx_id), a)
        except ValueError:
            details.append(f"acknowledged transaction id {a.tx_id!r} is not hex")
    return out


def durability(acks: Sequence[Ack], chains: Sequence[ChainSummary], min_acked: int = 1) -> Verdict:
    details: list[str] = []
    acked = _acked(acks, details)
    for c in chains:
        counts = Counter(t for ids in c.tx_ids for t in ids)
        twice = [t for t, n in counts.items() if n > 1]
        if twice:
            where = _tx_heights(c)
            details += [f"{c.name} holds transaction {_short(t)} {len(where[t])} times, at heights "
                        f"{', '.join(map(str, where[t]))}" for t in twice[:MAX_DETAILS]]
    longest = max(chains, key=lambda c: c.height, default=None)
    final = _tx_heights(longest) if longest is not None else {}
    missing = [t for t in acked if t not in final]
    for t in missing[:MAX_DETAILS]:
        a = acked[t]
        details.append(f"transaction {_short(t)} acknowledged by {a.node} at {a.acked_s:.2f} s is not in the final "
                       f"chain ({longest.name if longest else 'no chain'})")
    moved = [t for t, a in acked.items() if a.height is not None and t in final and a.height not in final[t]]
    details += [f"transaction {_short(t)} acknowledged at height {acked[t].height} is at height "
                f"{', '.join(map(str, final[t]))}" for t in moved[:MAX_DETAILS]]
    data = {"acknowledged": len(acked), "missing": len(missing), "in_final_chain": len(acked) - len(missing),
            "final_chain": longest.name if longest else None, "min_acked": min_acked}
    if len(acked) < min_acked:
        what = "nothing was acknowledged" if not acked else f"only {len(acked)} acknowledged, fewer than {min_acked}"
        return Verdict("durability", False, f"vacuous: {what}", details, data)
    if details:
        return Verdict("durability", False, f"{len(details)} problem(s): {details[0]}", details, data)
    return Verdict("durability", True, f"all {len(acked)} acknowledged transactions are in the chain exactly once",
                   details, data)


def validity(chains: Sequence[ChainSummary], replayed: Replayed | None) -> Verdict:
    details = [p for c in chains for p in c.problems]
    replay_top = 0
    if replayed is not None:
        details += [f"replay of {replayed.chain}: {p}" for p in replayed.problems]
        replay_top = len(replayed.app_after)
        for c in chains:
            if not c.height or c.height > replay_top:
                continue
            if c.head_app_hash != replayed.app_after[c.height - 1]:
                stored = _short(c.head_app_hash) if c.head_app_hash else "none"
                details.append(f"{c.name}: head state {stored} at height {c.height} is not the replayed "
                               f"{_short(replayed.app_after[c.height - 1])}")
    blocks = sum(c.height for c in chains)
    data = {"blocks_checked": blocks, "replayed_chain": replayed.chain if replayed else None,
            "replayed_height": replay_top}
    if details:
        return Verdict("validity", False, f"{len(details)} problem(s): {details[0]}", details[:MAX_DETAILS], data)
    return Verdict("validity", True, f"{blocks} block(s) certified and linked; the chain replays from genesis to "
                   f"height {replay_top}", [], data)


def _signed_ok(e: Evidence, verifier: Verifier | None) -> bool:
    if verifier is None:
        return True
    return all(
        m.sender == e.validator and verifier.verify(m.sender, m.DOMAIN, m.signing_payload(), m.signature)
        for m in (e.first, e.second)
    )


def _culprits(
    chains: Sequence[ChainSummary], validators: Sequence[tuple[str, VerifyKey]], verifier: Verifier | None
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in chains:
        for e in c.evidence:
            name, key = validators[e.validator] if e.validator < len(validators) else (f"#{e.validator}", None)
            entry = out.setdefault(name, {"key": key.hex() if key else None, "kinds": set(), "heights": set(),
                                          "reported_by": set(), "signatures_ok": True})
            entry["kinds"].add(e.kind)
            entry["heights"].add(e.first.height)
            entry["reported_by"].add(c.name)
            entry["signatures_ok"] = entry["signatures_ok"] and _signed_ok(e, verifier)
    return {n: {k: sorted(v) if isinstance(v, set) else v for k, v in e.items()} for n, e in sorted(out.items())}


def evidence(
    chains: Sequence[ChainSummary],
    validators: Sequence[tuple[str, VerifyKey]],
    byzantine: Sequence[str],
    expected_from: Sequence[str],
    verifier: Verifier | None = None,
) -> Verdict:
    """``validators``: (name, key) in genesis order, as evidence names them by index."""
    culprits = _culprits(chains, validators, verifier)
    details = [f"{n} was meant to misbehave but no honest node holds evidence against it"
               for n in expected_from if n not in culprits]
    for name, e in culprits.items():
        what = f"{', '.join(e['kinds'])} at height(s) {', '.join(map(str, e['heights']))}"
        if name not in byzantine:
            details.append(f"evidence against {name} (key {e['key']}), which was not meant to misbehave: {what}")
        if not e["signatures_ok"]:
            details.append(f"evidence against {name} does not verify against its key")
    data = {"culprits": culprits, "expected_from": list(expected_from)}
    found = ", ".join(f"{n} ({e['key'][:16] if e['key'] else '?'}...: {', '.join(e['kinds'])})"
                      for n, e in culprits.items()) or "none"
    if details:
        return Verdict("evidence", False, details[0], details, data)
    return Verdict("evidence", True, f"evidence from: {found}", [], data)


def latency(acks: Sequence[Ack], bound_s: float) -> Verdict:
    values = [a.acked_s - a.submitted_s for a in acks if a.honest]
    if not values:
        return Verdict("latency", False, "no honest transaction was acknowledged", [], {"bound_s": bound_s})
    figures = percentiles(values, [50, 99], ndigits=3)
    data = {"bound_s": bound_s, "count": len(values), **figures}
    ok = figures["p99"] <= bound_s
    verdict = "within" if ok else "over"
    summary = f"honest p99 {figures['p99']:.3f} s ({verdict} {bound_s:g} s), p50 {figures['p50']:.3f} s"
    return Verdict("latency", ok, summary, [] if ok else [summary], data)


def judge(items: list[Verdict], expectations: Expectations) -> Verdicts:
    """Whether the scenario's expectation holds: every verdict holds, except that
    ``stall-no-fork`` wants liveness to fail (and agreement to hold)."""
    stall = expectations.outcome == "stall-no-fork"
    live = next((v for v in items if v.name == "liveness"), None)
    failed = [v.name for v in items if not v.ok and not (stall and v.name == "liveness")]
    stalled = live is not None and not live.ok
    met = not failed and (stalled if stall else True)
    if "agreement" in failed:
        outcome = "FORK"
    elif met:
        outcome = "stalled, no fork" if stall else "ok"
    elif stall and not stalled:
        outcome = "did not stall" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    else:
        outcome = f"FAILED: {', '.join(failed)}"
    return Verdicts(items, met, outcome)


def _scratch() -> str | None:
    """Where the replay's throw-away store goes: a RAM file system when there is one (its synchronous
    writes cost nothing there, and nothing of it needs to survive), else the system's temporary folder."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def check_run(network: Path, record: RunRecord) -> Verdicts:
    """Judge a run from the testnet folder ``network``; every node must be stopped."""
    genesis = load_genesis(network / "genesis.json")
    verifier = Verifier(genesis.chain_id, [m.key for m in genesis.validators])
    chains = [read_node(network, n, genesis, verifier) for n in record.honest]
    longest = max(chains, key=lambda c: c.height, default=None)
    replayed = None
    if longest is not None and longest.height:
        with tempfile.TemporaryDirectory(prefix="medchain-replay-", dir=_scratch()) as tmp:
            replayed = replay_node(network, longest.name, genesis, Path(tmp) / "store")
    exp = record.expectations
    validators = [(m.name, m.key) for m in genesis.validators]
    items = [
        agreement(chains),
        durability(record.acks, chains, exp.min_acked),
        validity(chains, replayed),
        liveness(record),
        evidence(chains, validators, record.byzantine, exp.evidence_from, verifier),
    ]
    if exp.honest_p99_latency_s is not None:
        items.append(latency(record.acks, exp.honest_p99_latency_s))
    return judge(items, exp)
