"""The healthcare workload of the benchmark, and the chain the verification benchmark builds (``plan_chain``).

The mix is data (``MIX``): per cycle of 20 transactions, 12 drug events (60 %)
and 8 EHR operations (40 %).  Dispensing is the most frequent drug event
because every pack is dispensed on its own, while commissioning and shipping
move packs in bulk; audited reads outnumber new records, as in a hospital.

Rules of the workload, so that every measured transaction is accepted in any
commit order (rejections should stay at zero; many mean the mix is broken):

* a setup, not measured, prepares what the load consumes, in waves: each
  wave's transactions are independent of each other and need only the
  earlier waves committed (licences, staff, patients; then lots, records and
  consents; then lots shipped along the chain);
* every measured transaction uses something no other one touches: fresh
  serials and record ids, its own packs and shipments, a fresh read nonce;
  what several share (a lot being commissioned, a record's access counter, a
  patient's record list) only accumulates, whatever the order;
* each audited read is filed by the custodian hospital's node key around a
  request the reader signed when the load was pre-signed (it must be used
  within the ledger's 10 minutes);
* new records go through ``POST /txs`` like the rest: their content, the
  vault and FHIR validation (``POST /ehr/records``) are outside this load.

``plan_mix`` and ``sign_steps`` are pure (tests run them on the in-memory
ledger); ``run_setup`` talks to a live consortium cluster.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from node.client.http import NodeClient
from node.config import read_key
from node.healthcare.gs1 import gtin_with_check_digit
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import patient_id
from node.healthcare.transactions import make_transaction
from node.lab.counterfeit import Network
from primitives.errors import UsageError
from primitives.hashing import sha256
from primitives.signing import SigningKey

PREFIX = "9506000"  # the manufacturer's GS1 company prefix
SERIALS_PER_COMMISSION = 10
PACKS_PER_SHIP = 4
PACKS_PER_RECEIVE = 4
COMMISSIONS_PER_LOT = 50
LOT_SIZE = b.MAX_SERIALS  # setup lots: one commission each
STAFF = {"logistics": 2, "pharmacist": 2, "physician": 4}  # keys per organisation and role
RECORD_TYPES = ("Observation", "Condition", "MedicationRequest", "DiagnosticReport")
DAY_MS = 86_400_000
HEAVY = frozenset({"commission-lot", "ship-lot", "receive-lot"})  # setup steps that move thousands of packs
HEAVY_IN_FLIGHT = 3  # a few per block keep blocks short
LIGHT_IN_FLIGHT = 128
SIGN_CHUNK = 2_000


class MixError(UsageError):
    """The workload cannot be prepared or run: the message says what went wrong."""


@dataclass(frozen=True, slots=True)
class Share:
    kind: str
    weight: int  # transactions of this kind per cycle
    domain: str  # "drug" or "ehr"
    what: str


MIX: tuple[Share, ...] = (
    Share("commission", 2, "drug", f"the manufacturer commissions {SERIALS_PER_COMMISSION} new serials of a lot"),
    Share("ship", 3, "drug", f"the manufacturer ships {PACKS_PER_SHIP} packs it holds to the distributor"),
    Share("receive", 2, "drug", f"a pharmacy receives a {PACKS_PER_RECEIVE}-pack delivery sent in setup"),
    Share("dispense", 5, "drug", "a pharmacist dispenses a pack the pharmacy holds"),
    Share("consent", 1, "ehr", "a patient lets a physician read two record types for 90 days"),
    Share("record", 3, "ehr", "a physician files a record (AddRecord through POST /txs: commitment only)"),
    Share("access", 4, "ehr", "a custodian files an audited read around the reader's signed request"),
)
CYCLE = sum(s.weight for s in MIX)
ACTIONS = {
    "Commission": "commission",
    "Ship": "ship",
    "Receive": "receive",
    "Dispense": "dispense",
    "GrantConsent": "consent",
    "AddRecord": "record",
    "RecordAccess": "access",
}


def mix_kinds(count: int, rng: random.Random) -> list[str]:
    """``count`` kinds in cycles of ``CYCLE``: exact proportions per cycle, shuffled within it."""
    cycle = [s.kind for s in MIX for _ in range(s.weight)]
    out: list[str] = []
    while len(out) < count:
        block = cycle[:]
        rng.shuffle(block)
        out.extend(block)
    return out[:count]


def describe_mix() -> str:
    parts = ", ".join(f"{s.weight} {s.kind}" for s in MIX)
    drug = sum(s.weight for s in MIX if s.domain == "drug")
    return f"per {CYCLE} tx: {parts} ({100 * drug / CYCLE:.0f} % drug events, {100 - 100 * drug / CYCLE:.0f} % EHR)"


def signatures_per_tx() -> float:
    """Ed25519 checks per transaction of the mix: an access carries the reader's signature too."""
    return 1 + sum(s.weight for s in MIX if s.kind == "access") / CYCLE


