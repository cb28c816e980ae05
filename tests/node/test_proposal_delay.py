"""When a primary that may propose does: the batch timeout counts from the oldest pending transaction."""

from __future__ import annotations

import pytest

from node.mempool import Mempool, proposal_delay

TIMEOUT = 0.05


def test_a_full_block_goes_at_once() -> None:
    assert proposal_delay(2_000, 2_000, TIMEOUT, 0.0) == 0.0
    assert proposal_delay(5_000, 2_000, TIMEOUT, None) == 0.0


@pytest.mark.parametrize(("waited", "delay"), [(0.0, 0.05), (0.01, 0.04), (0.049, 0.001), (0.05, 0.0), (3.0, 0.0)])
def test_the_wait_is_what_is_left_of_the_timeout_for_the_oldest_transaction(waited: float, delay: float) -> None:
    assert proposal_delay(10, 2_000, TIMEOUT, waited) == pytest.approx(delay)


def test_transactions_that_waited_through_a_round_are_proposed_at_once() -> None:
    """The rule this replaces waited the whole timeout again once the primary was free."""
    round_s = 0.08  # the previous block's round, during which the transaction arrived
    assert proposal_delay(150, 2_000, TIMEOUT, round_s) == 0.0


def test_an_unknown_admission_time_waits_the_whole_timeout_and_a_clock_step_back_no_longer() -> None:
    assert proposal_delay(1, 2_000, TIMEOUT, None) == TIMEOUT
    assert proposal_delay(1, 2_000, TIMEOUT, -1.0) == TIMEOUT


def test_the_oldest_pending_transaction_is_the_first_admitted_still_there() -> None:
    pool = Mempool()
    assert pool.oldest() is None
    for i in range(3):
        pool.add(bytes([i]) * 32, b"tx%d" % i)
    assert pool.oldest() == bytes([0]) * 32
    pool.remove([bytes([0]) * 32])
    assert pool.oldest() == bytes([1]) * 32
    assert pool.batch(10, 1 << 20)[0][0] == pool.oldest()
