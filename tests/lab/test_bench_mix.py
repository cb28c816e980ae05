"""The benchmark's healthcare mix, without a cluster: proportions, signatures, and order independence."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from consensus.messages import Block, BlockHeader
from node.app import TxResult
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.state import Overlay
from node.healthcare.ledger.supply import load_pack, verify_code
from node.healthcare.transactions import BODY_CODEC, parse_transaction, parse_with_body
from node.lab import bench_mix as mix
from primitives.merkle import merkle_root
from tests.healthcare.ledger.world import CHAIN, ORGS, World, key

LOAD = 400  # 20 cycles of the mix


def _cast_and_seeds(world: World) -> tuple[mix.Cast, dict[str, bytes]]:
    seeds = {}
    for org in ORGS:
        seeds[mix.admin_name(org)] = world.admin(org).seed
        seeds[mix.node_name(org)] = key(f"{org}/node").seed
    return mix.Cast.from_kinds(ORGS), seeds


def _execute(world: World, txs: list[bytes]) -> list[TxResult]:
    """One block of pre-signed transactions on the in-memory ledger (as ``World.block`` does for bodies)."""
    world.height += 1
    world.time_ms += 1000
    header = BlockHeader(
        CHAIN, world.height, b"\0" * 32, 0, 0, world.time_ms, merkle_root(tuple(txs)), len(txs), world.app_hash
    )
    result = world.app.execute_block(Block(header, tuple(txs)), world.state, world.app_hash)
    world.state.apply(result.writes)
    world.app_hash = result.app_hash
    return result.results


def _refusals(results: list[TxResult]) -> Counter[str]:
    return Counter(f"{r.action}: {r.code}" for r in results if not r.ok)


def test_the_load_holds_each_kind_in_its_documented_share() -> None:
    world = World()
    cast, _ = _cast_and_seeds(world)
    plan = mix.plan_mix(cast, LOAD, world.time_ms)
    counts = Counter(step.kind for step in plan.load)
    assert counts == {s.kind: s.weight * LOAD // mix.CYCLE for s in mix.MIX}
    drug = sum(n for kind, n in counts.items() if next(s for s in mix.MIX if s.kind == kind).domain == "drug")
    assert drug / LOAD == 0.6
    first_cycle = Counter(step.kind for step in plan.load[: mix.CYCLE])
    assert first_cycle == {s.kind: s.weight for s in mix.MIX}  # shares hold per cycle, not only overall


def test_every_presigned_transaction_decodes_and_verifies() -> None:
    world = World()
    cast, seeds = _cast_and_seeds(world)
    plan = mix.plan_mix(cast, 100, world.time_ms)
    steps = [*(s for wave in plan.setup for s in wave), *plan.load]
    txs = mix.sign_steps({**seeds, **plan.seeds}, CHAIN, world.time_ms, steps)
    assert len(txs) == len(steps)
    for step, data in zip(steps, txs, strict=True):
        tx = parse_transaction(data)
        assert tx.check_signature()
        body = BODY_CODEC.decode(tx.body)
        if step.kind == "access":
            assert isinstance(body, b.RecordAccess) and body.request.check_signature()
            assert body.request.time_ms == world.time_ms
        else:
            assert body == step.body


def test_the_process_pool_keeps_the_order() -> None:
    world = World()
    cast, seeds = _cast_and_seeds(world)
    plan = mix.plan_mix(cast, 120, world.time_ms)
    txs = mix.presign_steps({**seeds, **plan.seeds}, CHAIN, world.time_ms, plan.load, workers=2, chunk=50)
    bodies = [parse_with_body(t)[1] for t in txs]
    assert [type(x) for x in bodies] == [type(s.body) if s.kind != "access" else b.RecordAccess for s in plan.load]
    assert [x for x, s in zip(bodies, plan.load, strict=True) if s.kind == "commission"] == [
        s.body for s in plan.load if s.kind == "commission"
    ]


@pytest.mark.parametrize("shuffle", [1, 2, 3])
def test_setup_then_the_load_in_a_shuffled_order_is_all_accepted(shuffle: int) -> None:
    world = World()
    cast, seeds = _cast_and_seeds(world)
    plan = mix.plan_mix(cast, LOAD, world.time_ms)
    seeds = {**seeds, **plan.seeds}
    for wave in plan.setup:
        shuffled = random.Random(len(wave)).sample(wave, len(wave))  # a wave is order-independent too
        results = _execute(world, mix.sign_steps(seeds, CHAIN, world.time_ms, shuffled))
        assert not _refusals(results), f"setup wave refused: {_refusals(results)}"
    txs = mix.sign_steps(seeds, CHAIN, world.time_ms, plan.load)
    order = random.Random(shuffle).sample(range(len(txs)), len(txs))
    results = []
    for start in range(0, len(order), 37):
        results += _execute(world, [txs[i] for i in order[start : start + 37]])
    assert len(results) == LOAD
    assert not _refusals(results)
    assert Counter(mix.ACTIONS[r.action] for r in results) == Counter(s.kind for s in plan.load)


def test_the_verification_chain_places_every_pack_at_a_dispenser() -> None:
    world = World()
    cast, seeds = _cast_and_seeds(world)
    plan = mix.plan_chain(cast, 4100, world.time_ms)
    assert [len(lot.serials) for lot in plan.lots] == [2000, 2000, 100]
    assert plan.load == []
    seeds = {**seeds, **plan.seeds}
    for wave in plan.setup:
        results = _execute(world, mix.sign_steps(seeds, CHAIN, world.time_ms, wave))
        assert not _refusals(results)
    for lot in plan.lots:
        pack = load_pack(Overlay(world.state), lot.gtin, lot.serials[-1])  # as it stands
        assert pack is not None and pack.custodian in cast.dispensers and pack.state == "active"
        verdict = verify_code(Overlay(world.state), lot.gtin, lot.serials[0], lot.lot, lot.expiry, world.time_ms)
        assert verdict.verified and verdict.status == "active"


def test_the_ratio_divides_the_mix_by_the_mean_of_the_anchor_runs_around_it() -> None:
    from node.lab.bench import mix_ratio
    from node.lab.bench_report import mix_lines

    found = mix_ratio([1600.0, 1400.0], 1050.0)
    assert found == {"anchor_runs_tx_s": [1600.0, 1400.0], "anchor_tx_s": 1500.0, "ratio": 0.7}
    assert mix_ratio([], 1050.0)["ratio"] is None  # the mix alone: no ratio
    m = {
        "run": "mixed-closed", "mix": "per 20 tx: ...", "composition": [],
        "setup": {"txs": 10, "seconds": 1.0, "by_kind": {"licence": 10}}, "outcomes": {},
        "signatures_per_tx": 1.2, "signature_share_of_ceiling": 0.1, "mixed_tx_s": 1050.0, **found,
    }
    line = mix_lines(m, {"tx_per_s": 7000.0})[-1]
    assert line.endswith("1,050.0 / 1,500.0 = 0.70 (anchors: the mean of 1,600.0 and 1,400.0, "
                         "before and after the mix)")
