"""n replicas, their drivers, a client and a simulated network, on one virtual clock.

Each replica has a thin driver (``Node``) that carries out the replica's
outputs in the documented order (events.py): persist (append to its WAL),
then send, then commit (store, check agreement, execute, feed ``Executed``
back at once), then the rest: answer validation requests, arm and cancel
timers, fetch or serve committed blocks.  What survives a crash is exactly
what a node keeps on disk: the store (blocks with certificates) and the WAL.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import islice

from consensus.byzantine import Adversary
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
from consensus.messages import CONSENSUS_CODEC, Block, Commit, CommitCertificate, Prepare, PrePrepare
from consensus.replica import Replica
from consensus.sim.checks import SafetyMonitor
from consensus.sim.geography import geography
from consensus.sim.network import LinkModel, Network, Scheduler
from consensus.sim.scenario import FaultPlan, Scenario
from primitives.errors import DecodeError
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey, VerifyKey

Clock = Callable[[], float]
GENESIS = ChainTip(0, sha256(b"medchain-sim/genesis"), sha256(b"medchain-sim/genesis-app"), 0)


def validator_keys(n: int) -> list[SigningKey]:
    return [SigningKey.from_seed_text(f"sim-validator-{i}") for i in range(n)]


def app_hash_after(prev_app_hash: bytes, block: Block) -> bytes:
    """The simulated application: a hash chain over blocks and their transactions."""
    return sha256(prev_app_hash + block.hash + b"".join(block.txs))


GOVERNANCE = b"gov:"


def governance_tx(kind: str, replica: int) -> bytes:
    """The simulated ledger's validator-set change: ``gov:add:I`` or ``gov:remove:I``."""
    return GOVERNANCE + f"{kind}:{replica}".encode()


def apply_governance(
    block: Block, current: tuple[VerifyKey, ...], last_start: int, keys: list[VerifyKey], delay: int
) -> list[ValidatorChange]:
    """The changes ``block`` schedules, starting from the newest scheduled set ``current``.

    Deterministic, like every ledger rule: an add of a member or a remove of a non-member (a
    transaction committed twice) changes nothing, and a remove that would empty the set is ignored.
    """
    changes: list[ValidatorChange] = []
    for tx in block.txs:
        if not tx.startswith(GOVERNANCE):
            continue
        kind, _, who = tx[len(GOVERNANCE):].decode().partition(":")
        key = keys[int(who)]
        if kind == "add" and key not in current:
            new = (*current, key)
        elif kind == "remove" and key in current and len(current) > 1:
            new = tuple(k for k in current if k != key)
        else:
            continue
        height = max(block.height + delay, last_start + 1)
        changes.append(ValidatorChange(height, new))
        current, last_start = new, height
    return changes


@dataclass(slots=True)
class Node:
    """One replica's driver: its engine (None while down) and what it keeps on disk."""

    index: int
    config: ReplicaConfig
    byzantine: bool
    replica: Replica | None = None
    store: dict[int, tuple[Block, CommitCertificate]] = field(default_factory=dict)
    head: ChainTip = GENESIS
    wal: list[tuple[int, WalRecord]] = field(default_factory=list)
    mempool: dict[bytes, None] = field(default_factory=dict)
    timers: dict[str, int] = field(default_factory=dict)
    epoch: int = 0
    cpu_s: float = 0.0
    cpu_received_s: float = 0.0
    received: int = 0
    events: int = 0
    view_changes: int = 0
    evidence: int = 0
    restarts: int = 0
    changes: list[ValidatorChange] = field(default_factory=list)
    """Validator-set changes its ledger scheduled (on disk: state derived from the stored blocks)."""

    @property
    def up(self) -> bool:
        return self.replica is not None


