"""Local clusters: node processes started in the background from a testnet folder.

``DIR/cluster.json`` records each node's pid, API and P2P addresses, so later
commands (status, kill, pause, resume, restart, down) find them.  Each node
logs to ``DIR/<node>/node.log``.  Commands that change the file hold an
exclusive lock on ``DIR/cluster.lock`` from reading it to replacing it, so
commands run in parallel never lose each other's updates; ``down`` also
finds node processes by their home folder, so none is left running even if
the file names a wrong pid.

Starting is checked, not assumed: ``wait_started`` waits until every node
started here answers on its API *as itself* (the node key in its folder, the
chain id of the genesis file) while its process is alive, so a port held by
another cluster's node is found out and named, with the line of the log that
says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from node.client.http import ApiFailure, NodeClient, NodeUnreachable
from node.config import NodeConfig, load_config, read_key
from node.documents import NodeStatus
from node.genesis import load_genesis
from node.healthcare.transactions import Anchor, make_transaction
from primitives.errors import UsageError

LOG_NAME = "node.log"
DUMP_SIGNAL = signal.SIGUSR2  # a node dumps its threads' stacks to its log on it (node.main), before a SIGKILL


@dataclass(slots=True)
class NodeProcess:
    name: str
    role: str
    home: str
    api: str
    p2p: str
    pid: int
    log_offset: int = 0  # where this run's lines start in the node's log


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
    """Replace ``cluster.json`` in one step: a reader sees the old file or the new one, never half of one."""
    text = json.dumps({"nodes": [asdict(n) for n in nodes]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".cluster.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, _state_file(root))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the cluster's lock: one read-modify-write of ``cluster.json`` at a time, across processes."""
    if not root.is_dir():
        raise ClusterError(f"no cluster at {root} (no such folder): start one with 'medchain cluster up'")
    with (root / "cluster.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock, also if this process dies holding it


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


def spawn(home: Path, log_level: str = "info") -> tuple[int, int]:
    """Start the node in ``home``; its pid, and the offset in its log where this run's lines begin."""
    log = open(home / LOG_NAME, "ab")  # noqa: SIM115 - handed to the child
    offset = log.tell()
    cmd = [sys.executable, "-m", "node", "node", "start", "--home", str(home), "--log-level", log_level]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return proc.pid, offset


def start_all(root: Path, log_level: str = "info") -> list[NodeProcess]:
    with locked(root):
        return _start_all(root, log_level)


def _start_all(root: Path, log_level: str) -> list[NodeProcess]:
    existing = {n.name: n for n in load_cluster(root)} if _state_file(root).exists() else {}
    configs = [(home, load_config(home)) for home in node_homes(root)]
    for _, config in configs:  # check them all before starting any, so a refusal leaves no untracked process
        old = existing.get(config.name)
        if old is not None and is_alive(old.pid):
            raise ClusterError(f"{config.name} is already running (pid {old.pid}); 'medchain cluster down' first")
    nodes: list[NodeProcess] = []
    try:
        for home, config in configs:
            nodes.append(_started(home, config, log_level))
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
    if action == "restart":
        with locked(root):
            nodes = load_cluster(root)
            node = find(nodes, name)
            if is_alive(node.pid):
                raise ClusterError(f"{name} is still running (pid {node.pid}); kill it first")
            node.pid, node.log_offset = spawn(Path(node.home))
            save_cluster(root, nodes)
            return node
    node = find(load_cluster(root), name)
    sig = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT, "stop": signal.SIGTERM}[action]
    if not is_alive(node.pid):
        raise ClusterError(f"{name} is not running")
    os.kill(node.pid, sig)
    if action == "kill":
        wait_dead(node.pid, 5)
    return node


