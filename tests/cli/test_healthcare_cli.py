"""The healthcare CLI without a node: argument checks, key files, pack codes, one-line errors with exit 2."""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli.common import Fail, parse_pack_code
from node.cli.ehr import expiry_ms
from node.cli.main import main as cli
from node.healthcare.ledger.records import patient_id
from tests.harness import free_base_port

GTIN = "09506000134352"  # a valid GTIN-14 (check digit 2)
HEX32 = "ab" * 32
PID = "cd" * 16


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "me.json"
    assert CliRunner().invoke(cli, ["key", "new", "--out", str(path)]).exit_code == 0
    return path


@pytest.fixture
def dead_node() -> str:
    return f"http://127.0.0.1:{free_base_port(1)}"


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"MEDCHAIN_NODE": None, **(env or {})})


def one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    for word in words:
        assert word in result.output, result.output


# ---------------------------------------------------------------- keys


def test_key_new_and_show_agree_on_the_public_key_and_patient_id(tmp_path: Path):
    path = tmp_path / "keys" / "alice.json"
    made = run("key", "new", "--out", str(path), "--json")
    assert made.exit_code == 0, made.output
    doc = json.loads(made.output)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["public"] == doc["public"]
    assert doc["patient_id"] == patient_id(bytes.fromhex(doc["public"])).hex()
    shown = run("key", "show", str(path))
    assert shown.exit_code == 0
    assert f"public key: {doc['public']}" in shown.output and f"patient id: {doc['patient_id']}" in shown.output
    assert json.loads(run("key", "show", str(path), "--json").output) == doc


def test_key_new_refuses_to_overwrite_a_key(key: Path):
    before = key.read_text()
    one_line_error(run("key", "new", "--out", str(key)), "already exists")
    assert key.read_text() == before


def test_an_unreadable_key_file_is_a_one_line_error(tmp_path: Path):
    one_line_error(run("key", "show", str(tmp_path / "missing.json")), "no key file")
    bad = tmp_path / "bad.json"
    bad.write_text('{"seed": "xyz"}')
    one_line_error(run("key", "show", str(bad)), "seed")
    one_line_error(run("patient", "register", "--node", "http://127.0.0.1:9", "--key", str(bad)), "seed")


# ---------------------------------------------------------------- node and key options


def test_a_signing_command_without_key_says_so_before_calling_any_node(dead_node: str):
    for args in (
        ["patient", "register"],
        ["org", "enrol", HEX32, "--role", "physician"],
        ["drug", "dispense", f"{GTIN}:S1"],
        ["ehr", "erase", "--all"],
    ):
        one_line_error(run(*args, "--node", dead_node), "--key")


def test_no_node_given_is_a_one_line_error_naming_the_option_and_the_variable():
    one_line_error(run("org", "list"), "--node", "MEDCHAIN_NODE")
    one_line_error(run("org", "list", "--node", "127.0.0.1"), "host:port", "no port")


def test_an_unreachable_node_is_a_one_line_error(dead_node: str, key: Path):
    one_line_error(run("org", "list", "--node", dead_node), "cannot reach")
    one_line_error(run("alerts", env={"MEDCHAIN_NODE": dead_node}), "cannot reach")
    one_line_error(run("alerts", "--follow", env={"MEDCHAIN_NODE": dead_node}), "cannot reach")
    one_line_error(run("patient", "register", "--node", dead_node, "--key", str(key)), "cannot reach")


# ---------------------------------------------------------------- argument checks


def test_a_bad_gtin_names_the_field(dead_node: str, key: Path):
    bad = GTIN[:-1] + "9"  # wrong check digit
    common = ["--node", dead_node, "--key", str(key)]
    result = run("drug", "commission", "--gtin", bad, "--lot", "L1", "--expiry", "301231", "--count", "3", *common)
    one_line_error(result, "gtin")
    one_line_error(run("drug", "recall", "--gtin", "12x", "--lot", "L1", "--reason", "r", *common), "gtin")
    one_line_error(run("drug", "dispense", f"{bad}:S1", *common), "gtin")
    one_line_error(run("drug", "ship", "--to", "x", "--shipment", "s", "--lot", f"{bad}:L1", *common), "gtin")


