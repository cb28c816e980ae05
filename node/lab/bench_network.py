"""Where a bench run's load goes: a fresh cluster the bench generates, starts and stops, or one already running.

* fresh, plain: ``N`` validators named node0, node1, ... (``--nodes N``);
* fresh, consortium: the organisations of a consortium file, validators and
  observers named after them (``--consortium FILE``);
* a target: a cluster started earlier (``medchain cluster up --dir DIR``),
  found through ``DIR/cluster.json``, its genesis and its client keys
  (``DIR/clients/client*.json``); the bench never starts nor stops it.

``Site`` is what the rest of the bench needs of either: the folder, the chain
id, how many validators verify each transaction (the ceiling divides by it)
and the client keys that sign the load.  ``started`` yields the running nodes
and stops them on the way out only if the bench started them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from node.config import ConfigError, read_key
from node.genesis import load_genesis
from node.lab import cluster as clusters
from node.lab.consortium import load_consortium
from node.lab.fresh_cluster import free_base_port, running_cluster
from node.lab.testnet import client_key, generate_testnet
from primitives.errors import UsageError

CLIENT_KEYS = 8
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
Say = Callable[[str], None]


class TargetError(UsageError):
    """The cluster named by ``--target`` cannot be driven: the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """Which cluster a run uses: ``target`` (running), else ``consortium`` (a file), else ``validators`` nodes."""

    validators: int = 4
    consortium: Path | None = None
    target: Path | None = None

    def describe(self) -> str:
        if self.target is not None:
            return f"the running cluster in {self.target}"
        if self.consortium is not None:
            return f"a fresh consortium cluster ({self.consortium.name})"
        return f"a fresh cluster of {self.validators} validators"


@dataclass(frozen=True, slots=True)
class Site:
    root: Path
    chain_id: str
    validators: int
    seeds: list[bytes]
    owned: bool  # True: generated here; the bench starts it and stops it


def consortium_for(validators: int) -> Path | None:
    """The shipped consortium file with this many validators (configs/consortium-<n>.toml), if there is one."""
    path = CONFIGS / f"consortium-{validators}.toml"
    return path if path.exists() else None


def open_site(spec: NetworkSpec, root: Path) -> Site:
    """Generate the fresh network under ``root`` (not started yet), or read the target's."""
    if spec.target is not None:
        return attach(spec.target)
    chain_id = f"medchain-bench-{os.urandom(3).hex()}"
    if spec.consortium is not None:
        consortium = load_consortium(spec.consortium)
        size = len(consortium.validators) + len(consortium.observers)
        generate_testnet(root, 0, base_port=free_base_port(size), clients=CLIENT_KEYS, consortium=consortium,
                         chain_id=chain_id)
        validators = len(consortium.validators)
    else:
        generate_testnet(root, spec.validators, base_port=free_base_port(spec.validators), clients=CLIENT_KEYS,
                         chain_id=chain_id)
        validators = spec.validators
    seeds = [client_key(root, j).seed for j in range(CLIENT_KEYS)]
    return Site(root, chain_id, validators, seeds, owned=True)


def attach(target: Path) -> Site:
    """A running cluster's site: its genesis, its client keys; the nodes are checked by ``started``."""
    if not (target / "cluster.json").exists():
        raise TargetError(f"no cluster at {target} (no cluster.json): start one with 'medchain cluster up --dir'")
    genesis = load_genesis(target / "genesis.json")
    keys = sorted((target / "clients").glob("client*.json"))
    if not keys:
        raise TargetError(f"{target}/clients holds no client keys to sign the load (client0.json, ...)")
    try:
        seeds = [read_key(path).seed for path in keys]
    except (ConfigError, OSError) as exc:
        raise TargetError(f"cannot read the client keys of {target}: {exc}") from None
    return Site(target, genesis.chain_id, len(genesis.validators), seeds, owned=False)


@contextlib.contextmanager
def started(site: Site, say: Say) -> Iterator[list[clusters.NodeProcess]]:
    """The site's nodes, running: started here and stopped on the way out, or the target's, left running."""
    if site.owned:
        with running_cluster(site.root, say) as nodes:
            yield nodes
        return
    nodes = clusters.load_cluster(site.root)
    dead = [n.name for n in nodes if not clusters.is_alive(n.pid)]
    if dead:
        raise TargetError(
            f"{', '.join(dead)} of the cluster in {site.root} not running: 'medchain cluster status --dir' says more"
        )
    say(f"driving the running cluster in {site.root} ({len(nodes)} nodes); it stays up afterwards")
    yield nodes
