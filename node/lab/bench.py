"""Benchmark a local cluster under pre-signed load: one run, as a plan says, and what it measured.

    medchain bench [--nodes N | --consortium FILE | --target DIR] [--workload anchor|mix|both]
                   [--rate R | --closed-loop --in-flight C] [--duration S] [--sweep-nodes 4,7,10,16]
                   [--find-max [--p99-bound S]] [--submit single|batch] [--out DIR] [--json]

(``medchain bench cluster`` and ``scripts/bench`` run the same command; the
options are read in ``node.lab.bench_options``, the runs chosen in
``node.lab.bench_runner``, the sweep and the search for the highest
sustainable rate live in ``node.lab.bench_sweep`` and
``node.lab.bench_find_max``, the clusters in ``node.lab.bench_network``.)

Rules of the measurement, so that the figures mean something:

* each run starts a fresh cluster (``node.lab.testnet`` + ``node.lab.cluster``) in a
  temporary folder or under ``--dir``, on loopback ports only, and stops it at
  the end, also on Ctrl-C, SIGTERM and errors (``node.lab.fresh_cluster``);
  with ``--target DIR`` it drives a cluster already running there instead,
  and leaves it running;
* every transaction is signed, encoded and wrapped in its HTTP request before
  the clock starts (in a process pool, over several client keys); the load is
  sent by a small HTTP/1.1 keep-alive client (an asyncio protocol, many
  connections per node, round-robin over the four APIs), so that little of the
  machine goes to the client, and its CPU is reported; one transaction per
  ``POST /txs`` by default, or with ``--submit batch`` up to ``--batch-size``
  per ``POST /txs/batch`` (``node.lab.bench_batch``), and the report says which;
* ``rate`` is an open loop: transaction ``i`` is due at ``start + i / R``
  whether or not earlier ones were answered; ``closed`` keeps ``C``
  transactions submitted but not yet committed, and offers a new one as each
  commits;
* a 503 (mempool full) is counted and the same transaction is offered again
  after its ``Retry-After``;
* a transaction's commit time is the arrival, in this process, of the
  ``commit`` event (SSE ``/events`` of node0) for the block that holds it; the
  block's tx ids come from ``GET /blocks/{h}``, fetched as the events arrive.
  Latency runs to that arrival from the moment the transaction was submitted:
  in ``rate`` mode the moment it was due (``start + i / R``), so a wait for a
  free connection to a slow node counts, as it would for a real client (no
  coordinated omission); in ``closed`` mode the first write of its request.
  All times are ``time.monotonic`` in this one process;
* throughput counts commits inside the steady window, which leaves out the
  warm-up and the drain by the rule of ``node.lab.bench_window`` (the report
  gives the window, the rule, and how long warm-up and drain were); every
  transaction submitted in the window enters the latency figures, and one
  that never committed is counted as a failure beside them, never left out;
* CPU is user+sys of each process (``psutil``, see ``node.lab.usage``) over the
  load period, as % of one core, for each node and for this client; whatever
  else the machine spent is shown as "other processes", since a busy neighbour
  lowers every figure; memory is the resident set (and its peak);
* commit latency percentiles (p50, p90, p99, p99.9, max) come from an HDR
  histogram (``node.lab.bench_hdr``), over the committed transactions and
  again with each failure at the latency it had reached when the bench
  stopped watching; send delays interpolate between the nearest ranks
  (``node.lab.percentiles``);
* around each run every node's ``/metrics`` and data directory are read
  (``node.lab.bench_readings``): bytes on the wire and on disk per committed
  transaction, view changes, rejections by code;
* the verification ceiling is measured in the same run, before the first
  cluster starts: ``VerifyKey.verify`` (PyNaCl, ``primitives.signing``) on the
  benchmark's own transactions, on one core (see ``Ceiling``).  Every
  validator must verify every client signature once and the validators share
  the machine, so ``cores * verify/s / validators`` bounds committed tx/s;
  each run is set against the ceiling of its own number of validators (a
  sweep over n has one ceiling per n);
* every loop is bounded in time (load period, drain, readiness) or count
  (retries, reconnects, pre-signed transactions);
* ``--workload mixed`` or ``both`` (and ``--profile mix``) run on a consortium
  cluster (configs/consortium-4.toml, or ``--consortium FILE``) instead: the healthcare mix of
  ``node.lab.bench_mix`` (drug events and EHR operations) is set up first
  (licences, staff, patients, records, packs placed along the chain; not
  measured), then ``both`` measures the anchor load, the mix, and the anchor
  load again (A-B-A), so that both run against the same chain and store and a
  drift over the run falls on neither: the ratio divides the mix's rate by
  the mean of the two anchor rates; before each run the bench waits
  (up to 90 s) for the nodes to go quiet, so that LevelDB compacting what the
  setup or the previous run wrote is charged to neither; the mix's load is
  pre-signed like the anchors, and
  every transaction of it is valid in any commit order, so the rejections
  reported (per kind, from node0's ``/metrics``) should be zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import ipaddress
import json
import math
import os
import platform
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from node.client.http import ApiFailure, NodeClient
from node.client.sse import SseComment
from node.healthcare.transactions import Anchor, make_transaction, parse_transaction
from node.lab import bench_mix, bench_readings
from node.lab import cluster as clusters
from node.lab.bench_batch import batch_request, item_statuses
from node.lab.bench_hdr import latency_report
from node.lab.bench_network import NetworkSpec, Site, open_site, started
from node.lab.bench_window import outcomes, steady_window, timeline
from node.lab.fresh_cluster import wait_ready
from node.lab.percentiles import percentiles
from node.lab.progress import Progress
from node.lab.usage import Samples, cpu_percent, settle
from node.transaction import DOMAIN_TX, tx_id
from primitives.errors import UsageError
from primitives.hashing import sha256
from primitives.signing import SigningKey, VerifyKey

VALIDATORS = 4  # the default cluster
SIGN_CHUNK = 2_000
MAX_TXS = 1_000_000  # with their requests and ids about 0.8 GB of this process's memory (200-byte anchors)
MIX_TX_S_BOUND = 2_500  # sizing the mix's pre-signed load (see _mixed_count)
TICK_S = 0.002
MAX_RECONNECTS = 200
VERIFY_ROUNDS = 8
LATENCY_POINTS = (50, 90, 99)
MIX_GOAL = 0.70  # the mixed workload keeps at least this share of the anchor-only throughput


class BenchError(UsageError):
    """The benchmark cannot go on: the message says what went wrong."""


# ---------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RunPlan:
    name: str
    mode: str  # "rate" or "closed"
    seconds: float
    rate: float = 0.0
    concurrency: int = 0
    txs: int = 0  # pre-signed transactions; 0 = derived from the plan
    connections: int = 128  # per node
    drain_s: float = 20.0
    submit: str = "single"  # "single": one POST /txs per transaction; "batch": POST /txs/batch
    batch_size: int = 0  # with "batch": at most this many transactions per request
    batch_wait_ms: float = 0.0  # with "batch": a due transaction waits up to this long for others to share its request

    def describe(self) -> str:
        how = f", in batches of up to {self.batch_size}" if self.submit == "batch" else ", one per request"
        if self.submit == "batch" and self.batch_wait_ms:
            how += f" gathered for up to {self.batch_wait_ms:g} ms"
        if self.mode == "rate":
            return f"open loop, {self.rate:g} tx/s offered for {self.seconds:g} s{how}"
        return f"closed loop, {self.concurrency} uncommitted tx in flight for {self.seconds:g} s{how}"

    def presign_count(self) -> int:
        if self.txs:
            return self.txs
        if self.mode == "rate":
            return math.ceil(self.rate * self.seconds) + 8
        return min(MAX_TXS, self.concurrency + int(self.seconds * 3_000))


PROFILES: dict[str, list[RunPlan]] = {
    "quick": [RunPlan("quick", "rate", seconds=6, rate=300)],
    "issue": [
        RunPlan("rate-500", "rate", seconds=20, rate=500),
        RunPlan("max-closed", "closed", seconds=30, concurrency=4_000),
    ],
    # Both workloads over the same window with the same number in flight, so that their rates compare.
    "mix": [RunPlan("closed", "closed", seconds=30, concurrency=2_000)],
}
PROFILE_WORKLOADS = {"mix": "both"}  # a profile's workload unless --workload says otherwise


# ---------------------------------------------------------------- pre-signing


@dataclass(frozen=True, slots=True)
class Load:
    """Pre-signed transactions, their ids (hex) and, per node, the full HTTP requests."""

    txs: list[bytes]
    ids: dict[str, int]
    requests: list[bytes]


def _sign_chunk(seeds: list[bytes], chain_id: str, tag: str, start: int, count: int, nonce: bytes) -> list[bytes]:
    keys = [SigningKey(s) for s in seeds]
    now_ms = int(time.time() * 1000)
    out = []
    for i in range(start, start + count):
        label = f"bench {tag} #{i}"
        anchor = Anchor(sha256(label.encode() + nonce), label)
        out.append(make_transaction(keys[i % len(keys)], chain_id, anchor, now_ms))
    return out


def presign(seeds: list[bytes], chain_id: str, tag: str, count: int, workers: int, nonce: bytes = b"") -> list[bytes]:
    """Anchors labelled ``bench <tag> #i``; a ``nonce`` makes their document hashes new on a chain that has
    seen the same labels (a target cluster benched before)."""
    starts = range(0, count, SIGN_CHUNK)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_sign_chunk, seeds, chain_id, tag, s, min(SIGN_CHUNK, count - s), nonce)
                   for s in starts]
        return [tx for fut in futures for tx in fut.result()]


def build_load(txs: list[bytes], apis: list[tuple[str, int]]) -> Load:
    """Each transaction's request bytes, built here, once (the Host header names node ``i % len(apis)``;
    nodes ignore it, and the ``Submitter`` sends each to the node with the least outstanding)."""
    requests = []
    for i, tx in enumerate(txs):
        host, port = apis[i % len(apis)]
        head = (
            f"POST /txs HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(tx)}\r\n\r\n"
        )
        requests.append(head.encode() + tx)
    return Load(txs, {tx_id(tx).hex(): i for i, tx in enumerate(txs)}, requests)


# ---------------------------------------------------------------- verification ceiling


@dataclass(frozen=True, slots=True)
class Ceiling:
    """Ed25519 verifications per CPU second on one core, and the cluster ceiling that follows.

    The time is cut into ``VERIFY_ROUNDS`` rounds and the best round counts: other
    work on the machine (or on the host under a VM) can only slow a round down,
    so the fastest one is the closest to what one core can do.  Rates are per
    CPU second of this process, not per wall second, for the same reason.
    """

    verify_per_s: float  # best round
    verify_median_per_s: float
    cpu_share: float  # process CPU / wall over all rounds (1.0 = it had a whole core)
    cores: int
    validators: int
    tx_per_s: float
    payload_bytes: int

    @staticmethod
    def measure(txs: Sequence[bytes], seconds: float, cores: int, validators: int = VALIDATORS) -> Ceiling:
        sample = [parse_transaction(t) for t in txs[:256]]
        work = [(VerifyKey(t.signer), t.chain_id, t.signing_payload(), t.signature) for t in sample]
        for key, chain, payload, sig in work[:8]:  # warm-up
            key.verify(DOMAIN_TX, chain, payload, sig)
        rates, cpu_total, start = [], 0.0, time.perf_counter()
        for _ in range(VERIFY_ROUNDS):
            count, cpu = _verify_round(work, seconds / VERIFY_ROUNDS)
            rates.append(count / max(cpu, 1e-9))
            cpu_total += cpu
        best, median = max(rates), sorted(rates)[len(rates) // 2]
        return Ceiling(
            best,
            median,
            cpu_total / (time.perf_counter() - start),
            cores,
            validators,
            cores * best / validators,
            len(sample[0].signing_payload()),
        )


def _verify_round(work: Sequence[tuple[VerifyKey, str, bytes, bytes]], seconds: float) -> tuple[int, float]:
    """Verify for about ``seconds`` of wall time; return (verifications, CPU seconds used)."""
    done, cpu0 = 0, time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for key, chain, payload, sig in work:
            if not key.verify(DOMAIN_TX, chain, payload, sig):
                raise BenchError("a pre-signed transaction failed verification: the signer is broken")
        done += len(work)
    return done, time.process_time() - cpu0


# ---------------------------------------------------------------- the HTTP client (fast path)


class _Conn(asyncio.Protocol):
    """One keep-alive connection to a node's API; one request at a time on it.

    The load bypasses ``node.client``: its per-request cost would load the machine it measures.
    """

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.current: int | None = None
        self.batch: list[int] = []  # with --submit batch: the transactions of the request in flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.lane.on_ready(self)

    def send(self, index: int) -> None:
        assert self.transport is not None
        self.current = index
        self.lane.shared.note_sent(index)
        self.transport.write(self.lane.shared.load.requests[index])

    def send_batch(self, indices: list[int]) -> None:
        assert self.transport is not None
        self.batch = indices
        shared = self.lane.shared
        for index in indices:
            shared.note_sent(index)
        self.transport.write(batch_request(self.lane.host, self.lane.port, [shared.load.txs[i] for i in indices]))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                status, length, retry_after = _parse_head(bytes(self.buf[:end]))
            except (ValueError, IndexError, BenchError) as exc:
                self.lane.shared.broken = f"unreadable HTTP answer from {self.lane.host}:{self.lane.port}: {exc}"
                assert self.transport is not None
                self.transport.abort()
                return
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4 : total]) if self.batch else b""
            del self.buf[:total]
            if self.batch:
                batch, self.batch = self.batch, []
                self.lane.on_batch_response(self, batch, status, retry_after, body)
                continue
            index, self.current = self.current, None
            if index is not None:
                self.lane.on_response(self, index, status, retry_after)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lane.on_lost(self)


def _parse_head(head: bytes) -> tuple[int, int, float]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, retry_after = 0, 1.0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"retry-after":
            retry_after = float(value)
        elif key == b"transfer-encoding":
            raise BenchError("the node answered with a chunked body, which this client does not read")
    return status, length, retry_after


class Lane:
    """The connections to one node and the transactions waiting for a free one."""

    def __init__(self, shared: Submitter, host: str, port: int, connections: int) -> None:
        self.shared = shared
        self.host = host
        self.port = port
        self.wanted = connections
        self.conns: set[_Conn] = set()
        self.idle: list[_Conn] = []
        self.pending: deque[int] = deque()
        self.outstanding = 0  # offered here and not answered yet (waiting, or in a request)
        self.reconnects = 0
        self._opening: set[asyncio.Task[None]] = set()
        self._flush_scheduled = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.create_connection(lambda: _Conn(self), self.host, self.port) for _ in range(self.wanted))
        )

    def offer(self, index: int) -> None:
        self.outstanding += 1
        if self.shared.batch_size:
            self.pending.append(index)  # sent in the next flush, with everything offered before it
            if not self._flush_scheduled:
                self._flush_scheduled = True
                # A gateway's way: what comes due within the wait shares one request (its latency counts from due).
                asyncio.get_running_loop().call_later(self.shared.batch_wait_s, self._flush)
        elif self.idle:
            self.idle.pop().send(index)
        else:
            self.pending.append(index)

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self.pending and self.idle:
            self._next(self.idle.pop())

    def on_ready(self, conn: _Conn) -> None:
        self.conns.add(conn)
        self._next(conn)

    def on_response(self, conn: _Conn, index: int, status: int, retry_after: float) -> None:
        self.outstanding -= 1
        self.shared.on_response(index, status, retry_after)
        self._next(conn)

    def on_batch_response(self, conn: _Conn, indices: list[int], status: int, retry_after: float, body: bytes) -> None:
        try:
            statuses = item_statuses(status, body, len(indices))
        except (ValueError, KeyError, TypeError) as exc:
            self.shared.broken = f"unreadable batch answer from {self.host}:{self.port}: {exc}"
            assert conn.transport is not None
            conn.transport.abort()
            return
        self.outstanding -= len(indices)
        for index, answer in zip(indices, statuses, strict=True):
            self.shared.on_response(index, answer, retry_after)
        self._next(conn)

    def _next(self, conn: _Conn) -> None:
        size = self.shared.batch_size
        if self.pending and size:
            conn.send_batch([self.pending.popleft() for _ in range(min(size, len(self.pending)))])
        elif self.pending:
            conn.send(self.pending.popleft())
        else:
            self.idle.append(conn)

    def on_lost(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if conn.current is not None:
            self.pending.appendleft(conn.current)
        self.pending.extendleft(reversed(conn.batch))
        if self.shared.closing or self.shared.broken or self.reconnects >= MAX_RECONNECTS:
            return
        self.reconnects += 1
        task = asyncio.get_running_loop().create_task(self._reopen())
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _reopen(self) -> None:
        with contextlib.suppress(OSError):
            await asyncio.get_running_loop().create_connection(lambda: _Conn(self), self.host, self.port)

    def close(self) -> None:
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()


def _outstanding(lane: Lane) -> int:
    return lane.outstanding


class Submitter:
    """Offers transactions to the lanes, retries 503s after Retry-After, counts answers.

    ``batch_size`` 0 sends one transaction per ``POST /txs``; more sends up to
    that many per ``POST /txs/batch`` (``node.lab.bench_batch``).
    """

    def __init__(
        self, load: Load, apis: list[tuple[str, int]], connections: int, batch_size: int = 0, batch_wait_s: float = 0.0
    ) -> None:
        self.load = load
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.lanes = [Lane(self, host, port, connections) for host, port in apis]
        n = len(load.txs)
        self.first_sent = array("d", bytes(8 * n))
        self.due = array("d", bytes(8 * n))
        self.offered = 0
        self.accepted = 0
        self.busy = 0  # 503 answers
        self.failed: Counter[int] = Counter()  # other non-2xx answers, by status
        self.on_failure: Callable[[int], None] = lambda index: None
        self.closing = False
        self.broken = ""  # set when a node's answer cannot be read: the run stops with this reason
        self._retries: list[tuple[float, int]] = []

    async def open(self) -> None:
        await asyncio.gather(*(lane.open() for lane in self.lanes))

    def offer(self, index: int, due: float) -> None:
        self.due[index] = due
        self.offered += 1
        self._lane().offer(index)

    def _lane(self) -> Lane:
        """The node with the fewest transactions offered and not answered (the first of equals, so an even
        load goes round in turn).  A node that stops answering (paused, overloaded) keeps what it holds and
        is offered no more, as a gateway's least-outstanding balancing would: sent in turn, a closed loop's
        every slot ended up waiting on a stopped node and the others committed nothing."""
        return min(self.lanes, key=_outstanding)

    def note_sent(self, index: int) -> None:
        if not self.first_sent[index]:
            self.first_sent[index] = time.monotonic()

    def on_response(self, index: int, status: int, retry_after: float) -> None:
        if status in (200, 202):
            self.accepted += 1
        elif status == 503:
            self.busy += 1
            heapq.heappush(self._retries, (time.monotonic() + retry_after, index))
        else:
            self.failed[status] += 1
            self.on_failure(index)

    def retry_due(self, now: float) -> None:
        while self._retries and self._retries[0][0] <= now:
            _, index = heapq.heappop(self._retries)
            self._lane().offer(index)

    def client_backlog(self) -> int:
        return sum(len(lane.pending) for lane in self.lanes)

    def close(self) -> None:
        self.closing = True
        for lane in self.lanes:
            lane.close()


# ---------------------------------------------------------------- commit watching


@dataclass(slots=True)
class BlockSeen:
    height: int
    arrived: float
    txs: int
    ours: int
    rejected: int
    view: int


class CommitWatcher:
    """Follows one node's commit events; resolves each block's transactions to their commit time."""

    def __init__(self, session: aiohttp.ClientSession, api: str, load: Load) -> None:
        self.node = NodeClient(api, session, timeout=10)
        self.api = api
        self.load = load
        self.committed_at = array("d", bytes(8 * len(load.txs)))
        self.resolved = 0
        self.blocks: list[BlockSeen] = []
        self.gaps = 0
        self.on_commit: Callable[[int], None] = lambda count: None
        self.ready = asyncio.Event()
        self._queue: asyncio.Queue[tuple[int, float, dict[str, Any]]] = asyncio.Queue()
        self._last_height: int | None = None

    async def follow(self) -> None:
        """Read the event stream until the run cancels this task (or the node ends the stream: an error)."""
        try:
            async for item in self.node.events("/events", connect_timeout=5, read_timeout=40):
                if isinstance(item, SseComment):
                    self.ready.set()
                elif item.event == "commit":
                    self._on_event(time.monotonic(), item.json())
        except ApiFailure as exc:
            raise BenchError(f"{self.api}/events answered HTTP {exc.status}") from None

    def _on_event(self, arrived: float, data: dict[str, Any]) -> None:
        height = int(data["height"])
        if self._last_height is not None and height > self._last_height + 1:
            self.gaps += height - self._last_height - 1
            for missing in range(self._last_height + 1, height):  # their commit time is unknown: use this one
                self._queue.put_nowait((missing, arrived, {"rejected": 0, "view": data.get("view", 0)}))
        self._last_height = height if self._last_height is None else max(self._last_height, height)
        self._queue.put_nowait((height, arrived, data))

    async def resolve(self) -> None:
        """Map each announced block to our transactions, in height order, until the run cancels this task."""
        while True:
            height, arrived, data = await self._queue.get()
            ids = await self._block_tx_ids(height)
            ours = 0
            for hex_id in ids:
                index = self.load.ids.get(hex_id)
                if index is not None and not self.committed_at[index]:
                    self.committed_at[index] = arrived
                    ours += 1
            self.resolved += ours
            self.blocks.append(
                BlockSeen(height, arrived, len(ids), ours, int(data.get("rejected", 0)), int(data.get("view", 0)))
            )
            if ours:
                self.on_commit(ours)

    async def _block_tx_ids(self, height: int) -> list[str]:
        for _ in range(20):
            reply = await self.node.send("GET", f"/blocks/{height}")
            if reply.status == 200:
                return [str(t) for t in reply.json()["txs"]]
            await asyncio.sleep(0.05)
        raise BenchError(f"{self.api} announced block {height} but does not serve it")


# ---------------------------------------------------------------- one run


@dataclass(slots=True)
class RunResult:
    name: str
    mode: str
    description: str
    seconds: float
    rate: float
    concurrency: int
    presigned: int
    offered: int
    accepted: int
    committed: int
    not_committed: int
    failed: dict[str, int]
    mempool_full_503: int
    rejected_in_blocks: int
    throughput_tx_s: float
    steady_window_s: float
    blocks_per_s: float
    mean_txs_per_block: float
    max_view: int
    latency_s: dict[str, float]
    send_delay_ms: dict[str, float]  # first write minus the moment it was due (rate) or released (closed)
    cpu_pct: dict[str, float]
    rss_mb: dict[str, float]
    peak_rss_mb: dict[str, float]
    machine_busy_pct: float  # of all cores
    others_cpu_pct: float  # CPU of processes outside this benchmark, % of one core
    node_cpu_ms_per_tx: float  # CPU of all nodes during the load period / transactions committed in it
    ran_out_of_txs: bool
    sse_gaps: int
    reconnects: int
    nodes_alive: bool
    plan: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)  # node.lab.bench_window.SteadyWindow, as given
    failures: dict[str, Any] = field(default_factory=dict)  # submitted in the window and never committed
    latency_with_failures_s: dict[str, float] = field(default_factory=dict)  # failures at the run's end
    latency_curve: list[list[float]] = field(default_factory=list)  # (percentile, seconds), committed only
    latency_hdr: str = ""  # the committed latencies' HdrHistogram, compressed, base64 (microseconds)
    timeline: dict[str, Any] = field(default_factory=dict)  # per second from the load's start
    nodes: dict[str, Any] = field(default_factory=dict)  # node.lab.bench_readings.compare
    share_of_ceiling: float = 0.0
    validators: int = 0  # the run's own ceiling divides by this
    ceiling_tx_s: float = 0.0  # cores x verify/s / validators
    notes: list[str] = field(default_factory=list)


class Run:
    """Offer one plan's load to a running cluster and measure it."""

    def __init__(self, plan: RunPlan, nodes: list[clusters.NodeProcess], load: Load, progress: Progress) -> None:
        self.plan = plan
        self.nodes = nodes
        self.load = load
        self.progress = progress
        self.apis = [_host_port(n.api) for n in nodes]
        self.pids = {n.name: n.pid for n in nodes}
        batched = plan.submit == "batch"
        self.submitter = Submitter(load, self.apis, plan.connections, plan.batch_size if batched else 0,
                                   plan.batch_wait_ms / 1000 if batched else 0.0)
        self.next_index = 0
        self.window_open = True
        self.session: aiohttp.ClientSession | None = None

    async def execute(self) -> RunResult:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session:
            watcher = CommitWatcher(session, self.nodes[0].api, self.load)
            tasks = [asyncio.create_task(watcher.follow()), asyncio.create_task(watcher.resolve())]
            try:
                await _first_done(asyncio.wait_for(watcher.ready.wait(), 10), tasks)
                await self.submitter.open()
                self.session = session
                return await self._measure(watcher, tasks)
            finally:
                self.submitter.close()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _measure(self, watcher: CommitWatcher, tasks: list[asyncio.Task[None]]) -> RunResult:
        plan, session = self.plan, self.session
        assert session is not None
        nodes_before = await bench_readings.read_nodes(session, self.nodes)
        before = Samples.take(self.pids)
        start = time.monotonic()
        end = start + plan.seconds
        if plan.mode == "closed":
            watcher.on_commit = self._release
            self.submitter.on_failure = lambda index: self._release(1)
            self._release(plan.concurrency, start)
        with self.progress.period(f"  {plan.name}", plan.seconds) as report:
            await _first_done(self._offer_until(start, end, report), tasks)
        after = Samples.take(self.pids)
        self.window_open = False
        await _first_done(self._drain(watcher, end + plan.drain_s), tasks)
        observed = time.monotonic()
        nodes = bench_readings.compare(nodes_before, await bench_readings.read_nodes(session, self.nodes),
                                       watcher.resolved)
        result = self._result(watcher, start, end, before, after, observed)
        result.nodes = nodes
        return result

    def _release(self, count: int, now: float | None = None) -> None:
        if not self.window_open:
            return
        due = time.monotonic() if now is None else now
        for _ in range(count):
            if self.next_index >= len(self.load.txs):
                return
            self.submitter.offer(self.next_index, due)
            self.next_index += 1

    async def _offer_until(self, start: float, end: float, report: Callable[[float, str], None]) -> None:
        rate, n = self.plan.rate, len(self.load.txs)
        next_report = start + 1
        while True:
            now = time.monotonic()
            if now >= end:
                return
            if self.plan.mode == "rate":
                due = min(n, int((now - start) * rate) + 1)
                while self.next_index < due:
                    self.submitter.offer(self.next_index, start + self.next_index / rate)
                    self.next_index += 1
            self.submitter.retry_due(now)
            if self.submitter.broken:
                raise BenchError(self.submitter.broken)
            if now >= next_report:
                next_report += 1
                sub = self.submitter
                report(
                    now - start,
                    f"offered {sub.offered:,}  accepted {sub.accepted:,}  503s {sub.busy:,}  "
                    f"client backlog {sub.client_backlog():,}",
                )
            await asyncio.sleep(TICK_S)

    async def _drain(self, watcher: CommitWatcher, deadline: float) -> None:
        """After the load: keep retrying until every offered transaction committed or failed (bounded)."""
        while time.monotonic() < deadline and not self.submitter.broken:
            self.submitter.retry_due(time.monotonic())
            done = watcher.resolved + sum(self.submitter.failed.values())
            if done >= self.submitter.offered:
                return
            await asyncio.sleep(0.02)

    def _result(
        self,
        watcher: CommitWatcher,
        start: float,
        end: float,
        before: Samples,
        after: Samples,
        observed: float | None = None,
    ) -> RunResult:
        """The figures of the load period ``[start, end)``; ``observed``: when watching for commits stopped (now)."""
        plan, sub = self.plan, self.submitter
        observed = time.monotonic() if observed is None else observed
        offered = self.next_index
        submitted, committed, lags = self._per_tx(watcher)
        window = steady_window(committed, start, end)
        w0, w1 = start + window.start_s, start + window.end_s
        got = outcomes(submitted, committed, (w0, w1), observed)
        latency = latency_report(got.latencies, got.censored)
        last = max((t for t in committed if t is not None), default=end)
        in_load = sum(1 for t in committed if t is not None and start <= t < end)
        blocks = [b for b in watcher.blocks if w0 <= b.arrived < w1]
        cpu = cpu_percent(before, after)
        wall = after.wall - before.wall
        busy = after.machine[0] - before.machine[0]
        total = after.machine[1] - before.machine[1]
        return RunResult(
            name=plan.name,
            mode=plan.mode,
            description=plan.describe(),
            seconds=plan.seconds,
            rate=plan.rate,
            concurrency=plan.concurrency,
            presigned=len(self.load.txs),
            offered=offered,
            accepted=sub.accepted,
            committed=watcher.resolved,
            not_committed=offered - watcher.resolved,
            failed={str(k): v for k, v in sorted(sub.failed.items())},
            mempool_full_503=sub.busy,
            rejected_in_blocks=sum(b.rejected for b in watcher.blocks),
            throughput_tx_s=window.tx_per_s,
            steady_window_s=window.seconds,
            blocks_per_s=len(blocks) / window.seconds if window.seconds > 0 else math.nan,
            mean_txs_per_block=sum(b.txs for b in blocks) / len(blocks) if blocks else 0.0,
            max_view=max((b.view for b in watcher.blocks), default=0),
            latency_s=latency.committed_s,
            send_delay_ms=percentiles(lags, LATENCY_POINTS, 1000.0),
            cpu_pct=cpu,
            rss_mb={k: round(v.rss_mb, 1) for k, v in after.procs.items() if v},
            peak_rss_mb={k: round(v.peak_rss_mb, 1) for k, v in after.procs.items() if v},
            machine_busy_pct=_pct(busy / total) if total > 0 else math.nan,
            others_cpu_pct=round(max(0.0, _pct(busy / wall) - sum(cpu.values())), 1),
            node_cpu_ms_per_tx=_node_cpu_ms(before, after, in_load),
            ran_out_of_txs=plan.mode == "closed" and self.next_index >= len(self.load.txs),
            sse_gaps=watcher.gaps,
            reconnects=sum(lane.reconnects for lane in sub.lanes),
            nodes_alive=all(clusters.is_alive(n.pid) for n in self.nodes),
            plan=asdict(plan),
            window={**asdict(window), "seconds": window.seconds, "observed_s": observed - start},
            failures={
                "submitted": latency.submitted,
                "committed": latency.committed,
                "never_committed": latency.failures,
                "share": latency.failure_share,
            },
            latency_with_failures_s=latency.with_failures_s,
            latency_curve=latency.curve,
            latency_hdr=latency.hdr,
            timeline=asdict(timeline(submitted, committed, start, max(end, last))),
        )

    def _per_tx(self, watcher: CommitWatcher) -> tuple[list[float], list[float | None], list[float]]:
        """Per offered transaction: when it was submitted, when it committed (None: never); and the send delays.

        Submitted is the moment it was due in ``rate`` mode (no coordinated omission), its first write in
        ``closed`` mode (its release, if it was never written).
        """
        sub, from_due = self.submitter, self.plan.mode == "rate"
        submitted: list[float] = []
        committed: list[float | None] = []
        delays = []
        for i in range(self.next_index):
            sent, due = sub.first_sent[i], sub.due[i]
            if sent:
                delays.append(sent - due)
            submitted.append(due if from_due or not sent else sent)
            committed.append(watcher.committed_at[i] or None)
        return submitted, committed, delays


