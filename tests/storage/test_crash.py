"""Crash consistency: SIGKILL a process that commits in a loop, reopen, check the head.

Each commit is one synchronous LevelDB batch (block, certificate, indexes,
state, head, WAL pruning), so whatever moment the kill lands on, the reopened
store holds the previous head or the next, never a mix, and nothing the
writer reported as committed is lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from tests.storage.builders import REPO_ROOT, check_consistent, open_store

RUNS = 8


def _run_and_kill(data_dir: Path, rng: random.Random) -> int:
    """Start the writer, wait for a random number of commits, SIGKILL it; return the last reported height."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_writer", str(data_dir)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert child.stdout is not None
    reported = 0
    try:
        for _ in range(rng.randint(5, 120)):
            line = child.stdout.readline()
            assert line, f"writer died: {child.stderr.read() if child.stderr else ''}"
            reported = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return reported


def test_a_killed_writer_leaves_a_consistent_head_every_time(data_dir: Path) -> None:
    rng = random.Random(20240601)
    previous = 0
    for _ in range(RUNS):
        reported = _run_and_kill(data_dir, rng)
        with open_store(data_dir) as store:
            head = check_consistent(store)
            assert head.height >= reported > previous, "a commit the writer saw return was lost"
            heights = [e.height for e in store.wal_entries()]
            assert all(head.height <= h <= head.height + 1 for h in heights), (head.height, heights)
        previous = head.height
