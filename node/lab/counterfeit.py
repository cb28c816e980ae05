"""The counterfeit experiment: a generated supply chain on a live consortium, with injected fakes.

Manufacturer -> distributor -> pharmacies (and hospital pharmacies): packs are
commissioned in lots, shipped and received twice, some dispensed, one lot
recalled.  Then every genuine pack at a pharmacy is scanned, and three classes
of bad product are injected, each caught by its own mechanism:

==========  ============  ===============================================  ==========================================
class       kind          how it is made                                   detected by
==========  ============  ===============================================  ==========================================
fake        unknown       a serial never commissioned                      scan: No_match_GTIN_Serial, an alert
fake        clone         the code of a pack already dispensed             scan: AlreadyDispensed, an alert
fake        wrong_lot     a genuine serial printed with another lot        scan: No_match_GTIN_Serial_Lot, an alert
fake        wrong_expiry  a genuine serial printed with another expiry     scan: No_match_GTIN_Serial_Expiry, an alert
unsellable  recalled      a genuine pack of the recalled lot               scan: status recalled
unsellable  expired       a lot whose expiry the ledger's time has passed  ledger rule at commissioning: expired
diversion   diverted      a pharmacy dispenses a pack another one holds    ledger rule at dispense: not-custodian
==========  ============  ===============================================  ==========================================

Expiry is judged by the ledger's own time: the expired lots carry an expiry
before the day of the chain's latest block, and the validators refuse them by
the committing block's time.  (A lot cannot enter the chain already expired,
and an expiry is a whole day, so within one run no pack expires on the
chain: what the run shows is the rule that keeps expired stock out.)

The result counts, per kind, what was injected and what its mechanism caught,
and genuine packs scanned and wrongly flagged; the goal is everything caught,
nothing genuine flagged, and every fake's alert on the ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from node.client.ledger import LedgerClient, wait_height
from node.config import read_key
from node.documents import TxStatus
from node.healthcare.documents import AlertDocument, Verification
from node.healthcare.gs1 import gtin_with_check_digit
from node.healthcare.ledger import bodies as b
from node.lab.fresh_cluster import fresh_consortium, raise_interrupt_on_sigterm
from node.lab.percentiles import percentiles
from primitives.errors import UsageError
from primitives.signing import SigningKey

SERIALS_PER_TX = 2000
HEAVY = 3  # transactions in flight when each touches thousands of packs
SHIP_CHUNK = 1200  # explicit pack lists: 1,200 x ~40 bytes stays under the 60 KiB body limit
PREFIX = "9506000"
MIN_PACKS = 8
FAKES = ("unknown", "clone", "wrong_lot", "wrong_expiry")
UNSELLABLE = ("recalled", "expired")
DIVERSIONS = ("diverted",)
KINDS = FAKES + UNSELLABLE + DIVERSIONS
CLASSES = {"fakes": FAKES, "unsellable": UNSELLABLE, "diversions": DIVERSIONS}
DETECTED_BY = {
    "unknown": "scan verdict: unknown serial (No_match_GTIN_Serial), alert filed",
    "clone": "scan verdict: already dispensed (AlreadyDispensed), alert filed",
    "wrong_lot": "scan verdict: lot differs (No_match_GTIN_Serial_Lot), alert filed",
    "wrong_expiry": "scan verdict: expiry differs (No_match_GTIN_Serial_Expiry), alert filed",
    "recalled": "scan verdict: status recalled",
    "expired": "ledger rule at commissioning, by block time: rejected 'expired'",
    "diverted": "ledger rule at dispense: rejected 'not-custodian'",
}
ALERT_PAGE = 1000


@dataclass(slots=True)
class Network:
    """A consortium cluster folder: API of each organisation's node, admin keys."""

    root: Path
    apis: dict[str, str]
    kinds: dict[str, str]

    @classmethod
    def load(cls, root: Path) -> Network:
        try:
            index = json.loads((root / "consortium.json").read_text())
        except FileNotFoundError:
            raise UsageError(f"{root} holds no consortium (consortium.json); start one with --consortium") from None
        apis = {org: info["api"] for org, info in index.items() if info.get("api")}
        kinds = {org: info["kind"] for org, info in index.items()}
        return cls(root, apis, kinds)

    def admin(self, org: str) -> SigningKey:
        return read_key(self.root / "orgs" / org / "admin.json")

    def of_kind(self, *kinds: str) -> list[str]:
        return [org for org, kind in self.kinds.items() if kind in kinds]

    def api_for(self, org: str) -> str:
        """The org's own node, or (for organisations without one) the first node."""
        return self.apis.get(org) or next(iter(self.apis.values()))


