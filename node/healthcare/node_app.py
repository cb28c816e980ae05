"""The healthcare application as a node runs it: the ledger's rules plus this organisation's services.

``HealthcareApp`` implements ``node.app.Application``: the deterministic rules
(``node.healthcare.application``) decide every block; the service around them
(``node.healthcare.service``) keeps the vault, shreds what an erasure names,
publishes alerts and serves the healthcare routes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from aiohttp import web

from consensus.messages import Block
from node.app import BlockResult, Prechecked, StateReader
from node.config import load_config
from node.healthcare.application import Application
from node.healthcare.kek import load_kek
from node.healthcare.routes import HealthcareRoutes
from node.healthcare.service import HealthcareService
from node.healthcare.vault import VAULT_DIRNAME
from node.runtime import Node
from node.transaction import Transaction


class HealthcareApp:
    def __init__(self, node: Node, vault_dir: Path, kek: bytes) -> None:
        self.node = node
        self.rules = Application.from_genesis(node.genesis)
        self.service = HealthcareService(node, self.rules, vault_dir, kek)

    def precheck(self, data: bytes) -> tuple[Transaction, Any]:
        return self.rules.precheck(data)

    def admission_problem(self, decoded: tuple[Transaction, Any]) -> tuple[str, str] | None:
        return self.rules.admission_problem(decoded)

    def execute_steps(
        self, block: Block, state: StateReader, prev_app_hash: bytes, prechecked: Prechecked | None, slice_txs: int
    ) -> Generator[None, None, BlockResult]:
        return self.rules.execute_steps(block, state, prev_app_hash, prechecked, slice_txs)

    def after_commit(self, result: BlockResult) -> Callable[[], None] | None:
        alerts = self.service.after_commit(result.notices)
        if not alerts:
            return None
        return lambda: self.service.publish_alerts(alerts)

    def routes(self) -> list[web.RouteDef]:
        return HealthcareRoutes(self.node, self.service).routes()

    def on_shutdown(self) -> None:
        self.service.end_streams()

    def close(self) -> None:
        self.service.close()


def healthcare_app(home: Path) -> Callable[[Node], HealthcareApp]:
    """What a node process in ``home`` is started with: its vault is ``home/vault``, under the node's KEK.

    The KEK (``MEDCHAIN_KEK``, else the file config.toml names) is read here,
    before the node opens anything: without a usable one it does not start.
    """
    config = load_config(home)
    kek = load_kek(config.path(config.kek_file))
    return lambda node: HealthcareApp(node, home / VAULT_DIRNAME, kek)