def test_commission_takes_serials_or_a_count(dead_node: str, key: Path):
    common = ["--gtin", GTIN, "--lot", "L1", "--expiry", "301231", "--node", dead_node, "--key", str(key)]
    one_line_error(run("drug", "commission", *common), "--serials", "--count")
    one_line_error(run("drug", "commission", *common, "--serials", "A,B", "--count", "2"), "not both")
    one_line_error(run("drug", "commission", *common, "--serials", "A,B,A"), "twice")
    one_line_error(run("drug", "commission", *common, "--count", "2", "--serial-prefix", "X" * 30), "serial")


def test_consent_names_exactly_one_grantee_and_a_future_expiry(dead_node: str, key: Path):
    common = ["--node", dead_node, "--key", str(key)]
    one_line_error(run("consent", "grant", "--org", "hosp-a", "--practitioner", HEX32, *common), "not both")
    one_line_error(run("consent", "grant", *common), "--org", "--practitioner")
    one_line_error(run("consent", "revoke", "--org", "hosp-a", "--practitioner", HEX32, *common), "not both")
    one_line_error(run("consent", "grant", "--practitioner", "nope", *common), "--practitioner")
    one_line_error(run("consent", "grant", "--org", "a", "--until", "2001-01-01", *common), "past")
    one_line_error(run("consent", "grant", "--org", "a", "--until", "soon", *common), "ISO-8601")
    one_line_error(run("consent", "grant", "--org", "a", "--days", "3", "--until", "2999-01-01", *common), "not both")
    one_line_error(run("consent", "grant", "--org", "a", "--types", "observation", *common), "--types")


def test_until_a_date_means_through_the_end_of_that_day():
    now = dt.datetime(2030, 5, 1, 12, tzinfo=dt.UTC)
    end = dt.datetime(2030, 5, 2, tzinfo=dt.UTC)
    assert expiry_ms("2030-05-01", None, now) == int(end.timestamp() * 1000)
    assert expiry_ms("2030-05-01T14:00+01:00", None, now) == int((now + dt.timedelta(hours=1)).timestamp() * 1000)
    with pytest.raises(Fail):
        expiry_ms("2030-05-01T12:30+01:00", None, now)  # 11:30 UTC: past
    assert expiry_ms(None, 2, now) == int((now + dt.timedelta(days=2)).timestamp() * 1000)
    assert expiry_ms(None, None, now) is None


def test_bad_hex_ids_and_bad_record_files_are_refused_locally(dead_node: str, key: Path, tmp_path: Path):
    common = ["--node", dead_node, "--key", str(key)]
    one_line_error(run("ehr", "history", "zz", "--node", dead_node), "RECORD_ID", "hex")
    one_line_error(run("ehr", "read", "ab" * 15, *common), "RECORD_ID", "32 hex digits")
    one_line_error(run("ehr", "erase", *common), "--all")
    one_line_error(run("ehr", "erase", PID, "--all", *common), "not both")
    one_line_error(run("consent", "list", "--node", dead_node), "--patient", "--key")
    one_line_error(run("org", "member", "12", "--node", dead_node), "KEY")
    good = tmp_path / "obs.json"
    good.write_text(json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "BP"}}))
    one_line_error(run("ehr", "add", "--patient", "xyz", "--file", str(good), *common), "--patient")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resourceType": "Observation", "status": "final"}))  # no code
    one_line_error(run("ehr", "add", "--patient", PID, "--file", str(bad), *common), "bad.json", "code")
    bad.write_text("{not json")
    one_line_error(run("ehr", "amend", PID, "--replaces", "1", "--file", str(bad), *common), "bad.json")
    one_line_error(run("ehr", "add", "--patient", PID, "--file", str(tmp_path / "none.json"), *common), "none.json")


def test_licences_need_a_prefix_exactly_for_manufacture(dead_node: str, key: Path):
    common = ["--node", dead_node, "--key", str(key)]
    one_line_error(run("license", "grant", "maker", "manufacture", *common), "--prefix")
    one_line_error(run("license", "grant", "maker", "manufacture", "--prefix", "12ab", *common), "--prefix")
    one_line_error(run("license", "revoke", "pharmacy", "dispense", "--prefix", "9506000", *common), "--prefix")


def test_quarantine_names_one_pack_or_one_lot(dead_node: str, key: Path):
    common = ["--reason", "suspect", "--node", dead_node, "--key", str(key)]
    one_line_error(run("drug", "quarantine", f"{GTIN}:S1", "--gtin", GTIN, "--lot", "L1", *common), "not both")
    one_line_error(run("drug", "release", "--gtin", GTIN, *common), "--lot")


# ---------------------------------------------------------------- pack codes


