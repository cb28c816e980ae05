"""End-to-end: every lab run brings its own cluster down, on success, on error and on Ctrl-C.

Real node processes are started by the scripts and the commands; afterwards no
process may be left whose command line names the run's folder, and none of the
pids recorded in the run's cluster.json may still run.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
SMALLEST = ["--packs", "8", "--fakes", "1", "--dispense", "1"]
RUN_TIMEOUT_S = 240


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp)}


def _left_behind(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (node processes run with --home inside it)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["pid"] != os.getpid() and any(str(folder) in part for part in cmdline):
            found.append(proc.info["pid"])
    return found


def _recorded_pids(tmp: Path) -> list[int]:
    (state,) = tmp.glob("medchain-counterfeit-*/cluster.json")
    return [int(node["pid"]) for node in json.loads(state.read_text())["nodes"]]


def _running(pid: int, folder: Path) -> bool:
    try:
        return any(str(folder) in part for part in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def test_the_counterfeit_script_stops_its_cluster_and_a_second_run_works(tmp_path: Path) -> None:
    """The first run keeps its folder (--keep) to show its nodes are gone; the second, the command without
    --keep, removes its folder and leaves no node either."""
    folder = tmp_path / "first"
    folder.mkdir()
    out = subprocess.run(
        [str(ROOT / "scripts" / "counterfeit"), *SMALLEST, "--keep", "--json", "--quiet"],
        env=_env(folder), capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=folder,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["ok"] and summary["packs"] == 8
    for cls in ("fakes", "unsellable", "diversions"):
        assert all(c["injected"] == c["detected"] >= 1 for c in summary[cls].values()), summary[cls]
    pids = _recorded_pids(folder)
    assert len(pids) == 4  # the four validators of consortium-4 ran
    assert not [pid for pid in pids if _running(pid, folder)]
    assert _left_behind(folder) == []

    second = tmp_path / "second"
    second.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "node", "counterfeit", *SMALLEST, "--quiet"],
        env=_env(second), capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "counterfeit experiment on 8 packs: PASS" in out.stdout
    assert list(second.glob("medchain-counterfeit-*")) == []
    assert _left_behind(second) == []


class StderrReader:
    """Reads a process's stderr on a thread, so that a silent process cannot hang the test."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.lines.get(timeout=1))
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if text in self.seen[-1]:
                return
        raise AssertionError(f"never saw {text!r} on stderr: {''.join(self.seen)}")

    def rest(self) -> str:
        """Everything printed, once the process has exited (its stderr is then closed)."""
        self.thread.join(timeout=30)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)


def test_ctrl_c_during_the_experiment_stops_the_cluster(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "counterfeit"), "--packs", "2000", "--keep"],
        env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        # Ctrl-C as a terminal sends it, whatever the test run inherited: started in the background by a shell
        # without job control (nohup ... &), it has SIGINT ignored, so had the script, which ran to its end.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        stderr = StderrReader(proc)
        stderr.wait_for("cluster of 4 validators ready", RUN_TIMEOUT_S)
        pids = _recorded_pids(tmp_path)
        assert len(pids) == 4 and all(_running(pid, tmp_path) for pid in pids)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.rest()
    assert proc.returncode == 130, err
    assert "interrupted: the cluster was stopped" in err
    assert not [pid for pid in pids if _running(pid, tmp_path)]
    assert _left_behind(tmp_path) == []
