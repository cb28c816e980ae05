"""The verification-latency benchmark (``medchain bench verify``, ``scripts/bench-verify``).

A fresh consortium-4 cluster, a chain of N packs built with the healthcare
mix's planner (``bench_mix.plan_chain``), then M sequential verifications of
random genuine codes with and without proofs.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from node.client.http import NodeClient
from node.documents import NodeStatus
from node.lab.bench_mix import Cast, fetch_metrics, network_seeds, plan_chain, run_setup
from node.lab.counterfeit import Network, code_forms
from node.lab.fresh_cluster import fresh_consortium, lab_folder
from node.lab.percentiles import percentiles
from node.lab.progress import Progress
from primitives.errors import UsageError

MAX_PACKS = 1_000_000
MAX_SCANS = 100_000
_SCAN_LINE = re.compile(r"^medchain_scan_seconds_(sum|count) ([0-9.e+-]+)$")


def _scan_totals(api: str) -> tuple[float, float]:
    found = {
        m.group(1): float(m.group(2))
        for line in asyncio.run(fetch_metrics(api)).splitlines()
        if (m := _SCAN_LINE.match(line))
    }
    return found.get("sum", 0.0), found.get("count", 0.0)


async def _time_scans(api: str, codes: Sequence[str], proofs: bool) -> tuple[list[float], int]:
    """One client, one request at a time: milliseconds per answer, and how many did not say 'active'."""
    times, wrong = [], 0
    doc: dict[str, Any] = {"scanned_by": "bench-verify", "proofs": proofs}
    async with NodeClient(api, timeout=60) as node:
        for code in codes:
            start = time.perf_counter()
            reply = await node.send("POST", "/drugs/verify", doc={**doc, "code": code})
            answer = reply.json()
            times.append(1000 * (time.perf_counter() - start))
            if reply.status != 200 or not answer.get("verified") or answer.get("status") != "active":
                wrong += 1
    return times, wrong


def measure_verify(api: str, codes: Sequence[str]) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for name, proofs in (("with_proofs", True), ("no_proofs", False)):
        sum0, count0 = _scan_totals(api)
        times, wrong = asyncio.run(_time_scans(api, codes, proofs))
        sum1, count1 = _scan_totals(api)
        served = count1 - count0
        cases[name] = {
            "scans": len(times),
            "not_verified": wrong,
            "client_ms": percentiles(times, (50, 95, 99), ndigits=3),
            "server_mean_ms": round(1000 * (sum1 - sum0) / served, 3) if served else None,
        }
    return cases


def verify_bench(root: Path, packs: int, scans: int, seed: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Build the chain on the running consortium cluster in ``root``, then time the verifications."""
    net = Network.load(root)
    cast = Cast.from_kinds(net.kinds)
    chain_id = str(json.loads((root / "genesis.json").read_text())["chain_id"])
    plan = plan_chain(cast, packs, int(time.time() * 1000))
    seeds = {**network_seeds(root), **plan.seeds}
    apis = list(net.apis.values())
    setup = asyncio.run(run_setup(apis, plan.setup, seeds, chain_id, say))
    at = next(org for org in (*cast.dispensers, *net.apis) if org in net.apis)
    rng = random.Random(seed)
    everything = [(lot, s) for lot in plan.lots for s in lot.serials]
    picks = [everything[rng.randrange(len(everything))] for _ in range(scans)]
    codes = [code_forms(lot.gtin, s, lot.lot, lot.expiry, i) for i, (lot, s) in enumerate(picks)]
    say(f"timing {scans:,} sequential verifications at {at}'s node, with proofs and without")
    cases = measure_verify(net.apis[at], codes)
    status = asyncio.run(_status(net.apis[at]))
    return {
        "packs": len(everything),
        "lots": len(plan.lots),
        "height": int(status["height"]),
        "node": at,
        "build": {"txs": setup.txs, "seconds": round(setup.seconds, 1), "by_kind": dict(setup.by_kind)},
        "cases": cases,
    }


async def _status(api: str) -> NodeStatus:
    async with NodeClient(api) as node:
        return await node.status()


def format_verify(r: dict[str, Any]) -> str:
    lines = [
        f"verification latency on a chain of {r['packs']:,} packs ({r['lots']} lots), height {r['height']:,}; "
        f"built with {r['build']['txs']:,} transactions in {r['build']['seconds']:.1f} s",
        f"one client, one request at a time, at {r['node']}'s node (HTTP on loopback included):",
        f"  {'case':<14}{'scans':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'server mean ms':>16}{'not verified':>14}",
    ]
    for name, c in r["cases"].items():
        q = c["client_ms"]
        server = "-" if c["server_mean_ms"] is None else f"{c['server_mean_ms']:.2f}"
        lines.append(
            f"  {name.replace('_', ' '):<14}{c['scans']:>7,}{q['p50']:>9.2f}{q['p95']:>9.2f}"
            f"{q['p99']:>9.2f}{q['max']:>9.2f}{server:>16}{c['not_verified']:>14}"
        )
    p99 = r["cases"]["with_proofs"]["client_ms"]["p99"]
    lines.append(
        f"goal: verification of a code under 20 ms at p99 with proofs: {'MET' if p99 < 20 else 'NOT MET'} "
        f"(p99 {p99:.2f} ms on {r['packs']:,} packs)"
    )
    return "\n".join(lines)


def run_verify(packs: int, scans: int, seed: int, directory: Path | None, progress: Progress) -> dict[str, Any]:
    """Start a fresh consortium-4 cluster, build the chain, time the scans; the cluster is always stopped.

    The network goes under ``directory`` and stays there; without one, into a
    temporary folder removed afterwards unless the run failed (its node logs
    are kept and the error names the folder).
    """
    if not 1 <= packs <= MAX_PACKS:
        raise UsageError(f"--packs must be 1 to {MAX_PACKS:,}, got {packs}")
    if not 1 <= scans <= MAX_SCANS:
        raise UsageError(f"--scans must be 1 to {MAX_SCANS:,}, got {scans}")
    with (
        lab_folder(directory, "medchain-bench-verify-") as base,
        fresh_consortium(base, progress.say, "medchain-verify"),
    ):
        progress.say(f"building {packs:,} packs")
        return verify_bench(base, packs, scans, seed, progress.say)