class Cluster:
    def __init__(self, scenario: Scenario, seed: int, plan: FaultPlan, clock: Clock | None = None) -> None:
        self.sc = scenario
        self.plan = plan
        self.clock = clock
        n = scenario.total
        keys = validator_keys(n)
        self.keys = [k.verify_key for k in keys]
        self.key_node = {k.raw: i for i, k in enumerate(self.keys)}
        validators = tuple(self.keys[: scenario.nodes])
        faulty = scenario.faulty
        self.honest = frozenset(i for i in range(n) if i not in faulty)
        self.sched = Scheduler()
        model = LinkModel(scenario.delay_ms, scenario.jitter_ms, scenario.drop, scenario.duplicate)
        geo = geography(scenario.regions, scenario.bandwidth_mbps) if scenario.regions else None
        self.net = Network(n, model, random.Random(f"{seed}/network"), geo)
        self.rng = random.Random(f"{seed}/cluster")
        self.client_rng = random.Random(f"{seed}/client")
        self.adversary = Adversary(scenario.behaviour, {i: keys[i] for i in faulty}, n, scenario.chain_id,
                                   random.Random(f"{seed}/adversary")) if faulty else None
        self.monitor = SafetyMonitor(self.honest)
        self.nodes = [
            Node(i, ReplicaConfig(
                scenario.chain_id, validators, i if i < scenario.nodes else None, keys[i],
                progress_timeout_ms=scenario.progress_timeout_ms,
                checkpoint_interval=scenario.checkpoint_interval,
                window=scenario.window,
            ), byzantine=i in faulty)
            for i in range(n)
        ]
        self.tx_seq = 0
        self._tx_credit = 0
        self.on_decided: Callable[[int, Cluster], None] | None = None
        """Called when an honest replica first reaches a new height (progress, memory probes)."""
        self.max_decided = 0
        self.commits = 0
        self.txs_decided = 0
        self.tx_born: dict[bytes, int] = {}  # with measure_latency: submission time of each pending tx
        self.tx_latencies_ms: list[int] = []
        self.decided_at: dict[int, int] = {}  # with measure_latency: when each height was first decided
        # reconfiguration
        self._keys_private = keys
        self.steps = list(scenario.reconfigure_steps)
        self.submitted = 0  # changes submitted to the ledger
        self.switches: list[int] = []  # heights at which a scheduled change took effect, in order
        self.former_index: dict[int, int] = {}  # a removed replica -> its position in the set before
        self.zombie_votes = 0
        self.view_changes_at_switch = 0  # views honest replicas entered at a height where a new set took effect
        self._zombie_voted: set[tuple[int, int, int, bytes]] = set()

    # ------------------------------------------------------------ lifecycle

    def boot(self) -> None:
        for node in self.nodes:
            if self.adversary is None or self.adversary.runs_engine(node.index):
                self._start(node, restore=False)
                if node.byzantine and self.sc.behaviour in ("stale", "garbage"):
                    self._stale_tick(node.index)

    def crash(self, i: int) -> None:
        node = self.nodes[i]
        node.replica = None
        node.epoch += 1
        node.timers.clear()
        node.mempool.clear()

    def restart(self, i: int) -> None:
        node = self.nodes[i]
        if node.up:
            return
        node.restarts += 1
        self._start(node, restore=True)

    def _start(self, node: Node, restore: bool) -> None:
        t0 = self.clock() if self.clock else 0.0
        records = [record for _tag, record in node.wal]
        config = replace(node.config, changes=tuple(node.changes))
        replica = Replica.restore(config, node.head, records) if restore else Replica(config, node.head)
        out = replica.start(self.sched.now)
        if self.clock:
            node.cpu_s += self.clock() - t0
        node.replica = replica
        self._drive(node, None, out)

    # ------------------------------------------------------------ feeding a replica

    def feed(self, i: int, event: Event) -> None:
        node = self.nodes[i]
        if node.replica is not None:
            self._drive(node, event, None)

    def _drive(self, node: Node, first: Event | None, first_out: Output | None) -> None:
        """Feed ``first`` and whatever its outputs feed back (verdicts, Executed, a proposal)."""
        pending: deque[Event] = deque([first] if first is not None else [])
        if first_out is not None:
            self._apply(node, first_out, pending)
        proposed = False
        while node.replica is not None:
            if not pending:
                replica = node.replica
                if proposed or not node.mempool or not replica.wants_proposal:
                    break
                proposed = True
                batch = tuple(islice(node.mempool, self.sc.txs_per_block))
                pending.append(Propose(batch))
            event = pending.popleft()
            out = self._handle(node, event)
            self._apply(node, out, pending)

    def _handle(self, node: Node, event: Event) -> Output:
        replica = node.replica
        assert replica is not None
        node.events += 1
        received = isinstance(event, Received)
        if received:
            node.received += 1
        if self.clock is None:
            return replica.handle(event, self.sched.now)
        t0 = self.clock()
        out = replica.handle(event, self.sched.now)
        spent = self.clock() - t0
        node.cpu_s += spent
        if received:
            node.cpu_received_s += spent
        return out

    def _apply(self, node: Node, out: Output, pending: deque[Event]) -> None:
        """Carry out one output: persist, then send, then commit, then the rest."""
        tag = node.head.height + 1  # the replica signs only at its next height (or checkpoints below it)
        node.wal.extend((tag, record) for record in out.persist)
        for send in out.send:
            if send.to is not None:  # the engine's index in its current set -> the replica's number
                send = Send(send.data, self._node_of(node, send.to))
            if node.byzantine and self.adversary is not None:
                deliveries = self.adversary.outgoing(node.index, send)
            else:
                self.monitor.on_emit(node.index, send.data, self.sched.now)
                targets = range(len(self.nodes)) if send.to is None else (send.to,)
                deliveries = [(t, send.data) for t in targets if t != node.index]
            for target, data in deliveries:
                self._transmit(node.index, target, data)
        executed = [self._commit(node, c) for c in out.commit]
        pending.extendleft(reversed(executed))
        if executed and node.mempool:
            pending.append(PendingWork())
        for request in out.validate:
            block = request.block
            pending.append(Verdict(block.hash, merkle_root(block.txs) == block.header.tx_root))
        for timer in out.timers:
            if isinstance(timer, SetTimer):
                node.timers[timer.name] = timer.token
                self.sched.at(timer.deadline_ms, self._timer_action(node, timer))
            elif isinstance(timer, CancelTimer):
                node.timers.pop(timer.name, None)
        for sync in out.sync:
            if isinstance(sync, RequestSync):
                peers = tuple(self._node_of(node, p) for p in sync.peers)
                self._request_sync(node.index, RequestSync(sync.from_height, peers))
            elif isinstance(sync, ServeSync):
                self._serve(node.index, self._node_of(node, sync.peer), sync.from_height)
        node.view_changes += len(out.view_changes)
        if node.index in self.honest:
            self.view_changes_at_switch += sum(1 for v in out.view_changes if v.height in self.switches)
        node.evidence += len(out.evidence)
        if out.checkpoints and self.sc.keep_heights is not None:
            self._forget(node)

    def _commit(self, node: Node, c: CommitBlock) -> Executed:
        block = c.block
        self.monitor.on_commit(node.index, block, self.sched.now)
        app_hash = app_hash_after(node.head.app_hash, block)
        current = node.changes[-1].validators if node.changes else node.config.validators
        last_start = node.changes[-1].height if node.changes else 1
        changes = apply_governance(block, current, last_start, self.keys, self.sc.activation_delay)
        node.changes.extend(changes)
        self.commits += 1
        node.store[block.height] = (block, c.certificate)
        node.head = ChainTip(block.height, block.hash, app_hash, block.header.timestamp_ms, c.certificate.view)
        for tx in block.txs:
            node.mempool.pop(tx, None)
        if node.index in self.honest and block.height > self.max_decided:
            self.max_decided = block.height
            self.txs_decided += len(block.txs)
            if self.sc.measure_latency:
                now = self.sched.now
                self.decided_at[block.height] = now
                for tx in block.txs:
                    born = self.tx_born.pop(tx, None)
                    if born is not None:
                        self.tx_latencies_ms.append(now - born)
            self._first_decided(block.height, current, changes)
            if self.on_decided is not None:
                self.on_decided(block.height, self)
        return Executed(block.height, app_hash, tuple(changes))

    def _node_of(self, node: Node, index: int) -> int:
        """The replica at ``index`` of ``node``'s current set (the engine's numbering) -> its number here."""
        replica = node.replica
        if replica is None or not 0 <= index < replica.n:
            return index
        return self.key_node[replica.vset.keys[index].raw]

    # ------------------------------------------------------------ reconfiguration

    def _first_decided(self, height: int, before: tuple[VerifyKey, ...], changes: list[ValidatorChange]) -> None:
        """An honest replica decided ``height`` first: submit the next change, or fault the switch."""
        for change in changes:
            self.switches.append(change.height)
            for key in before:
                if key not in change.validators:
                    self.former_index.setdefault(self.key_node[key.raw], before.index(key))
            before = change.validators
        previous_done = len(self.switches) >= self.submitted and (
            not self.switches or height >= self.switches[-1] + self.sc.reconfigure_gap
        )
        if self.steps and height >= self.sc.reconfigure_from and previous_done:
            kind, who = self.steps.pop(0)
            self.submitted += 1
            tx = governance_tx(kind, who)
            for other in self.nodes:
                if other.up:
                    other.mempool = {tx: None, **other.mempool}
                    self.feed(other.index, PendingWork())
        if self.sc.view_change_at_switch and height + 1 in self.switches:
            self._crash_primary()

    def _crash_primary(self) -> None:
        watcher = next((self.nodes[i] for i in sorted(self.honest) if self.nodes[i].replica is not None), None)
        if watcher is None or watcher.replica is None:
            return
        primary = self._node_of(watcher, watcher.replica.primary)
        if primary in self.honest and self.nodes[primary].up:
            self.crash(primary)
            self.sched.after(3 * self.sc.progress_timeout_ms, lambda: self.restart(primary))

    def _zombie(self, i: int, data: bytes) -> None:
        """A removed Byzantine replica keeps voting: PREPARE and COMMIT, in its former position, for what it sees."""
        node = self.nodes[i]
        former = self.former_index.get(i)
        if former is None or node.replica is None or node.replica.is_member or self.sc.behaviour == "silent":
            return
        try:
            message = CONSENSUS_CODEC.decode(data)
        except DecodeError:
            return
        if isinstance(message, PrePrepare):
            block_hash = message.block.hash
        elif isinstance(message, Prepare):
            block_hash = message.block_hash
        else:
            return
        slot = (i, message.view, message.height, block_hash)
        if slot in self._zombie_voted:
            return
        self._zombie_voted.add(slot)
        key = self._keys_private[i]
        for kind in (Prepare, Commit):
            unsigned = kind(message.view, message.height, block_hash, former, b"")
            signature = key.sign(unsigned.DOMAIN, self.sc.chain_id, unsigned.signing_payload())
            vote = CONSENSUS_CODEC.encode(replace(unsigned, signature=signature))
            self.zombie_votes += 1
            for target in range(len(self.nodes)):
                if target != i:
                    self._transmit(i, target, vote)

    def _timer_action(self, node: Node, timer: SetTimer) -> Callable[[], None]:
        epoch = node.epoch

        def fire() -> None:
            # A cancelled or replaced timer never fires, nor one armed before a crash.
            if node.epoch == epoch and node.timers.get(timer.name) == timer.token:
                del node.timers[timer.name]
                self.feed(node.index, TimerFired(timer.name, timer.token))

        return fire

    # ------------------------------------------------------------ network

    def _transmit(self, src: int, dst: int, data: bytes) -> None:
        target = self.nodes[dst]
        epoch = target.epoch
        for delay in self.net.transit(src, dst, len(data)):
            def deliver(data: bytes = data) -> None:
                if target.epoch != epoch or not target.up or not self.net.connected(src, dst):
                    return
                if target.byzantine and self.adversary is not None:
                    self.adversary.received(dst, data)
                    self._zombie(dst, data)
                self.feed(dst, Received(data))

            self.sched.after(delay, deliver)

    def _request_sync(self, i: int, request: RequestSync) -> None:
        peers = [p for p in request.peers if p != i] or [p for p in range(len(self.nodes)) if p != i]
        peer = self.rng.choice(peers)
        delays = self.net.transit(i, peer)
        if delays:
            self.sched.after(delays[0], lambda: self._serve(peer, i, request.from_height))

    def _serve(self, src: int, dst: int, from_height: int) -> None:
        """``src`` sends ``dst`` its committed blocks from ``from_height`` (a bounded batch)."""
        server, client = self.nodes[src], self.nodes[dst]
        if not server.up or dst == src:
            return
        last = min(server.head.height, from_height + self.sc.sync_batch - 1)
        batch = [server.store[h] for h in range(max(from_height, 1), last + 1) if h in server.store]
        if not batch:
            return
        if server.byzantine and self.adversary is not None:
            batch = [(b, self.adversary.served_certificate(c)) for b, c in batch]
        epoch = client.epoch
        for delay in self.net.transit(src, dst)[:1]:
            def deliver() -> None:
                if client.epoch != epoch or not self.net.connected(src, dst):
                    return
                for block, cert in batch:
                    replica = client.replica
                    if replica is None:
                        return
                    if block.height == replica.height:  # only the next height; drop the rest
                        self.feed(dst, SyncedBlock(block, cert))

            self.sched.after(delay, deliver)

    # ------------------------------------------------------------ client load and faults

    def client_tick(self) -> None:
        """New transactions at the offered rate, gossiped to every replica that is up."""
        self._tx_credit += self.sc.offered_tx_rate * self.sc.tx_interval_ms
        count, self._tx_credit = divmod(self._tx_credit, 1000)
        # Full mempools turn clients away (back-pressure): make only what some replica can take.
        room = max((self.sc.mempool_limit - len(n.mempool) for n in self.nodes if n.up), default=0)
        txs = [self._new_tx() for _ in range(min(count, room))]
        if self.sc.measure_latency:
            self.tx_born.update(dict.fromkeys(txs, self.sched.now))
        if txs:
            for node in self.nodes:
                space = self.sc.mempool_limit - len(node.mempool)
                if node.up and space > 0:
                    node.mempool.update(dict.fromkeys(txs[:space]))
                    self.feed(node.index, PendingWork())
        self.sched.after(self.sc.tx_interval_ms, self.client_tick)

    def _new_tx(self) -> bytes:
        self.tx_seq += 1
        size = self.client_rng.randint(*self.sc.tx_bytes)
        return b"tx" + self.tx_seq.to_bytes(8, "big") + self.client_rng.randbytes(max(0, size - 10))

    def _stale_tick(self, i: int) -> None:
        """``stale`` replays earlier messages, ``garbage`` floods random bytes, now and then."""
        if self.adversary is not None and self.nodes[i].up:
            for target, data in self.adversary.replays(i) + self.adversary.flood(i):
                self._transmit(i, target, data)
        jitter = self.rng.randint(0, self.sc.stale_interval_ms)
        self.sched.after(self.sc.stale_interval_ms + jitter, lambda: self._stale_tick(i))

    def _forget(self, node: Node) -> None:
        keep = self.sc.keep_heights
        assert keep is not None
        floor = node.head.height - keep
        for h in [h for h in node.store if h < floor]:
            del node.store[h]
        node.wal = [(tag, rec) for tag, rec in node.wal if tag > node.head.height]
        self.monitor.forget_below(min(self.nodes[i].head.height for i in self.honest) - keep)

    # ------------------------------------------------------------ reading the state

    def honest_heights(self) -> dict[int, int]:
        return {i: self.nodes[i].head.height for i in sorted(self.honest)}
