"""One full node: the thin driver between the pure replica and the world.

Everything that touches the replica goes through one inbox queue and one task
(``_drive``), so the engine needs no locks.  For each output the driver keeps
the documented order: persist the WAL records (one fdatasync of the WAL file,
run off the event loop), then send, then commit (execute the block, one
synchronous batch with block, certificate, state, tx index and head), then
feed ``Executed`` back.  Observers have no replica: ``_follow`` fetches
certified blocks, checks every certificate against the validators in force at
its height (genesis's, then the ledger's changes: ``node.governance``),
re-executes and compares ``app_hash``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, NoReturn, TypeVar

from consensus.certificates import Verifier, Verifiers
from consensus.config import ChainTip, ReplicaConfig
from consensus.events import (
    CancelTimer,
    CommitBlock,
    Event,
    Executed,
    Output,
    PendingWork,
    Propose,
    Received,
    RequestSync,
    Send,
    ServeSync,
    SetTimer,
    SyncedBlock,
    TimerFired,
    Verdict,
    WalRecord,
)
from consensus.membership import ValidatorChange
from consensus.messages import CONSENSUS_CODEC, Block, CommitCertificate, PrePrepare
from consensus.replica import Replica
from node.app import Application, BlockResult, Prechecked, Rejected
from node.config import NodeConfig
from node.documents import (
    BatchCounts,
    BatchItem,
    BatchReply,
    BlockDocument,
    BlockSummary,
    CommitEvent,
    EvidenceDocument,
    Liveness,
    NetworkDocument,
    NetworkMember,
    NodeStatus,
    ProofDocument,
    ProposalEntry,
    ScheduledChange,
    TxStatus,
    ValidatorEntry,
    ValidatorsDocument,
)
from node.errors import ApiError
from node.genesis import Genesis, Member
from node.governance import (
    PROPOSAL_PREFIX,
    SCHEDULE_KEY,
    Governance,
    Proposal,
    Roster,
    ScheduleRecord,
    engine_changes,
    load_schedule,
)
from node.memory import HeapTrimmer, find_malloc_trim
from node.mempool import GossipBacklog, Mempool, MempoolFull, MempoolLimits, RegossipSchedule, proposal_delay
from node.metrics import NodeMetrics
from node.p2p.byzantine import ByzantineSwitch
from node.p2p.transport import Transport
from node.p2p.wire import (
    NODE_CODEC,
    CertifiedBlock,
    CompactProposal,
    ConsensusFrame,
    HeadAnnounce,
    NodeReport,
    PeerSet,
    SyncRequest,
    SyncResponse,
    TxFetch,
    TxFill,
    TxGossip,
)
from node.proofs import build_proof
from node.proposals import PRE_PREPARE_PREFIX, ProposalAssembler, compact, serve
from node.transaction import tx_id
from node.validation import CertifiedTxs, TxChecker, transactions_problem, validate_block
from primitives.codec import decode, encode, pack, unpack_strict
from primitives.errors import DecodeError
from primitives.hashing import sha256
from primitives.signing import SigningKey, VerifyKey
from storage.blockstore import TxLocation
from storage.chainstore import ChainStore
from storage.chainview import ChainView
from storage.state import StateWrites

log = logging.getLogger("medchain.node")
T = TypeVar("T")

RESULT_PREFIX = b"txr/"  # stores of earlier versions kept each transaction's result as state under this prefix
SYNC_BATCH_BYTES = 4 * 1024 * 1024
SYNC_INTERVAL_S = 1.0
REPORT_TICKS = 8  # a NodeReport to every peer every 8 sync ticks (2 s)
EVIDENCE_LISTED = 1000  # equivocation evidence items /evidence lists
MAX_PROPOSALS_LISTED = 1000  # validator-set proposals /validators lists
PEER_CATCHING_UP_S = 2.0  # a lagging validator whose announced head moved this recently is served only on request
SYNC_AHEAD = 2  # fetched catch-up batches that may wait to be applied before the next is asked for
REGOSSIP_MAX = 4096  # transactions offered again per tick at most
GOSSIP_CHUNK = 1024  # transactions per TxGossip frame
GOSSIP_FLUSH_S = 0.010  # a client's transaction waits this long for others to share its gossip frame
GOSSIP_SLICE = 64  # gossiped transactions checked between two yields to the event loop
ADMIT_SLICE = 64  # transactions of one client batch admitted between two yields
YIELD_TO_DRIVE_S = 0.05  # longest that checking new transactions waits for consensus work to pause
EXECUTE_SLICE_TXS = 64  # transactions executed between two yields to the event loop


def _refused(tid: bytes, code: str, message: str) -> BatchItem:
    return {"tx_id": tid.hex(), "status": "refused", "error": code, "message": message}


def _final_item(found: TxStatus) -> BatchItem:
    """A committed (or rule-rejected) transaction's status as a batch result."""
    return {
        "tx_id": found["tx_id"],
        "status": "committed" if found["status"] == "committed" else "rejected",
        "height": found.get("height", 0),
        "index": found.get("index", 0),
        "code": found.get("code", ""),
        "message": found.get("message", ""),
    }


def _batch_reply(results: list[BatchItem]) -> BatchReply:
    counts: BatchCounts = {"pending": 0, "committed": 0, "rejected": 0, "refused": 0, "timeout": 0}
    for item in results:
        counts[item["status"]] += 1
    return {"count": len(results), "counts": counts, "results": results}


def outcomes(result: BlockResult) -> list[bytes]:
    """Each transaction's result as its tx index entry keeps it (``ChainStore.commit_block``), read by ``tx_status``."""
    return [pack([r.ok, r.code, r.message]) for r in result.results]


def committed_result(store: ChainView, tid: bytes) -> tuple[TxLocation, bool, str, str] | None:
    """Where a committed transaction is and its result (ok, code, message); None if not committed.

    The result is the outcome in its tx index entry; an entry stored by an
    earlier version has none, and its result is state under ``RESULT_PREFIX``
    (absent in the oldest stores: then it reads as accepted).
    """
    found = store.tx_entry(tid)
    if found is None:
        return None
    where, outcome = found
    raw = outcome or store.get(RESULT_PREFIX + tid)
    if not raw:
        return where, True, "ok", ""
    ok, code, message = unpack_strict(raw)
    return where, bool(ok), str(code), str(message)


def _tip_after(block: Block, cert: CommitCertificate, result: BlockResult) -> ChainTip:
    return ChainTip(block.height, block.hash, result.app_hash, block.header.timestamp_ms, cert.view)


STOP_STAGE_WARN_S = 1.0


def slow_stage(what: str, started: float) -> float:
    """Log a stage of stopping that took over ``STOP_STAGE_WARN_S`` (a node is killed if it stops too slowly);
    the time it ended, for the next stage."""
    now = time.monotonic()
    if now - started > STOP_STAGE_WARN_S:
        log.warning("stopping: %s took %.1f s", what, now - started, extra={"event": "slow-stop", "stage": what})
    return now


STOP_STAGE_LIMIT_S = 5.0


def task_stacks() -> str:
    """Every asyncio task of this loop with the stack where it waits: what a stuck stop is waiting for."""
    lines = []
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        lines.append(f"task {task.get_name()} ({task.get_coro()!r}):")
        for frame in task.get_stack(limit=12):
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
    return "\n".join(lines)


async def bounded_stage(what: str, work: Awaitable[Any], limit_s: float = STOP_STAGE_LIMIT_S) -> None:
    """Await one stage of stopping for at most ``limit_s``; past it, log the stage and every task's stack, and go
    on without it (a node stopped by SIGTERM is killed if it takes too long: a bounded stop says where it hung).

    Committed data does not depend on a stage finishing: each block was one synchronous batch.
    """
    started = time.monotonic()
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=limit_s)
    if not done:
        log.warning("stopping: %s did not finish in %.1f s; going on without it\n%s", what, limit_s, task_stacks(),
                    extra={"event": "stop-timeout", "stage": what})
        task.cancel()
        return
    task.result()
    slow_stage(what, started)


def genesis_tip(genesis: Genesis) -> ChainTip:
    return ChainTip(0, genesis.hash, sha256(b"medchain/v1/app-genesis" + genesis.hash), genesis.genesis_time_ms)


