"""The mixed healthcare workload against anchor-only load, on one consortium cluster.

``python -m node.bench_ledger`` starts a consortium-4 cluster, measures the
closed-loop committed throughput of pre-signed anchors, then prepares the
ledger (licences, staff, patients, records, consents, packs placed along the
supply chain; not timed) and measures a pre-signed mix of drug events and EHR
operations the same way, on the same cluster.  Every transaction of the mix is
valid whatever order the cluster commits them in, so rejections stay at zero.

The mix (per 20 transactions; 60 % drug events, 40 % EHR operations):
4 commission (10 serials each), 3 ship (4 packs each), 2 receive, 3 dispense,
2 consent grants, 3 record filings (the commitment only: FHIR validation and
the vault are outside this load), 3 audited record accesses (each carrying a
reader-signed request: two signatures to check).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from node import bench
from node.bench import Ceiling, Progress, Run, RunPlan, build_load, running_cluster, wait_ready
from node.config import read_key
from node.consortium import load_consortium
from node.counterfeit import Network
from node.gs1 import gtin_with_check_digit
from node.ledger import bodies as b
from node.ledger.records import patient_id
from node.ledger_client import LedgerClient, wait_height
from node.testnet import client_key, generate_testnet
from node.transaction import make_transaction
from primitives.hashing import sha256
from primitives.signing import SigningKey

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "consortium-4.toml"
MIX = {"commission": 4, "ship": 3, "receive": 2, "dispense": 3, "consent": 2, "record": 3, "access": 3}
PREFIX = "9506000"
PACKS_PER_SHIP = 4


def _units(total: int) -> dict[str, int]:
    per = sum(MIX.values())
    return {kind: -(-total * share // per) for kind, share in MIX.items()}


class Prepared:
    """What the setup placed on the ledger, for the measured load to use."""

    def __init__(self) -> None:
        self.keys: dict[str, SigningKey] = {}
        self.ship_packs: list[list[b.PackRef]] = []
        self.open_shipments: list[str] = []
        self.dispensable: list[b.PackRef] = []
        self.patients: list[SigningKey] = []
        self.records: list[bytes] = []


async def prepare(net: Network, counts: dict[str, int], progress: Progress) -> Prepared:
    p = Prepared()
    orgs = {kind: net.of_kind(kind) for kind in ("regulator", "manufacturer", "distributor", "pharmacy", "hospital")}
    reg, maker, dist = orgs["regulator"][0], orgs["manufacturer"][0], orgs["distributor"][0]
    pharmacy, (hosp_a, hosp_b) = orgs["pharmacy"][0], orgs["hospital"][:2]
    apis = list(net.apis.values())
    sem = asyncio.Semaphore(64)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as session:

        def client(org: str, key: SigningKey) -> LedgerClient:
            return LedgerClient(net.api_for(org), key, session)

        async def must(c: LedgerClient, body: Any) -> dict[str, Any]:
            async with sem:
                result = await c.submit(body)
            if result.get("status") != "committed":
                raise bench.BenchError(f"setup {type(body).__name__} failed: {result}")
            return result

        async def all_(items: list[Any]) -> int:
            results = await asyncio.gather(*items)
            height = max((int(r["height"]) for r in results), default=0)
            await wait_height(session, apis, height, timeout=120)
            return height

        regulator = client(reg, net.admin(reg))
        await all_([must(regulator, b.GrantLicence(maker, "manufacture", PREFIX)),
                    must(regulator, b.GrantLicence(dist, "distribute", "")),
                    must(regulator, b.GrantLicence(pharmacy, "dispense", ""))])
        for name, org, _role in (("maker", maker, "logistics"), ("dist", dist, "logistics"),
                                ("pharmacist", pharmacy, "pharmacist"), ("doc_a", hosp_a, "physician"),
                                ("doc_b", hosp_b, "physician")):
            p.keys[name] = SigningKey.generate()
            p.keys[f"{name}-org"] = net.admin(org)
        await all_([must(client(org, net.admin(org)), b.EnrolMember(p.keys[name].verify_key.raw, role))
                    for name, org, role in (("maker", maker, "logistics"), ("dist", dist, "logistics"),
                                            ("pharmacist", pharmacy, "pharmacist"), ("doc_a", hosp_a, "physician"),
                                            ("doc_b", hosp_b, "physician"))])
        p.keys["custodian-node"] = read_key(net.root / hosp_a / "node_key.json")
        progress.say("setup: licences and staff on the ledger")
        # Packs: for ships (at the manufacturer), for receives (shipped in setup), for dispenses (at the pharmacy).
        need_ship = counts["ship"] * PACKS_PER_SHIP
        need_recv = counts["receive"] * PACKS_PER_SHIP
        need_disp = counts["dispense"]
        gtin = gtin_with_check_digit(f"0{PREFIX}77777")
        tag = os.urandom(3).hex().upper()
        serials = [f"B{tag}{i:07d}" for i in range(need_ship + need_recv + need_disp)]
        lots = []
        mk = client(maker, p.keys["maker"])
        for start in range(0, len(serials), 2000):
            lot = f"BL{tag}{start // 2000:04d}"
            lots.append((lot, serials[start:start + 2000]))
        await all_([must(mk, b.Commission(gtin, lot, "301231", tuple(s))) for lot, s in lots])
        refs = [b.PackRef(gtin, s) for s in serials]
        ship_refs, recv_refs = refs[:need_ship], refs[need_ship:need_ship + need_recv]
        disp_refs = refs[need_ship + need_recv:]
        p.ship_packs = [ship_refs[i:i + PACKS_PER_SHIP] for i in range(0, len(ship_refs), PACKS_PER_SHIP)]
        p.open_shipments = [f"R{tag}-{i}" for i in range(counts["receive"])]
        await all_([must(mk, b.Ship(sid, dist, tuple(recv_refs[i * PACKS_PER_SHIP:(i + 1) * PACKS_PER_SHIP]), ()))
                    for i, sid in enumerate(p.open_shipments)])
        d = client(dist, p.keys["dist"])
        chunks = [disp_refs[i:i + 1200] for i in range(0, len(disp_refs), 1200)]
        await all_([must(mk, b.Ship(f"P{tag}-{i}", dist, tuple(c), ())) for i, c in enumerate(chunks)])
        await all_([must(d, b.Receive(f"P{tag}-{i}")) for i in range(len(chunks))])
        await all_([must(d, b.Ship(f"Q{tag}-{i}", pharmacy, tuple(c), ())) for i, c in enumerate(chunks)])
        await all_([must(client(pharmacy, p.keys["pharmacist"]), b.Receive(f"Q{tag}-{i}")) for i in range(len(chunks))])
        p.dispensable = disp_refs
        progress.say(f"setup: {len(serials):,} packs placed, {len(p.open_shipments):,} shipments open")
        # Patients with records at hospital A and a consent for hospital B.
        n_patients = max(50, counts["consent"] // 4)
        p.patients = [SigningKey.generate() for _ in range(n_patients)]
        await all_([must(client(hosp_a, k), b.RegisterPatient()) for k in p.patients])
        doc_a = client(hosp_a, p.keys["doc_a"])
        p.records = [os.urandom(16) for _ in p.patients]
        await all_([must(doc_a, b.AddRecord(rid, patient_id(k.verify_key.raw), "Observation", sha256(rid)))
                    for rid, k in zip(p.records, p.patients, strict=True)])
        await all_([must(client(hosp_a, k), b.GrantConsent(hosp_b, None, (), None)) for k in p.patients])
        progress.say(f"setup: {n_patients} patients with a record and a consent")
    return p


def sign_mix(net: Network, chain_id: str, p: Prepared, counts: dict[str, int]) -> list[bytes]:
    now = int(time.time() * 1000)
    rng = random.Random(7)
    orgs = {kind: net.of_kind(kind) for kind in ("distributor", "hospital")}
    dist, hosp_b = orgs["distributor"][0], orgs["hospital"][1]
    gtin = gtin_with_check_digit(f"0{PREFIX}88888")
    tag = os.urandom(3).hex().upper()
    out: list[tuple[str, bytes]] = []

    def add(kind: str, key: SigningKey, body: Any) -> None:
        out.append((kind, make_transaction(key, chain_id, body, now)))

    for i in range(counts["commission"]):
        add("commission", p.keys["maker"], b.Commission(gtin, f"M{tag}{i // 200:04d}", "301231",
                                                        tuple(f"M{tag}{i:06d}{j}" for j in range(10))))
    for i, packs in enumerate(p.ship_packs[:counts["ship"]]):
        add("ship", p.keys["maker"], b.Ship(f"S{tag}-{i}", dist, tuple(packs), ()))
    for sid in p.open_shipments[:counts["receive"]]:
        add("receive", p.keys["dist"], b.Receive(sid))
    for ref in p.dispensable[:counts["dispense"]]:
        add("dispense", p.keys["pharmacist"], b.Dispense(ref.gtin, ref.serial))
    for i in range(counts["consent"]):
        add("consent", p.patients[i % len(p.patients)],
            b.GrantConsent(hosp_b, None, ("Observation",), now + 86_400_000 + i))
    for i in range(counts["record"]):
        patient = p.patients[i % len(p.patients)]
        add("record", p.keys["doc_a"], b.AddRecord(os.urandom(16), patient_id(patient.verify_key.raw), "Observation",
                                                   sha256(str(i).encode())))
    for i in range(counts["access"]):
        rid = p.records[i % len(p.records)]
        request = b.ReadRequest.signed(p.keys["doc_b"], chain_id, rid, 0, "bench", False, now, os.urandom(16))
        add("access", p.keys["custodian-node"], b.RecordAccess(request))
    rng.shuffle(out)
    return [tx for _, tx in out]


def _summary(r: bench.RunResult) -> dict[str, Any]:
    return {"committed_tx_s": round(r.throughput_tx_s, 1), "steady_window_s": r.steady_window_s,
            "latency_s": {k: round(v, 3) for k, v in r.latency_s.items()},
            "rejected_in_blocks": r.rejected_in_blocks, "committed": r.committed,
            "mean_txs_per_block": round(r.mean_txs_per_block, 1), "max_view": r.max_view,
            "node_cpu_ms_per_tx": round(r.node_cpu_ms_per_tx, 3), "others_cpu_pct": round(r.others_cpu_pct, 1),
            "ran_out_of_txs": r.ran_out_of_txs}


def run(seconds: float, concurrency: int, txs: int, progress: Progress) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0))
    base = Path(tempfile.mkdtemp(prefix="medchain-bench-ledger-"))
    root = base / "net"
    genesis = generate_testnet(root, 0, 0, bench.free_base_port(4), chain_id=f"medchain-mix-{os.urandom(3).hex()}",
                               clients=bench.CLIENT_KEYS, consortium=load_consortium(CONFIG))
    chain_id = genesis.chain_id
    net = Network.load(root)
    plan = RunPlan("closed", "closed", seconds=seconds, concurrency=concurrency, txs=txs)
    seeds = [client_key(root, j).seed for j in range(bench.CLIENT_KEYS)]
    progress.say(f"pre-signing {txs:,} anchors")
    anchors = bench.presign(seeds, chain_id, "anchor", txs + 1, workers=cores)
    ceiling = Ceiling.measure(anchors, 2.0, cores)
    counts = _units(txs)
    with running_cluster(root, progress) as nodes:
        asyncio.run(wait_ready(nodes, anchors[0]))
        apis = bench._loopback_apis(nodes)
        progress.say(f"anchor-only: {plan.describe()}")
        anchor_result = asyncio.run(Run(plan, nodes, build_load(anchors[1:], apis), progress).execute())
        progress.say("preparing the ledger for the mix (not timed)")
        t = time.monotonic()
        prepared = asyncio.run(prepare(net, counts, progress))
        setup_s = time.monotonic() - t
        mix = sign_mix(net, chain_id, prepared, counts)
        progress.say(f"mixed: {len(mix):,} pre-signed transactions, {plan.describe()}")
        mixed_result = asyncio.run(Run(plan, nodes, build_load(mix, apis), progress).execute())
    ratio = mixed_result.throughput_tx_s / anchor_result.throughput_tx_s if anchor_result.throughput_tx_s else 0.0
    return {
        "machine": {"cores": cores},
        "ceiling_tx_s": round(ceiling.tx_per_s, 1),
        "mix_per_20_txs": MIX,
        "anchor": _summary(anchor_result),
        "mixed": _summary(mixed_result),
        "setup_s": round(setup_s, 1),
        "ratio": round(ratio, 3),
        "share_of_ceiling": {"anchor": round(anchor_result.throughput_tx_s / ceiling.tx_per_s, 3),
                             "mixed": round(mixed_result.throughput_tx_s / ceiling.tx_per_s, 3)},
        "goal": {"what": "mixed workload keeps >= 70% of anchor-only throughput", "met": ratio >= 0.70},
        "dir": str(base),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench-ledger", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="load period of each run (default 20)")
    p.add_argument("--concurrency", type=int, default=3000, help="uncommitted transactions in flight (default 3000)")
    p.add_argument("--txs", type=int, default=40_000, help="pre-signed transactions per run (default 40000)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    report = run(args.seconds, args.concurrency, args.txs, Progress(False))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        a, m = report["anchor"], report["mixed"]
        print(f"anchor-only: {a['committed_tx_s']:,} committed tx/s (p99 {a['latency_s']['p99']} s)")
        print(f"mixed:       {m['committed_tx_s']:,} committed tx/s (p99 {m['latency_s']['p99']} s), "
              f"{m['rejected_in_blocks']} rejected")
        print(f"ratio:       {report['ratio']:.2f} (goal >= 0.70: {'met' if report['goal']['met'] else 'NOT met'})")
        print(f"ceiling:     {report['ceiling_tx_s']:,} tx/s; shares {report['share_of_ceiling']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
