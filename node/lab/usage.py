"""CPU and memory of processes and of the whole machine, read through ``psutil``.

The bench samples every node and itself before and after a load period; the
difference is what the period cost.  ``settle`` waits for nodes to go idle
before a measurement, so that work left over from a setup is charged to no run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float  # user + system CPU seconds since the process started
    rss_mb: float
    peak_rss_mb: float


def proc_sample(pid: int) -> ProcSample | None:
    """One process's CPU and memory now; None when it is gone."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            cpu = proc.cpu_times()
            rss = float(proc.memory_info().rss)
    except psutil.Error:
        return None
    return ProcSample(float(cpu.user + cpu.system), rss / 2**20, _peak_rss_mb(pid, rss / 2**20))


def _peak_rss_mb(pid: int, rss_mb: float) -> float:
    """The kernel's high-water mark of the resident set (VmHWM): psutil has no portable reading of it.

    Where ``/proc`` does not say (another OS, a process just gone), the current RSS stands in.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return rss_mb
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "VmHWM":
            return int(value.split()[0]) / 1024
    return rss_mb


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all cores."""
    t = psutil.cpu_times()
    total = float(sum(t))
    idle = float(t.idle + getattr(t, "iowait", 0.0))
    # guest time is already counted in user time on Linux: leave it out of the total
    total -= float(getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0))
    return total - idle, total


@dataclass(frozen=True, slots=True)
class Samples:
    """Named processes' readings, and the machine's, at one moment."""

    procs: dict[str, ProcSample | None]
    machine: tuple[float, float]
    wall: float

    @staticmethod
    def take(pids: dict[str, int]) -> Samples:
        """``pids`` by name; this process is added as ``client``."""
        procs = {name: proc_sample(pid) for name, pid in pids.items()}
        procs["client"] = proc_sample(os.getpid())
        return Samples(procs, machine_busy(), time.monotonic())


def cpu_percent(before: Samples, after: Samples) -> dict[str, float]:
    """CPU used between the two samples, per process, as % of one core."""
    wall = after.wall - before.wall
    out = {}
    for name, first in before.procs.items():
        last = after.procs.get(name)
        if first is not None and last is not None:
            out[name] = round(100 * (last.cpu_s - first.cpu_s) / wall, 1)
    return out


def settle(pids: Sequence[int], say: Callable[[str], None], quiet_pct: float = 10.0, longest_s: float = 90.0) -> float:
    """Wait until every process is nearly idle (LevelDB compactions and the like after a setup): seconds waited.

    Quiet means under ``quiet_pct`` % of a core per process over each of two
    consecutive seconds; the wait is bounded by ``longest_s``.
    """
    started = time.monotonic()
    quiet = 0
    last = {pid: proc_sample(pid) for pid in pids}
    while time.monotonic() - started < longest_s and quiet < 2:
        time.sleep(1.0)
        now = {pid: proc_sample(pid) for pid in pids}
        busiest = max(
            (100 * (b.cpu_s - a.cpu_s) for pid in pids if (a := last[pid]) and (b := now[pid])), default=0.0
        )
        quiet = quiet + 1 if busiest < quiet_pct else 0
        last = now
    waited = time.monotonic() - started
    say(f"nodes settled after {waited:.0f} s" if quiet >= 2 else f"nodes still busy after {waited:.0f} s")
    return waited