def add_node(root: Path, name: str) -> NodeProcess:
    """Start the node folder ``root/name`` (one 'medchain node join' wrote) and add it to the running cluster."""
    home = root / name
    if not (home / "config.toml").exists():
        raise ClusterError(f"{home} is not a node folder (no config.toml): write one with "
                           f"'medchain node join --home {home}'")
    config = load_config(home)
    with locked(root):
        nodes = load_cluster(root)
        if any(n.name == config.name or Path(n.home) == home for n in nodes):
            raise ClusterError(f"{config.name} is already in the cluster: 'medchain cluster restart {config.name}'")
        node = _started(home, config)
        save_cluster(root, [*nodes, node])
    return node


def _started(home: Path, config: NodeConfig, log_level: str = "info") -> NodeProcess:
    """The node in ``home`` started (``spawn``), as the cluster records it."""
    pid, offset = spawn(home, log_level)
    return NodeProcess(config.name, config.role, str(home), f"http://{config.api_listen}", config.p2p_listen,
                       pid, offset)


def restart_node(root: Path, name: str, timeout: float = 30) -> NodeProcess:
    """Start a stopped or killed node again from its data on disk; return once it answers as itself.

    Its new pid is in ``cluster.json``; ``ClusterError`` if it is still running or does not come up.
    """
    node = signal_node(root, name, "restart")
    wait_started(root, [node], timeout)
    return node


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return False


def processes_by_home(nodes: list[NodeProcess]) -> dict[str, set[int]]:
    """Node name -> pids of running node processes whose command line names that node's home folder."""
    names = {str(Path(n.home).resolve()): n.name for n in nodes}
    found: dict[str, set[int]] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "--home" not in cmdline[:-1] or "start" not in cmdline:
            continue
        home = cmdline[cmdline.index("--home") + 1]
        with contextlib.suppress(OSError):
            name = names.get(str(Path(home).resolve()))
            if name is not None and proc.info["pid"] != os.getpid():
                found.setdefault(name, set()).add(proc.info["pid"])
    return found


def stop_all(root: Path, timeout: float = 10) -> list[tuple[str, str]]:
    """SIGTERM every node (SIGCONT first, in case it is paused), SIGKILL after ``timeout``; what became of each.

    A node's processes are the pid on record and any process started from the
    node's home folder, so a record that went stale orphans nothing.
    """
    with locked(root):
        nodes = load_cluster(root)
        by_home = processes_by_home(nodes)
        running = {n.name: {p for p in {n.pid} | by_home.get(n.name, set()) if is_alive(p)} for n in nodes}
        for pids in running.values():
            for pid in pids:
                _signal(pid, signal.SIGCONT)
                _signal(pid, signal.SIGTERM)
        return [(node.name, _outcome(running[node.name], timeout)) for node in nodes]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _outcome(pids: set[int], timeout: float) -> str:
    """Wait for ``pids`` to exit, SIGKILL what is left after ``timeout``: "already stopped", "stopped" or "killed"."""
    if not pids:
        return "already stopped"
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if not wait_dead(pid, max(deadline - time.monotonic(), 0))]
    for pid in left:
        _signal(pid, DUMP_SIGNAL)  # the node writes every thread's stack to its log: where it was stuck
    if left:
        time.sleep(0.5)
    for pid in left:
        _signal(pid, signal.SIGKILL)
        wait_dead(pid, 5)
    return "killed" if left else "stopped"


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
        status = await NodeClient(node.api, session, timeout=2).status()
    except (NodeUnreachable, ApiFailure):
        row["error"] = "not answering"
        return row
    row.update({k: status.get(k) for k in ("height", "head_hash", "view", "primary", "peers", "syncing")})
    if status.get("node_key") != node_key(node):
        row["error"] = f"another node answers (key {str(status.get('node_key'))[:16]}...)"
    return row


def status_rows(root: Path) -> list[dict[str, Any]]:
    """Every node's row: name, role, addresses, pid, alive, height, head, view (``error`` when it does not answer)."""
    nodes = load_cluster(root)

    async def go() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            return list(await asyncio.gather(*(fetch_status(session, n) for n in nodes)))

    return asyncio.run(go())


# ---------------------------------------------------------------- start-up checks


