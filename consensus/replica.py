"""One PBFT replica as a pure state machine (Castro & Liskov, OSDI 1999 / TOCS 2002).

Specialised to a chain: one consensus instance per height, heights decided in
order, each block naming its parent and the application state after it.  The
view is global (the primary stays the same across heights until it fails).

Rules, in the paper's terms:

* normal case (4.2): the primary of view v sends PRE-PREPARE(v, h, block);
  every replica that accepts it (right parent and state, the application says
  the block is valid) sends PREPARE; with the block and 2f+1 matching PREPAREs a
  replica is *prepared*, writes the prepared certificate to its WAL and sends
  COMMIT; 2f+1 matching COMMITs decide the block and form its certificate;
* view change (4.4): work waiting too long at a height starts a view change
  with the highest prepared certificate; 2f+1 VIEW-CHANGEs let the new primary
  send NEW-VIEW, which must re-propose the highest prepared block; timeouts
  double per consecutive failed view; f+1 validators seen in higher views pull
  a replica along; a replica holding the NEW-VIEW of its view hands it to any
  validator still asking for that view;
* checkpoints (4.3): every K heights replicas sign (height, block, state);
  2f+1 matching signatures make a checkpoint stable and older ones are dropped;
* a replica never signs two different blocks for one (view, height, phase):
  everything it signs is handed out as a WAL record first (see events.py for
  the persist -> send -> commit order), and ``restore`` rebuilds that memory.

Bad input (undecodable bytes, unknown sender, bad signature, a height outside
the window, a broken certificate) is dropped and counted in ``stats``; it never
raises out of ``handle`` and never changes the replica's state.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import replace
from typing import TypeVar

from consensus.certificates import Verifier, Verifiers
from consensus.config import ChainTip, ReplicaConfig
from consensus.events import (
    TIMER_PROGRESS,
    TIMER_VIEW_CHANGE,
    CancelTimer,
    CommitBlock,
    Event,
    Evidence,
    Executed,
    Output,
    PendingWork,
    Propose,
    Received,
    RequestSync,
    Send,
    ServeSync,
    SetTimer,
    StableCheckpoint,
    SyncedBlock,
    TimerFired,
    ValidateBlock,
    Verdict,
    ViewChanged,
    WalPrepared,
    WalRecord,
    WalSigned,
)
from consensus.height_log import HeightLog
from consensus.membership import ACTIVATION_DELAY, Schedule, ValidatorChange, ValidatorSet
from consensus.messages import (
    CONSENSUS_CODEC,
    Block,
    BlockHeader,
    Checkpoint,
    Commit,
    CommitCertificate,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    SignedMessage,
    ViewChange,
    Vote,
)
from consensus.quorum import primary_of
from consensus.view_change import check_new_view, check_view_change, mandated_block
from primitives.errors import DecodeError, UsageError
from primitives.hashing import sha256
from primitives.merkle import merkle_root

M = TypeVar("M", PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)
SignKey = tuple[str, int, int]  # (phase, view, height)

EVIDENCE_KEPT = 256


class Replica:
    """A PBFT replica.  Feed it events with ``handle``; carry out what it returns."""

    def __init__(self, config: ReplicaConfig, tip: ChainTip) -> None:
        self.cfg = config
        self.schedule = Schedule(config.validators, config.changes)
        self._verifiers = Verifiers(config.chain_id)
        # chain tip: ``height`` is the next height to decide
        self.height = tip.height + 1
        # the set deciding ``height``: filled in by _use_set
        self.vset = self.schedule.genesis
        self.index: int | None = None
        self.n = self.f = self.quorum = 0
        self.verifier = self._verifiers.of(self.vset.keys)
        self.last_hash = tip.block_hash
        self.last_timestamp = tip.timestamp_ms
        self.app_hash = tip.app_hash
        self.executed = True
        # views
        self.view = tip.view
        self.vc_target: int | None = None
        self.vc_attempts = 0
        self.new_view_proof: NewView | None = None
        self.new_view_sent: set[int] = set()
        self.view_changes: dict[int, dict[int, ViewChange]] = {}
        self.vc_latest: dict[int, int] = {}
        # logs of the current height and of the heights just ahead (the window)
        self.logs: dict[int, HeightLog] = {}
        self.prepared: PreparedCertificate | None = None
        # what this replica signed: guards against signing twice, and resends
        self.my_hashes: dict[SignKey, bytes] = {}
        self.my_messages: dict[SignKey, bytes] = {}
        # what we know of the others
        self.peer_height: dict[int, int] = {}
        self.peer_view: dict[int, int] = {}
        self.served_at: dict[int, int] = {}
        self.proof_sent: set[tuple[int, int]] = set()
        self.sync_requested_at: int | None = None
        # checkpoints
        self.checkpoint_votes: dict[int, dict[int, Checkpoint]] = {}
        self.stable_checkpoint = 0
        self.my_checkpoints: dict[int, tuple[bytes, bytes]] = {}
        # misc
        self.pending = False
        self.evidence: deque[Evidence] = deque(maxlen=EVIDENCE_KEPT)
        self.cert_evidence: set[tuple[int, int, int]] = set()
        """(validator, view, height) already reported from a certificate's votes."""
        self.stats: Counter[str] = Counter()
        self.seen: set[bytes] = set()
        self.now = 0
        self._timer_tokens: dict[str, int] = {}
        self._next_token = 1
        self._use_set(self.schedule.at(self.height))

    # ------------------------------------------------------------ public

    @property
    def primary(self) -> int:
        return primary_of(self.view, self.n)

    @property
    def is_member(self) -> bool:
        """True when this replica is in the set deciding the current height (else it only follows)."""
        return self.index is not None

    @property
    def horizon(self) -> int:
        """The highest height whose validator set this replica knows (membership.py)."""
        executed = self.height - 1 if self.executed else self.height - 2
        return executed + ACTIVATION_DELAY

    @property
    def is_primary(self) -> bool:
        return self.primary == self.index and self.vc_target is None

    @property
    def wants_proposal(self) -> bool:
        """True when a ``Propose`` now would produce a PRE-PREPARE."""
        if not (self.is_primary and self.executed):
            return False
        log = self.logs.get(self.height)
        return log is None or self.view not in log.proposals

    def handle(self, event: Event, now_ms: int) -> Output:
        """Take one input event at time ``now_ms``; return what the caller must do."""
        self.now = now_ms
        out = Output()
        match event:
            case Received(data):
                self._on_receive(data, out)
            case TimerFired(name, token):
                self._on_timer(name, token, out)
            case Propose(txs):
                self._on_propose(txs, out)
            case PendingWork():
                self.pending = True
                self._arm_progress(out)
            case Verdict(block_hash, valid, _reason):
                self._on_verdict(block_hash, valid, out)
            case Executed(height, app_hash, changes):
                self._on_executed(height, app_hash, changes, out)
            case SyncedBlock(block, certificate):
                self._on_synced(block, certificate, out)
        return out

    def start(self, now_ms: int) -> Output:
        """After construction or ``restore``: re-arm timers and resend what is in flight."""
        self.now = now_ms
        out = Output()
        for key, data in self.my_messages.items():
            if key[2] == self.height:
                out.send.append(Send(data))
        if self.vc_target is not None:
            self._set_timer(TIMER_VIEW_CHANGE, self._timeout(), out)
        return out

    def retransmit(self, now_ms: int) -> Output:
        """Send again what this replica signed at the current height (a peer reconnected)."""
        self.now = now_ms
        out = Output()
        for key, data in self.my_messages.items():
            if key[2] == self.height:
                out.send.append(Send(data))
        return out

    @classmethod
    def restore(cls, config: ReplicaConfig, tip: ChainTip, wal: Iterable[WalRecord]) -> Replica:
        """Rebuild a replica after a crash from storage's tip and its WAL records."""
        replica = cls(config, tip)
        vc_max = -1
        for record in wal:
            match record:
                case WalSigned(data):
                    message = CONSENSUS_CODEC.decode(data)
                    if isinstance(message, ViewChange):
                        vc_max = max(vc_max, message.new_view)
                    elif not isinstance(message, Checkpoint):
                        replica.view = max(replica.view, message.view)
                    replica._restore_signed(message, data)
                case WalPrepared(cert):
                    if cert.height == replica.height and (
                        replica.prepared is None or cert.view > replica.prepared.view
                    ):
                        replica.prepared = cert
        if vc_max > replica.view:
            replica.vc_target = vc_max
        return replica

    # ------------------------------------------------------------ receiving

    def _drop(self, reason: str) -> None:
        self.stats["dropped"] += 1
        self.stats[f"dropped.{reason}"] += 1

    def _on_receive(self, data: bytes, out: Output) -> None:
        self.stats["received"] += 1
        digest = sha256(data)
        if digest in self.seen:
            self._drop("duplicate")
            return
        try:
            message = CONSENSUS_CODEC.decode(data)
        except DecodeError:
            self._drop("malformed")
            return
        if message.height > self.height + self.cfg.window:
            self._drop("beyond-window")
            return
        if message.height > self.horizon:
            # Its validator set may not be known yet: check it against the newest known set only to
            # learn that a peer is ahead, and leave the message for a later retransmission or sync.
            self._hint_ahead(message, out)
            self._drop("beyond-horizon")
            return
        vset = self.schedule.at(message.height)
        if message.sender >= vset.n:
            self._drop("unknown-sender")
            return
        if message.sender == self._position_at(message.height):
            self._drop("own-message")
            return
        if isinstance(message, Checkpoint):
            self._on_checkpoint(message, vset, out)
            return
        verifier = self._verifier_for(vset)
        if not verifier.verify(message.sender, message.DOMAIN, message.signing_payload(), message.signature):
            self._drop("bad-signature")
            return
        if len(self.seen) > 100_000:
            self.seen.clear()
        self.seen.add(digest)
        self.stats["accepted"] += 1
        self._note_peer(message)
        if message.height < self.height:
            # A late vote for the height just decided is normal; a VIEW-CHANGE
            # for a decided height, or anything older, means the sender is stuck.
            if isinstance(message, ViewChange) or message.height < self.height - 1:
                peer = self._current_index(message.sender, message.height)
                if peer is not None:
                    self._serve_lagging(peer, message.height, out)
            self._drop("old-height")
            return
        match message:
            case PrePrepare():
                self._on_pre_prepare(message, out)
            case Prepare() | Commit():
                self._on_vote(message, out)
            case ViewChange():
                self._on_view_change(message, out)
            case NewView():
                self._on_new_view(message, out)
        self._check_behind(out)

    def _note_peer(self, message: SignedMessage) -> None:
        sender = self._current_index(message.sender, message.height)
        if sender is None:
            return
        if message.height > self.peer_height.get(sender, 0):
            self.peer_height[sender] = message.height
        if message.height == self.height:
            view: int = message.new_view if isinstance(message, ViewChange) else getattr(message, "view", 0)
            if view > self.peer_view.get(sender, -1):
                self.peer_view[sender] = view

    def _position_at(self, height: int) -> int | None:
        """This replica's position in the set deciding ``height`` (None: not a member there)."""
        if height == self.height:
            return self.index
        return self.schedule.at(height).index_of(self.cfg.key.verify_key)

    def _hint_ahead(self, message: SignedMessage, out: Output) -> None:
        newest = self.schedule.at(self.horizon)
        if message.sender >= newest.n or message.sender == newest.index_of(self.cfg.key.verify_key):
            return
        verifier = self._verifier_for(newest)
        if not verifier.verify(message.sender, message.DOMAIN, message.signing_payload(), message.signature):
            return
        peer = self.vset.index_of(newest.keys[message.sender])
        ahead = message.height + 1 if isinstance(message, Checkpoint) else message.height
        if peer is not None and ahead > self.peer_height.get(peer, 0):
            self.peer_height[peer] = ahead
            self._check_behind(out)

    def _current_index(self, sender: int, height: int) -> int | None:
        """The position in the current set of the validator at ``sender`` in the set of ``height``."""
        if height == self.height:
            return sender
        vset = self.schedule.at(height)
        if vset is self.vset or vset.keys == self.vset.keys:
            return sender
        return self.vset.index_of(vset.keys[sender])

    def _verifier_for(self, vset: ValidatorSet) -> Verifier:
        return self.verifier if vset is self.vset else self._verifiers.of(vset.keys)

    def _use_set(self, vset: ValidatorSet) -> None:
        """The current height is decided by ``vset``: indices of peers in the old set mean nothing now."""
        changed = vset.keys != self.vset.keys
        self.vset = vset
        self.n, self.f, self.quorum = vset.n, vset.f, vset.quorum
        self.index = vset.index_of(self.cfg.key.verify_key)
        self.verifier = self._verifiers.of(vset.keys)
        if changed:
            self.peer_height.clear()
            self.served_at.clear()

    def _serve_lagging(self, peer: int, from_height: int, out: Output) -> None:
        last = self.served_at.get(peer)
        if last is not None and self.now - last < self.cfg.progress_timeout_ms // 4:
            return
        self.served_at[peer] = self.now
        out.sync.append(ServeSync(peer, from_height))

    def _check_behind(self, out: Output) -> None:
        ahead = tuple(sorted(p for p, h in self.peer_height.items() if h > self.height))
        if len(ahead) >= self.vset.weak_quorum:
            self._request_sync(ahead, out)

    def _request_sync(self, peers: tuple[int, ...], out: Output) -> None:
        last = self.sync_requested_at
        if last is not None and self.now - last < self.cfg.progress_timeout_ms // 2:
            return
        self.sync_requested_at = self.now
        self.stats["sync-requests"] += 1
        out.sync.append(RequestSync(self.height, peers))

    def _log(self, height: int) -> HeightLog:
        log = self.logs.get(height)
        if log is None:
            log = self.logs[height] = HeightLog(height)
        return log

    def _evidence(self, validator: int, kind: str, first: SignedMessage, second: SignedMessage, out: Output) -> None:
        item = Evidence(validator, kind, first, second)
        self.evidence.append(item)
        out.evidence.append(item)
        self.stats["evidence"] += 1

    def _prepared_evidence(self, vc: ViewChange, out: Output) -> None:
        cert = vc.prepared
        if cert is not None:
            self._certificate_evidence(Prepare, cert.height, cert.view, cert.block_hash, cert.votes, out)

    def _certificate_evidence(
        self, kind: type[Prepare] | type[Commit], height: int, view: int, block_hash: bytes,
        votes: Iterable[Vote], out: Output,
    ) -> None:
        """Votes of a checked certificate that contradict what their signer sent us for that (view, height).

        An equivocating primary shows each honest replica one fork, so none sees
        two of its messages; a certificate formed on the other fork carries its
        signature for the other block, which with what it sent us is evidence.
        An honest validator binds one block per (view, height) in every phase.
        """
        log = self.logs.get(height)
        if log is None:
            return
        me = self._position_at(height)
        for vote in votes:
            reported = (vote.validator, view, height)
            if vote.validator == me or reported in self.cert_evidence:
                continue
            earlier = _conflicting(log, vote.validator, view, block_hash)
            if earlier is not None:
                if len(self.cert_evidence) >= EVIDENCE_KEPT:
                    self.cert_evidence.clear()
                self.cert_evidence.add(reported)
                second = kind(view, height, block_hash, vote.validator, vote.signature)
                self._evidence(vote.validator, kind.__name__.lower(), earlier, second, out)

    # ------------------------------------------------------------ normal case

    def _on_pre_prepare(self, m: PrePrepare, out: Output) -> None:
        if m.sender != primary_of(m.view, self.schedule.at(m.height).n):
            self._drop("not-primary")
            return
        if m.block.height != m.height:
            self._drop("bad-proposal")
            return
        log = self._log(m.height)
        if len(log.first_seen) >= self.cfg.max_log_entries_per_height:
            self._drop("log-full")
            return
        earlier = log.remember(m)
        if earlier is not None:
            self._evidence(m.sender, "pre-prepare", earlier, m, out)
            return
        if m.view in log.proposals:
            return
        log.proposals[m.view] = m.block
        log.blocks[m.block.hash] = m.block
        if m.height == self.height and m.view >= self.view:
            self._arm_progress(out)
            self._progress(out)

    def _on_vote(self, m: Prepare | Commit, out: Output) -> None:
        log = self._log(m.height)
        if len(log.first_seen) >= self.cfg.max_log_entries_per_height:
            self._drop("log-full")
            return
        earlier = log.remember(m)
        if earlier is not None:
            self._evidence(m.sender, type(m).__name__.lower(), earlier, m, out)
            return
        table = log.prepares if isinstance(m, Prepare) else log.commits
        log.add_vote(table, m)
        if m.height == self.height:
            if m.view >= self.view:
                self._arm_progress(out)
            self._pull_along(out)
            self._progress(out)

    def _on_propose(self, txs: tuple[bytes, ...], out: Output) -> None:
        me = self.index
        if not txs or not self.wants_proposal or me is None:
            self.stats["propose-ignored"] += 1
            return
        header = BlockHeader(
            chain_id=self.cfg.chain_id,
            height=self.height,
            prev_hash=self.last_hash,
            proposer=me,
            view=self.view,
            timestamp_ms=max(self.now, self.last_timestamp + 1),
            tx_root=merkle_root(txs),
            tx_count=len(txs),
            app_hash=self.app_hash,
        )
        block = Block(header, tuple(txs))
        message = self._emit(PrePrepare(self.view, self.height, block, me, b""), out)
        if message is None:
            return
        log = self._log(self.height)
        log.remember(message)
        log.proposals[self.view] = block
        log.blocks[block.hash] = block
        log.verdicts[block.hash] = True
        self.stats["proposed"] += 1
        self._arm_progress(out)
        self._progress(out)

    def _on_verdict(self, block_hash: bytes, valid: bool, out: Output) -> None:
        log = self.logs.get(self.height)
        if log is None or block_hash not in log.validating:
            return
        log.validating.discard(block_hash)
        log.verdicts[block_hash] = valid
        if not valid:
            self.stats["invalid-blocks"] += 1
        self._progress(out)

    def _acceptable(self, block: Block, view: int, log: HeightLog, out: Output) -> bool:
        """May we PREPARE ``block`` in ``view``?  Asks the application once if needed."""
        known = log.verdicts.get(block.hash)
        if known is not None:
            return known
        h = block.header
        problem = None
        if h.chain_id != self.cfg.chain_id or h.height != self.height:
            problem = "wrong chain or height"
        elif h.prev_hash != self.last_hash:
            problem = "wrong parent"
        elif h.app_hash != self.app_hash:
            problem = "wrong app hash"
        elif h.tx_count != len(block.txs) or not block.txs:
            problem = "wrong transaction count"
        elif view not in log.reproposed:
            if h.view != view or h.proposer != primary_of(view, self.n):
                problem = "header names another view or proposer"
            elif not self.last_timestamp < h.timestamp_ms <= self.now + self.cfg.max_clock_drift_ms:
                problem = "timestamp out of bounds"
        if problem is not None:
            self._drop("bad-proposal")
            log.verdicts[block.hash] = False
            return False
        if view in log.reproposed:
            # NEW-VIEW carried it over: 2f+1 prepared it, so f+1 honest replicas validated it.
            log.verdicts[block.hash] = True
            return True
        if block.hash not in log.validating:
            log.validating.add(block.hash)
            out.validate.append(ValidateBlock(block))
        return False

    def _progress(self, out: Output) -> None:
        """Do whatever the current height's log now allows; repeat while it changes."""
        while self.executed and self._step(out):
            pass

    def _step(self, out: Output) -> bool:
        log = self.logs.get(self.height)
        if log is None:
            return False
        for (view, block_hash), votes in log.commits.items():
            if len(votes) >= self.quorum:
                block = log.blocks.get(block_hash)
                if block is None and self.prepared is not None and self.prepared.block.hash == block_hash:
                    block = self.prepared.block
                if block is None:
                    self._request_sync(tuple(sorted(votes)), out)
                    return False
                self._decide(log, block, view, out)
                return True
        me = self.index
        if self.vc_target is not None or me is None:
            return False  # changing views, or a follower that only counts the members' COMMITs
        view = self.view
        block = log.proposals.get(view)
        if block is None:
            return False
        key = ("prepare", view, self.height)
        signed = self.my_hashes.get(key)
        if signed is None:
            if not self._acceptable(block, view, log, out):
                return False
            prepare = self._emit(Prepare(view, self.height, block.hash, me, b""), out)
            if prepare is None:
                return False
            log.add_vote(log.prepares, prepare)
            return True
        if signed != block.hash:
            return False
        if ("commit", view, self.height) in self.my_hashes:
            return False
        prepares = log.votes(log.prepares, view, block.hash)
        if len(prepares) < self.quorum:
            return False
        cert = PreparedCertificate(view, block, prepares[: self.quorum])
        self.prepared = cert
        out.persist.append(WalPrepared(cert))
        commit = self._emit(Commit(view, self.height, block.hash, me, b""), out)
        if commit is not None:
            log.add_vote(log.commits, commit)
        return True

    def _decide(self, log: HeightLog, block: Block, view: int, out: Output) -> None:
        votes = log.votes(log.commits, view, block.hash)[: self.quorum]
        cert = CommitCertificate(self.height, view, block.hash, votes)
        out.commit.append(CommitBlock(block, cert))
        self.stats["committed"] += 1
        self._advance(block, view, out)

    def _advance(self, block: Block, cert_view: int, out: Output) -> None:
        """Move past a decided height (normal commit or catch-up)."""
        height = block.height
        for h in [h for h in self.logs if h <= height]:
            del self.logs[h]
        for key in [k for k in self.my_hashes if k[2] <= height]:
            del self.my_hashes[key]
            self.my_messages.pop(key, None)
        self.height = height + 1
        if self.schedule.at(self.height) is not self.vset:
            self._use_set(self.schedule.at(self.height))
            self.stats["validator-set-changes"] += 1
        self.last_hash = block.hash
        self.last_timestamp = block.header.timestamp_ms
        self.executed = False
        self.prepared = None
        self.view_changes.clear()
        self.vc_latest.clear()
        self.peer_view.clear()
        self.proof_sent.clear()
        self.seen.clear()
        self.vc_attempts = 0
        self.pending = False
        self.sync_requested_at = None
        if self.vc_target is not None:
            # The height we were changing views for is decided; the VIEW-CHANGE
            # promised nothing about later heights.
            self.vc_target = None
            self._cancel_timer(TIMER_VIEW_CHANGE, out)
        if cert_view > self.view:
            self.view = cert_view
            self.new_view_proof = None
        self._cancel_timer(TIMER_PROGRESS, out)

    def _on_executed(
        self, height: int, app_hash: bytes, changes: tuple[ValidatorChange, ...], out: Output
    ) -> None:
        if self.executed or height != self.height - 1:
            self._drop("unexpected-executed")
            return
        for change in changes:
            if change.height < height + ACTIVATION_DELAY:
                # Replicas that had already checked messages of that height with the old set would
                # disagree on it: the ledger must never schedule this.
                raise UsageError(
                    f"block {height} scheduled a validator-set change at height {change.height}, "
                    f"before {height + ACTIVATION_DELAY}"
                )
            if self.schedule.add(change):
                self.stats["validator-set-changes-scheduled"] += 1
        self.app_hash = app_hash
        self.executed = True
        if height % self.cfg.checkpoint_interval == 0:
            self.my_checkpoints[height] = (self.last_hash, app_hash)
            me = self._position_at(height)
            checkpoint = None if me is None else self._emit(Checkpoint(height, self.last_hash, app_hash, me, b""), out)
            if checkpoint is not None:
                self.checkpoint_votes.setdefault(height, {})[checkpoint.sender] = checkpoint
            self._check_stable(height, out)
        log = self.logs.get(self.height)
        if log is not None and (log.proposals or log.prepares or log.commits):
            self._arm_progress(out)
        self._progress(out)
        self._check_behind(out)

    def _on_synced(self, block: Block, cert: CommitCertificate, out: Output) -> None:
        if block.height != self.height:
            self._drop("sync-out-of-order")
            return
        if not self.executed:
            self._drop("sync-before-executed")
            return
        reason = self.verifier.check_commit_certificate(cert, block)
        if reason is not None:
            self._drop("bad-sync-certificate")
            return
        if block.header.prev_hash != self.last_hash or block.header.app_hash != self.app_hash:
            # 2f+1 validators certified a chain that is not ours: either more
            # than f are faulty or our own state diverged.  Never adopt it.
            self._drop("sync-conflict")
            return
        self._certificate_evidence(Commit, cert.height, cert.view, cert.block_hash, cert.votes, out)
        out.commit.append(CommitBlock(block, cert, via_sync=True))
        self.stats["synced"] += 1
        self._advance(block, cert.view, out)

    # ------------------------------------------------------------ checkpoints

    def _on_checkpoint(self, m: Checkpoint, vset: ValidatorSet, out: Output) -> None:
        if m.height % self.cfg.checkpoint_interval or m.height <= self.stable_checkpoint:
            self._drop("old-checkpoint")
            return
        if m.height > self.height + self.cfg.window:
            self._drop("beyond-window")
            return
        if not self._verifier_for(vset).verify(m.sender, m.DOMAIN, m.signing_payload(), m.signature):
            self._drop("bad-signature")
            return
        self.stats["accepted"] += 1
        peer = self._current_index(m.sender, m.height)
        if peer is not None and m.height + 1 > self.peer_height.get(peer, 0):
            self.peer_height[peer] = m.height + 1
        self.checkpoint_votes.setdefault(m.height, {})[m.sender] = m
        self._check_stable(m.height, out)
        self._check_behind(out)

    def _check_stable(self, height: int, out: Output) -> None:
        groups: Counter[tuple[bytes, bytes]] = Counter(
            (c.block_hash, c.app_hash) for c in self.checkpoint_votes.get(height, {}).values()
        )
        if not groups:
            return
        (block_hash, app_hash), count = groups.most_common(1)[0]
        if count < self.schedule.at(height).quorum:
            return
        mine = self.my_checkpoints.get(height)
        if mine is not None and mine != (block_hash, app_hash):
            self.stats["checkpoint-mismatch"] += 1
        self.stable_checkpoint = height
        # Garbage collection below the stable checkpoint (section 4.3).
        for h in [h for h in self.checkpoint_votes if h <= height]:
            del self.checkpoint_votes[h]
        for h in [h for h in self.my_checkpoints if h <= height]:
            del self.my_checkpoints[h]
        for key in [k for k in self.my_hashes if k[0] == "checkpoint" and k[2] <= height]:
            del self.my_hashes[key]
            self.my_messages.pop(key, None)
        out.checkpoints.append(StableCheckpoint(height, block_hash, app_hash))

    # ------------------------------------------------------------ view change

    def _timeout(self) -> int:
        doublings = min(self.vc_attempts, self.cfg.max_backoff_doublings)
        return self.cfg.progress_timeout_ms << doublings

    def _arm_progress(self, out: Output) -> None:
        if self.index is not None and self.vc_target is None and TIMER_PROGRESS not in self._timer_tokens:
            self._set_timer(TIMER_PROGRESS, self._timeout(), out)

    def _on_timer(self, name: str, token: int, out: Output) -> None:
        if self._timer_tokens.get(name) != token:
            return
        del self._timer_tokens[name]
        if name == TIMER_PROGRESS and self.vc_target is None:
            self._start_view_change(self.view + 1, f"no commit at height {self.height} in time", out)
        elif name == TIMER_VIEW_CHANGE and self.vc_target is not None:
            target = self.vc_target
            if sum(1 for v in self.vc_latest.values() if v >= target) < self.quorum:
                # Section 4.5.2: only a view change that 2f+1 replicas joined may time
                # out into the next one; a replica alone in a higher view would
                # otherwise race ahead of the others for ever.  Ask again instead.
                self._resend_view_change(target, out)
                return
            self._start_view_change(target + 1, f"no NEW-VIEW for view {target}", out)

    def _start_view_change(self, target: int, reason: str, out: Output) -> None:
        me = self.index
        if me is None or target <= max(self.view, self.vc_target if self.vc_target is not None else -1):
            return
        vc = self._emit(ViewChange(target, self.height, self.prepared, me, b""), out)
        if vc is None:
            return
        self.vc_target = target
        self.vc_attempts += 1
        self.stats["view-changes-started"] += 1
        self._record_view_change(vc)
        self._cancel_timer(TIMER_PROGRESS, out)
        self._set_timer(TIMER_VIEW_CHANGE, self._timeout(), out)
        self._maybe_send_new_view(target, out)

    def _resend_view_change(self, target: int, out: Output) -> None:
        data = self.my_messages.get(("view-change", target, self.height))
        me = self.index
        if data is not None:
            out.send.append(Send(data))
        elif me is not None:
            vc = self._emit(ViewChange(target, self.height, self.prepared, me, b""), out)
            if vc is not None:
                self._record_view_change(vc)
        self.stats["view-change-resent"] += 1
        self._set_timer(TIMER_VIEW_CHANGE, self._timeout(), out)

    def _record_view_change(self, vc: ViewChange) -> None:
        old = self.vc_latest.get(vc.sender)
        if old is not None:
            if old >= vc.new_view:
                return
            self.view_changes.get(old, {}).pop(vc.sender, None)
        self.vc_latest[vc.sender] = vc.new_view
        self.view_changes.setdefault(vc.new_view, {})[vc.sender] = vc

    def _on_view_change(self, m: ViewChange, out: Output) -> None:
        if m.height > self.height:
            return
        if check_view_change(self.verifier, m) is not None:
            self._drop("bad-view-change")
            return
        if m.new_view <= self.view:
            self._hand_over_proof(m.sender, out)
            return
        self._prepared_evidence(m, out)
        self._record_view_change(m)
        self._pull_along(out)
        self._maybe_send_new_view(m.new_view, out)

    def _hand_over_proof(self, peer: int, out: Output) -> None:
        proof = self.new_view_proof
        if proof is None or self.vc_target is not None or proof.view != self.view:
            return
        if (peer, proof.view) in self.proof_sent:
            return
        self.proof_sent.add((peer, proof.view))
        out.send.append(Send(CONSENSUS_CODEC.encode(proof), to=peer))

    def _pull_along(self, out: Output) -> None:
        """f+1 validators at higher views at this height: one of them is honest, follow."""
        current = self.view if self.vc_target is None else self.vc_target
        higher = sorted((v for p, v in self.peer_view.items() if v > current and p != self.index), reverse=True)
        need = self.vset.weak_quorum
        if len(higher) >= need:
            self._start_view_change(higher[need - 1], f"{need} validators are in view {higher[need - 1]} or above", out)

    def _maybe_send_new_view(self, view: int, out: Output) -> None:
        me = self.index
        if me is None or primary_of(view, self.n) != me or self.vc_target != view or view in self.new_view_sent:
            return
        changes = self.view_changes.get(view, {})
        if len(changes) < self.quorum:
            return
        chosen = tuple(changes[s] for s in sorted(changes))[: self.quorum]
        block = mandated_block(chosen)
        nv = self._emit(NewView(view, self.height, chosen, block, me, b""), out)
        if nv is None:
            return
        self.new_view_sent.add(view)
        self._enter_view(nv, "this replica gathered a quorum of VIEW-CHANGEs", out)

    def _on_new_view(self, m: NewView, out: Output) -> None:
        lowest = self.vc_target if self.vc_target is not None else self.view + 1
        if m.view < lowest or m.height > self.height:
            return
        reason = check_new_view(self._verifier_for(self.schedule.at(m.height)), m)
        if reason is not None:
            self._drop("bad-new-view")
            return
        for vc in m.view_changes:
            self._prepared_evidence(vc, out)
        self._enter_view(m, f"NEW-VIEW from validator {m.sender}", out)

    def _enter_view(self, nv: NewView, why: str, out: Output) -> None:
        old = self.view
        self.view = nv.view
        self.vc_target = None
        self.new_view_proof = nv
        self._cancel_timer(TIMER_VIEW_CHANGE, out)
        for v in [v for v in self.view_changes if v <= nv.view]:
            del self.view_changes[v]
        self.stats["views-entered"] += 1
        out.view_changes.append(ViewChanged(old, nv.view, self.height, self.primary, why))
        if nv.height != self.height:
            return  # a proof of an earlier height's view change: only the view matters
        log = self._log(self.height)
        if nv.block is not None:
            log.proposals[nv.view] = nv.block
            log.blocks[nv.block.hash] = nv.block
            if mandated_block(nv.view_changes) is not None:
                log.reproposed.add(nv.view)
        if self.pending or nv.block is not None:
            self._arm_progress(out)
        self._progress(out)

    # ------------------------------------------------------------ signing and timers

    def _emit(self, unsigned: M, out: Output, to: int | None = None) -> M | None:
        """Sign, log to the WAL and send -- unless it would contradict something signed before."""
        if unsigned.sender != self._position_at(unsigned.height):
            self.stats["refused-not-a-member"] += 1
            return None
        key, target = _sign_key(unsigned)
        earlier = self.my_hashes.get(key)
        if earlier is not None and earlier != target:
            self.stats["refused-double-sign"] += 1
            return None
        if earlier is not None:
            data = self.my_messages[key]
            out.send.append(Send(data, to))
            signed: M = CONSENSUS_CODEC.decode(data)
            return signed
        signature = self.cfg.key.sign(unsigned.DOMAIN, self.cfg.chain_id, unsigned.signing_payload())
        message = replace(unsigned, signature=signature)
        data = CONSENSUS_CODEC.encode(message)
        out.persist.append(WalSigned(data))
        out.send.append(Send(data, to))
        self.my_hashes[key] = target
        self.my_messages[key] = data
        self.stats["signed"] += 1
        return message

    def _restore_signed(self, message: SignedMessage, data: bytes) -> None:
        key, target = _sign_key(message)
        if isinstance(message, Checkpoint) or key[2] < self.height:
            return
        self.my_hashes[key] = target
        self.my_messages[key] = data
        log = self._log(key[2])
        match message:
            case PrePrepare():
                log.remember(message)
                log.proposals[message.view] = message.block
                log.blocks[message.block.hash] = message.block
                log.verdicts[message.block.hash] = True
            case Prepare():
                log.remember(message)
                log.add_vote(log.prepares, message)
            case Commit():
                log.remember(message)
                log.add_vote(log.commits, message)
            case ViewChange():
                self._record_view_change(message)
            case NewView():
                self.new_view_sent.add(message.view)
                if message.block is not None:
                    log.proposals[message.view] = message.block
                    log.blocks[message.block.hash] = message.block
                    if mandated_block(message.view_changes) is not None:
                        log.reproposed.add(message.view)
                if message.view >= self.view:
                    self.new_view_proof = message

    def _set_timer(self, name: str, delay_ms: int, out: Output) -> None:
        token = self._next_token
        self._next_token += 1
        self._timer_tokens[name] = token
        out.timers.append(SetTimer(name, self.now + delay_ms, token))

    def _cancel_timer(self, name: str, out: Output) -> None:
        if self._timer_tokens.pop(name, None) is not None:
            out.timers.append(CancelTimer(name))


def _conflicting(log: HeightLog, validator: int, view: int, block_hash: bytes) -> SignedMessage | None:
    """A message ``validator`` sent us in ``view`` at the log's height that binds another block, if any."""
    for phase in ("PrePrepare", "Prepare", "Commit"):
        found = log.first_seen.get((validator, phase, view))
        if found is not None and _sign_key(found)[1] != block_hash:
            return found
    return None


def _sign_key(message: SignedMessage) -> tuple[SignKey, bytes]:
    """(phase, view, height) and the block it binds, for the never-sign-twice rule."""
    match message:
        case PrePrepare():
            return ("pre-prepare", message.view, message.height), message.block.hash
        case Prepare():
            return ("prepare", message.view, message.height), message.block_hash
        case Commit():
            return ("commit", message.view, message.height), message.block_hash
        case ViewChange():
            prepared = b"" if message.prepared is None else message.prepared.block.hash
            return ("view-change", message.new_view, message.height), prepared
        case NewView():
            block = b"" if message.block is None else message.block.hash
            return ("new-view", message.view, message.height), block
        case Checkpoint():
            return ("checkpoint", 0, message.height), message.block_hash + message.app_hash
    raise TypeError(type(message).__name__)
