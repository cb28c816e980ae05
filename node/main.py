"""Run one node process in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from node.api.server import Api
from node.app import Application
from node.config import load_config, parse_address, read_key
from node.genesis import load_genesis
from node.governance import load_schedule
from node.logs import setup_logging
from node.p2p.setup import build_transport
from node.runtime import Node, bounded_stage, slow_stage
from primitives.errors import UsageError
from primitives.signing import VerifyKey
from storage.chainstore import ChainStore

log = logging.getLogger("medchain.node")
AppFactory = Callable[[Node], Application]

# The cyclic collector's first generation runs after this many more container
# allocations than frees (Python's default: 700).  A node allocates a few
# objects per message and per transaction and almost none of them are in
# cycles, so the default collects very often under load, each time walking
# whatever a block in flight keeps alive: a noticeable share of a node's CPU.
GC_FIRST_GENERATION = 50_000

# How long a stopping node lets requests in flight finish: commit waits and
# event streams are ended first, so only ordinary requests remain, and none
# of those needs more.
SHUTDOWN_GRACE_SECONDS = 3.0


def tune_collector() -> None:
    """After start-up: what start-up built lives as long as the process, so the collector stops walking it."""
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_GENERATION, second, third)


class StartupError(UsageError):
    """The node cannot start: the message says what to fix."""


async def run_node(home: Path, app_factory: AppFactory, log_level: str = "info") -> None:
    """Run the node in ``home`` with the application ``app_factory`` builds, until SIGTERM or SIGINT."""
    config = load_config(home)
    genesis = load_genesis(config.path(config.genesis))
    key = read_key(home / "node_key.json")
    me = next((m for m in genesis.nodes if m.key == key.verify_key), None)
    if me is None and config.role != "validator":
        raise StartupError(f"this node's key {key.verify_key.hex()[:16]}... is not in the genesis file (a node "
                           "that joins later is a validator: 'medchain node join')")
    is_validator = genesis.validator_index(key.verify_key) is not None
    if me is not None and is_validator != (config.role == "validator"):
        raise StartupError(f"config says role {config.role!r} but genesis lists this key as "
                           f"{'a validator' if is_validator else 'an observer'}")
    setup_logging(config.name, log_level)
    # Every thread's stack to stderr (the node's log under a cluster) on SIGUSR2: what a supervisor asks before it
    # kills a node that did not stop in time (node.lab.cluster).
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    store = ChainStore.open(config.path(config.data_dir), genesis.chain_id, genesis.hash)
    try:
        # The nodes changes made validators, the latest record of each; a genesis node only if a change gave it
        # another key or an address.
        latest = {v.name: v for change in load_schedule(store) for v in change.validators}
        added = [(v.name, VerifyKey(v.key), v.cert, v.address) for v in latest.values()
                 if (m := genesis.node(v.name)) is None or m.key.raw != v.key or v.address]
        transport = build_transport(config, genesis, key, home, added)
        node = Node(config, genesis, key, store, transport, app_factory)
        runner = web.AppRunner(Api(node).app(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
        await runner.setup()
        host, port = parse_address(config.api_listen)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await node.start()
        unwatch_gc = node.metrics.watch_gc()
        tune_collector()
        await web.TCPSite(runner, host, port).start()
        log.info("node %s started: api http://%s:%d, p2p %s, height %d", config.name, host, port,
                 config.p2p_listen, node.tip.height, extra={"event": "started"})
        drive = node.drive_task
        done, _ = await asyncio.wait(
            [asyncio.create_task(stop.wait()), drive], return_when=asyncio.FIRST_COMPLETED
        )
        log.info("node %s stopping", config.name, extra={"event": "stopping"})
        ended = node.end_commit_waits()
        if ended:
            log.info("answered %d commit waits with 503 shutting-down", ended, extra={"event": "waits-ended"})
        await bounded_stage("the HTTP API", runner.cleanup(), SHUTDOWN_GRACE_SECONDS + 1)
        await node.stop()
        unwatch_gc()
        started = time.monotonic()
        node.app.close()
        slow_stage("the application's stores", started)
        if drive in done and drive.exception() is not None:
            raise drive.exception()  # type: ignore[misc]
    finally:
        store.close()
    log.info("node %s stopped cleanly", config.name, extra={"event": "stopped"})