def node_key(node: NodeProcess) -> str:
    """The public key (hex) the node started from ``node.home`` must answer with."""
    return read_key(Path(node.home) / "node_key.json").verify_key.hex()


def log_line(node: NodeProcess) -> str | None:
    """The line of this run's log that says what went wrong: the last error, else the last line."""
    try:
        with (Path(node.home) / LOG_NAME).open("rb") as log:
            log.seek(node.log_offset)
            lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    errors = [line for line in lines if "error" in line.lower()]
    found = errors or lines
    return found[-1][:300] if found else None


def _log_hint(node: NodeProcess) -> str:
    line = log_line(node)
    where = Path(node.home) / LOG_NAME
    return f"{where} says: {line}" if line else f"see {where}"


def wait_started(root: Path, nodes: list[NodeProcess], timeout: float) -> None:
    """Wait until each node answers as itself; ``ClusterError`` naming the first that died or is impersonated."""
    chain_id = load_genesis(root / "genesis.json").chain_id
    asyncio.run(_wait_started(nodes, chain_id, time.monotonic() + timeout, timeout))


async def _wait_started(nodes: list[NodeProcess], chain_id: str, deadline: float, timeout: float) -> None:
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(_wait_one(NodeClient(n.api, session, timeout=2), n, chain_id, deadline, timeout)
                               for n in nodes))


async def _wait_one(client: NodeClient, node: NodeProcess, chain_id: str, deadline: float, timeout: float) -> None:
    key = node_key(node)
    while True:
        try:
            status: NodeStatus | None = await client.status()
        except (NodeUnreachable, ApiFailure):
            status = None
        if status is not None and (status.get("node_key"), status.get("chain_id")) != (key, chain_id):
            await _impostor(node, status, key, chain_id)
        if not is_alive(node.pid):
            raise ClusterError(f"{node.name} exited while starting; {_log_hint(node)}")
        if status is not None:
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"{node.name} did not answer at {node.api} within {timeout:g}s; {_log_hint(node)}")
        await asyncio.sleep(0.1)


async def _impostor(node: NodeProcess, status: NodeStatus, key: str, chain_id: str) -> None:
    """Another process answers on this node's API port: give ours a moment to fail, to quote why it did."""
    give_up = time.monotonic() + 20
    while is_alive(node.pid) and time.monotonic() < give_up:
        await asyncio.sleep(0.1)
    other = f"key {str(status.get('node_key'))[:16]}... of chain {status.get('chain_id')}"
    raise ClusterError(
        f"{node.name}: {node.api} answers as another node ({other}), not as this one (key {key[:16]}... of chain "
        f"{chain_id}): is another cluster using these ports? {_log_hint(node)}"
    )


def wait_first_commit(root: Path, timeout: float) -> None:
    """Anchor a marker with client key ``clients/client0.json`` and wait until it commits."""
    nodes = load_cluster(root)
    validator = next(n for n in nodes if n.role == "validator")
    client = read_key(root / "clients" / "client0.json")
    chain_id = load_genesis(root / "genesis.json").chain_id
    marker = hashlib.sha256(f"cluster-up {time.time()}".encode()).digest()
    tx = make_transaction(client, chain_id, Anchor(marker, "cluster up"), int(time.time() * 1000))
    asyncio.run(_commit(validator, tx, time.monotonic() + timeout, timeout))


async def _commit(validator: NodeProcess, tx: bytes, deadline: float, timeout: float) -> None:
    async with NodeClient(validator.api, timeout=8) as node:
        while time.monotonic() < deadline:
            try:
                await node.call("POST", "/txs?wait=commit&timeout=5", data=tx)
                return
            except ApiFailure as exc:
                if exc.code == "already-committed":  # an earlier try committed it after its answer timed out
                    return
                await asyncio.sleep(0.3)
            except NodeUnreachable:
                await asyncio.sleep(0.3)
    raise ClusterError(f"the cluster did not commit a block within {timeout:.0f}s; see {LOG_NAME} in each node folder")