class Node:
    def __init__(
        self,
        config: NodeConfig,
        genesis: Genesis,
        key: SigningKey,
        store: ChainStore,
        transport: Transport,
        app_factory: Callable[[Node], Application],
        wall_clock: Callable[[], float] = time.time,
    ):
        self.cfg = config
        # Block timestamps come from the wall clock; timers run on the loop's monotonic clock (see _apply_timer).
        self.wall_clock = wall_clock
        self.clock_skew_ms = 0  # a fault experiment's offset of this node's wall clock (set_clock_skew)
        self._now_anchor = (0, 0.0)
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.key = key
        self.store = store
        self.transport = transport
        self.governance = Governance(genesis)
        self.tip = store.head() or genesis_tip(genesis)
        # Who validates: genesis, then the changes the ledger scheduled (read from state at the tip).
        self.roster = Roster(self.governance, load_schedule(store))
        # The names by position in the set deciding the next height (one list, updated in place: the
        # Byzantine switch holds it), and every node of that set or of one scheduled later.
        self.validator_names = list(self.roster.names_at(self.tip.height + 1))
        self._validator_set: frozenset[str] = frozenset()
        self._consensus_peers: list[str] = []
        self._refresh_consensus_peers()
        self._verifiers = Verifiers(self.chain_id)
        self._change_proofs: dict[int, list[ProofDocument]] = {}  # a change's height -> its proofs
        self._announced_height = -1
        self.index = genesis.validator_index(key.verify_key)
        # A validator node runs a replica from the start, also one that genesis does not list: it follows
        # the chain and votes from the height at which a validator-set change adds it.
        self.is_validator = config.role == "validator"
        self.mempool = Mempool(MempoolLimits(config.mempool.max_txs, config.mempool.max_bytes))
        self.metrics = NodeMetrics()
        self.inbox: asyncio.Queue[Event | Callable[[], Awaitable[None]]] = asyncio.Queue()
        # The last block written to disk: what /status reports.  During catch-up ``tip`` runs one block
        # ahead of it (staged, executing the next while it is written), and a client told a height must
        # be able to read that block.
        self.written_tip = self.tip
        self.replica: Replica | None = None
        if self.is_validator or self._scheduled_to_validate():
            self.replica = Replica.restore(self._replica_config(), self.tip, store.wal_records())
        self.byzantine = ByzantineSwitch(transport, self.validator_names, self.index or 0, key, self.chain_id)
        self.metrics.watch(lambda: dict(self.replica.stats) if self.replica else {}, self._peer_stats)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: dict[bytes, list[asyncio.Future[TxStatus]]] = {}
        self._waits_ended = False  # set at shutdown: no new commit waits from then on
        self._admitted_at: OrderedDict[bytes, float] = OrderedDict()
        self._subscribers: set[asyncio.Queue[CommitEvent | None]] = set()
        self._gossip_out: list[bytes] = []
        self._regossip_plan = RegossipSchedule()
        self._gossip_scheduled = False
        self._gossip_in = GossipBacklog(config.mempool.max_txs)
        self._gossip_ready = asyncio.Event()
        self._heap = HeapTrimmer(find_malloc_trim())
        self._propose_scheduled = False
        self._wake_queued = False  # a PendingWork is in the inbox
        self._proposals = ProposalAssembler()  # compact proposals waiting for transactions
        self._last_batch: tuple[tuple[bytes, ...], tuple[bytes, ...]] = ((), ())  # proposed (txs, ids)
        self._drive_idle = asyncio.Event()  # set while the drive loop waits for its next event
        self._peer_heads: dict[str, int] = {}
        self._peer_sets: dict[str, frozenset[str]] = {}
        self._peer_reports: dict[str, tuple[NodeReport, int]] = {}  # the last report of each peer, and when (ms)
        self._sync_inflight_until = 0.0
        self._sync_queued = 0  # fetched batches waiting in the inbox to be applied
        self._sync_queued_to = 0  # the last height of the newest of them
        self._peer_rose: dict[str, tuple[int, float]] = {}  # a peer's last announced head, and when it moved
        # A synced block executed and staged whose batch a storage thread is writing (``_apply_block``).
        self._storing: tuple[asyncio.Future[None], Block, CommitCertificate, BlockResult] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # The node's own storage threads (blocking LevelDB writes), named for py-spy and thread dumps.
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="medchain-io")
        self._last_commit_at: float | None = None
        self._last_commit_ms: int | None = None  # wall clock, for /network
        self.view_changes_seen = 0
        self.started_at = time.time()
        self.stopping = False
        # The application last: it may read any of the above.
        self.app = app_factory(self)
        self.checker = TxChecker(self.app.precheck)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.transport.on_message = self._on_p2p
        self.transport.on_peer_change = self._on_peer_change
        await self.transport.start()
        self._tasks.append(asyncio.create_task(self._drive(), name="drive"))
        self._tasks.append(asyncio.create_task(self._sync_loop(), name="sync"))
        self._tasks.append(asyncio.create_task(self._gossip_intake(), name="gossip-intake"))
        if self.replica is not None:
            replica = self.replica
            self.inbox.put_nowait(lambda: self._carry_out_and_follow(replica.start(self._now_ms())))
        self._update_gauges()

    @property
    def drive_task(self) -> asyncio.Task[None]:
        """The task feeding the replica (once started): if it ends, the node cannot go on."""
        return next(t for t in self._tasks if t.get_name() == "drive")

    def end_commit_waits(self) -> int:
        """Answer every client waiting for a commit with a 503, so shutdown does not wait on them; how many.

        Their transactions stay in the mempool (and at the peers they were
        gossiped to): each may still commit, which the client can look up.
        """
        self._waits_ended = True
        ended = 0
        for tid, waiters in self._waiters.items():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(ApiError(
                        503, "shutting-down",
                        f"the node is shutting down; transaction {tid.hex()} may still commit: look it up later",
                    ))
                    ended += 1
        self._waiters.clear()
        return ended

    async def stop(self) -> None:
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        await bounded_stage("the node's tasks", asyncio.gather(*self._tasks, return_exceptions=True), 3.0)
        for handle in self._timers.values():
            handle.cancel()
        self.byzantine.stop()
        await bounded_stage("the P2P links", self.transport.stop())
        started = time.monotonic()
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.cancel()
        self._executor.shutdown(wait=True)
        slow_stage("the storage threads", started)

    def _now_ms(self) -> int:
        """The wall time handed to the replica, remembered with the loop's monotonic time of the same moment."""
        now = int(self.wall_clock() * 1000) + self.clock_skew_ms
        self._now_anchor = (now, asyncio.get_running_loop().time())
        return now

    def timer_deadlines(self) -> dict[str, float]:
        """The replica's armed timers: name -> when it fires, on the event loop's (monotonic) clock."""
        return {name: handle.when() for name, handle in self._timers.items()}

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking storage call off the event loop (LevelDB sync writes take ms)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ------------------------------------------------------------ the drive loop

    async def _drive(self) -> None:
        while True:
            if self.inbox.empty():
                self._drive_idle.set()
            item = await self.inbox.get()
            self._drive_idle.clear()
            if isinstance(item, PendingWork):
                self._wake_queued = False
            try:
                if callable(item):
                    await item()
                elif self.replica is not None:
                    await self._feed(item)
            except Exception:  # an invariant broke: stop loudly rather than go on wrong
                log.exception("driver failed; stopping the node")
                raise

    async def _carry_out_and_follow(self, out: Output) -> None:
        for event in await self._carry_out(out):
            await self._feed(event)
        self._maybe_propose()
        self._update_gauges()

    async def _feed(self, event: Event) -> None:
        """Give one event to the replica and carry out everything that follows from it."""
        assert self.replica is not None
        queue: deque[Event] = deque([event])
        while queue:
            out = self.replica.handle(queue.popleft(), self._now_ms())
            queue.extend(await self._carry_out(out))
            if not queue and len(self.mempool) and not self.replica.pending:
                # Work is still waiting after a commit: keep the progress timer armed,
                # so a primary that never proposes it is replaced.
                queue.append(PendingWork())
        self._maybe_propose()
        self._update_gauges()

    async def _carry_out(self, out: Output) -> list[Event]:
        follow: list[Event] = []
        if out.persist:
            await self.offload(self._append_wal, out.persist)
        for send in out.send:
            self._send_consensus(send)
        for commit in out.commit:
            follow.append(await self._commit(commit))
        for request in out.validate:
            reason = validate_block(request.block, self.checker, self._committed_before)
            if reason is not None:
                log.warning(
                    "refusing block %s at height %d: %s", request.block.hash.hex()[:16], request.block.height, reason
                )
            follow.append(Verdict(request.block.hash, reason is None, reason or ""))
        for timer in out.timers:
            self._apply_timer(timer)
        for item in out.sync:
            if isinstance(item, RequestSync):
                peers = [self._engine_peer(p) for p in item.peers] or None
                self._request_blocks(item.from_height, peers)
            elif isinstance(item, ServeSync):
                # The replica serves a validator whose votes are two heights old; one whose announced head
                # is rising is fetching on its own, and a batch pushed to it would only be dropped there.
                peer = self._engine_peer(item.peer)
                if time.monotonic() - self._peer_rose.get(peer, (0, -PEER_CATCHING_UP_S))[1] >= PEER_CATCHING_UP_S:
                    await self._serve_blocks(peer, item.from_height)
        for evidence in out.evidence:
            self.metrics.evidence.inc()
            await self.offload(self.store.add_evidence, evidence)
            log.warning("evidence: validator %d sent conflicting %s messages", evidence.validator, evidence.kind)
        for change in out.view_changes:
            self.metrics.view_changes.inc()
            self.view_changes_seen += 1
            log.info(
                "view change: %d -> %d at height %d, primary %s (%s)",
                change.old_view,
                change.new_view,
                change.height,
                self.roster.name_at(change.height, change.primary),
                change.reason,
                extra={
                    "event": "view-change",
                    "old_view": change.old_view,
                    "new_view": change.new_view,
                    "height": change.height,
                    "primary": self.roster.name_at(change.height, change.primary),
                    "reason": change.reason,
                },
            )
        for cp in out.checkpoints:
            await self.offload(self.store.prune_wal, cp.height)
        return follow

    def _send_consensus(self, send: Send) -> None:
        if self.byzantine.adversary is not None:
            self.byzantine.send(send)
            return
        frame = self._proposal_frame(send.data) or NODE_CODEC.encode(ConsensusFrame(send.data))
        if send.to is None:
            self.transport.broadcast(frame, only=self._consensus_peers)
        else:
            self.transport.send(self._engine_peer(send.to), frame)

    def _proposal_frame(self, data: bytes) -> bytes | None:
        """A PRE-PREPARE's compact frame (``node.proposals``), or None for any other message."""
        if data[:2] != PRE_PREPARE_PREFIX:
            return None
        message = CONSENSUS_CODEC.decode(data)
        if not isinstance(message, PrePrepare):
            return None
        txs, ids = self._last_batch
        known = ids if message.block.txs == txs else None
        return NODE_CODEC.encode(compact(message, known))

    def _apply_timer(self, timer: SetTimer | CancelTimer) -> None:
        old = self._timers.pop(timer.name, None)
        if old is not None:
            old.cancel()
        if isinstance(timer, SetTimer):
            # The deadline is in the replica's time, the wall time of the last handle(): keep its distance from
            # that moment and count it on the monotonic clock, so a step of the wall clock moves no timer.
            wall_ms, mono = self._now_anchor
            when = mono + max(0, timer.deadline_ms - wall_ms) / 1000
            event = TimerFired(timer.name, timer.token)
            self._timers[timer.name] = asyncio.get_running_loop().call_at(when, self.inbox.put_nowait, event)

    # ------------------------------------------------------------ committing

    async def _commit(self, commit: CommitBlock) -> Event:
        block, cert = commit.block, commit.certificate
        # via_sync: the replica verified the certificate and _apply_synced the transactions (CertifiedTxs).
        result, changes = await self._apply_block(block, cert, certified=commit.via_sync, overlap=commit.via_sync)
        if commit.via_sync:
            self.metrics.blocks_synced.inc()
        return Executed(block.height, result.app_hash, changes)

    async def _apply_block(
        self, block: Block, cert: CommitCertificate, certified: bool = False, overlap: bool = False
    ) -> tuple[BlockResult, tuple[ValidatorChange, ...]]:
        """Execute and store ``block``; ``certified`` only when catch-up verified ``cert`` and the transactions.

        ``overlap`` (catch-up): return once the block is executed and staged (``ChainStore.stage``); its
        batch is written on a storage thread while the next block executes, and its commit is finished
        (clients answered, events sent) when that write is done (``_settle_store``).  With the result, the
        validator-set changes the block scheduled (``_adopt_schedule``).
        """
        result = await self._execute(block, CertifiedTxs(self.checker) if certified else self.checker)
        changes = self._adopt_schedule(block.height, result)
        await self._settle_store()  # the block before, written while this one executed
        args = (block, cert, result.writes, result.app_hash, outcomes(result))
        tip = _tip_after(block, cert, result)
        if overlap:
            self.store.stage(block, result.writes)
            self._storing = (asyncio.ensure_future(self.offload(self._store_block, *args)), block, cert, result)
            self._move_tip(tip, changes)
            return result, changes
        await self.offload(self._store_block, *args)
        self._move_tip(tip, changes)
        await self._finish_commit(block, cert, result)
        return result, changes

    def _move_tip(self, tip: ChainTip, changes: tuple[ValidatorChange, ...]) -> None:
        """The tip moved, after a block that scheduled ``changes``: who validates next, and who hears it."""
        self.tip = tip
        names = self.roster.names_at(tip.height + 1)
        switched = names != self.validator_names
        if switched:
            log.info("validators from height %d: %s", tip.height + 1, ", ".join(names),
                     extra={"event": "validator-set", "height": tip.height + 1, "validators": names})
            self.validator_names[:] = names
        if switched or changes:
            self._refresh_consensus_peers()
        if changes:
            self._start_replica_if_promoted()

    def _adopt_schedule(self, height: int, result: BlockResult) -> tuple[ValidatorChange, ...]:
        """The validator-set changes block ``height`` scheduled (``node.governance``), now known to the roster
        and the transport; what the replica must be told."""
        raw = result.writes.get(SCHEDULE_KEY)
        if raw is None:
            return ()
        new = self.roster.extend(decode(ScheduleRecord, raw).changes)
        for change in new:
            names = [v.name for v in change.validators]
            log.info("block %d scheduled a validator-set change: from height %d, %s", height, change.height,
                     ", ".join(names), extra={"event": "validator-change", "height": change.height,
                                               "validators": names})
            for v in change.validators:
                self.transport.add_member(v.name, VerifyKey(v.key), v.cert, v.address)
        return engine_changes(new)

    def _replica_config(self) -> ReplicaConfig:
        return ReplicaConfig(
            self.chain_id,
            tuple(m.key for m in self.genesis.validators),
            self.index,
            self.key,
            progress_timeout_ms=self.cfg.consensus.progress_timeout_ms,
            checkpoint_interval=self.cfg.consensus.checkpoint_interval,
            changes=engine_changes(self.roster.changes),
        )

    def _scheduled_to_validate(self) -> bool:
        """Whether a change the ledger scheduled names this node's key (an observer it promoted, say)."""
        mine = self.key.verify_key.raw
        return any(v.key == mine for c in self.roster.changes for v in c.validators)

    def _start_replica_if_promoted(self) -> None:
        """An observer the ledger made a validator runs a replica from now on: it follows, and votes from the
        height the change names."""
        if self.replica is not None or not self._scheduled_to_validate():
            return
        replica = self.replica = Replica(self._replica_config(), self.tip)
        log.info("a validator-set change names this node: it runs a replica from height %d", self.tip.height + 1,
                 extra={"event": "replica-started", "height": self.tip.height + 1})
        self.inbox.put_nowait(lambda: self._carry_out_and_follow(replica.start(self._now_ms())))

    def _verifier_at(self, height: int) -> Verifier:
        """Certificate checks against the validators in force at ``height``."""
        return self._verifiers.of(self.roster.keys_at(height))

    def _refresh_consensus_peers(self) -> None:
        """Who hears consensus messages: the validators of the next height and of every later scheduled one."""
        self._validator_set = self.roster.names_from(self.tip.height + 1)
        self._consensus_peers = sorted(self._validator_set)

    def _engine_peer(self, index: int) -> str:
        """The node at ``index`` of the replica's current set (the engine's numbering of its outputs)."""
        assert self.replica is not None
        return self.roster.name_of(self.replica.vset.keys[index])

    async def _settle_store(self) -> None:
        """Wait for the write of the block ``_apply_block(overlap=True)`` left in flight, then finish its commit."""
        storing, self._storing = self._storing, None
        if storing is None:
            return
        write, block, cert, result = storing
        await write
        await self._finish_commit(block, cert, result)

    async def _finish_commit(self, block: Block, cert: CommitCertificate, result: BlockResult) -> None:
        """What follows a block once it is durable: the application's notices, then clients and events."""
        self.written_tip = _tip_after(block, cert, result)
        if result.notices:
            on_loop = await self.offload(self.app.after_commit, result)
            if on_loop is not None:
                on_loop()
        self._after_commit(block, cert, result)

    async def _execute(self, block: Block, prechecked: Prechecked) -> BlockResult:
        """Run the rules on the loop in slices of transactions, letting the API and P2P in between.

        Not on an executor thread: there each LevelDB read would hand the
        interpreter lock to the loop and contend for it back, costing more CPU
        per transaction than running on the loop.  Wall time still counts
        whatever else the loop does between slices.
        """
        steps = self.app.execute_steps(block, self.store, self.tip.app_hash, prechecked, EXECUTE_SLICE_TXS)
        wall, cpu = time.perf_counter(), 0.0
        while True:
            started = time.thread_time()
            try:
                next(steps)
            except StopIteration as done:
                result: BlockResult = done.value
                break
            finally:
                cpu += time.thread_time() - started
            await asyncio.sleep(0)
        self._observe_stage("execute", time.perf_counter() - wall, cpu)
        return result

    def _append_wal(self, records: list[WalRecord]) -> None:
        """On a storage thread: persist ``records`` (``medchain_wal_append_seconds``: a stalled disk shows there)."""
        started = time.perf_counter()
        self.store.append_wal(records)
        self.metrics.wal_append.observe(time.perf_counter() - started)

    def _store_block(
        self, block: Block, cert: CommitCertificate, writes: StateWrites, app_hash: bytes, tx_outcomes: list[bytes]
    ) -> None:
        """On a storage thread: the block's one synchronous batch, then (at most once a second) the freed heap
        back to the operating system (node/memory.py), timed as stages "store" and "trim"."""
        self._timed("store", self.store.commit_block, block, cert, writes, app_hash, tx_outcomes)
        if self._heap.due():
            self._timed("trim", self._heap.maybe_trim)

    def _timed(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this (executor) thread, timed in wall and in this thread's CPU seconds."""
        wall, cpu = time.perf_counter(), time.thread_time()
        result = fn(*args)
        self._observe_stage(stage, time.perf_counter() - wall, time.thread_time() - cpu)
        return result

    def _observe_stage(self, stage: str, wall_s: float, cpu_s: float) -> None:
        self.metrics.block_seconds.labels(stage, "wall").observe(wall_s)
        self.metrics.block_seconds.labels(stage, "cpu").observe(cpu_s)

    def _after_commit(self, block: Block, cert: CommitCertificate, result: BlockResult) -> None:
        now = time.monotonic()
        if self._last_commit_at is not None:
            self.metrics.block_interval.observe(now - self._last_commit_at)
        self._last_commit_at = now
        self._last_commit_ms = int(time.time() * 1000)
        self.metrics.block_txs.observe(len(block.txs))
        ids = [r.tx_id for r in result.results]
        self.mempool.remove(ids)
        self._regossip_plan.forget(ids)
        self.checker.forget(ids)
        self._proposals.forget_through(block.height)
        self._count_results(result)
        latencies: list[float] = []
        for index, r in enumerate(result.results):
            admitted = self._admitted_at.pop(r.tx_id, None)
            if admitted is not None:
                self.metrics.commit_latency.observe(now - admitted)
                latencies.append(now - admitted)
            for fut in self._waiters.pop(r.tx_id, []):
                if not fut.done():
                    fut.set_result(self._committed_json(r.tx_id, block.height, index, r.ok, r.code, r.message))
        event: CommitEvent = {
            "height": block.height,
            "hash": block.hash.hex(),
            "txs": len(block.txs),
            "rejected": sum(1 for r in result.results if not r.ok),
            "view": cert.view,
            "time_ms": block.header.timestamp_ms,
            "app_hash": result.app_hash.hex(),
            "proposer": self.roster.name_at(block.height, block.header.proposer),
            "latency_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "evidence": self.store.evidence_count,
        }
        for queue in list(self._subscribers):
            if queue.qsize() < 1000:
                queue.put_nowait(event)
        # Observers follow by head announcements; validators hear heights in the votes, and get one on the next
        # sync tick (``_announce_head``): per block, three frames in and out per validator cost more than the votes.
        followers = [p for p in self.transport.connected_peers() if p not in self._validator_set]
        if followers:
            self.transport.broadcast(NODE_CODEC.encode(HeadAnnounce(block.height, block.hash)), only=followers)
        self._update_gauges()

    def _committed_before(self, tid: bytes) -> bool:
        """Whether ``tid`` is in the chain; a pending transaction never is, so no index read for it.

        Admission refuses a committed transaction, and a commit takes its
        transactions out of the mempool before anything else runs on the loop.
        """
        return tid not in self.mempool and self.store.has_tx(tid)

    def _count_results(self, result: BlockResult) -> None:
        """The per-transaction counters, added once per block and label (a labelled inc costs microseconds)."""
        outcomes: Counter[tuple[str, str]] = Counter(
            (r.action or "malformed", "accepted" if r.ok else r.code) for r in result.results
        )
        accepted = 0
        for (action, outcome), count in outcomes.items():
            self.metrics.txs_by_action.labels(action, outcome).inc(count)
            accepted += count if outcome == "accepted" else 0
        if accepted:
            self.metrics.txs_committed.inc(accepted)
        if len(result.results) > accepted:
            self.metrics.txs_rejected.inc(len(result.results) - accepted)

    # ------------------------------------------------------------ proposing

    def _maybe_propose(self) -> None:
        replica = self.replica
        if replica is None or not len(self.mempool) or not replica.wants_proposal:
            return
        if not self._propose_scheduled:
            self._propose_scheduled = True
            oldest = self.mempool.oldest()
            admitted = self._admitted_at.get(oldest) if oldest is not None else None
            consensus = self.cfg.consensus
            delay = proposal_delay(len(self.mempool), consensus.max_block_txs, consensus.batch_timeout_ms / 1000,
                                   None if admitted is None else time.monotonic() - admitted)
            asyncio.get_running_loop().call_later(delay, self.inbox.put_nowait, self._propose_now)

    async def _propose_now(self) -> None:
        self._propose_scheduled = False
        replica = self.replica
        if replica is None or not replica.wants_proposal:
            return
        batch = self.mempool.batch(self.cfg.consensus.max_block_txs, self.cfg.consensus.max_block_bytes)
        if batch:
            txs = tuple(data for _, data in batch)
            self._last_batch = (txs, tuple(tid for tid, _ in batch))  # the ids its compact form names
            await self._feed(Propose(txs))

    # ------------------------------------------------------------ transactions

    def _committed_json(self, tid: bytes, height: int, index: int, ok: bool, code: str, msg: str) -> TxStatus:
        return {
            "tx_id": tid.hex(),
            "status": "committed" if ok else "rejected",
            "height": height,
            "index": index,
            "code": code,
            "message": msg,
        }

    def _admit(
        self, data: bytes, tid: bytes, from_client: bool = False, wake: bool = True, origin: str | None = None
    ) -> bool:
        """Checks, then the mempool; True when new.  Raises ApiError with the reason.

        ``wake``: tell the replica there is work (a batch tells it once, after its last transaction).
        ``origin``: the peer that gossiped it (None: a client); only a client's transactions are offered again later.
        """
        if self.store.has_tx(tid):
            raise ApiError(409, "already-committed", f"transaction {tid.hex()} is already committed")
        mempool = self.mempool
        if tid not in mempool and not mempool.has_room(len(data)):
            # Before the signature check: a full mempool (a node behind the others fills up with what they already
            # committed) verified and kept every transaction offered only to refuse it.
            self._mempool_full(mempool.refuse_full())
        problem = self.checker.check(data, tid)
        if problem is not None:
            code, _, message = problem.partition(": ")
            raise ApiError(422 if code != "malformed" else 400, code, message)
        if from_client:
            decoded = self.checker.peek(tid)
            if decoded is None:  # checked earlier and its decoded form since dropped: decode again
                try:
                    decoded = self.app.precheck(data)
                except Rejected as exc:
                    raise ApiError(422, exc.code, exc.message) from None
            found = self.app.admission_problem(decoded)
            if found is not None:
                self.checker.take(tid)
                raise ApiError(422, *found)
        try:
            added = mempool.add(tid, data)
        except MempoolFull as exc:
            self.checker.take(tid)  # its decoded form is kept only for what the mempool holds
            self._mempool_full(exc)
        if added:
            self._admitted_at[tid] = now = time.monotonic()
            if origin is None:
                # Only what a client gave this node is offered again: every node resending everything it holds
                # cost n-1 copies per node of each transaction pending past the first interval (66-91 KB/tx at n=16).
                self._regossip_plan.add(tid, now)
            if len(self._admitted_at) > 500_000:
                self._admitted_at.popitem(last=False)
            if wake:
                self._wake()
        return added

    def _mempool_full(self, exc: MempoolFull) -> NoReturn:
        self.metrics.mempool_full.inc()
        raise ApiError(503, "mempool-full", f"{exc}; retry later", {"Retry-After": "1"}) from None

    def _wake(self) -> None:
        """Tell the replica there is work, once: unless it already knows and no proposal waits on it.

        One wake-up per height suffices (it arms the progress timer), plus one when
        this primary may propose and has not scheduled it; a PendingWork per
        admitted transaction cost an event per transaction under load.
        """
        r = self.replica
        if r is None or self._wake_queued:
            return
        if r.pending and (self._propose_scheduled or not r.wants_proposal):
            return
        self._wake_queued = True
        self.inbox.put_nowait(PendingWork())

    async def submit(self, data: bytes, wait_commit: bool, timeout: float) -> TxStatus:
        tid = tx_id(data)
        if wait_commit and self.store.has_tx(tid):
            return self.tx_status(tid)
        if self._admit(data, tid, from_client=True):
            self._gossip_tx(data)
        if not wait_commit:
            return {"tx_id": tid.hex(), "status": "pending"}
        if self._waits_ended:
            raise ApiError(503, "shutting-down", f"the node is shutting down; transaction {tid.hex()} is pending")
        fut: asyncio.Future[TxStatus] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tid, []).append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._drop_waiter(tid, fut)
            raise ApiError(504, "timeout", f"transaction {tid.hex()} not committed within {timeout:g}s") from None

    def _drop_waiter(self, tid: bytes, fut: asyncio.Future[TxStatus]) -> None:
        """Forget a commit wait that gave up, so waits that time out do not pile up."""
        fut.cancel()
        waiters = self._waiters.get(tid, [])
        if fut in waiters:
            waiters.remove(fut)
        if not waiters:
            self._waiters.pop(tid, None)

    async def submit_batch(self, txs: Sequence[bytes], wait_commit: bool, timeout: float) -> BatchReply:
        """Admit ``txs`` in one pass on the loop, each with its own result in order; one gossip flush, one wake-up.

        A refusal (``_admit``'s ApiError, or a repeat of an earlier item) is that
        transaction's result and never stops the others.  With ``wait_commit`` the
        commit waits run together under the one ``timeout``.
        """
        results: list[BatchItem] = []
        first: dict[bytes, int] = {}
        woken = False
        for i, data in enumerate(txs):
            if i % ADMIT_SLICE == ADMIT_SLICE - 1:
                await self._yield_to_drive()
            tid = tx_id(data)
            if tid in first:
                results.append(_refused(tid, "duplicate", f"the same transaction as item {first[tid]} of this batch"))
                continue
            first[tid] = i
            if wait_commit and self.store.has_tx(tid):
                results.append(_final_item(self.tx_status(tid)))
                continue
            try:
                if self._admit(data, tid, from_client=True, wake=False):
                    self._gossip_tx(data)
                    woken = True
            except ApiError as exc:
                results.append(_refused(tid, exc.code, exc.message))
                continue
            results.append({"tx_id": tid.hex(), "status": "pending"})
        if woken:
            self._wake()
        if wait_commit:
            await self._await_commits(results, timeout)
        return _batch_reply(results)

    async def _await_commits(self, results: list[BatchItem], timeout: float) -> None:
        """Replace each pending result by its commit, or by a ``timeout`` entry once ``timeout`` has passed."""
        pending = {i: bytes.fromhex(r["tx_id"]) for i, r in enumerate(results) if r["status"] == "pending"}
        if not pending:
            return
        if self._waits_ended:
            raise ApiError(503, "shutting-down", "the node is shutting down; the admitted transactions are pending")
        loop = asyncio.get_running_loop()
        futures: dict[int, asyncio.Future[TxStatus]] = {}
        for i, tid in pending.items():
            futures[i] = loop.create_future()
            self._waiters.setdefault(tid, []).append(futures[i])
        await asyncio.wait(futures.values(), timeout=timeout)
        for i, fut in futures.items():
            if fut.done():
                results[i] = _final_item(fut.result())  # shutting-down raises: the whole request answers 503
                continue
            self._drop_waiter(pending[i], fut)
            results[i] = {"tx_id": pending[i].hex(), "status": "timeout",
                          "message": f"not committed within {timeout:g}s; it may still commit (see GET /txs/<tx_id>)"}

    def _gossip_tx(self, data: bytes) -> None:
        self._gossip_out.append(data)
        if not self._gossip_scheduled:
            self._gossip_scheduled = True
            # One frame per transaction cost each peer a frame's decoding at moderate rates; a few ms gather several.
            asyncio.get_running_loop().call_later(GOSSIP_FLUSH_S, self._flush_gossip)

    def _flush_gossip(self) -> None:
        self._gossip_scheduled = False
        batch, self._gossip_out = self._gossip_out, []
        for i in range(0, len(batch), GOSSIP_CHUNK):
            self.transport.broadcast(NODE_CODEC.encode(TxGossip(tuple(batch[i : i + GOSSIP_CHUNK]))))

    # ------------------------------------------------------------ P2P

    def _on_peer_change(self, peer: str, connected: bool) -> None:
        self._update_gauges()
        if connected:
            replica = self.replica
            if replica is not None:  # what it may have missed while the link was down
                self.inbox.put_nowait(lambda: self._carry_out_and_follow(replica.retransmit(self._now_ms())))
            names = tuple(sorted(self.transport.connected_peers()))
            self.transport.broadcast(NODE_CODEC.encode(PeerSet(names)))
            self.transport.send(peer, NODE_CODEC.encode(HeadAnnounce(self.tip.height, self.tip.block_hash)))
            # What was queued on the old link may be lost: offer the new one everything pending.
            self._send_txs(peer, [data for _, data in self.mempool.batch(REGOSSIP_MAX, 1 << 30)])

    def _on_p2p(self, peer: str, payload: bytes) -> None:
        try:
            message = NODE_CODEC.decode(payload)
        except DecodeError as exc:
            log.warning("undecodable frame from %s: %s", peer, exc)
            self.transport.penalize(peer, f"undecodable frame: {exc}")
            return
        match message:
            case ConsensusFrame(data):
                if not self.byzantine.silent:
                    self._relay_consensus(peer, data, payload)
                if self.replica is not None:
                    self.byzantine.received(data)
                    self.inbox.put_nowait(Received(data))
            case TxGossip(txs):
                self._on_tx_gossip(peer, txs)
            case CompactProposal():
                self._on_compact_proposal(peer, message, payload)
            case TxFetch(height, view, ids):
                self._on_tx_fetch(peer, height, view, ids)
            case TxFill(height, view, txs):
                for proposal in self._proposals.fill(height, view, txs):
                    self._deliver(CONSENSUS_CODEC.encode(proposal))
            case SyncRequest(from_height, max_blocks):
                asyncio.get_running_loop().create_task(self._serve_blocks(peer, from_height, max_blocks))
            case SyncResponse(head_height, blocks):
                self._peer_heads[peer] = max(self._peer_heads.get(peer, 0), head_height)
                self._sync_inflight_until = 0.0
                self._on_synced_batch(peer, head_height, blocks)
            case HeadAnnounce(height, _):
                self._peer_heads[peer] = max(self._peer_heads.get(peer, 0), height)
                if height != self._peer_rose.get(peer, (-1, 0.0))[0]:
                    # Rising, or lower than before: restarted (perhaps wiped), and catching up from there.
                    self._peer_rose[peer] = (height, time.monotonic())
                # Clearly behind (a validator one block behind is about to commit it through consensus):
                # ask now rather than at the sync loop's next tick, so a node that starts behind starts at once.
                if height > self.tip.height + (1 if self.replica is not None else 0):
                    self._request_blocks(self.tip.height + 1)
            case PeerSet(peers):
                self._peer_sets[peer] = frozenset(peers)
            case NodeReport():
                self._peer_reports[peer] = (message, int(time.time() * 1000))

    def _on_synced_batch(self, peer: str, head_height: int, blocks: tuple[CertifiedBlock, ...]) -> None:
        """Queue a fetched batch to be applied if it extends the fetched chain and fewer than ``SYNC_AHEAD``
        wait; drop it otherwise.

        Batches also come unasked: a peer serves one to a validator whose votes show it lagging,
        and a Byzantine peer may send them at will.  Queued whatever they held, they piled up in
        the inbox of a node that applies slower than its peers send (a node stopped 0.6 s in each
        second under load held up to 71 batches of up to 4 MiB, and passed 1 GB in some runs).  So what waits is
        bounded: the blocks already fetched are cut from the front, and what is left is kept only
        if it follows on and there is room; what is dropped is fetched again in its turn.
        """
        fetched_to = self._sync_fetched_to()
        start = 0
        while start < len(blocks) and blocks[start].block.height <= fetched_to:
            start += 1
        fresh = blocks[start:]
        if not fresh or fresh[0].block.height != fetched_to + 1 or self._sync_queued >= SYNC_AHEAD:
            if blocks:
                self.metrics.sync_batches_dropped.inc()
            if head_height > self.tip.height:
                self._request_blocks(self.tip.height + 1)  # from our own chain (no-op while SYNC_AHEAD wait)
            return
        self._sync_queued += 1
        self._sync_queued_to = fresh[0].block.height + len(fresh) - 1
        self.inbox.put_nowait(lambda: self._apply_synced(peer, fresh))
        if self._sync_queued < SYNC_AHEAD and head_height > self._sync_queued_to:
            # Ask for the next batch now: the peer reads and sends it while this one executes.
            self._request_blocks(self._sync_queued_to + 1, [peer])

    def _deliver(self, data: bytes) -> None:
        """A consensus message for the replica."""
        if self.replica is not None:
            self.byzantine.received(data)
            self.inbox.put_nowait(Received(data))

    def _lookup_tx(self, tid: bytes) -> bytes | None:
        return self.mempool.get(tid) or self._gossip_in.get(tid)

    def _on_compact_proposal(self, peer: str, proposal: CompactProposal, frame: bytes) -> None:
        """Rebuild the PRE-PREPARE from the transactions held here, or ask ``peer`` for the ones missing."""
        if self.replica is None or proposal.sender >= len(self.roster.names_at(proposal.height)):
            return
        if not self.byzantine.silent:
            self._relay_consensus(peer, b"", frame, author=proposal.sender)
        outcome = self._proposals.offer(peer, proposal, self._lookup_tx)
        if isinstance(outcome, PrePrepare):
            self.metrics.compact_proposals.labels("complete").inc()
            self._deliver(CONSENSUS_CODEC.encode(outcome))
            return
        self.metrics.compact_proposals.labels("fetched").inc()
        log.debug("proposal %d/%d from %s: asking for %d of %d transactions",
                  proposal.height, proposal.view, peer, len(outcome), len(proposal.tx_ids))
        self.transport.send(peer, NODE_CODEC.encode(TxFetch(proposal.height, proposal.view, tuple(outcome))))

    def _on_tx_fetch(self, peer: str, height: int, view: int, ids: tuple[bytes, ...]) -> None:
        """Send ``peer`` what it lacks of a proposal: from the mempool, else from the proposal itself."""
        if self.byzantine.silent:
            return
        log_ = self.replica.logs.get(height) if self.replica is not None else None
        block = log_.proposals.get(view) if log_ is not None else None
        txs = serve(ids, self.mempool.get, block)
        self.transport.send(peer, NODE_CODEC.encode(TxFill(height, view, tuple(txs))))

    def _relay_consensus(self, source: str, data: bytes, frame: bytes, author: int | None = None) -> None:
        """Relay to connected validators that cannot hear the author directly."""
        connected = set(self.transport.connected_peers())
        missing = [
            p
            for p in connected & set(self.validator_names)
            if p != source and source not in self._peer_sets.get(p, frozenset((source,)))
        ]
        if not missing:
            return
        try:
            sender = CONSENSUS_CODEC.decode(data).sender if author is None else author
            author_name = self.validator_names[sender]
        except (DecodeError, IndexError):
            return
        for p in missing:
            if p != author_name and author_name not in self._peer_sets.get(p, frozenset()):
                self.transport.send(p, frame)

    def _on_tx_gossip(self, peer: str, txs: tuple[bytes, ...]) -> None:
        """Queue what is new for ``_gossip_intake``: nothing is checked where frames are read (``GossipBacklog``)."""
        backlog, mempool = self._gossip_in, self.mempool
        full_before = backlog.dropped
        for data in txs:
            tid = tx_id(data)
            if tid not in mempool:
                backlog.add(tid, data, peer)
        if backlog.dropped > full_before:
            self.metrics.gossip_refused.labels("backlog-full").inc(backlog.dropped - full_before)
        if len(backlog):
            self._gossip_ready.set()

    async def _gossip_intake(self) -> None:
        """Check queued gossip in slices, yielding between them; relay what was new; one wake-up per slice."""
        while True:
            await self._gossip_ready.wait()
            self._gossip_ready.clear()
            while len(self._gossip_in):
                await self._yield_to_drive()
                try:
                    self._admit_gossiped(self._gossip_in.take(GOSSIP_SLICE))
                except Exception:  # a bug in one slice must not end gossip for good: say so, go on with the next
                    log.exception("checking gossiped transactions failed; %d left queued", len(self._gossip_in))

    async def _yield_to_drive(self) -> None:
        """Between slices of signature checks: let the loop run, and consensus work (votes, execution,
        storing a block) go first, for up to ``YIELD_TO_DRIVE_S``.

        New transactions wait for the block in flight instead of stretching its
        round: checked in between, they tripled the wall time of executing a
        2,000-transaction block (measured, 4 validators on 2 cores).
        """
        await asyncio.sleep(0)
        if not self._drive_idle.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drive_idle.wait(), YIELD_TO_DRIVE_S)

    def _admit_gossiped(self, items: list[tuple[bytes, bytes, str]]) -> None:
        fresh: dict[str, list[bytes]] = {}
        for tid, data, peer in items:
            if tid in self.mempool:
                continue
            try:
                if self._admit(data, tid, origin=peer, wake=False):
                    fresh.setdefault(peer, []).append(data)
            except ApiError as refused:
                # A peer relaying what we refuse is expected (it may be ahead of us, or Byzantine): count, never stop.
                self.metrics.gossip_refused.labels(refused.code).inc()
                log.debug(
                    "refused a transaction %s gossiped by %s: %s: %s", tid.hex(), peer, refused.code, refused.message
                )
        if not fresh:
            return
        self._wake()
        connected = self.transport.connected_peers()
        for peer, txs in fresh.items():
            # Relay to the peers that cannot hear the one it came from.
            for p in connected:
                if p != peer and peer not in self._peer_sets.get(p, ()):
                    self._send_txs(p, txs)

    # ------------------------------------------------------------ catch-up

    def _request_blocks(self, from_height: int, peers: list[str] | None = None) -> None:
        """Ask a peer for the blocks from ``from_height`` (past any already fetched and waiting), one
        request at a time: the next goes out when the answer arrives, or 2 s later without one, and
        not while ``SYNC_AHEAD`` fetched batches wait to be applied."""
        now = time.monotonic()
        if now < self._sync_inflight_until or self._sync_queued >= SYNC_AHEAD:
            # One request at a time, and no more batches fetched than SYNC_AHEAD waiting: a node that applies
            # slower than its peers send (slow, or behind a busy disk) would hold ever more of them in memory.
            return
        from_height = max(from_height, self._sync_fetched_to() + 1)
        connected = set(self.transport.connected_peers())
        candidates = [p for p in (peers or []) if p in connected] or sorted(
            (p for p in connected if self._peer_heads.get(p, 0) >= from_height),
            key=lambda p: -self._peer_heads.get(p, 0),
        )
        if not candidates:
            return
        self._sync_inflight_until = now + 2.0
        self.transport.send(candidates[0], NODE_CODEC.encode(SyncRequest(from_height, 64)))

    def _sync_fetched_to(self) -> int:
        """The height up to which blocks are committed or fetched and waiting to be applied."""
        return max(self.tip.height, self._sync_queued_to) if self._sync_queued else self.tip.height

    async def _serve_blocks(self, peer: str, from_height: int, max_blocks: int = 64) -> None:
        if self.byzantine.silent:
            return
        blocks = await self.offload(self.store.certified_range, from_height, max_blocks, SYNC_BATCH_BYTES)
        served = self.byzantine.served
        response = SyncResponse(self.tip.height, tuple(CertifiedBlock(b, served(c)) for b, c in blocks))
        self.transport.send(peer, NODE_CODEC.encode(response))

    async def _sync_loop(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(SYNC_INTERVAL_S / 4)
            ticks += 1
            best = max(self._peer_heads.values(), default=0)
            if best > self.tip.height:
                self._request_blocks(self.tip.height + 1)
            self._announce_head()
            if ticks % 4 == 0:
                self._regossip()
            if ticks % REPORT_TICKS == 0:
                self._report()

    def _report(self) -> None:
        """Tell every peer where this node stands (``NodeReport``), for their ``GET /network``."""
        r = self.replica
        report = NodeReport(self.written_tip.height, r.view if r else self.tip.view,
                            bool(r and r.vc_target is not None), len(self.mempool), self._last_commit_ms)
        self.transport.broadcast(NODE_CODEC.encode(report))

    def _announce_head(self) -> None:
        """Tell the validators our head once it moved (observers hear each block as it commits)."""
        if self.tip.height == self._announced_height:
            return
        self._announced_height = self.tip.height
        validators = [p for p in self.transport.connected_peers() if p in self._validator_set]
        if validators:
            self.transport.broadcast(NODE_CODEC.encode(HeadAnnounce(self.tip.height, self.tip.block_hash)),
                                     only=validators)

    def _regossip(self) -> None:
        """Offer the client transactions whose resend is due (``RegossipSchedule``) again to every
        peer: a full mempool may have refused them, and that peer may be the next primary.  Only a
        client's transactions are scheduled (``_admit``), so none has a peer of origin to skip."""
        due = self._regossip_plan.due(time.monotonic(), REGOSSIP_MAX)
        txs = [data for tid, _ in due if (data := self.mempool.get(tid)) is not None]
        if not txs:
            return
        for peer in self.transport.connected_peers():
            self._send_txs(peer, txs)

    def _send_txs(self, peer: str, txs: list[bytes]) -> None:
        for i in range(0, len(txs), GOSSIP_CHUNK):
            self.transport.send(peer, NODE_CODEC.encode(TxGossip(tuple(txs[i : i + GOSSIP_CHUNK]))))

    async def _apply_synced(self, peer: str, blocks: tuple[CertifiedBlock, ...]) -> None:
        """Apply a fetched batch (one counted in ``_sync_queued``) in order; each block executes without
        client signature checks (``CertifiedTxs``), so nothing reaches execution before its certificate and
        its transactions were checked.  Each block's write overlaps the next block's execution; the last is
        durable before this returns."""
        self._sync_queued -= 1
        try:
            await self._apply_synced_blocks(peer, blocks)
        finally:
            await self._settle_store()
        if blocks and max(self._peer_heads.values(), default=0) > self.tip.height:
            self._request_blocks(self.tip.height + 1)

    async def _apply_synced_blocks(self, peer: str, blocks: tuple[CertifiedBlock, ...]) -> None:
        for item in blocks:
            if item.block.height != self.tip.height + 1:
                continue
            if self.replica is not None:
                # The replica checks the certificate (a bad one is dropped there); the certificate
                # covers the header only, so the transactions are checked against it here.
                reason = transactions_problem(item.block)
                if reason is not None:
                    self._refuse_synced(peer, item.block.height, reason)
                    return
                await self._feed(SyncedBlock(item.block, item.certificate))
                continue
            reason = self._verifier_at(item.block.height).check_commit_certificate(item.certificate, item.block)
            if reason is None and item.block.header.prev_hash != self.tip.block_hash:
                reason = "block does not extend our head"
            if reason is None and item.block.header.app_hash != self.tip.app_hash:
                reason = "block's app_hash differs from our state"
            if reason is None:
                reason = validate_block(item.block, self.checker, self._committed_before, certified=True)
            if reason is not None:
                self._refuse_synced(peer, item.block.height, reason)
                return
            await self._apply_block(item.block, item.certificate, certified=True, overlap=True)
            self.metrics.blocks_synced.inc()

    def _refuse_synced(self, peer: str, height: int, reason: str) -> None:
        log.warning("refusing block %d from %s: %s", height, peer, reason)
        self.metrics.blocks_refused.inc()
        self.transport.penalize(peer, reason)

    # ------------------------------------------------------------ fault experiments (admin interface)

    def set_byzantine(self, behaviour: str | None, seed: int | None = None) -> None:
        """Switch a Byzantine behaviour on (``consensus.byzantine.BEHAVIOURS``), or off with None."""
        if behaviour is not None and self.replica is None:
            raise ApiError(400, "not-a-validator", f"{self.cfg.name} is an observer: it has no replica to misbehave")
        try:
            self.byzantine.switch(behaviour, seed)
        except ValueError as exc:
            raise ApiError(400, "bad-behaviour", str(exc)) from None

    @property
    def byzantine_behaviour(self) -> str | None:
        return self.byzantine.behaviour

    def set_clock_skew(self, skew_ms: int) -> None:
        """Offset the wall clock the replica sees (its block timestamps) by ``skew_ms``."""
        if skew_ms != self.clock_skew_ms:
            log.warning("clock skew set to %+d ms (was %+d ms)", skew_ms, self.clock_skew_ms,
                        extra={"event": "clock-skew", "skew_ms": skew_ms})
        self.clock_skew_ms = skew_ms

    def reseed_faults(self, seed: int) -> None:
        """Reseed the link faults' and the adversary's random choices, so a scenario replays."""
        self.transport.faults.reseed(f"{seed}/links")
        self.byzantine.reseed(f"{seed}/adversary")

    # ------------------------------------------------------------ queries (API)

    def _peer_stats(self) -> dict[str, dict[str, int]]:
        return self.transport.peer_stats()

    def _update_gauges(self) -> None:
        self.metrics.height.set(self.tip.height)
        self.metrics.view.set(self.replica.view if self.replica else self.tip.view)
        self.metrics.mempool_txs.set(len(self.mempool))
        self.metrics.mempool_bytes.set(self.mempool.size_bytes)
        self.metrics.peers.set(len(self.transport.connected_peers()))

    def status(self) -> NodeStatus:
        r = self.replica
        view = r.view if r else self.tip.view
        best = max(self._peer_heads.values(), default=0)
        return {
            "chain_id": self.chain_id,
            "node_id": self.cfg.name,
            "role": "validator" if r is not None and r.is_member else "observer",
            "node_key": self.key.verify_key.hex(),
            "height": self.written_tip.height,
            "head_hash": self.written_tip.block_hash.hex(),
            "app_hash": self.written_tip.app_hash.hex(),
            "view": view,
            "primary": self.validator_names[view % len(self.validator_names)],
            "in_view_change": bool(r and r.vc_target is not None),
            "peers": sorted(self.transport.connected_peers()),
            "mempool": {"txs": len(self.mempool), "bytes": self.mempool.size_bytes},
            "syncing": best > self.tip.height + 1,
            "best_peer_height": best,
            "stable_checkpoint": r.stable_checkpoint if r else None,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    def health(self) -> tuple[bool, Liveness]:
        peers = len(self.transport.connected_peers())
        return not self.stopping, {"height": self.written_tip.height, "peers": peers}

    def block_json(self, height: int) -> BlockDocument | None:
        found = self.store.certified_block(height)
        if found is None:
            return None
        block, cert = found
        h = block.header
        return {
            "height": block.height,
            "hash": block.hash.hex(),
            "header": {
                "chain_id": h.chain_id,
                "height": h.height,
                "prev_hash": h.prev_hash.hex(),
                "proposer": self.roster.name_at(h.height, h.proposer),
                "view": h.view,
                "timestamp_ms": h.timestamp_ms,
                "tx_root": h.tx_root.hex(),
                "tx_count": h.tx_count,
                "app_hash": h.app_hash.hex(),
            },
            "txs": [tx_id(t).hex() for t in block.txs],
            "certificate": {
                "height": cert.height,
                "view": cert.view,
                "block_hash": cert.block_hash.hex(),
                "votes": [
                    {"validator": self.roster.name_at(cert.height, v.validator), "signature": v.signature.hex()}
                    for v in cert.votes
                ],
            },
        }

    def block_summaries(self, before: int | None, limit: int) -> list[BlockSummary]:
        """Up to ``limit`` committed blocks below height ``before`` (or from the head), newest first."""
        top = self.written_tip.height if before is None else min(before - 1, self.written_tip.height)
        out: list[BlockSummary] = []
        for height in range(top, max(0, top - limit), -1):
            h = self.store.block_header(height)  # not the transactions: a page of full blocks is megabytes
            if h is None:
                break
            out.append({
                "height": height, "hash": sha256(encode(h)).hex(), "proposer": self.roster.name_at(height, h.proposer),
                "view": h.view, "timestamp_ms": h.timestamp_ms, "tx_count": h.tx_count,
            })
        return out

    def height_of(self, block_hash: bytes) -> int | None:
        """The height of a committed block named by its hash."""
        height = self.store.height_of(block_hash)
        return height if height is not None and height <= self.written_tip.height else None

    def tx_bytes(self, tid: bytes) -> tuple[bytes, bool] | None:
        """A transaction's bytes, and whether they are committed (else pending in this node's mempool)."""
        data = self.store.tx(tid)
        if data is not None:
            return data, True
        pending = self.mempool.get(tid)
        return (pending, False) if pending is not None else None

    def validators_json(self) -> ValidatorsDocument:
        nxt = self.written_tip.height + 1
        validators: list[ValidatorEntry] = []
        for name in self.roster.names_at(nxt):
            v = self.roster.nodes[name]
            validators.append({"name": name, "key": v.key.hex(), "org": v.org or None, "address": v.address or None})
        changes: list[ScheduledChange] = [
            {"height": c.height, "validators": [v.name for v in c.validators], "txs": [t.hex() for t in c.txs],
             "in_force": c.height <= nxt}
            for c in self.roster.changes
        ]
        proposals: list[ProposalEntry] = []
        for key, raw in self.store.state_items(PROPOSAL_PREFIX, limit=MAX_PROPOSALS_LISTED):
            p = decode(Proposal, raw)
            counted, needed = self.governance.pending(p, self.roster.changes, nxt)
            b = p.body
            status: Literal["pending", "scheduled", "expired"] = (
                "scheduled" if p.decided else "expired" if self.governance.expired(p, nxt) else "pending"
            )
            proposals.append({
                "proposal": key[len(PROPOSAL_PREFIX):].hex(), "action": b.action, "name": b.name,
                "key": b.key.hex(), "org": b.org, "address": b.address, "height": b.height,
                "proposer_org": p.proposer_org, "approvals": list(p.approvals), "counted": counted, "needed": needed,
                "status": status, "decided": p.decided or None,
            })
        return {"height": nxt, "quorum": str(self.governance.quorum), "validators": validators, "changes": changes,
                "proposals": proposals}

    def network_json(self) -> NetworkDocument:
        status = self.status()
        stats = self.transport.peer_stats()
        org_of = {node: org.id for org in self.genesis.organisations for node in org.nodes}
        org_of.update({v.name: v.org for v in self.roster.nodes.values() if v.org})
        members: list[NetworkMember] = []
        # Validators of the next height, then every other node: genesis's, and the ones the ledger added.
        current = self.roster.names_at(self.written_tip.height + 1)
        everyone = {m.name: m for m in self.genesis.nodes}
        everyone.update({v.name: Member(v.name, VerifyKey(v.key)) for v in self.roster.nodes.values()})
        groups: tuple[tuple[Literal["validator", "observer"], list[Member]], ...] = (
            ("validator", [everyone[n] for n in current]),
            ("observer", [m for name, m in everyone.items() if name not in current]),
        )
        for role, group in groups:
            for m in group:
                me = m.name == self.cfg.name
                s = stats.get(m.name, {})
                report = self._peer_reports.get(m.name)
                view = status["view"] if me else report[0].view if report else None
                members.append({
                    "name": m.name, "role": role, "org": org_of.get(m.name), "key": m.key.hex(), "self": me,
                    "connected": me or bool(s.get("connected")),
                    "height": status["height"] if me else self._peer_heads.get(m.name),
                    "peers": status["peers"] if me else sorted(self._peer_sets[m.name]) if m.name in self._peer_sets
                    else None,
                    "primary": role == "validator" and m.name == status["primary"],
                    "view": view,
                    "in_view_change": status["in_view_change"] if me else report[0].in_view_change if report else None,
                    "mempool_txs": status["mempool"]["txs"] if me else report[0].mempool_txs if report else None,
                    "last_commit_ms": self._last_commit_ms if me else report[0].last_commit_ms if report else None,
                    "reported_ms": None if me or not report else report[1],
                    "bytes_in": s.get("bytes_in", 0), "bytes_out": s.get("bytes_out", 0),
                })
        return {
            "node": status, "members": members, "last_commit_ms": self._last_commit_ms,
            "view_changes": self.view_changes_seen, "evidence": self.store.evidence_count,
        }

    def tx_status(self, tid: bytes) -> TxStatus:
        found = committed_result(self.store, tid)
        if found is not None:
            (height, index), ok, code, message = found
            return self._committed_json(tid, height, index, ok, code, message)
        if tid in self.mempool:
            return {"tx_id": tid.hex(), "status": "pending"}
        return {"tx_id": tid.hex(), "status": "unknown"}

    def proof_json(self, tid: bytes) -> ProofDocument | None:
        found = self._bare_proof(tid)
        if found is None:
            return None
        doc, height = found
        changes = self.change_proofs(height)
        return {**doc, "validator_changes": changes} if changes else doc

    def _bare_proof(self, tid: bytes) -> tuple[ProofDocument, int] | None:
        """A committed transaction's proof without the validator changes, and its block's height."""
        where = self.store.tx_location(tid)
        found = self.store.certified_block(where[0]) if where is not None else None
        if where is None or found is None:
            return None
        return build_proof(found[0], found[1], where[1]), where[0]

    def change_proofs(self, height: int) -> list[list[ProofDocument]]:
        """For a proof of a block at ``height``: each validator-set change in force there, as proofs of the
        governance transactions that made it (``node.proofs``); empty while genesis's validators decide."""
        steps: list[list[ProofDocument]] = []
        for change in self.roster.changes:
            if change.height > height:
                break
            step = self._change_proofs.get(change.height)
            if step is None:
                step = []
                for tid in change.txs:
                    found = self._bare_proof(tid)
                    if found is None:
                        raise ApiError(503, "proof-unavailable",
                                       f"governance transaction {tid.hex()} is not stored here")
                    step.append(found[0])
                self._change_proofs[change.height] = step
            steps.append(step)
        return steps

    def evidence_json(self) -> list[EvidenceDocument]:
        out: list[EvidenceDocument] = []
        for item in self.store.evidence(limit=EVIDENCE_LISTED):
            out.append(
                {
                    "validator": self.roster.name_at(item.first.height, item.validator),
                    "kind": item.kind,
                    "height": item.first.height,
                    "first": CONSENSUS_CODEC.encode(item.first).hex(),
                    "second": CONSENSUS_CODEC.encode(item.second).hex(),
                }
            )
        return out

    def metrics_text(self) -> tuple[bytes, str]:
        return self.metrics.text(), "text/plain; version=0.0.4; charset=utf-8"

    def subscribe(self) -> asyncio.Queue[CommitEvent | None]:
        """A queue of every commit from now on; ``None`` in it means the node is shutting down."""
        queue: asyncio.Queue[CommitEvent | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def subscribers(self) -> list[asyncio.Queue[CommitEvent | None]]:
        return list(self._subscribers)

    def unsubscribe(self, queue: asyncio.Queue[CommitEvent | None]) -> None:
        self._subscribers.discard(queue)
