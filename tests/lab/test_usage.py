"""Process and machine readings through psutil, on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from node.lab.usage import Samples, cpu_percent, machine_busy, proc_sample


def _burn_cpu(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_a_live_process_has_cpu_and_memory_and_a_peak_at_least_its_rss() -> None:
    sample = proc_sample(os.getpid())
    assert sample is not None
    assert sample.cpu_s > 0 and sample.rss_mb > 1
    assert sample.peak_rss_mb >= sample.rss_mb


def test_a_gone_process_has_no_sample() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert proc_sample(child.pid) is None


def test_cpu_used_between_two_samples_counts_this_process_as_the_client() -> None:
    before = Samples.take({"self": os.getpid()})
    _burn_cpu(0.1)
    after = Samples.take({"self": os.getpid()})
    used = cpu_percent(before, after)
    assert set(used) == {"self", "client"}
    # Both name this process, read a moment apart: they may differ by the kernel's CPU-time granularity.
    tick_pct = 100 * 2 / os.sysconf("SC_CLK_TCK") / (after.wall - before.wall)
    assert used["client"] > 0 and abs(used["self"] - used["client"]) <= tick_pct + 0.1


def test_the_machine_is_never_busier_than_its_total() -> None:
    busy, total = machine_busy()
    assert 0 < busy <= total
    _burn_cpu(0.05)
    busy_after, total_after = machine_busy()
    assert busy_after >= busy and total_after >= total
