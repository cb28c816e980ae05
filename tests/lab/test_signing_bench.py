"""The signature benchmark (``medchain bench signing``): both backends measured, bad arguments refused."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from node.cli.main import main as cli


def test_signing_bench_runs_and_reports_both_backends() -> None:
    result = CliRunner().invoke(cli, ["bench", "signing", "--seconds", "0.04", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["backend"] for r in report["rates"]] == ["pynacl", "cryptography"]
    assert all(r["sign_per_s"] > 0 and r["verify_per_s"] > 0 for r in report["rates"])
    assert report["message_bytes"] == 120
    rates = {r["backend"]: r["verify_per_s"] for r in report["rates"]}
    assert report["verify_ratio_pynacl_over_cryptography"] == pytest.approx(rates["pynacl"] / rates["cryptography"])
    result = CliRunner().invoke(cli, ["bench", "signing", "--seconds", "0.04"])
    assert result.exit_code == 0, result.output
    assert "verify ratio pynacl / cryptography" in result.stdout


@pytest.mark.parametrize("seconds", ["0", "-1", "abc", "nan"])
def test_signing_bench_rejects_bad_seconds(seconds: str) -> None:
    result = CliRunner().invoke(cli, ["bench", "signing", "--seconds", seconds])
    assert result.exit_code == 2
    assert "--seconds" in result.stderr