def test_gtin_serial_and_gs1_element_strings_name_the_same_pack():
    short = parse_pack_code(f"{GTIN}:SN-0001")
    assert (short.gtin, short.serial, short.lot, short.expiry) == (GTIN, "SN-0001", None, None)
    assert parse_pack_code(short.scan).serial == "SN-0001"  # what is sent to the node parses back
    full = parse_pack_code(f"(01){GTIN}(17)301231(10)LOT7(21)SN-0001")
    assert (full.gtin, full.serial, full.lot, full.expiry) == (GTIN, "SN-0001", "LOT7", "301231")
    assert full.scan == f"(01){GTIN}(17)301231(10)LOT7(21)SN-0001"  # the full code is verified as scanned


def test_a_code_without_serial_or_with_a_bad_gtin_is_refused():
    with pytest.raises(Fail, match="serial"):
        parse_pack_code(f"(01){GTIN}(10)LOT7")
    with pytest.raises(Fail, match="gtin"):
        parse_pack_code(f"(01){GTIN[:-1]}0(21)S1")
    with pytest.raises(Fail, match="gtin"):
        parse_pack_code(f"{GTIN[:-1]}0:S1")


# ---------------------------------------------------------------- end to end


CONSORTIUM = Path(__file__).resolve().parents[2] / "configs" / "consortium-4.toml"