@dataclass(slots=True)
class Report:
    packs: int
    injected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    detected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    missed: list[dict[str, Any]] = field(default_factory=list)
    genuine_scanned: int = 0
    genuine_flagged: list[dict[str, Any]] = field(default_factory=list)
    alerts_expected: int = 0
    alerts_recorded: int = 0
    verify_ms: list[float] = field(default_factory=list)
    phases_s: dict[str, float] = field(default_factory=dict)
    sequential_ms: dict[str, list[float]] = field(default_factory=dict)
    height: int = 0

    @property
    def ok(self) -> bool:
        return (not self.missed and not self.genuine_flagged and self.injected == self.detected
                and self.alerts_recorded == self.alerts_expected)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "packs": self.packs,
            **{cls: {k: {"injected": self.injected[k], "detected": self.detected[k], "detected_by": DETECTED_BY[k]}
                     for k in kinds} for cls, kinds in CLASSES.items()},
            "genuine": {"scanned": self.genuine_scanned, "flagged": len(self.genuine_flagged)},
            "alerts": {"expected": self.alerts_expected, "recorded": self.alerts_recorded},
            "verify_ms": _latency(self.verify_ms, (50, 99)),
            "phases_s": {k: round(v, 1) for k, v in self.phases_s.items()},
            "chain_height": self.height,
            "sequential_verify_ms": {k: _latency(v, (50, 95, 99)) for k, v in self.sequential_ms.items()},
            "missed": self.missed[:20],
            "flagged": self.genuine_flagged[:20],
        }


def _latency(values: list[float], points: tuple[int, ...]) -> dict[str, Any]:
    """Sample count and percentiles in ms (null when nothing was measured)."""
    figures = {k: (None if math.isnan(v) else v) for k, v in percentiles(values, points, ndigits=2).items()}
    return {"count": len(values), **figures}


def hri(gtin: str, serial: str, lot: str, expiry: str) -> str:
    return f"(01){gtin}(17){expiry}(10){lot}(21){serial}"


def code_forms(gtin: str, serial: str, lot: str, expiry: str, i: int) -> str:
    """The same pack in one of the three written forms (cycled), as scanners send them."""
    form = i % 3
    if form == 0:
        return hri(gtin, serial, lot, expiry)
    if form == 1:
        return f"01{gtin}17{expiry}10{lot}\x1d21{serial}"
    return f"https://id.gs1.org/01/{gtin}/21/{quote(serial, safe='')}?10={quote(lot, safe='')}&17={expiry}"


def _yymmdd(d: dt.date) -> str:
    return d.strftime("%y%m%d")


