"""The engine and its simulator are pure: no I/O, no clock, no unseeded randomness (DESIGN section 4)."""

import ast
from pathlib import Path

import pytest

import consensus

ROOT = Path(consensus.__file__).parent
MODULES = sorted(ROOT.rglob("*.py"))
FORBIDDEN = {"asyncio", "aiohttp", "plyvel", "socket", "time", "threading", "os", "node", "storage"}
SIM_ALLOWED = {
    "__future__", "random", "heapq", "dataclasses", "statistics", "collections", "typing", "functools",
    "itertools", "math", "consensus", "primitives",
}


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node))
    return found


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT.parent))


def test_every_module_of_the_engine_and_the_simulator_is_checked():
    names = {_name(p) for p in MODULES}
    assert "consensus/replica.py" in names
    assert "consensus/sim/cluster.py" in names


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_consensus_modules_import_no_io_clock_threads_or_outer_layers(path):
    bad = sorted({name for name, _ in _imports(path) if name.split(".")[0] in FORBIDDEN})
    assert bad == [], f"{_name(path)} imports {bad}"


@pytest.mark.parametrize("path", sorted((ROOT / "sim").rglob("*.py")), ids=_name)
def test_simulator_imports_only_deterministic_stdlib_and_the_core(path):
    bad = sorted({name for name, _ in _imports(path) if name.split(".")[0] not in SIM_ALLOWED})
    assert bad == [], f"{_name(path)} imports {bad}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_randomness_only_through_seeded_random_instances(path):
    """`random.Random(seed)` is fine; `random.random()`, `random.choice()` (the global, unseeded state) are not."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            assert [a.name for a in node.names] == ["Random"], f"{_name(path)}: from random import {node.names}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "random":
            assert node.attr == "Random", f"{_name(path)}:{node.lineno} uses random.{node.attr}"
