"""The timeline of a chaos run, applied to live nodes: each step at its time, undone at its end.

Symbolic targets are resolved when the step starts: ``primary`` is the
primary the validators report at that moment, ``f``/``f+1``/``any`` are
validators picked by the run's seeded random generator among those not
already faulty.  Every step leaves a ``FaultWindow`` with its real start and
end in the record; what is still in force when the load ends is undone by
``undo_all`` (healed, resumed, restarted, Byzantine behaviour and skew off).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.client.http import ApiFailure, NodeClient, NodeUnreachable
from node.lab import cluster as clusters
from node.lab import disk_faults
from node.lab.chaos.load import Load
from node.lab.chaos.record import FaultWindow, RunRecord
from node.lab.chaos.scenario import LINK_SETTINGS, ScenarioError, Step
from node.lab.faults import AdminClient

Undo = Callable[[], Awaitable[None]]
NEUTRAL: dict[str, Any] = {"cut": False, "loss": 0.0, "delay_ms": 0, "jitter_ms": 0, "duplicate": 0.0, "reorder": 0.0}
assert set(NEUTRAL) == set(LINK_SETTINGS)


@dataclass(slots=True)
class Pending:
    window: FaultWindow
    undo: Undo


class Timeline:
    """Applies the steps of one run; ``faulty`` says which nodes some step currently perturbs."""

    def __init__(self, root: Path, record: RunRecord, admin: AdminClient, load: Load,
                 clock: Callable[[], float], say: Callable[[str], None], seed: int) -> None:
        self.root, self.record, self.admin, self.load = root, record, admin, load
        self.now, self.say = clock, say
        self.rng = random.Random(seed)
        self.validators = list(record.validators)
        self.names = [*record.validators, *record.observers]
        self.f = (len(self.validators) - 1) // 3
        self.pending: list[Pending] = []
        self.flood_maker: Callable[[int], bytes] | None = None
        self.until = 0.0  # the load's end (s): a flood without for_s lasts until then
        self.stopped = asyncio.Event()  # set when the load ends: faults in force wait for undo_all

    @property
    def faulty(self) -> set[str]:
        return {n for p in self.pending for n in p.window.nodes}

    # ------------------------------------------------------------ targets

    async def primary(self) -> str:
        """The primary most validators report now (the first validator if none answers)."""
        async def ask(name: str) -> str | None:
            try:
                async with NodeClient(self.admin.apis[name], timeout=2) as client:
                    found = (await client.status()).get("primary")
            except (NodeUnreachable, ApiFailure):
                return None
            return found if isinstance(found, str) else None

        answers = await asyncio.gather(*(ask(n) for n in self.validators if n not in self.faulty))
        votes = Counter(a for a in answers if a in self.validators)
        return votes.most_common(1)[0][0] if votes else self.validators[0]

    async def resolve(self, targets: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        for target in targets:
            out += [n for n in await self._one_target(target, out) if n not in out]
        return out

    async def _one_target(self, target: str, taken: list[str]) -> list[str]:
        healthy = [v for v in self.validators if v not in self.faulty and v not in taken]
        count = {"f": self.f, "f+1": self.f + 1, "any": 1}.get(target)
        if count is not None:
            pool = healthy if len(healthy) >= count else [v for v in self.validators if v not in taken]
            return sorted(self.rng.sample(pool, min(count, len(pool))))
        match target:
            case "primary":
                return [await self.primary()]
            case "all":
                return list(self.names)
            case "validators":
                return list(self.validators)
            case "observers":
                return list(self.record.observers)
            case "byzantine":
                return list(self.record.byzantine)
        if target not in self.names:
            raise ScenarioError(f"no node named {target!r} in this network; its nodes: {', '.join(self.names)}")
        return [target]

    # ------------------------------------------------------------ windows

    def _open(self, kind: str, nodes: list[str], detail: str = "", start: float | None = None) -> FaultWindow:
        """The fault's window, from ``start`` (taken just before it was applied) or now."""
        window = FaultWindow(kind, nodes, round(self.now() if start is None else start, 3), None, detail)
        self.record.windows.append(window)
        self.say(f"{window.start_s:6.1f}s  {kind} {','.join(nodes)} {detail}".rstrip())
        return window

    def _close(self, window: FaultWindow) -> None:
        window.end_s = round(self.now(), 3)
        self.say(f"{window.end_s:6.1f}s  end of {window.kind} {','.join(window.nodes)}")

    async def _hold(self, window: FaultWindow, undo: Undo, for_s: float | None) -> None:
        """Keep the fault for ``for_s`` (until ``undo_all`` when None), then undo it and close the window."""
        pending = Pending(window, undo)
        self.pending.append(pending)
        if for_s is None:
            return
        await self._sleep(window.start_s + for_s - self.now())
        if pending in self.pending and not self.stopped.is_set():
            self.pending.remove(pending)
            await undo()
            self._close(window)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less if the run stops the timeline meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), max(0.0, seconds))

    async def undo_all(self) -> None:
        """End every fault still in force: the load is over."""
        pending, self.pending = self.pending, []
        for item in pending:
            try:
                await item.undo()
            except Exception as exc:  # one failed undo must not leave the others in force
                self.record.notes.append(f"undoing {item.window.kind} on {','.join(item.window.nodes)} failed: {exc}")
            self._close(item.window)

    # ------------------------------------------------------------ running the steps

    async def run(self, steps: tuple[Step, ...]) -> None:
        """Every step at its time (they may overlap); returns when the last one has ended."""
        await asyncio.gather(*(self._at(step) for step in steps))

    async def _at(self, step: Step) -> None:
        await asyncio.sleep(max(0.0, step.at_s - self.now()))
        try:
            await ACTIONS[step.action](self, step)
        except Exception as exc:
            self.record.notes.append(f"step '{step.describe()}' failed: {exc}")
            self.say(f"{self.now():6.1f}s  step '{step.describe()}' failed: {exc}")
            if isinstance(exc, ScenarioError):
                raise

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, self.root, *args)

    async def kill(self, step: Step) -> None:
        nodes = await self.resolve(step.nodes)
        start = self.now()
        await asyncio.gather(*(self._thread(clusters.signal_node, n, "kill") for n in nodes))
        await self._hold(self._open("kill", nodes, start=start), lambda: self._restart(nodes), step.for_s)

    async def _restart(self, nodes: list[str]) -> None:
        await asyncio.gather(*(self._thread(clusters.restart_node, n) for n in nodes))

    async def pause(self, step: Step) -> None:
        nodes = await self.resolve(step.nodes)
        start = self.now()
        for n in nodes:
            await self._thread(clusters.signal_node, n, "pause")

        async def resume() -> None:
            for n in nodes:
                await self._thread(clusters.signal_node, n, "resume")

        await self._hold(self._open("pause", nodes, start=start), resume, step.for_s)

    async def restart(self, step: Step) -> None:
        nodes = await self.resolve(step.nodes)
        window = self._open("restart", nodes)
        await asyncio.gather(*(self._thread(stop_and_start, n) for n in nodes))
        self._close(window)

    async def kill_loop(self, step: Step) -> None:
        assert step.for_s is not None
        end = self.now() + step.for_s
        while self.now() + step.down_s < end and not self.stopped.is_set():
            began = self.now()
            node = [await self.primary()]
            start = self.now()
            await self._thread(clusters.signal_node, node[0], "kill")
            window = self._open("kill", node, "(kill-loop: the primary)", start)
            await self._hold(window, functools.partial(self._restart, node), step.down_s)
            await self._sleep(began + step.every_s - self.now())

    async def rolling_restart(self, step: Step) -> None:
        for node in await self.resolve(step.nodes or ("all",)):
            if self.stopped.is_set():
                return
            window = self._open("restart", [node], "(rolling)")
            await self._thread(stop_and_start, node)
            self._close(window)
            await self._sleep(step.gap_s)

    async def wipe(self, step: Step) -> None:
        nodes = await self.resolve(step.nodes)
        window = self._open("wipe", nodes)
        await asyncio.gather(*(self._thread(disk_faults.wipe_node, n) for n in nodes))
        self._close(window)

    def _snapshot_dir(self, name: str, node: str) -> Path:
        return self.root.parent / "snapshots" / name / node

    async def snapshot(self, step: Step) -> None:
        for node in await self.resolve(step.nodes):
            height = await self._thread(disk_faults.snapshot_node, node, self._snapshot_dir(step.name, node))
            note = f"snapshot {step.name!r} of {node} at height {height} ({self.now():.1f} s)"
            self.record.notes.append(note)
            self.say(f"{self.now():6.1f}s  {note}")

    async def restore(self, step: Step) -> None:
        nodes = await self.resolve(step.nodes)
        window = self._open("restore", nodes, f"from snapshot {step.name!r}")
        await asyncio.gather(
            *(self._thread(disk_faults.restore_node, n, self._snapshot_dir(step.name, n)) for n in nodes)
        )
        self._close(window)

    async def partition(self, step: Step) -> None:
        if step.groups:
            groups = [await self.resolve(g) for g in step.groups]
        else:
            alone = await self.resolve(step.nodes)
            groups = [alone, [n for n in self.names if n not in alone]]
        start = self.now()
        await self.admin.partition(groups)
        away = min(groups, key=len) if len({len(g) for g in groups}) > 1 else [n for g in groups for n in g]
        detail = " / ".join(",".join(g) for g in groups)
        await self._hold(self._open("partition", away, detail, start), self.admin.heal, step.for_s)

    async def link(self, step: Step) -> None:
        sources = await self.resolve(step.nodes)
        targets = await self.resolve(step.to)
        pairs = [(s, t) for s in sources for t in targets if s != t]
        if step.both_ways:
            pairs += [(t, s) for s, t in pairs if (t, s) not in pairs]
        settings = dict(step.settings)
        neutral = {k: NEUTRAL[k] for k in settings}

        async def put(values: dict[str, Any]) -> None:
            await asyncio.gather(*(self.admin.link(s, t, values) for s, t in pairs))

        start = self.now()
        await put(settings)
        detail = " ".join(f"{k}={v}" for k, v in settings.items()) + (f" flapping every {step.flap_s:g}s"
                                                                         if step.flap_s else "")
        window = self._open("link", sources, detail, start)
        if step.flap_s and step.for_s:
            await self._flap(step.flap_s, window.start_s + step.for_s, put, settings, neutral)
        await self._hold(window, lambda: put(neutral), step.for_s)

    async def _flap(self, every: float, until: float, put: Callable[[dict[str, Any]], Awaitable[None]],
                    on: dict[str, Any], off: dict[str, Any]) -> None:
        faulty = True
        while self.now() + every < until and not self.stopped.is_set():
            await self._sleep(every)
            faulty = not faulty
            await put(on if faulty else off)

    async def byzantine(self, step: Step) -> None:
        nodes = await self.resolve(step.nodes)
        start = self.now()
        for n in nodes:
            await self.admin.byzantine(n, step.behaviour)
            if n not in self.record.byzantine:
                self.record.byzantine.append(n)

        async def off() -> None:
            for n in nodes:
                await self.admin.byzantine(n, None)

        await self._hold(self._open("byzantine", nodes, str(step.behaviour), start), off, step.for_s)

    async def clock(self, step: Step) -> None:
        nodes = await self.resolve(step.nodes)
        start = self.now()
        for n in nodes:
            await self.admin.clock(n, step.skew_ms)

        async def back() -> None:
            for n in nodes:
                await self.admin.clock(n, 0)

        await self._hold(self._open("clock", nodes, f"skew {step.skew_ms:+d} ms", start), back, step.for_s)

    async def flood(self, step: Step) -> None:
        if self.flood_maker is None:
            raise ScenarioError("this run has no flooding client")
        for_s = step.for_s if step.for_s is not None else max(0.0, self.until - self.now())
        window = self._open("flood", [], f"{step.rate:g} tx/s")
        await self.load.flood(self.flood_maker, step.rate, for_s)
        self._close(window)


def stop_and_start(root: Path, name: str) -> None:
    """Stop a running node the way an operator does (SIGTERM; SIGKILL after 10 s), then start it again."""
    node = clusters.signal_node(root, name, "stop")
    if not clusters.wait_dead(node.pid, 10):
        clusters.signal_node(root, name, "kill")
    clusters.restart_node(root, name)


ACTIONS: dict[str, Callable[[Timeline, Step], Awaitable[None]]] = {
    "kill": Timeline.kill,
    "pause": Timeline.pause,
    "restart": Timeline.restart,
    "kill-loop": Timeline.kill_loop,
    "rolling-restart": Timeline.rolling_restart,
    "wipe": Timeline.wipe,
    "snapshot": Timeline.snapshot,
    "restore": Timeline.restore,
    "partition": Timeline.partition,
    "link": Timeline.link,
    "byzantine": Timeline.byzantine,
    "clock": Timeline.clock,
    "flood": Timeline.flood,
}
