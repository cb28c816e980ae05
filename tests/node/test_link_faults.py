"""``LinkFaults`` without sockets: reordering holds frames back so later ones overtake, and a seed replays."""

from __future__ import annotations

from node.p2p.transport import REORDER_HOLD_MS, LinkFaults


def delays(faults: LinkFaults, frames: int = 200) -> list[list[float]]:
    return [faults.outgoing_delays("b") for _ in range(frames)]


def test_reordering_holds_some_frames_back_so_later_frames_overtake_them() -> None:
    faults = LinkFaults(seed=1)
    faults.set("b", reorder=0.3)
    sent = [d[0] for d in delays(faults)]
    held = [d for d in sent if d > 0]
    assert 30 < len(held) < 90 and faults.reordered == len(held)
    assert all(0.001 <= d <= REORDER_HOLD_MS / 1000 for d in held)
    # a frame sent after a held one leaves before it
    assert any(sent[i] > 0 and sent[i + 1] == 0 for i in range(len(sent) - 1))


def test_no_reordering_leaves_every_frame_in_order() -> None:
    faults = LinkFaults(seed=1)
    faults.set("b", delay_ms=5)
    assert {d[0] for d in delays(faults)} == {0.005} and faults.reordered == 0


def test_the_same_seed_replays_the_same_losses_duplicates_and_holds() -> None:
    def run(seed: int) -> list[list[float]]:
        faults = LinkFaults(seed=0)
        faults.set("b", loss=0.2, duplicate=0.2, jitter_ms=10, reorder=0.2)
        faults.reseed(seed)
        return delays(faults)

    assert run(5) == run(5)
    assert run(5) != run(6)