# ---------------------------------------------------------------- who acts


def admin_name(org: str) -> str:
    return f"admin/{org}"


def node_name(org: str) -> str:
    return f"node/{org}"


@dataclass(frozen=True, slots=True)
class Cast:
    """The organisations the workload needs, by role in the supply chain and the EHR."""

    regulator: str
    manufacturer: str
    distributor: str
    dispensers: tuple[str, ...]  # pharmacies, then hospitals (hospital pharmacies)
    hospitals: tuple[str, ...]

    @classmethod
    def from_kinds(cls, kinds: Mapping[str, str]) -> Cast:
        def of(kind: str) -> list[str]:
            return [org for org, k in kinds.items() if k == kind]

        missing = [k for k in ("regulator", "manufacturer", "distributor", "hospital") if not of(k)]
        if missing:
            raise MixError(f"the consortium has no {', '.join(missing)}; use configs/consortium-4.toml or a superset")
        return cls(
            of("regulator")[0],
            of("manufacturer")[0],
            of("distributor")[0],
            (*of("pharmacy"), *of("hospital")),
            tuple(of("hospital")),
        )


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """An audited read still to be signed: by ``reader`` at pre-signing time, then wrapped by the custodian."""

    reader: str
    record_id: bytes
    nonce: bytes
    purpose: str = "treatment"


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    signer: str  # a key name: admin/<org>, node/<org>, or one the plan generated
    body: Any  # a ledger body, or a ReadSpec


@dataclass(frozen=True, slots=True)
class LotSpec:
    gtin: str
    lot: str
    expiry: str
    serials: tuple[str, ...]


@dataclass(slots=True)
class MixPlan:
    seeds: dict[str, bytes]  # keys the plan generated (members, patients), by name
    setup: list[list[Step]]  # waves, in order; each wave needs the previous ones committed
    load: list[Step]
    lots: list[LotSpec] = field(default_factory=list)  # every lot the setup commissions


# ---------------------------------------------------------------- the plan (pure)


