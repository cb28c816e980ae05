"""Local clusters: node processes started in the background from a testnet folder.

``DIR/cluster.json`` records each node's pid, API and P2P addresses, so later
commands (status, kill, pause, resume, restart, down) find them.  Each node
logs to ``DIR/<node>/node.log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from node.config import load_config
from primitives.errors import UsageError


@dataclass(slots=True)
class NodeProcess:
    name: str
    role: str
    home: str
    api: str
    p2p: str
    pid: int


class ClusterError(UsageError):
    pass


def _state_file(root: Path) -> Path:
    return root / "cluster.json"


def load_cluster(root: Path) -> list[NodeProcess]:
    path = _state_file(root)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ClusterError(f"no cluster at {root} (no cluster.json): start one with 'medchain cluster up'") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ClusterError(f"cannot read {path}: {exc}") from None
    return [NodeProcess(**item) for item in raw["nodes"]]


def save_cluster(root: Path, nodes: list[NodeProcess]) -> None:
    _state_file(root).write_text(json.dumps({"nodes": [asdict(n) for n in nodes]}, indent=2) + "\n")


def node_homes(root: Path) -> list[Path]:
    homes = [p for p in root.iterdir() if (p / "config.toml").exists()]
    order = _genesis_order(root)
    homes.sort(key=lambda p: (order.get(p.name, len(order)), _order(p.name)))
    if not homes:
        raise ClusterError(
            f"{root} holds no node folders (folders with a config.toml); write one with 'medchain testnet'"
        )
    return homes


def _genesis_order(root: Path) -> dict[str, int]:
    """Node names in genesis order (validators, then observers): organisation-named nodes sort by it."""
    try:
        raw = json.loads((root / "genesis.json").read_text())
        names = [m["name"] for m in (*raw.get("validators", []), *raw.get("observers", []))]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: i for i, name in enumerate(names)}


def _order(name: str) -> tuple[int, str]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 0, name)


def spawn(home: Path, log_level: str = "info") -> int:
    log = open(home / "node.log", "ab")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-m", "node", "node", "start", "--home", str(home), "--log-level", log_level]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return proc.pid


def start_all(root: Path, log_level: str = "info") -> list[NodeProcess]:
    existing = {n.name: n for n in load_cluster(root)} if _state_file(root).exists() else {}
    configs = [(home, load_config(home)) for home in node_homes(root)]
    for _, config in configs:  # check them all before starting any, so a refusal leaves no untracked process
        old = existing.get(config.name)
        if old is not None and is_alive(old.pid):
            raise ClusterError(f"{config.name} is already running (pid {old.pid}); 'medchain cluster down' first")
    nodes: list[NodeProcess] = []
    try:
        for home, config in configs:
            pid = spawn(home, log_level)
            api = f"http://{config.api_listen}"
            nodes.append(NodeProcess(config.name, config.role, str(home), api, config.p2p_listen, pid))
    finally:  # even if a spawn fails, record the ones started so 'cluster down' finds them
        save_cluster(root, nodes)
    return nodes


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def find(nodes: list[NodeProcess], name: str) -> NodeProcess:
    for node in nodes:
        if node.name == name:
            return node
    raise ClusterError(f"no node named {name!r}; the cluster has {', '.join(n.name for n in nodes)}")


def signal_node(root: Path, name: str, action: str) -> NodeProcess:
    nodes = load_cluster(root)
    node = find(nodes, name)
    if action == "restart":
        if is_alive(node.pid):
            raise ClusterError(f"{name} is still running (pid {node.pid}); kill it first")
        node.pid = spawn(Path(node.home))
        save_cluster(root, nodes)
        return node
    sig = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT, "stop": signal.SIGTERM}[action]
    if not is_alive(node.pid):
        raise ClusterError(f"{name} is not running")
    os.kill(node.pid, sig)
    if action == "kill":
        wait_dead(node.pid, 5)
    return node


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return False


def stop_all(root: Path, timeout: float = 10) -> list[tuple[str, str]]:
    """SIGTERM every node (SIGCONT first, in case it is paused), SIGKILL after ``timeout``."""
    outcome = []
    nodes = load_cluster(root)
    for node in nodes:
        if is_alive(node.pid):
            os.kill(node.pid, signal.SIGCONT)
            os.kill(node.pid, signal.SIGTERM)
    for node in nodes:
        if wait_dead(node.pid, timeout):
            outcome.append((node.name, "stopped"))
        elif is_alive(node.pid):
            os.kill(node.pid, signal.SIGKILL)
            wait_dead(node.pid, 5)
            outcome.append((node.name, "killed"))
    return outcome


async def fetch_status(session: aiohttp.ClientSession, node: NodeProcess) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": node.name,
        "role": node.role,
        "api": node.api,
        "p2p": node.p2p,
        "pid": node.pid,
        "alive": is_alive(node.pid),
        "height": None,
        "head_hash": None,
        "view": None,
    }
    if not row["alive"]:
        return row
    try:
        async with session.get(f"{node.api}/status", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            status = await resp.json()
        row.update({k: status.get(k) for k in ("height", "head_hash", "view", "primary", "peers", "syncing")})
    except (aiohttp.ClientError, TimeoutError, ValueError):
        row["error"] = "not answering"
    return row