def test_an_operator_runs_records_and_a_supply_chain_from_the_command_line(tmp_path: Path):
    """Real processes (consortium-4): every family of commands, their exit codes and their human output."""
    from node.lab import cluster as clusters
    from node.lab.counterfeit import Network
    from tests.harness import Cluster

    root = tmp_path / "net"
    cluster = Cluster(root, consortium=CONSORTIUM)
    cluster.start()
    try:
        net = Network.load(root)
        reg, hosp, pharmacy = net.api_for("regulator"), net.api_for("st-mary"), net.api_for("northside-pharmacy")
        deadline = time.monotonic() + 30
        for api in net.apis.values():
            while run("org", "list", "--node", api).exit_code != 0:
                assert time.monotonic() < deadline, f"the node at {api} never answered"
                time.sleep(0.2)
        keys = {who: tmp_path / f"{who}.json" for who in ("dr", "pharmacist", "maker", "patient")}
        for path in keys.values():
            assert run("key", "new", "--out", str(path)).exit_code == 0

        def ok(*args: str) -> Result:
            result = run(*args)
            assert result.exit_code == 0, (args, result.output)
            return result

        def admin(org: str) -> str:
            return str(root / "orgs" / org / "admin.json")

        # identities and licences
        ok("org", "enrol", str(keys["dr"]), "--role", "physician", "--key", admin("st-mary"), "--node", hosp)
        ok(
            "org",
            "enrol",
            str(keys["pharmacist"]),
            "--role",
            "pharmacist",
            "--key",
            admin("northside-pharmacy"),
            "--node",
            pharmacy,
        )
        ok("org", "enrol", str(keys["maker"]), "--role", "logistics", "--key", admin("acme-pharma"), "--node", reg)
        ok(
            "license",
            "grant",
            "acme-pharma",
            "manufacture",
            "--prefix",
            "9506000",
            "--key",
            admin("regulator"),
            "--node",
            reg,
        )
        ok("license", "grant", "northside-pharmacy", "dispense", "--key", admin("regulator"), "--node", reg)
        listing = ok("org", "list", "--node", reg).output
        assert "manufacture (prefix 9506000)" in listing and "northside-pharmacy" in listing
        one_line_error(
            run("license", "grant", "nobody", "dispense", "--key", admin("regulator"), "--node", reg),
            "no organisation 'nobody'",
        )

        # a record, read only with consent, every read audited
        pid = json.loads(ok("key", "show", str(keys["patient"]), "--json").output)["patient_id"]
        assert pid in ok("patient", "register", "--key", str(keys["patient"]), "--node", hosp).output
        resource = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Blood pressure"},
            "valueString": "142/91 mmHg",
        }
        (tmp_path / "obs.json").write_text(json.dumps(resource))
        added = json.loads(
            ok(
                "ehr",
                "add",
                "--patient",
                pid,
                "--file",
                str(tmp_path / "obs.json"),
                "--key",
                str(keys["dr"]),
                "--node",
                hosp,
                "--json",
            ).output
        )
        rid = added["record_id"]
        assert added["status"] == "committed" and added["version"] == 1
        refused = run("ehr", "read", rid, "--key", str(keys["pharmacist"]), "--node", hosp)
        assert refused.exit_code == 1 and refused.output.startswith("refused: no-consent")
        ok(
            "consent",
            "grant",
            "--org",
            "northside-pharmacy",
            "--days",
            "1",
            "--key",
            str(keys["patient"]),
            "--node",
            hosp,
        )
        read = ok("ehr", "read", rid, "--purpose", "dispensing check", "--key", str(keys["pharmacist"]), "--node", hosp)
        assert json.loads(read.stdout)["valueString"] == "142/91 mmHg"
        audit = ok("ehr", "accesses", "--key", str(keys["patient"]), "--node", hosp).output
        assert "northside-pharmacy" in audit and "dispensing check" in audit and "consent" in audit
        assert "access log:" in ok("ehr", "history", rid, "--node", hosp).output

        # a lot from commissioning to a dispensed pack, and the alert its clone raises
        maker = ["--key", str(keys["maker"]), "--node", reg]
        lot = ["--gtin", GTIN, "--lot", "L7", "--expiry", "301231"]
        assert "commissioned 3 pack(s)" in ok("drug", "commission", *lot, "--count", "3", *maker).output
        again = run("drug", "commission", *lot, "--serials", "1", *maker)
        assert again.exit_code == 1 and again.output.startswith("rejected: duplicate-serial: ")
        ok("drug", "ship", "--to", "northside-pharmacy", "--shipment", "SH-1", "--lot", f"{GTIN}:L7", *maker)
        pharmacist = ["--key", str(keys["pharmacist"]), "--node", pharmacy]
        assert "3 pack(s) from acme-pharma" in ok("drug", "receive", "SH-1", *pharmacist).output
        code = f"(01){GTIN}(17)301231(10)L7(21)2"
        assert "*** VERIFIED ***" in ok("drug", "verify", code, "--node", pharmacy).output
        ok("drug", "dispense", f"{GTIN}:2", *pharmacist)
        clone = run("drug", "verify", code, "--scanned-by", "counter 2", "--node", pharmacy)
        assert clone.exit_code == 1 and "*** NOT VERIFIED ***" in clone.output and "AlreadyDispensed" in clone.output
        # The regulator's node reads the history: it must first have applied the dispense's block.
        committed = json.loads(ok("status", "--json", "--node", pharmacy).output)["height"]
        deadline = time.monotonic() + 15
        while json.loads(ok("status", "--json", "--node", reg).output)["height"] < committed:
            assert time.monotonic() < deadline, "the regulator's node never reached the dispense's block"
            time.sleep(0.1)
        history = ok("drug", "history", f"{GTIN}:2", "--node", reg).output
        assert all(kind in history for kind in ("commission", "ship", "receive", "dispense"))
        deadline = time.monotonic() + 15
        while not json.loads(ok("alerts", "--json", "--node", reg).output):
            assert time.monotonic() < deadline, "the clone's alert never committed"
            time.sleep(0.2)
        table = ok("alerts", "--node", reg).output
        assert "Not_for_re-distribution" in table and "counter 2" in table

        # the EPCIS document: printed, or written with a summary for scripts
        epcis = json.loads(ok("drug", "export-epcis", f"{GTIN}:2", "--node", reg).stdout)
        out = tmp_path / "epcis.json"
        wrote = json.loads(ok("drug", "export-epcis", f"{GTIN}:2", "--out", str(out), "--json", "--node", reg).stdout)
        written = json.loads(out.read_text())
        assert wrote["events"] == len(epcis["epcisBody"]["eventList"]) >= 4
        assert written["epcisBody"] == epcis["epcisBody"]  # the same events; only the creation date differs

        # alerts --follow: the alerts filed so far, then a new one as it commits (host:port, no scheme)
        follow = subprocess.Popen(
            [sys.executable, "-m", "node", "alerts", "--follow", "--json", "--after", "-1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "MEDCHAIN_NODE": reg.removeprefix("http://")},
        )
        try:
            assert json.loads(_line_within(follow, 30))["scanned_by"] == "counter 2"
            run("drug", "verify", code, "--scanned-by", "counter 3", "--node", pharmacy)
            assert json.loads(_line_within(follow, 30))["scanned_by"] == "counter 3"
        finally:
            follow.terminate()
            follow.wait(10)
    finally:
        clusters.stop_all(root, timeout=10)


def _line_within(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The next line ``proc`` prints on stdout, failing the test if none comes within ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output within {timeout}s; stderr: {proc.stderr.read1() if proc.stderr else b''!r}"
    return proc.stdout.readline()
