"""Disk faults on a local cluster's nodes: wipe-and-rejoin, snapshot and restore, and the offline store check.

Rules:

* what a node keeps across a wipe or a restore: its keys (node_key.json),
  TLS material, the vault's KEK and config.toml; what a wipe deletes: the
  chain data directory (``data/``: blocks, certificates, state, tx index, WAL,
  evidence), which the node fetches again from its peers.  The EHR vault is
  kept unless asked (``vault=True``): its content exists on no other node, so
  deleting it is a loss of records, not a fault the network can heal;
* a node whose data is replaced is SIGKILLed first (its recorded pid and any
  process started from its home), never stopped cleanly: a wipe or a restore
  is a crash followed by a disk swap;
* a snapshot is crash-consistent without stopping the node for good: the
  node's every thread is frozen (SIGSTOP) while its data directory is copied,
  then resumed (a node that was already paused stays paused).  LevelDB with
  synchronous write batches keeps, in such a copy, exactly what a crash at
  that moment would have kept;
* a restore copies the snapshot next to the data directory and checks that
  it is a store of this chain before killing the node, so a wrong folder
  leaves the node running and untouched; the snapshot itself is never opened
  or changed, and can be restored again;
* every change of a node's pid is written to ``cluster.json`` under the
  cluster's lock (``cluster.locked``), so ``cluster status`` and ``cluster
  down`` find the new process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from node.config import load_config
from node.genesis import load_genesis
from node.healthcare.vault import CONTENT_DIRNAME, KEYS_DIRNAME, VAULT_DIRNAME
from node.lab.cluster import (
    ClusterError,
    NodeProcess,
    find,
    is_alive,
    load_cluster,
    locked,
    processes_by_home,
    save_cluster,
    spawn,
    wait_dead,
    wait_started,
)
from storage.errors import DatabaseLocked, StorageError
from storage.integrity import check_data_dir, read_summary

STOP_WAIT_S = 5  # how long a SIGSTOP or SIGKILL may take to reach every thread


def data_dir(home: Path) -> Path:
    """The chain data directory of the node in ``home`` (``data_dir`` in its config.toml)."""
    config = load_config(home)
    return config.path(config.data_dir)


# ---------------------------------------------------------------- wipe, snapshot, restore


def wipe_node(root: Path, name: str, timeout: float = 30, *, vault: bool = False) -> NodeProcess:
    """Wipe-and-rejoin: SIGKILL node ``name``, delete its chain data, start it; return once it answers as itself.

    It then catches up from its peers.  ``vault=True`` also deletes the EHR
    vault's content and key stores (the KEK file stays).
    """
    with locked(root):
        nodes = load_cluster(root)
        node = find(nodes, name)
        home = Path(node.home)
        doomed = [data_dir(home)]
        if vault:
            doomed += [home / VAULT_DIRNAME / CONTENT_DIRNAME, home / VAULT_DIRNAME / KEYS_DIRNAME]
        kill_node(node)
        for directory in doomed:
            shutil.rmtree(directory, ignore_errors=True)
            if directory.exists():
                raise ClusterError(f"could not delete {directory}; {name} is stopped")
        node.pid, node.log_offset = spawn(home)
        save_cluster(root, nodes)
    wait_started(root, [node], timeout)
    return node


def snapshot_node(root: Path, name: str, dest: Path) -> int:
    """Copy node ``name``'s data directory to ``dest`` while the node runs on; the height the copy holds.

    ``dest`` must not exist or be empty.  The node is frozen (SIGSTOP) only
    while the files are copied.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ClusterError(f"{dest} already exists and is not an empty folder: choose a new one for the snapshot")
    with locked(root):
        node = find(load_cluster(root), name)
        source = data_dir(Path(node.home))
        if not (source / "CURRENT").is_file():
            raise ClusterError(f"{name} has no chain data yet ({source} holds no store)")
        with frozen(node):
            shutil.copytree(source, dest, dirs_exist_ok=True)
    try:
        return read_summary(dest).height
    except StorageError as exc:
        raise ClusterError(f"the copy of {name}'s data in {dest} is not readable: {exc}") from None


def restore_node(root: Path, name: str, source: Path, timeout: float = 30) -> NodeProcess:
    """SIGKILL node ``name``, replace its data directory with a copy of ``source``, start it; once it answers.

    ``source`` is a snapshot of a node of this chain (``snapshot_node``); it is copied, never changed.
    """
    if not (source / "CURRENT").is_file():
        raise ClusterError(f"{source} holds no node data (no LevelDB CURRENT file): give a folder 'cluster snapshot' "
                           "wrote")
    with locked(root):
        nodes = load_cluster(root)
        node = find(nodes, name)
        home = Path(node.home)
        target = data_dir(home)
        staging = target.with_name(target.name + ".restoring")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(source, staging)
            _check_chain(staging, home, source)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        kill_node(node)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        node.pid, node.log_offset = spawn(home)
        save_cluster(root, nodes)
    wait_started(root, [node], timeout)
    return node


def _check_chain(copy: Path, home: Path, source: Path) -> None:
    """``ClusterError`` unless the store in ``copy`` (of ``source``) belongs to the chain of the node in ``home``."""
    config = load_config(home)
    genesis = load_genesis(config.path(config.genesis))
    try:
        summary = read_summary(copy)
    except StorageError as exc:
        raise ClusterError(f"{source} is not a readable node store: {exc}") from None
    if (summary.chain_id, summary.genesis_hash) != (genesis.chain_id, genesis.hash):
        raise ClusterError(f"{source} holds chain {summary.chain_id!r} (genesis {summary.genesis_hash.hex()[:16]}), "
                           f"not this cluster's {genesis.chain_id!r} (genesis {genesis.hash.hex()[:16]})")


def check_store(home: Path) -> list[str]:
    """The problems of the stopped node's store in ``home`` (empty list: intact); see ``storage.integrity``.

    ``ClusterError`` if the node is running (LevelDB's lock is held).
    """
    config = load_config(home)
    genesis = load_genesis(config.path(config.genesis))
    data = config.path(config.data_dir)
    try:
        return check_data_dir(data, genesis.chain_id, genesis.hash)
    except DatabaseLocked:
        raise ClusterError(f"{config.name} is running ({data} is locked by its process): stop it first, "
                           f"e.g. 'medchain cluster kill {config.name}'") from None


# ---------------------------------------------------------------- processes


def kill_node(node: NodeProcess) -> None:
    """SIGKILL the node's recorded process and any process started from its home; wait until all are gone."""
    pids = {node.pid} | processes_by_home([node]).get(node.name, set())
    for pid in pids:
        if is_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    alive = [pid for pid in pids if not wait_dead(pid, STOP_WAIT_S)]
    if alive:
        raise ClusterError(f"{node.name} (pid {', '.join(map(str, alive))}) did not die after SIGKILL")


@contextlib.contextmanager
def frozen(node: NodeProcess) -> Iterator[None]:
    """Hold every thread of the node's process stopped (SIGSTOP) for the block; resume it after unless it was paused."""
    pid = node.pid
    if not is_alive(pid) or all_stopped(pid):
        yield
        return
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + STOP_WAIT_S
        while not all_stopped(pid):
            if time.monotonic() > deadline:
                raise ClusterError(f"{node.name} (pid {pid}) did not stop within {STOP_WAIT_S}s of SIGSTOP")
            time.sleep(0.005)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def all_stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is in the stopped state (Linux: /proc/PID/task/*/stat)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return True  # gone
    states = []
    for task in tasks:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            stat = (task / "stat").read_text()
            states.append(stat[stat.rindex(")") + 2])
    return all(state in "tT" for state in states)
