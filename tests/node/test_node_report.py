"""``NodeReport``: the P2P record behind ``GET /network``'s view of every peer."""

from __future__ import annotations

import msgpack
import pytest

from node.p2p.wire import NODE_CODEC, NodeReport
from primitives.errors import DecodeError


@pytest.mark.parametrize("report", [
    NodeReport(0, 0, False, 0, None),
    NodeReport(2**40, 7, True, 50_000, 1_796_000_000_000),
])
def test_a_report_travels_unchanged(report: NodeReport) -> None:
    assert NODE_CODEC.decode(NODE_CODEC.encode(report)) == report


@pytest.mark.parametrize("fields", [
    [-1, 0, False, 0, None],  # a negative height
    [1, 0, 1, 0, None],  # in_view_change must be a boolean
    [1, 0, False, "many", None],  # mempool must be a count
    [1, 0, False, 0],  # a field missing
])
def test_a_malformed_report_is_refused(fields: list[object]) -> None:
    with pytest.raises(DecodeError):
        NODE_CODEC.decode(msgpack.packb([NodeReport.TAG, *fields]))
