"""The bench's batch submission: the request it writes, how it reads the answer, and a short run that uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.api.batch import BatchLimits, decode_batch
from node.cli.main import main as cli
from node.lab.bench_batch import batch_request, item_statuses

TXS = [b"one", b"two", b"three"]


def test_the_request_is_one_http_post_of_the_batch_body() -> None:
    request = batch_request("127.0.0.1", 26601, TXS)
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /txs/batch HTTP/1.1"
    assert "Content-Type: application/x-medchain-txs" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert decode_batch(body, "application/x-medchain-txs", BatchLimits(10, 1 << 20)) == TXS


def answer(*items: dict[str, str]) -> bytes:
    return json.dumps({"count": len(items), "counts": {}, "results": list(items)}).encode()


def test_each_result_becomes_the_status_post_txs_would_have_answered() -> None:
    body = answer(
        {"tx_id": "a", "status": "pending"},
        {"tx_id": "b", "status": "refused", "error": "mempool-full", "message": "full"},
        {"tx_id": "c", "status": "refused", "error": "already-committed", "message": "x"},
        {"tx_id": "d", "status": "refused", "error": "bad-signature", "message": "x"},
        {"tx_id": "e", "status": "refused", "error": "malformed", "message": "x"},
        {"tx_id": "f", "status": "committed"},
        {"tx_id": "g", "status": "timeout", "message": "x"},
    )
    assert item_statuses(202, body, 7) == [202, 503, 409, 422, 400, 200, 504]


def test_a_batch_refused_whole_gives_its_status_to_each() -> None:
    assert item_statuses(413, b'{"error": "too-large", "message": "x"}', 3) == [413, 413, 413]


@pytest.mark.parametrize("body", [b"not json", answer({"tx_id": "a", "status": "pending"}), b'{"results": 5}'])
def test_an_answer_that_does_not_match_the_batch_is_an_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        item_statuses(202, body, 2)


def test_a_short_run_submitting_in_batches_commits_everything_and_says_so(tmp_path: Path) -> None:
    args = ["bench", "cluster", "--mode", "closed", "--concurrency", "300", "--seconds", "1.5",
            "--verify-seconds", "0.1", "--submit", "batch", "--batch-size", "50"]
    result = CliRunner().invoke(cli, [*args, "--dir", str(tmp_path / "bench"), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    assert run["plan"]["submit"] == "batch" and run["plan"]["batch_size"] == 50
    assert "in batches of up to 50" in run["description"]
    assert run["offered"] > 300 and run["failures"]["never_committed"] == 0
    assert not run["failed"] and run["committed"] > 0, run["failed"]


@pytest.mark.parametrize("args", [["--submit", "bulk"], ["--batch-size", "0"], ["--batch-size", "1001"]])
def test_bench_cluster_refuses_a_bad_submit_option(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["bench", "cluster", *args])
    assert result.exit_code == 2 and args[0] in result.output
