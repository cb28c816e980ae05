"""A stage of stopping that takes too long is logged (a node that stops slowly is killed by its supervisor)."""

from __future__ import annotations

import logging
import time

import pytest

from node.runtime import STOP_STAGE_WARN_S, slow_stage


def test_a_slow_stage_is_logged_with_its_name_and_a_quick_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="medchain.node"):
        ended = slow_stage("the P2P links", time.monotonic() - 2 * STOP_STAGE_WARN_S)
        slow_stage("the storage threads", ended)
    slow = [r for r in caplog.records if getattr(r, "event", None) == "slow-stop"]
    assert [(r.levelname, r.stage) for r in slow] == [("WARNING", "the P2P links")]  # type: ignore[attr-defined]
    assert "took 2.0 s" in slow[0].getMessage()
