"""The chaos report: report.json, report.md with the verdict table, a real PNG timeline; the run-all table."""

import json

from node.lab.chaos.checks import judge
from node.lab.chaos.liveness import liveness
from node.lab.chaos.record import Ack, FaultWindow, Sample
from node.lab.chaos.report import verdict_table, write_report
from node.lab.chaos.verdict import Verdict
from tests.lab.chaos.chains import VALIDATORS, record

NODES = [*VALIDATORS, "node4"]


def _run():
    samples = []
    for i in range(41):
        t = i * 0.5
        for n in NODES:
            down = n == "node1" and 5 <= t < 10
            height = None if down else (int(t) if n != "node1" or t >= 12 or t < 5 else 5)
            samples.append(Sample(t, n, height, view=0 if t < 6 else 1))
    r = record(samples=samples, commits_resume_within_s=5.0, evidence_from=["node3"])
    r.duration_s = 20.0
    r.byzantine.append("node3")
    r.windows += [FaultWindow("kill", ["node1"], 5.0, 10.0, "kill -9"), FaultWindow("byzantine", ["node3"], 12.0, None)]
    r.acks += [Ack(f"{i:064x}", "node0", i * 0.1, i * 0.1 + 0.3, honest=i % 3 != 0) for i in range(150)]
    r.notes.append("a note for people")
    culprits = {"node3": {"key": "ab" * 32, "kinds": ["prepare"], "heights": [14], "reported_by": ["node0"],
                          "signatures_ok": True}}
    items = [
        Verdict("agreement", True, "5 honest chain(s) agree"),
        Verdict("durability", False, "vacuous: nothing was acknowledged", ["no ack | at all"]),
        Verdict("validity", True, "fine"),
        liveness(r),
        Verdict("evidence", True, "evidence from: node3", [], {"culprits": culprits}),
    ]
    return r, judge(items, r.expectations)


def test_the_report_writes_json_markdown_and_a_real_png(tmp_path):
    r, verdicts = _run()
    paths = write_report(tmp_path / "out", r, verdicts)
    assert [p.name for p in paths] == ["report.json", "report.md", "timeline.png"]
    png = (tmp_path / "out" / "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["outcome"] == "FAILED: durability" and doc["expectation_met"] is False
    assert [v["name"] for v in doc["verdicts"]] == ["agreement", "durability", "validity", "liveness", "evidence"]
    assert doc["faults"][0]["recovery_s"] == 2.0 and doc["faults"][1]["recovery_s"] is None
    assert sum(b["committed"] for b in doc["throughput"]) == 150
    assert {"t_s": 6.0, "node": "node0", "from": 0, "to": 1} in doc["view_changes"]
    assert doc["heights"]["node1"][10] == [5.0, None]


def test_the_markdown_holds_the_verdict_table_faults_and_evidence(tmp_path):
    r, verdicts = _run()
    write_report(tmp_path, r, verdicts)
    md = (tmp_path / "report.md").read_text()
    assert "| invariant | verdict | summary |" in md
    assert "| durability | FAIL | vacuous: nothing was acknowledged |" in md
    assert "| agreement | ok | 5 honest chain(s) agree |" in md
    assert "| 0 | kill | node1 | 5 | 10 | 1.00 | 2.00 | kill -9 |" in md
    assert "node3 (key `" + "ab" * 32 + "`): prepare at height(s) 14" in md
    assert "no ack \\| at all" in md and "a note for people" in md and "![timeline](timeline.png)" in md
    assert "**outcome: FAILED: durability** (expectation NOT met)" in md


def test_the_report_of_an_empty_run_still_draws(tmp_path):
    r = record()
    verdicts = judge([Verdict("durability", False, "vacuous: nothing was acknowledged")], r.expectations)
    paths = write_report(tmp_path, r, verdicts)
    assert all(p.stat().st_size > 0 for p in paths)
    assert "No fault was applied." in (tmp_path / "report.md").read_text()


def test_the_verdict_table_has_one_line_per_scenario():
    _, failed = _run()
    ok = judge([Verdict(n, True, "") for n in ("agreement", "durability", "validity", "liveness", "evidence")],
               record().expectations)
    table = verdict_table([("primary-crash", ok), ("beyond-f", failed)]).splitlines()
    assert table[0].split() == ["scenario", "agreement", "durability", "validity", "liveness", "evidence",
                                "latency", "outcome", "expected"]
    assert table[2].split() == ["primary-crash", "ok", "ok", "ok", "ok", "ok", "-", "ok", "yes"]
    assert table[3].split() == ["beyond-f", "ok", "FAIL", "ok", "ok", "ok", "-", "FAILED:", "durability", "NO"]
    ok.items.append(Verdict("store", False, "a broken store"))
    extra = verdict_table([("primary-crash", ok), ("beyond-f", failed)]).splitlines()
    assert extra[0].split()[7] == "store" and extra[2].split()[7] == "FAIL" and extra[3].split()[7] == "-"
