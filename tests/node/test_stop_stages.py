"""A stage of stopping that takes too long is logged (a node that stops slowly is killed by its supervisor)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from node.runtime import STOP_STAGE_WARN_S, bounded_stage, slow_stage


def test_a_slow_stage_is_logged_with_its_name_and_a_quick_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="medchain.node"):
        ended = slow_stage("the P2P links", time.monotonic() - 2 * STOP_STAGE_WARN_S)
        slow_stage("the storage threads", ended)
    slow = [r for r in caplog.records if getattr(r, "event", None) == "slow-stop"]
    assert [(r.levelname, r.stage) for r in slow] == [("WARNING", "the P2P links")]  # type: ignore[attr-defined]
    assert "took 2.0 s" in slow[0].getMessage()


async def test_a_stage_that_hangs_is_cut_off_logged_with_every_tasks_stack_and_stopping_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def waits_for_ever() -> None:
        await asyncio.Event().wait()

    stuck = asyncio.create_task(waits_for_ever(), name="stuck-worker")
    with caplog.at_level(logging.INFO, logger="medchain.node"):
        started = time.monotonic()
        await bounded_stage("the P2P links", asyncio.shield(stuck), limit_s=0.2)
        took = time.monotonic() - started
        await bounded_stage("the storage threads", asyncio.sleep(0), limit_s=0.2)
    assert 0.2 <= took < 2
    cut = [r for r in caplog.records if getattr(r, "event", None) == "stop-timeout"]
    assert [r.stage for r in cut] == ["the P2P links"]  # type: ignore[attr-defined]
    text = cut[0].getMessage()
    assert "task stuck-worker" in text and "waits_for_ever" in text
    stuck.cancel()
    with pytest.raises(ValueError, match="broken"):
        await bounded_stage("the HTTP API", _fails(), limit_s=0.2)


async def _fails() -> None:
    raise ValueError("broken")
