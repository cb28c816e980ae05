"""A fresh local cluster for one experiment: generated, started, waited for, and always stopped.

The lab tools (bench, bench verify, counterfeit) each start their own cluster
on free loopback ports and must leave no node process behind, whether the run
ends normally, with an error, on Ctrl-C or on SIGTERM: ``running_cluster``
stops every node recorded in ``cluster.json``, even if starting failed half
way, and a second Ctrl-C cannot cut that short.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import aiohttp

from node.client.http import NodeClient
from node.healthcare.transactions import Anchor, make_transaction
from node.lab import cluster as clusters
from node.lab.consortium import load_consortium
from node.lab.testnet import HOST, client_key, generate_testnet
from primitives.errors import UsageError
from primitives.hashing import sha256

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
CONSORTIUM_FILE = Path(__file__).resolve().parents[2] / "configs" / "consortium-4.toml"
Say = Callable[[str], None]


class FreshClusterError(UsageError):
    """The cluster could not be started or did not become ready: the message says why."""


def free_base_port(count: int) -> int:
    """A base port with ``2 * count`` consecutive free loopback ports, below the kernel's ephemeral range.

    Ports in the ephemeral range can be taken by any outgoing connection between
    this check and the node's bind; below it, only by another listener.
    """
    try:  # psutil does not read sysctls; the kernel publishes this one under /proc
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32_768
    low, high = 20_000, max(20_000 + 2 * count, ephemeral_low) - 2 * count
    rng = random.Random(os.urandom(8))
    for _ in range(200):
        base = rng.randrange(low, high + 1)
        if all(_port_free(p) for p in range(base, base + 2 * count)):
            return base
    raise FreshClusterError("found no range of free loopback ports; close other clusters and retry")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def raise_interrupt_on_sigterm() -> None:
    """SIGTERM ends a lab run the way Ctrl-C does, so its clusters are stopped on the way out."""

    def interrupt(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


@contextlib.contextmanager
def lab_folder(directory: Path | None, prefix: str, error: type[UsageError] = UsageError,
               what: str = "network") -> Iterator[Path]:
    """The folder a lab run puts its network(s) in, with SIGTERM raising ``KeyboardInterrupt``.

    ``directory`` (must be new or empty) stays; without one, a temporary folder
    named ``prefix...`` is removed afterwards unless the run failed: a
    ``UsageError`` or ``OSError`` inside becomes ``error`` naming the kept folder.
    """
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise error(f"{directory} is not empty; give a new or empty --dir")
    base = directory or Path(tempfile.mkdtemp(prefix=prefix))
    base.mkdir(parents=True, exist_ok=True)
    raise_interrupt_on_sigterm()
    keep = directory is not None
    try:
        yield base
    except (UsageError, OSError) as exc:
        keep = True
        raise error(f"{exc} ({what} and node logs kept in {base})") from exc
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the nodes are being stopped (a second Ctrl-C must not leave them running)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def stop_cluster(root: Path, say: Say) -> None:
    """Stop every node recorded under ``root`` (SIGKILL after a grace period); say how it went."""
    if not (root / "cluster.json").exists():
        return
    with _signals_held():
        started = time.monotonic()
        outcome = clusters.stop_all(root, timeout=STOP_TIMEOUT_S)
    killed = [name for name, how in outcome if how != "stopped"]
    say(
        f"cluster stopped in {time.monotonic() - started:.1f} s"
        + (f"; killed after {STOP_TIMEOUT_S:g} s: {', '.join(killed)}" if killed else "")
    )


@contextlib.contextmanager
def running_cluster(root: Path, say: Say) -> Iterator[list[clusters.NodeProcess]]:
    """Start the cluster under ``root``; always stop it on the way out."""
    try:
        yield clusters.start_all(root, log_level="warning")
    finally:
        stop_cluster(root, say)


@contextlib.contextmanager
def fresh_consortium(root: Path, say: Say, chain_prefix: str, base_port: int | None = None
                     ) -> Iterator[list[clusters.NodeProcess]]:
    """A consortium-4 cluster generated in ``root``, started and ready (one transaction committed)."""
    consortium = load_consortium(CONSORTIUM_FILE)
    size = len(consortium.validators) + len(consortium.observers)
    genesis = generate_testnet(
        root,
        0,
        base_port=base_port or free_base_port(size),
        clients=1,
        consortium=consortium,
        chain_id=f"{chain_prefix}-{os.urandom(3).hex()}",
    )
    label = f"{chain_prefix} probe {os.urandom(4).hex()}"
    probe = make_transaction(
        client_key(root, 0), genesis.chain_id, Anchor(sha256(label.encode()), label), int(time.time() * 1000)
    )
    with running_cluster(root, say) as nodes:
        asyncio.run(wait_ready(nodes, probe))
        say(f"consortium cluster of {len(nodes)} validators ready under {root}")
        yield nodes


async def wait_ready(nodes: list[clusters.NodeProcess], probe_tx: bytes) -> None:
    """Every API answers with all peers connected, then one transaction commits."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while True:
            if time.monotonic() > deadline:
                raise FreshClusterError(
                    f"the cluster did not connect within {READY_TIMEOUT_S:g} s; see <node>/node.log"
                )
            dead = [n for n in nodes if not clusters.is_alive(n.pid)]
            if dead:
                raise FreshClusterError(f"{dead[0].name} exited while starting: {last_error(Path(dead[0].home))}")
            rows = await asyncio.gather(*(clusters.fetch_status(session, n) for n in nodes))
            if all(len(r.get("peers") or []) == len(nodes) - 1 for r in rows):
                break
            await asyncio.sleep(0.1)
        reply = await NodeClient(nodes[0].api, session).send(
            "POST", "/txs?wait=commit&timeout=20", data=probe_tx, timeout=30
        )
        if reply.status != 200:
            raise FreshClusterError(f"the warm-up transaction did not commit: HTTP {reply.status} {reply.text}")


def last_error(home: Path) -> str:
    """The last ``error:`` line of a node's log, or where to look."""
    try:
        lines = (home / "node.log").read_text(errors="replace").splitlines()
    except OSError:
        return f"no log at {home / 'node.log'}"
    errors = [line for line in lines if line.startswith("error:")]
    return errors[-1].removeprefix("error: ") if errors else f"see {home / 'node.log'}"