class Experiment:
    def __init__(self, net: Network, packs: int, seed: int = 7, fakes_per_kind: int = 10, dispense: int = 100,
                 concurrency: int = 16, progress: Any = None, latency_samples: int = 0) -> None:
        self.latency_samples = latency_samples
        self.net = net
        self.packs = packs
        # Serials must be new on a chain that may already hold earlier runs: the run's time joins the seed.
        self.rng = random.Random(f"{seed}/{time.time_ns()}")
        self.fakes = fakes_per_kind
        self.dispense_n = dispense
        self.concurrency = concurrency
        self.progress = progress or (lambda msg: None)
        self.report = Report(packs)
        self.run_id = f"{seed}-{int(time.time())}"

    # ------------------------------------------------------------ plumbing

    def _client(self, session: aiohttp.ClientSession, org: str, key: SigningKey | None) -> LedgerClient:
        return LedgerClient(self.net.api_for(org), key, session)

    async def _must(self, client: LedgerClient, body: Any) -> TxStatus:
        result = await client.submit(body)
        if result.get("status") != "committed":
            raise UsageError(f"{type(body).__name__} was not committed: {result.get('code')}: "
                             f"{result.get('message')}")
        return result

    async def _gather(self, coros: list[Any], concurrency: int | None = None) -> list[Any]:
        sem = asyncio.Semaphore(concurrency or self.concurrency)

        async def one(c: Any) -> Any:
            async with sem:
                return await c

        return list(await asyncio.gather(*(one(c) for c in coros)))

    # ------------------------------------------------------------ the chain

    async def run(self) -> Report:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            t = time.monotonic()
            keys = await self._actors(session)
            self._phase("actors", t)
            t = time.monotonic()
            lots = await self._commission(session, keys)
            self._phase("commission", t)
            t = time.monotonic()
            holdings = await self._distribute(session, keys, lots)
            self._phase("distribute", t)
            t = time.monotonic()
            await self._inject_and_scan(session, keys, lots, holdings)
            self._phase("scan", t)
            if self.latency_samples:
                await self._sequential_latency(session, keys, holdings)
            self.report.height = int((await self._client(session, keys["regulator"], None).call(
                "GET", "/status"))["height"])
        return self.report

    def _phase(self, name: str, start: float) -> None:
        self.report.phases_s[name] = time.monotonic() - start
        self.progress(f"{name}: {self.report.phases_s[name]:.1f}s")

    async def _actors(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        regulator = self.net.of_kind("regulator")[0]
        maker = self.net.of_kind("manufacturer")[0]
        dist = self.net.of_kind("distributor")[0]
        pharmacies = self.net.of_kind("pharmacy", "hospital")
        if len(pharmacies) < 2:
            raise UsageError("the experiment needs at least two dispensing organisations")
        reg = self._client(session, regulator, self.net.admin(regulator))
        licences = [b.GrantLicence(maker, "manufacture", PREFIX), b.GrantLicence(dist, "distribute", "")]
        licences += [b.GrantLicence(p, "dispense", "") for p in pharmacies]
        current = {(lic["kind"], lic["scope"] or "", org["id"])
                   for org in await reg.call("GET", "/orgs") for lic in org["licences"]}
        await asyncio.gather(*(self._must(reg, lic) for lic in licences
                               if (lic.kind, lic.scope, lic.org) not in current))
        staff: dict[str, SigningKey] = {}

        async def enrol(org: str, role: str) -> None:
            key = SigningKey.generate()
            await self._must(self._client(session, org, self.net.admin(org)), b.EnrolMember(key.verify_key.raw, role))
            staff[org] = key

        await asyncio.gather(enrol(maker, "logistics"), enrol(dist, "logistics"),
                             *(enrol(p, "pharmacist") for p in pharmacies))
        return {"regulator": regulator, "maker": maker, "dist": dist, "pharmacies": pharmacies, "staff": staff,
                "reg": reg}

    async def _commission(self, session: aiohttp.ClientSession, keys: dict[str, Any]) -> list[dict[str, Any]]:
        maker = keys["maker"]
        client = self._client(session, maker, keys["staff"][maker])
        today = dt.datetime.now(dt.UTC).date()
        long_expiry = _yymmdd(today.replace(year=today.year + 2, day=1))
        gtins = [gtin_with_check_digit(f"0{PREFIX}{i:05d}") for i in range(1, 4)]
        lots: list[dict[str, Any]] = []
        remaining, n = self.packs, 0
        lot_size = min(SERIALS_PER_TX, max(1, -(-self.packs // 4)))  # at least 4 lots: one is recalled
        while remaining > 0:
            size = min(lot_size, remaining)
            gtin = gtins[n % len(gtins)]
            lot = f"X{self.run_id[-6:]}L{n:04d}"
            serials = tuple(f"S{n:04d}{self.rng.getrandbits(40):010X}" for _ in range(size))
            lots.append({"gtin": gtin, "lot": lot, "expiry": long_expiry, "serials": serials})
            remaining -= size
            n += 1
        await self._gather([self._must(client, b.Commission(lot["gtin"], lot["lot"], lot["expiry"], lot["serials"]))
                            for lot in lots], HEAVY)
        self.progress(f"commissioned {sum(len(lot['serials']) for lot in lots)} packs in {len(lots)} lots")
        return lots

    async def _distribute(self, session: aiohttp.ClientSession, keys: dict[str, Any], lots: list[dict[str, Any]]
                          ) -> dict[str, list[tuple[dict[str, Any], str]]]:
        maker, dist, pharmacies = keys["maker"], keys["dist"], keys["pharmacies"]
        staff = keys["staff"]
        m = self._client(session, maker, staff[maker])
        d = self._client(session, dist, staff[dist])
        ships = [b.Ship(f"M-{self.run_id}-{i}", dist, (), (b.LotRef(lot["gtin"], lot["lot"]),))
                 for i, lot in enumerate(lots)]
        # Each of these moves up to 2,000 packs: a few per block keep blocks short.
        await self._gather([self._must(m, s) for s in ships], HEAVY)
        await self._gather([self._must(d, b.Receive(s.shipment_id)) for s in ships], HEAVY)
        holdings: dict[str, list[tuple[dict[str, Any], str]]] = {p: [] for p in pharmacies}
        for lot in lots:
            for i, serial in enumerate(lot["serials"]):
                holdings[pharmacies[i % len(pharmacies)]].append((lot, serial))
        outgoing = []
        for pharmacy, held in holdings.items():
            for start in range(0, len(held), SHIP_CHUNK):
                chunk = held[start:start + SHIP_CHUNK]
                sid = f"D-{self.run_id}-{pharmacy}-{start}"
                refs = tuple(b.PackRef(lot["gtin"], serial) for lot, serial in chunk)
                outgoing.append((pharmacy, b.Ship(sid, pharmacy, refs, ())))
        await self._gather([self._must(d, ship) for _, ship in outgoing], HEAVY)
        await self._gather([self._must(self._client(session, p, staff[p]), b.Receive(ship.shipment_id))
                            for p, ship in outgoing], HEAVY)
        self.progress(f"distributed to {len(pharmacies)} dispensing organisations in {len(outgoing)} shipments")
        return holdings

    # ------------------------------------------------------------ fakes and scans

    async def _inject_and_scan(self, session: aiohttp.ClientSession, keys: dict[str, Any],
                               lots: list[dict[str, Any]], holdings: dict[str, list[tuple[dict[str, Any], str]]]
                               ) -> None:
        staff, pharmacies = keys["staff"], keys["pharmacies"]
        rep = self.report
        normal = holdings
        recalled_lot = lots[0]  # the others stay genuine
        # Dispense some packs (the clones' originals), round robin over pharmacies.
        dispensed: list[tuple[dict[str, Any], str, str]] = []
        for i in range(self.dispense_n):
            p = pharmacies[i % len(pharmacies)]
            candidates = [x for x in normal[p] if x[0] is not recalled_lot]
            lot, serial = candidates[i // len(pharmacies)]
            dispensed.append((lot, serial, p))
        await self._gather([self._must(self._client(session, p, staff[p]), b.Dispense(lot["gtin"], serial))
                            for lot, serial, p in dispensed])
        gone = {(lot["lot"], s) for lot, s, _ in dispensed}
        # Recall one whole lot; the other lots stay genuine.
        recall = await self._must(keys["reg"], b.Recall(recalled_lot["gtin"], recalled_lot["lot"],
                                                        "experiment: recall"))
        await wait_height(session, list(self.net.apis.values()), int(recall["height"]))  # scans go to every node
        before = await _last_alert(keys["reg"])
        scans: list[tuple[str, str, Any, dict[str, Any]]] = []  # (kind, org, code, expect)
        active = [(p, lot, s) for p, held in normal.items() for lot, s in held
                  if lot is not recalled_lot and (lot["lot"], s) not in gone]
        for i, (p, lot, s) in enumerate(active):
            scans.append(("genuine", p, code_forms(lot["gtin"], s, lot["lot"], lot["expiry"], i), {}))
        pick = self.rng.sample(active, min(len(active), 2 * self.fakes))
        for i in range(self.fakes):
            lot = lots[0]
            p = pharmacies[i % len(pharmacies)]
            serial = f"FAKE{self.rng.getrandbits(48):012X}"
            scans.append(("unknown", p, code_forms(lot["gtin"], serial, lot["lot"], lot["expiry"], i), {}))
            dl, ds, _ = dispensed[i % len(dispensed)]
            scans.append(("clone", pharmacies[(i + 1) % len(pharmacies)],
                          code_forms(dl["gtin"], ds, dl["lot"], dl["expiry"], i), {}))
            _, wl, ws = pick[i]
            scans.append(("wrong_lot", p, code_forms(wl["gtin"], ws, "BOGUS" + wl["lot"][-4:], wl["expiry"], i), {}))
            _, el, es = pick[self.fakes + i] if len(pick) > self.fakes + i else pick[i]
            wrong_exp = el["expiry"][:4] + ("01" if el["expiry"][4:] != "01" else "02")
            scans.append(("wrong_expiry", p, code_forms(el["gtin"], es, el["lot"], wrong_exp, i), {}))
            rs = recalled_lot["serials"][i % len(recalled_lot["serials"])]
            scans.append(("recalled", p, code_forms(recalled_lot["gtin"], rs, recalled_lot["lot"],
                                                    recalled_lot["expiry"], i), {}))
        results = await self._gather([self._scan(session, kind, org, code) for kind, org, code, _ in scans])
        for kind, org, code, verdict in results:
            self._judge(kind, org, code, verdict)
        await self._expired(session, keys, lots[0]["gtin"])
        # Diversion: another pharmacy tries to dispense packs it does not hold.
        diverted = []
        for i in range(self.fakes):
            holder, lot, serial = active[(i * 7919) % len(active)]
            thief = next(p for p in pharmacies if p != holder)
            diverted.append((thief, lot, serial))
        outcomes = await self._gather([self._client(session, thief, staff[thief]).submit(
            b.Dispense(lot["gtin"], serial)) for thief, lot, serial in diverted])
        for (thief, _lot, serial), result in zip(diverted, outcomes, strict=True):
            self._refused("diverted", result, "not-custodian", {"by": thief, "serial": serial})
        rep.alerts_expected = sum(rep.injected[k] for k in FAKES)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rep.alerts_recorded = len(await alerts_after(keys["reg"], before))
            if rep.alerts_recorded >= rep.alerts_expected:
                break
            await asyncio.sleep(0.3)

    async def _expired(self, session: aiohttp.ClientSession, keys: dict[str, Any], gtin: str) -> None:
        """Lots whose expiry is before the day of the chain's latest block: the validators must refuse each."""
        maker = keys["maker"]
        client = self._client(session, maker, keys["staff"][maker])
        height = int((await client.call("GET", "/status"))["height"])
        block = await client.call("GET", f"/blocks/{height}")
        ledger_day = dt.datetime.fromtimestamp(block["header"]["timestamp_ms"] / 1000, dt.UTC).date()
        expiry = _yymmdd(ledger_day - dt.timedelta(days=1))
        attempts = [b.Commission(gtin, f"X{self.run_id[-6:]}EXP{i:03d}", expiry,
                                 (f"E{self.rng.getrandbits(40):010X}",)) for i in range(self.fakes)]
        outcomes = await self._gather([client.submit(body) for body in attempts])
        for body, result in zip(attempts, outcomes, strict=True):
            self._refused("expired", result, "expired", {"lot": body.lot, "expiry": body.expiry})

    def _refused(self, kind: str, result: TxStatus, code: str, what: dict[str, Any]) -> None:
        """Count an attempt the ledger's rules must reject with ``code``."""
        rep = self.report
        rep.injected[kind] += 1
        if result.get("status") == "rejected" and result.get("code") == code:
            rep.detected[kind] += 1
        else:
            rep.missed.append({"kind": kind, **what, "result": result})

    async def _sequential_latency(self, session: aiohttp.ClientSession, keys: dict[str, Any],
                                  holdings: dict[str, list[tuple[dict[str, Any], str]]]) -> None:
        """One client, one request at a time, on an idle cluster: the verify latency a counter sees."""
        pharmacy = keys["pharmacies"][0]
        held = holdings[pharmacy]
        picks = [held[self.rng.randrange(len(held))] for _ in range(self.latency_samples)]
        client = self._client(session, pharmacy, None)
        for proofs in (True, False):
            name = "with_proofs" if proofs else "no_proofs"
            times = self.report.sequential_ms.setdefault(name, [])
            for i, (lot, serial) in enumerate(picks):
                start = time.perf_counter()
                await client.verify(code_forms(lot["gtin"], serial, lot["lot"], lot["expiry"], i), "latency",
                                    proofs=proofs)
                times.append((time.perf_counter() - start) * 1000)
        self.progress(
            f"sequential verify: {_latency(self.report.sequential_ms['with_proofs'], (50, 95, 99))} with proofs"
        )

    async def _scan(self, session: aiohttp.ClientSession, kind: str, org: str, code: str
                    ) -> tuple[str, str, str, Verification]:
        """One scan, judged at the node's own time (no ``at_ms``)."""
        client = self._client(session, org, None)
        start = time.perf_counter()
        verdict = await client.verify(code, f"experiment/{org}", proofs=False)
        if kind == "genuine":
            self.report.verify_ms.append((time.perf_counter() - start) * 1000)
        return kind, org, code, verdict

    def _judge(self, kind: str, org: str, code: str, v: dict[str, Any]) -> None:
        rep = self.report
        if kind == "genuine":
            rep.genuine_scanned += 1
            if not v["verified"] or v["status"] != "active" or v["alert"]:
                rep.genuine_flagged.append({"code": code, "at": org, "verdict": {k: v[k] for k in (
                    "verified", "status", "verificationFailureReason", "additionalInfo")}})
            return
        expect = {
            "unknown": ("unknown", "No_match_GTIN_Serial", None, True),
            "clone": ("dispensed", "Not_for_re-distribution", "AlreadyDispensed", True),
            "wrong_lot": ("unknown", "No_match_GTIN_Serial_Lot", "Suspect", True),
            "wrong_expiry": ("unknown", "No_match_GTIN_Serial_Expiry", "Suspect", True),
            "recalled": ("recalled", "No_reason_provided", "Recalled", False),
        }[kind]
        rep.injected[kind] += 1
        got = (v["status"], v["verificationFailureReason"], v["additionalInfo"], v["alert"] is not None)
        if not v["verified"] and got == expect:
            rep.detected[kind] += 1
        else:
            rep.missed.append({"kind": kind, "code": code, "got": got, "expected": expect})


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"counterfeit experiment on {s['packs']:,} packs: {'PASS' if s['ok'] else 'FAIL'}"]
    titles = {"fakes": "fakes (counterfeit codes)", "unsellable": "genuine but unsellable",
              "diversions": "diversions (genuine packs, wrong hands)"}
    for cls, title in titles.items():
        kinds = s[cls]
        lines.append(f"  {title}: {sum(c['detected'] for c in kinds.values())} of "
                     f"{sum(c['injected'] for c in kinds.values())} caught")
        for kind, c in kinds.items():
            lines.append(f"    {kind:<14}{c['detected']:>6} / {c['injected']:<6} {c['detected_by']}")
    lines.append(f"  genuine packs scanned: {s['genuine']['scanned']:,}, wrongly flagged: {s['genuine']['flagged']}")
    lines.append(f"  alerts on the ledger: {s['alerts']['recorded']} "
                 f"(expected {s['alerts']['expected']}, one per fake)")
    v = s["verify_ms"]
    lines.append(f"  verify latency (genuine scans, concurrent, no proofs): p50 {v['p50']} ms, p99 {v['p99']} ms")
    lines.append("  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in s["phases_s"].items()))
    for name, p in s["sequential_verify_ms"].items():
        lines.append(f"  sequential verify ({name.replace('_', ' ')}, one client, {p['count']} scans, chain height "
                     f"{s['chain_height']}): p50 {p['p50']} ms, p95 {p['p95']} ms, p99 {p['p99']} ms")
    for item in s["missed"]:
        lines.append(f"  MISSED: {item}")
    for item in s["flagged"]:
        lines.append(f"  FLAGGED: {item}")
    return "\n".join(lines)


async def _last_alert(client: LedgerClient) -> int | None:
    """The sequence number of the newest alert on the ledger, or None when there is none."""
    alerts = await alerts_after(client, None)
    return alerts[-1]["seq"] if alerts else None


async def alerts_after(client: LedgerClient, after: int | None) -> list[AlertDocument]:
    """Every alert after sequence number ``after`` (all when None), page by page."""
    found: list[AlertDocument] = []
    while True:
        query = f"/alerts?limit={ALERT_PAGE}" + (f"&after={after}" if after is not None else "")
        page: list[AlertDocument] = await client.call("GET", query)
        found.extend(page)
        if len(page) < ALERT_PAGE:
            return found
        after = page[-1]["seq"]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big a run is: packs commissioned, fakes of each kind, packs dispensed before the scans."""

    packs: int = 2000
    fakes: int = 10
    dispense: int = 100
    seed: int = 7
    concurrency: int = 16
    latency: int = 0  # sequential scans timed afterwards, with and without proofs

    def check(self) -> None:
        if self.packs < MIN_PACKS:
            raise UsageError(
                f"--packs must be at least {MIN_PACKS} (four lots, one of them recalled), got {self.packs}"
            )
        if self.fakes < 1:
            raise UsageError(f"--fakes must be at least 1, got {self.fakes}")
        if self.dispense < self.fakes:
            raise UsageError(f"--dispense must be at least --fakes ({self.fakes}): each clone copies a dispensed pack, "
                             f"got {self.dispense}")
        if self.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.latency < 0:
            raise UsageError(f"--latency must be 0 or more, got {self.latency}")


def run_on(root: Path, sizes: Sizes, say: Callable[[str], None]) -> dict[str, Any]:
    """The experiment on the running consortium cluster in ``root``: its summary."""
    sizes.check()
    exp = Experiment(Network.load(root), sizes.packs, sizes.seed, sizes.fakes, sizes.dispense, sizes.concurrency,
                     progress=say, latency_samples=sizes.latency)
    return asyncio.run(exp.run()).summary()


def run_fresh(sizes: Sizes, say: Callable[[str], None], keep: bool = False, base_port: int | None = None
              ) -> dict[str, Any]:
    """The experiment on a fresh consortium-4 cluster in a temporary folder; the cluster is always stopped.

    The folder is removed afterwards unless ``keep`` or the run failed (its node
    logs are kept and the error names the folder).
    """
    sizes.check()
    root = Path(tempfile.mkdtemp(prefix="medchain-counterfeit-"))
    raise_interrupt_on_sigterm()
    try:
        with fresh_consortium(root, say, "medchain-counterfeit", base_port):
            summary = run_on(root, sizes, say)
    except (UsageError, OSError) as exc:
        keep = True
        raise UsageError(f"{exc} (network and node logs kept in {root})") from exc
    finally:
        if keep:
            say(f"network and node logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return summary
