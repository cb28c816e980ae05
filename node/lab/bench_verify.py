"""The verification-latency benchmark (``scripts/bench-verify``).

A fresh consortium-4 cluster, a chain of N packs built with the healthcare
mix's planner (``bench_mix.plan_chain``), then M sequential verifications of
random genuine codes with and without proofs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from node.healthcare.transactions import Anchor, make_transaction
from node.lab.bench_mix import CONSORTIUM_FILE, Cast, fetch_metrics, network_seeds, plan_chain, run_setup
from node.lab.counterfeit import Network, code_forms
from primitives.errors import UsageError
from primitives.hashing import sha256

_SCAN_LINE = re.compile(r"^medchain_scan_seconds_(sum|count) ([0-9.e+-]+)$")


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * p / 100) - 1))], 3)

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": round(ordered[-1], 3)}


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
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for code in codes:
            start = time.perf_counter()
            async with session.post(f"{api}/drugs/verify", json={**doc, "code": code}) as r:
                answer = await r.json()
            times.append(1000 * (time.perf_counter() - start))
            if r.status != 200 or not answer.get("verified") or answer.get("status") != "active":
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
            "client_ms": _quantiles(times),
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


async def _status(api: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{api}/status") as r:
        doc: dict[str, Any] = await r.json()
        return doc


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


def _verify_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench-verify",
        description="Start a fresh consortium-4 cluster, build a chain holding N packs (lots of 2,000 commissioned, "
        "shipped whole to the distributor, then to the pharmacies), and time M sequential verifications of random "
        "genuine codes with and without proofs: p50/p95/p99 per case, the server's mean time, the chain's size.",
        epilog="Examples: scripts/bench-verify --packs 2000 (under a minute) | scripts/bench-verify --json",
    )
    p.add_argument("--packs", type=int, default=100_000, metavar="N", help="packs on the chain (default: 100000)")
    p.add_argument("--scans", type=int, default=2_000, metavar="M", help="verifications per case (default: 2000)")
    p.add_argument("--seed", type=int, default=7, help="picks the codes to scan (default: 7)")
    p.add_argument("--dir", type=Path, help="put the network here and keep it (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if not 1 <= args.packs <= 1_000_000 or not 1 <= args.scans <= 100_000:
        p.error("--packs must be 1 to 1,000,000 and --scans 1 to 100,000")
    return args


def verify_main(argv: Sequence[str] | None = None) -> int:
    # The runner imports this module for its mixed workload, so its cluster helpers are imported here.
    from node.lab import bench as runner
    from node.lab.consortium import load_consortium
    from node.lab.testnet import client_key, generate_testnet

    args = _verify_args(argv)
    progress = runner.Progress(args.quiet)
    if args.dir is not None and args.dir.exists() and any(args.dir.iterdir()):
        print(f"error: {args.dir} is not empty; give a new or empty --dir", file=sys.stderr)
        return 2
    base = args.dir or Path(tempfile.mkdtemp(prefix="medchain-bench-verify-"))
    keep = args.dir is not None
    try:
        consortium = load_consortium(CONSORTIUM_FILE)
        nodes = len(consortium.validators) + len(consortium.observers)
        genesis = generate_testnet(
            base,
            0,
            base_port=runner.free_base_port(nodes),
            clients=1,
            consortium=consortium,
            chain_id=f"medchain-verify-{os.urandom(3).hex()}",
        )
        label = f"bench-verify probe {os.urandom(4).hex()}"
        probe = make_transaction(
            client_key(base, 0), genesis.chain_id, Anchor(sha256(label.encode()), label), int(time.time() * 1000)
        )
        with runner.running_cluster(base, progress) as procs:
            asyncio.run(runner.wait_ready(procs, probe))
            progress.say(f"consortium cluster of {len(procs)} validators up; building {args.packs:,} packs")
            report = verify_bench(base, args.packs, args.scans, args.seed, progress.say)
    except KeyboardInterrupt:
        print("interrupted: the cluster was stopped", file=sys.stderr)
        return 130
    except (UsageError, OSError, aiohttp.ClientError) as exc:
        keep = True
        print(f"error: {exc} (network and node logs kept in {base})", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(report, indent=2) if args.json else format_verify(report))
    return 0


if __name__ == "__main__":
    sys.exit(verify_main())