def _node_cpu_ms(before: Samples, after: Samples, committed: int) -> float:
    total = 0.0
    for name, first in before.procs.items():
        last = after.procs.get(name)
        if name != "client" and first is not None and last is not None:
            total += last.cpu_s - first.cpu_s
    return round(1000 * total / committed, 3) if committed else math.nan


def _pct(fraction: float) -> float:
    return round(100 * fraction, 1)


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


async def _first_done(main: Any, watchers: list[asyncio.Task[None]]) -> Any:
    """Await ``main``, but fail at once if one of the background ``watchers`` dies."""
    task = asyncio.ensure_future(main)
    done, _ = await asyncio.wait([task, *watchers], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    for w in watchers:
        if w in done:
            exc = w.exception()
            raise BenchError(f"lost the commit stream of node0: {exc or 'it ended'}")
    raise BenchError("unreachable")


# ---------------------------------------------------------------- driving it all


def _loopback_apis(nodes: list[clusters.NodeProcess]) -> list[tuple[str, int]]:
    apis = [_host_port(n.api) for n in nodes]
    for host, port in apis:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise BenchError(
                f"node API {host}:{port} is not on the loopback interface; the benchmark only loads local clusters"
            )
    return apis


def run_plan(plan: RunPlan, site: Site, load_txs: list[bytes], probe: bytes, progress: Progress) -> RunResult:
    with started(site, progress.say) as nodes:
        _loopback_apis(nodes)
        progress.say(f"{plan.name}: cluster of {len(nodes)} nodes running under {site.root}; waiting for it")
        asyncio.run(wait_ready(nodes, probe))
        return measure_plan(plan, nodes, load_txs, progress)


def measure_plan(
    plan: RunPlan, nodes: list[clusters.NodeProcess], load_txs: list[bytes], progress: Progress
) -> RunResult:
    """Offer ``load_txs`` to a running, ready cluster as ``plan`` says, and measure it."""
    load = build_load(load_txs, _loopback_apis(nodes))
    gc.collect()
    gc.freeze()  # the load is long-lived: keep the collector from walking it during the run
    try:
        progress.say(f"{plan.name}: {plan.describe()}")
        return asyncio.run(Run(plan, nodes, load, progress).execute())
    finally:
        gc.unfreeze()


def cores_here() -> int:
    return len(os.sched_getaffinity(0))


def sign_for(site: Site, tag: str, count: int, progress: Progress) -> list[bytes]:
    """``count`` pre-signed anchors for ``site``, their document hashes new to its chain (a target keeps it)."""
    progress.say(f"{tag}: pre-signing {count:,} transactions with {len(site.seeds)} client keys")
    return presign(site.seeds, site.chain_id, tag, count, workers=cores_here(), nonce=os.urandom(8))


def set_against(result: RunResult, ceiling: Ceiling, validators: int) -> None:
    """The run's share of its own ceiling (``cores x verify/s / validators``), and its notes."""
    result.validators = validators
    result.ceiling_tx_s = ceiling.cores * ceiling.verify_per_s / validators
    result.share_of_ceiling = result.throughput_tx_s / result.ceiling_tx_s
    _add_notes(result, ceiling.cores)


def measure_ceiling(txs: Sequence[bytes], seconds: float, validators: int, progress: Progress) -> Ceiling:
    progress.say(f"measuring Ed25519 verify/s on one core for {seconds:g} s")
    return Ceiling.measure(txs, seconds, cores_here(), validators)


def machine_summary() -> dict[str, Any]:
    return {"cores": cores_here(), "python": platform.python_version(), "platform": platform.platform()}


def bench(
    runs_on: list[tuple[RunPlan, NetworkSpec]], base: Path, verify_seconds: float, progress: Progress
) -> dict[str, Any]:
    """Anchors: each plan on its network (a fresh one under ``base``, or the target); the ceiling measured once."""
    runs: list[RunResult] = []
    ceiling: Ceiling | None = None
    for number, (plan, spec) in enumerate(runs_on, 1):
        site = open_site(spec, base / f"run{number}-{plan.name}")
        txs = sign_for(site, plan.name, plan.presign_count() + 1, progress)
        if ceiling is None:
            ceiling = measure_ceiling(txs, verify_seconds, site.validators, progress)
        result = run_plan(plan, site, txs[1:], txs[0], progress)
        set_against(result, ceiling, site.validators)
        runs.append(result)
    assert ceiling is not None
    return {
        "machine": machine_summary(),
        "ceiling": asdict(ceiling),
        "runs": [asdict(r) for r in runs],
        "goals": _goals(runs),
    }


def bench_consortium(
    plans: list[RunPlan], workload: str, spec: NetworkSpec, base: Path, verify_seconds: float, progress: Progress
) -> dict[str, Any]:
    """Per plan, one consortium cluster: the anchor load (``both``), then the healthcare mix on the same cluster."""
    runs: list[RunResult] = []
    mixes: list[dict[str, Any]] = []
    ceiling: Ceiling | None = None
    for number, plan in enumerate(plans, 1):
        site = open_site(spec, base / f"run{number}-{plan.name}")
        if not (site.root / "consortium.json").exists():
            raise BenchError(f"the healthcare mix needs a consortium cluster; {site.root} has no consortium.json")
        count = plan.presign_count() if workload == "both" else 256  # mixed only: anchors for the probe and ceiling
        signed = 2 * count if workload == "both" else count  # both: one anchor run before the mix, one after
        anchors = sign_for(site, plan.name, signed + 1, progress)
        if ceiling is None:
            ceiling = measure_ceiling(anchors, verify_seconds, site.validators, progress)
        anchor_runs: list[RunResult] = []
        anchor_stages = None
        with started(site, progress.say) as nodes:
            progress.say(f"{plan.name}: consortium cluster of {len(nodes)} nodes running under {site.root}")
            asyncio.run(wait_ready(nodes, anchors[0]))
            # The mix's setup first: both workloads then run against the same chain (its size, its
            # LevelDB).  Anchors run before the mix and again after it (A-B-A), so that a drift of the
            # cluster or the machine over the run is not counted against one workload; the ratio is
            # the mix's rate over the mean of the two anchor rates.
            prepared = _prepare_mix(plan, site, nodes, _mixed_count(plan), progress)
            # What the setup left running (LevelDB compacting its writes) must not land in any run.
            settled_s = [settle([n.pid for n in nodes], progress.say)]
            if workload == "both":
                before = bench_mix.read_node(nodes[0].api)
                anchor_runs.append(measure_plan(replace(plan, name=f"anchor-{plan.name}"), nodes,
                                                anchors[1 : count + 1], progress))
                anchor_stages = bench_mix.stage_us_per_tx(before, bench_mix.read_node(nodes[0].api))
                settled_s.append(settle([n.pid for n in nodes], progress.say))  # nor what the anchors left
            mixed, info = _measure_mix(plan, nodes, prepared, progress)
            if workload == "both":
                settled_s.append(settle([n.pid for n in nodes], progress.say))  # nor what the mix left
                anchor_runs.append(measure_plan(replace(plan, name=f"anchor-after-{plan.name}"), nodes,
                                                anchors[count + 1 :], progress))
            del anchors
        runs += [*anchor_runs[:1], mixed, *anchor_runs[1:]]
        for r in (*anchor_runs, mixed):
            set_against(r, ceiling, site.validators)
        info["settled_s"] = [round(s, 1) for s in settled_s]  # the waits before each run
        info["block_cpu_us_per_tx"] = {"anchor": anchor_stages, "mixed": info.pop("mixed_stages")}
        info.update(mix_ratio([r.throughput_tx_s for r in anchor_runs], mixed.throughput_tx_s))
        info["signature_share_of_ceiling"] = mixed.throughput_tx_s * info["signatures_per_tx"] / mixed.ceiling_tx_s
        mixes.append(info)
    assert ceiling is not None
    return {
        "machine": machine_summary(),
        "ceiling": asdict(ceiling),
        "runs": [asdict(r) for r in runs],
        "mixes": mixes,
        "goals": _goals(runs) + _mix_goals(mixes),
    }


def mix_ratio(anchor_rates: list[float], mixed_rate: float) -> dict[str, Any]:
    """The mix's committed rate over the mean of the anchor runs around it (none: no ratio)."""
    mean = sum(anchor_rates) / len(anchor_rates) if anchor_rates else None
    return {
        "anchor_runs_tx_s": list(anchor_rates),
        "anchor_tx_s": mean,
        "ratio": mixed_rate / mean if mean else None,
    }


def _mixed_count(plan: RunPlan) -> int:
    """Enough mixed transactions for the plan without preparing far too many (the setup is costly).

    ``MIX_TX_S_BOUND`` is taken as an upper bound of the mix's committed rate; a
    run that outpaces its pre-signed load says so ("ran out of pre-signed transactions").
    """
    if plan.txs or plan.mode == "rate":
        return plan.presign_count()
    return min(plan.presign_count(), plan.concurrency + math.ceil(plan.seconds * MIX_TX_S_BOUND))


@dataclass
class PreparedMix:
    """The healthcare mix, ready to offer: its pre-signed transactions and how its setup went."""

    txs: list[bytes]
    setup: bench_mix.SetupReport


def _prepare_mix(
    plan: RunPlan, site: Site, nodes: list[clusters.NodeProcess], count: int, progress: Progress
) -> PreparedMix:
    """Set the ledger up for ``count`` mixed transactions and pre-sign them (not measured)."""
    root, chain_id, cores = site.root, site.chain_id, cores_here()
    kinds = {org: str(info["kind"]) for org, info in json.loads((root / "consortium.json").read_text()).items()}
    cast = bench_mix.Cast.from_kinds(kinds)
    mix = bench_mix.plan_mix(cast, count, int(time.time() * 1000), tag=chain_id)
    seeds = {**bench_mix.network_seeds(root), **mix.seeds}
    setup_txs = sum(len(w) for w in mix.setup)
    progress.say(f"mixed: setup of {setup_txs:,} transactions in {len(mix.setup)} waves (not measured)")
    setup = asyncio.run(bench_mix.run_setup([n.api for n in nodes], mix.setup, seeds, chain_id, progress.say))
    progress.say(f"mixed: pre-signing {count:,} transactions, {bench_mix.describe_mix()}")
    txs = bench_mix.presign_steps(seeds, chain_id, int(time.time() * 1000), mix.load, cores)
    return PreparedMix(txs, setup)


def _measure_mix(
    plan: RunPlan, nodes: list[clusters.NodeProcess], prepared: PreparedMix, progress: Progress
) -> tuple[RunResult, dict[str, Any]]:
    """Measure the prepared mix as ``plan`` says; its outcomes per kind come from node0's ``/metrics``."""
    setup = prepared.setup
    before = bench_mix.read_node(nodes[0].api)
    result = measure_plan(replace(plan, name=f"mixed-{plan.name}"), nodes, prepared.txs, progress)
    after = bench_mix.read_node(nodes[0].api)
    info = {
        "run": result.name,
        "mix": bench_mix.describe_mix(),
        "composition": [asdict(share) for share in bench_mix.MIX],
        "signatures_per_tx": bench_mix.signatures_per_tx(),
        "setup": {"txs": setup.txs, "seconds": round(setup.seconds, 1), "by_kind": dict(setup.by_kind)},
        "outcomes": bench_mix.outcome_table(before.outcomes, after.outcomes),
        "mixed_tx_s": result.throughput_tx_s,
        "mixed_stages": bench_mix.stage_us_per_tx(before, after),
    }
    return result, info


def _add_notes(r: RunResult, cores: int) -> None:
    if r.ran_out_of_txs:
        r.notes.append("ran out of pre-signed transactions: raise --txs")
    client_busy = r.cpu_pct.get("client", 0) > 80
    if client_busy:
        r.notes.append("the client used most of a core: it may have limited the load")
    if r.mode == "rate" and r.send_delay_ms["p99"] > 50:
        why = "the client was busy" if client_busy else "every connection to a node was waiting for its answer"
        r.notes.append(
            f"requests left late (send delay p99 {r.send_delay_ms['p99']:.0f} ms): {why}; "
            "latency counts from the due time, so the wait is included"
        )
    if r.mode == "closed" and r.send_delay_ms["p50"] > 50:
        r.notes.append(
            f"half the released transactions waited over {r.send_delay_ms['p50']:.0f} ms for a free "
            "connection: the nodes' APIs answered slower than commits freed the window"
        )
    busy_machine = r.machine_busy_pct >= 95
    if r.mode == "closed" and busy_machine and r.node_cpu_ms_per_tx > 0:
        spare = cores - r.cpu_pct.get("client", 0) / 100
        r.notes.append(
            f"the machine was saturated, so throughput was CPU-bound: at {r.node_cpu_ms_per_tx:.2f} ms of "
            f"node CPU per tx, {cores} cores minus the client's share would commit about "
            f"{1000 * spare / r.node_cpu_ms_per_tx:,.0f} tx/s with no other load (an estimate)"
        )
    if r.others_cpu_pct > 20:
        r.notes.append(
            f"other processes on this machine used {r.others_cpu_pct:.0f} % of a core during the run; "
            "the figures are lower than on an idle machine"
        )
    if r.sse_gaps:
        r.notes.append(f"{r.sse_gaps} commit events were missed; those blocks were timed at the next event")
    if not r.nodes_alive:
        r.notes.append("a node exited during the run; see its node.log")


def _goals(runs: list[RunResult]) -> list[dict[str, Any]]:
    goals = []
    for r in runs:
        if r.mode == "rate" and r.rate >= 500:
            goals.append(
                {
                    "what": f"p99 commit latency < 1 s at {r.rate:g} tx/s",
                    "met": r.latency_s["p99"] < 1,
                    "measured": f"p99 {r.latency_s['p99']:.3f} s",
                }
            )
        if r.name.startswith("max"):
            goals.append(
                {
                    "what": "1,000 committed tx/s sustained",
                    "met": r.throughput_tx_s >= 1000,
                    "measured": f"{r.throughput_tx_s:,.1f} tx/s over {r.steady_window_s:g} s",
                }
            )
    return goals


def _mix_goals(mixes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "what": f"the mixed workload keeps >= {MIX_GOAL:.0%} of the anchor-only throughput on the same cluster",
            "met": m["ratio"] >= MIX_GOAL,
            "measured": f"{m['ratio']:.2f} = {m['mixed_tx_s']:,.1f} / {m['anchor_tx_s']:,.1f} tx/s",
        }
        for m in mixes
        if m["ratio"] is not None
    ]