class _Builder:
    def __init__(self, cast: Cast, now_ms: int, rng: random.Random, tag: str) -> None:
        self.cast = cast
        self.now_ms = now_ms
        self.rng = rng
        self.tag = tag
        self.seeds: dict[str, bytes] = {}
        self.staff: dict[tuple[str, str], list[str]] = {}
        self.patients: list[str] = []
        self.expiry = (dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC) + dt.timedelta(days=730)).strftime("%y%m%d")
        self.gtins = tuple(gtin_with_check_digit(f"0{PREFIX}{i:05d}") for i in (1, 2, 3))
        self.lot_count = 0
        self.records: list[tuple[bytes, str, str]] = []  # (record id, custodian, patient key name)
        self.maker_stock: list[b.PackRef] = []
        self.pharmacy_stock: list[tuple[str, b.PackRef]] = []
        self.open_shipments: list[tuple[str, str]] = []  # (recipient, shipment id)

    def _new_key(self, name: str) -> str:
        self.seeds[name] = sha256(f"medchain/bench-mix/{self.tag}/{name}".encode())
        return name

    def public(self, name: str) -> bytes:
        return SigningKey(self.seeds[name]).verify_key.raw

    def member(self, org: str, role: str, i: int) -> str:
        names = self.staff[(org, role)]
        return names[i % len(names)]

    def custody_role(self, org: str) -> str:
        return "logistics" if org in (self.cast.manufacturer, self.cast.distributor) else "pharmacist"

    # ------------------------------------------------------------ setup pieces

    def base_wave(self, patients: int, physicians: bool) -> list[Step]:
        c = self.cast
        regulator = admin_name(c.regulator)
        steps = [
            Step("licence", regulator, b.GrantLicence(c.manufacturer, "manufacture", PREFIX)),
            Step("licence", regulator, b.GrantLicence(c.distributor, "distribute", "")),
        ]
        steps += [Step("licence", regulator, b.GrantLicence(org, "dispense", "")) for org in c.dispensers]
        roster = [(c.manufacturer, "logistics"), (c.distributor, "logistics")]
        roster += [(org, "pharmacist") for org in c.dispensers]
        roster += [(org, "physician") for org in c.hospitals] if physicians else []
        for org, role in roster:
            names = [self._new_key(f"{org}/{role}{i}") for i in range(STAFF[role])]
            self.staff[(org, role)] = names
            steps += [Step("enrol", admin_name(org), b.EnrolMember(self.public(n), role)) for n in names]
        self.patients = [self._new_key(f"patient{i}") for i in range(patients)]
        steps += [Step("register", p, b.RegisterPatient()) for p in self.patients]
        return steps

    def lots(self, packs: int, prefix: str) -> list[LotSpec]:
        out = []
        for start in range(0, packs, LOT_SIZE):
            self.lot_count += 1
            name = f"{prefix}{self.lot_count:05d}"
            serials = tuple(f"{name}{j:04d}" for j in range(min(LOT_SIZE, packs - start)))
            out.append(LotSpec(self.gtins[self.lot_count % len(self.gtins)], name, self.expiry, serials))
        return out

    def commissions(self, lots: Sequence[LotSpec]) -> list[Step]:
        maker = self.cast.manufacturer
        return [
            Step(
                "commission-lot",
                self.member(maker, "logistics", i),
                b.Commission(lot.gtin, lot.lot, lot.expiry, lot.serials),
            )
            for i, lot in enumerate(lots)
        ]

    def ship_lots(
        self, lots: Sequence[LotSpec], sender: str, receivers: Sequence[str], tag: str
    ) -> tuple[list[Step], list[Step], list[str]]:
        """Whole-lot shipments, receiver ``i % len`` for lot ``i``: (ships, receives, each lot's receiver)."""
        ships, receives, placed = [], [], []
        for i, lot in enumerate(lots):
            to = receivers[i % len(receivers)]
            sid = f"{tag}-{lot.lot}"
            ships.append(
                Step(
                    "ship-lot",
                    self.member(sender, self.custody_role(sender), i),
                    b.Ship(sid, to, (), (b.LotRef(lot.gtin, lot.lot),)),
                )
            )
            receives.append(Step("receive-lot", self.member(to, self.custody_role(to), i), b.Receive(sid)))
            placed.append(to)
        return ships, receives, placed

    def open_deliveries(self, lots: Sequence[LotSpec]) -> list[Step]:
        """Small shipments from the distributor to pharmacies, left open for the load to receive."""
        refs = [b.PackRef(lot.gtin, s) for lot in lots for s in lot.serials]
        dist, steps = self.cast.distributor, []
        for i in range(len(refs) // PACKS_PER_RECEIVE):
            to = self.cast.dispensers[i % len(self.cast.dispensers)]
            sid = f"OPEN{i:07d}"
            chunk = tuple(refs[i * PACKS_PER_RECEIVE : (i + 1) * PACKS_PER_RECEIVE])
            steps.append(Step("ship-open", self.member(dist, "logistics", i), b.Ship(sid, to, chunk, ())))
            self.open_shipments.append((to, sid))
        return steps

    def records_and_consents(self) -> list[Step]:
        """One record per patient at a hospital; each patient lets the next hospital read every type for a year."""
        hospitals, steps = self.cast.hospitals, []
        for i, patient in enumerate(self.patients):
            custodian, other = hospitals[i % len(hospitals)], hospitals[(i + 1) % len(hospitals)]
            rid = self.rng.randbytes(16)
            body = b.AddRecord(
                rid, patient_id(self.public(patient)), self.rng.choice(RECORD_TYPES), self.rng.randbytes(32)
            )
            steps.append(Step("record-setup", self.member(custodian, "physician", i), body))
            self.records.append((rid, custodian, patient))
            if other != custodian:
                steps.append(
                    Step("consent-setup", patient, b.GrantConsent(other, None, (), self.now_ms + 365 * DAY_MS))
                )
        return steps

    # ------------------------------------------------------------ the measured load

    def load(self, kinds: Sequence[str]) -> list[Step]:
        makers: dict[str, Callable[[int], Step]] = {
            "commission": self._commission,
            "ship": self._ship,
            "receive": self._receive,
            "dispense": self._dispense,
            "consent": self._consent,
            "record": self._record,
            "access": self._access,
        }
        seen: Counter[str] = Counter()
        out = []
        for kind in kinds:
            out.append(makers[kind](seen[kind]))
            seen[kind] += 1
        return out

    def _commission(self, n: int) -> Step:
        lot = n // COMMISSIONS_PER_LOT
        serials = tuple(f"C{n:07d}{j:02d}" for j in range(SERIALS_PER_COMMISSION))
        body = b.Commission(self.gtins[lot % len(self.gtins)], f"CL{lot:05d}", self.expiry, serials)
        return Step("commission", self.member(self.cast.manufacturer, "logistics", n), body)

    def _ship(self, n: int) -> Step:
        refs = tuple(self.maker_stock[n * PACKS_PER_SHIP : (n + 1) * PACKS_PER_SHIP])
        body = b.Ship(f"MS{n:07d}", self.cast.distributor, refs, ())
        return Step("ship", self.member(self.cast.manufacturer, "logistics", n), body)

    def _receive(self, n: int) -> Step:
        to, sid = self.open_shipments[n]
        return Step("receive", self.member(to, "pharmacist", n), b.Receive(sid))

    def _dispense(self, n: int) -> Step:
        org, ref = self.pharmacy_stock[n]
        return Step("dispense", self.member(org, "pharmacist", n), b.Dispense(ref.gtin, ref.serial))

    def _physician(self) -> str:
        return self.member(self.rng.choice(self.cast.hospitals), "physician", self.rng.randrange(STAFF["physician"]))

    def _consent(self, n: int) -> Step:
        body = b.GrantConsent(
            "", self.public(self._physician()), ("MedicationRequest", "Observation"), self.now_ms + 90 * DAY_MS
        )
        return Step("consent", self.rng.choice(self.patients), body)

    def _record(self, n: int) -> Step:
        patient = patient_id(self.public(self.rng.choice(self.patients)))
        body = b.AddRecord(self.rng.randbytes(16), patient, self.rng.choice(RECORD_TYPES), self.rng.randbytes(32))
        return Step("record", self._physician(), body)

    def _access(self, n: int) -> Step:
        """Readers in turn: a physician of the custodian, one of the next hospital (consent), the patient."""
        rid, custodian, patient = self.records[n % len(self.records)]
        hospitals = self.cast.hospitals
        other = hospitals[(hospitals.index(custodian) + 1) % len(hospitals)]
        reader = (self.member(custodian, "physician", n), self.member(other, "physician", n), patient)[n % 3]
        return Step("access", node_name(custodian), ReadSpec(reader, rid, self.rng.randbytes(16)))


def plan_mix(cast: Cast, count: int, now_ms: int, seed: int = 1, tag: str = "bench") -> MixPlan:
    """The setup and ``count`` measured transactions of the mix, valid in any commit order."""
    rng = random.Random(seed)
    kinds = mix_kinds(count, rng)
    need = Counter(kinds)
    bld = _Builder(cast, now_ms, rng, tag)
    base = bld.base_wave(patients=max(8, min(500, count // 40)), physicians=True)
    maker = bld.lots(need["ship"] * PACKS_PER_SHIP, "SM")
    stock = bld.lots(need["dispense"], "SP")
    opened = bld.lots(need["receive"] * PACKS_PER_RECEIVE, "SO")
    second = bld.commissions([*maker, *stock, *opened]) + bld.records_and_consents()
    to_dist, at_dist, _ = bld.ship_lots([*stock, *opened], cast.manufacturer, [cast.distributor], "MD")
    to_pharmacy, at_pharmacy, placed = bld.ship_lots(stock, cast.distributor, cast.dispensers, "DP")
    deliveries = bld.open_deliveries(opened)
    bld.maker_stock = [b.PackRef(lot.gtin, s) for lot in maker for s in lot.serials]
    bld.pharmacy_stock = [
        (org, b.PackRef(lot.gtin, s)) for lot, org in zip(stock, placed, strict=True) for s in lot.serials
    ]
    rng.shuffle(bld.pharmacy_stock)
    waves = [base, second, to_dist, at_dist, to_pharmacy + deliveries, at_pharmacy]
    load = bld.load(kinds)
    return MixPlan(bld.seeds, [w for w in waves if w], load, [*maker, *stock, *opened])


def plan_chain(cast: Cast, packs: int, now_ms: int, tag: str = "verify") -> MixPlan:
    """A supply chain of ``packs`` packs: lots of 2,000 commissioned, shipped whole to the distributor, then
    to the dispensing organisations in turn, and received; no measured load."""
    bld = _Builder(cast, now_ms, random.Random(0), tag)
    base = bld.base_wave(patients=0, physicians=False)
    lots = bld.lots(packs, "V")
    to_dist, at_dist, _ = bld.ship_lots(lots, cast.manufacturer, [cast.distributor], "MD")
    to_pharmacy, at_pharmacy, _ = bld.ship_lots(lots, cast.distributor, cast.dispensers, "DP")
    waves = [base, bld.commissions(lots), to_dist, at_dist, to_pharmacy, at_pharmacy]
    return MixPlan(bld.seeds, [w for w in waves if w], [], lots)


# ---------------------------------------------------------------- signing


def sign_steps(seeds: Mapping[str, bytes], chain_id: str, now_ms: int, steps: Sequence[Step]) -> list[bytes]:
    keys: dict[str, SigningKey] = {}

    def key(name: str) -> SigningKey:
        found = keys.get(name)
        if found is None:
            if name not in seeds:
                raise MixError(f"no key named {name!r} for the workload")
            found = keys[name] = SigningKey(seeds[name])
        return found

    out = []
    for step in steps:
        body = step.body
        if isinstance(body, ReadSpec):
            request = b.ReadRequest.signed(
                key(body.reader), chain_id, body.record_id, 0, body.purpose, False, now_ms, body.nonce
            )
            body = b.RecordAccess(request)
        out.append(make_transaction(key(step.signer), chain_id, body, now_ms))
    return out


def presign_steps(
    seeds: Mapping[str, bytes], chain_id: str, now_ms: int, steps: Sequence[Step], workers: int, chunk: int = SIGN_CHUNK
) -> list[bytes]:
    """``sign_steps`` over a process pool, in chunks; the order of ``steps`` is kept."""
    if workers <= 1 or len(steps) <= chunk:
        return sign_steps(seeds, chain_id, now_ms, steps)
    seeds = dict(seeds)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(sign_steps, seeds, chain_id, now_ms, list(steps[i : i + chunk]))
            for i in range(0, len(steps), chunk)
        ]
        return [tx for fut in futures for tx in fut.result()]


def network_seeds(root: Path) -> dict[str, bytes]:
    """Admin keys (ROOT/orgs/<org>/admin.json) and node keys (ROOT/<org>/node_key.json) of a consortium folder."""
    net = Network.load(root)
    seeds = {admin_name(org): net.admin(org).seed for org in net.kinds}
    for org in net.apis:
        seeds[node_name(org)] = read_key(root / org / "node_key.json").seed
    return seeds


# ---------------------------------------------------------------- a live cluster


@dataclass(slots=True)
class SetupReport:
    txs: int = 0
    seconds: float = 0.0
    by_kind: Counter[str] = field(default_factory=Counter)


async def _commit(node: NodeClient, step: Step, data: bytes) -> None:
    for _ in range(100):  # bounded: 503 means the mempool is full, retry after its Retry-After
        reply = await node.send("POST", "/txs?wait=commit&timeout=120", data=data)
        if reply.status == 503:
            await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
            continue
        doc = reply.json()
        if reply.status != 200:
            raise MixError(f"setup {step.kind} was refused at {node.base}: HTTP {reply.status} {doc}")
        if doc.get("status") != "committed":
            raise MixError(f"setup {step.kind} was rejected: {doc.get('code')}: {doc.get('message')}")
        return
    raise MixError(f"setup {step.kind}: {node.base} kept answering 503 (mempool full)")


async def run_setup(
    apis: Sequence[str],
    waves: Sequence[Sequence[Step]],
    seeds: Mapping[str, bytes],
    chain_id: str,
    say: Callable[[str], None],
) -> SetupReport:
    """Submit each wave and wait until all of it committed; a rejection stops the setup with its reason."""
    report, started = SetupReport(), time.monotonic()
    heavy, light = asyncio.Semaphore(HEAVY_IN_FLIGHT), asyncio.Semaphore(LIGHT_IN_FLIGHT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=LIGHT_IN_FLIGHT + 8)) as session:
        nodes = [NodeClient(api, session, timeout=150) for api in apis]
        for number, wave in enumerate(waves, 1):
            txs = sign_steps(seeds, chain_id, int(time.time() * 1000), wave)

            async def one(i: int, step: Step, data: bytes) -> None:
                async with heavy if step.kind in HEAVY else light:
                    await _commit(nodes[i % len(nodes)], step, data)

            t = time.monotonic()
            await asyncio.gather(*(one(i, s, d) for i, (s, d) in enumerate(zip(wave, txs, strict=True))))
            report.by_kind.update(s.kind for s in wave)
            kinds = ", ".join(f"{n:,} {k}" for k, n in Counter(s.kind for s in wave).items())
            say(f"setup wave {number}/{len(waves)} committed in {time.monotonic() - t:.1f} s: {kinds}")
    report.txs = sum(report.by_kind.values())
    report.seconds = time.monotonic() - started
    return report


_LEDGER_LINE = re.compile(r'^medchain_ledger_txs_total\{action="([^"]*)",outcome="([^"]*)"\} ([0-9.e+]+)$')


_STAGE_LINE = re.compile(r'^medchain_block_seconds_sum\{clock="cpu",stage="([a-z]+)"\} ([0-9.e+-]+)$')
_TXS_LINE = re.compile(r"^medchain_txs_(committed|rejected)_total ([0-9.e+-]+)$")


async def fetch_metrics(api: str) -> str:
    """The text of the node's ``/metrics`` (Prometheus exposition format)."""
    async with NodeClient(api) as node:
        return (await node.send("GET", "/metrics")).text


@dataclass(frozen=True)
class NodeReading:
    """One scrape of a node's ``/metrics``: what the benchmark compares before and after a run."""

    outcomes: Counter[tuple[str, str]]  # committed transactions by (action, outcome)
    stage_cpu: dict[str, float]  # CPU seconds spent per block stage (execute, store)
    txs: int  # transactions committed (accepted or rejected)


def read_node(api: str) -> NodeReading:
    """Scrape one node's ``/metrics`` once and keep the ledger's outcomes and the block stages' CPU."""
    outcomes: Counter[tuple[str, str]] = Counter()
    cpu: dict[str, float] = {}
    text = asyncio.run(fetch_metrics(api))
    for line in text.splitlines():
        if m := _LEDGER_LINE.match(line):
            outcomes[(m.group(1), m.group(2))] = int(float(m.group(3)))
        elif m := _STAGE_LINE.match(line):
            cpu[m.group(1)] = float(m.group(2))
    return NodeReading(outcomes, cpu, executed_txs(text))


def executed_txs(metrics: str) -> int:
    """The transactions a node executed since it started (committed and rejected), from its ``/metrics`` text."""
    return sum(int(float(m.group(2))) for line in metrics.splitlines() if (m := _TXS_LINE.match(line)))


def stage_us_per_tx(before: NodeReading, after: NodeReading) -> dict[str, float]:
    """Microseconds of one node's CPU per committed transaction, per block stage, between two readings."""
    txs = after.txs - before.txs
    if txs <= 0:
        return {}
    return {stage: round(1e6 * (cpu - before.stage_cpu.get(stage, 0.0)) / txs, 1)
            for stage, cpu in sorted(after.stage_cpu.items())}


def outcome_table(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Per mix kind: accepted, and rejected by code, between two readings."""
    table: dict[str, dict[str, int]] = {}
    for (action, outcome), n in (after - before).items():
        row = table.setdefault(ACTIONS.get(action, action), {})
        row["accepted" if outcome == "accepted" else outcome] = n
    return table
