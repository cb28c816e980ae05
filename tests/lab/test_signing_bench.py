"""The signature benchmark (``node.lab.signing_bench``): both backends measured, bad arguments refused."""

from __future__ import annotations

import json

import pytest

from node.lab import signing_bench


def test_signing_bench_runs_and_reports_both_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert signing_bench.main(["--seconds", "0.04", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["backend"] for r in report["rates"]] == ["pynacl", "cryptography"]
    assert all(r["sign_per_s"] > 0 and r["verify_per_s"] > 0 for r in report["rates"])
    assert report["message_bytes"] == 120
    rates = {r["backend"]: r["verify_per_s"] for r in report["rates"]}
    assert report["verify_ratio_pynacl_over_cryptography"] == pytest.approx(rates["pynacl"] / rates["cryptography"])
    assert signing_bench.main(["--seconds", "0.04"]) == 0
    assert "verify ratio pynacl / cryptography" in capsys.readouterr().out


@pytest.mark.parametrize("seconds", ["0", "-1", "abc", "nan"])
def test_signing_bench_rejects_bad_seconds(seconds: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        signing_bench.main(["--seconds", seconds])
    assert info.value.code == 2
    assert "--seconds" in capsys.readouterr().err
