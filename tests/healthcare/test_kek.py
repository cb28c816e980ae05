"""The node's KEK: where it comes from, what the node refuses, and `medchain node rotate-kek` on a real vault."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli.main import main as cli
from node.healthcare.fhir import new_salt
from node.healthcare.kek import KEK_ENV, KekError, load_kek, read_kek_file, write_kek_file
from node.healthcare.vault import Vault, WrongKek, rotate_kek
from node.lab.testnet import generate_testnet
from tests.harness import free_base_port

REPO_ROOT = Path(__file__).resolve().parents[2]
KEK = bytes(range(32))
A, B = bytes([0xA1]) * 16, bytes([0xB2]) * 16

HOLD_VAULT = textwrap.dedent(
    """
    import sys
    from node.healthcare.kek import read_kek_file
    from node.healthcare.vault import Vault
    with Vault.open(sys.argv[1], read_kek_file(__import__("pathlib").Path(sys.argv[2]))):
        print("open", flush=True)
        sys.stdin.readline()
    """
)


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"MEDCHAIN_NODE": None, KEK_ENV: None, **(env or {})})


def one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    for word in words:
        assert word in result.output, result.output


@pytest.fixture
def home(tmp_path: Path) -> Path:
    generate_testnet(tmp_path / "net", 1, base_port=free_base_port(1))
    return tmp_path / "net" / "node0"


# ---------------------------------------------------------------- loading


def test_a_kek_file_in_hex_or_raw_bytes_is_read(tmp_path: Path) -> None:
    write_kek_file(tmp_path / "kek", KEK)
    assert stat.S_IMODE((tmp_path / "kek").stat().st_mode) == 0o600
    assert (tmp_path / "kek").read_text() == KEK.hex() + "\n"
    assert load_kek(tmp_path / "kek", {}) == KEK
    fd = os.open(tmp_path / "raw", os.O_WRONLY | os.O_CREAT, 0o400)
    os.write(fd, KEK)
    os.close(fd)
    assert read_kek_file(tmp_path / "raw") == KEK


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_a_kek_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    write_kek_file(tmp_path / "kek", KEK)
    (tmp_path / "kek").chmod(mode)
    with pytest.raises(KekError, match=f"group or others \\(mode {mode:04o}\\)") as caught:
        load_kek(tmp_path / "kek", {})
    assert "chmod 600" in str(caught.value) and str(tmp_path / "kek") in str(caught.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "holds 0 bytes"), (b"ab" * 31 + b"\n", "holds 63 bytes"), (b"zz" * 32, "64 hex digits"),
     (bytes(33), "holds 33 bytes")],
)
def test_a_malformed_kek_file_is_refused(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "kek"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KekError, match=words):
        load_kek(path, {})


def test_a_kek_file_behind_a_symbolic_link_is_read_and_its_target_checked(tmp_path: Path) -> None:
    write_kek_file(tmp_path / "secrets" / "kek", KEK)
    (tmp_path / "kek").symlink_to(tmp_path / "secrets" / "kek")
    assert load_kek(tmp_path / "kek", {}) == KEK
    (tmp_path / "secrets" / "kek").chmod(0o644)
    with pytest.raises(KekError, match="group or others"):
        load_kek(tmp_path / "kek", {})


def test_a_missing_kek_file_is_refused_with_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(KekError, match="no KEK file at") as caught:
        load_kek(tmp_path / "kek", {})
    assert "umask 077" in str(caught.value) and KEK_ENV in str(caught.value)


def test_the_environment_variable_wins_and_is_checked(tmp_path: Path) -> None:
    assert load_kek(tmp_path / "missing", {KEK_ENV: KEK.hex()}) == KEK
    with pytest.raises(KekError, match=KEK_ENV):
        load_kek(tmp_path / "missing", {KEK_ENV: "00" * 16})


def test_testnet_writes_a_private_kek_per_node(tmp_path: Path) -> None:
    generate_testnet(tmp_path / "net", 3, observers=1, base_port=free_base_port(4))
    keks = set()
    for name in ("node0", "node1", "node2", "node3"):
        path = tmp_path / "net" / name / "kek"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        keks.add(read_kek_file(path))
        assert 'kek_file = "kek"' in (tmp_path / "net" / name / "config.toml").read_text()
    assert len(keks) == 4


def test_node_init_writes_a_private_kek(tmp_path: Path) -> None:
    made = run("node", "init", "--home", str(tmp_path / "new"))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE((tmp_path / "new" / "kek").stat().st_mode) == 0o600
    assert len(read_kek_file(tmp_path / "new" / "kek")) == 32


@pytest.mark.parametrize("problem", ["open to others", "missing", "malformed"])
def test_the_node_refuses_to_start_without_a_private_well_formed_kek(home: Path, problem: str) -> None:
    kek = home / "kek"
    if problem == "open to others":
        kek.chmod(0o644)
    elif problem == "missing":
        kek.unlink()
    else:
        kek.write_text("not a key\n")
    env = {k: v for k, v in os.environ.items() if k != KEK_ENV}
    started = subprocess.run(
        [sys.executable, "-m", "node", "node", "start", "--home", str(home)],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env,
    )
    assert started.returncode == 2, started.stderr
    assert started.stderr.startswith("error: ") and started.stderr.count("\n") == 1, started.stderr
    assert "KEK" in started.stderr and str(kek) in started.stderr
    assert not (home / "data").exists() and not (home / "vault").exists(), "nothing is opened before the KEK"


# ---------------------------------------------------------------- rotate-kek


def _fill(home: Path) -> dict[bytes, bytes]:
    salts = {A: new_salt(), B: new_salt()}
    with Vault.open(home / "vault", read_kek_file(home / "kek")) as vault:
        for rid, salt in salts.items():
            vault.put(rid, 1, b'{"resourceType":"Patient"}' + rid, salt)
        vault.shred(B)
    return salts


def _content_files(home: Path) -> dict[str, bytes]:
    content = home / "vault" / "content"
    return {f.name: f.read_bytes() for f in content.iterdir() if f.is_file()}


def test_rotate_kek_rewraps_under_a_new_kek_and_the_old_one_is_gone(home: Path) -> None:
    salts = _fill(home)
    old = read_kek_file(home / "kek")
    content_before = _content_files(home)

    done = run("node", "rotate-kek", "--home", str(home), "--json")

    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["rewrapped"] == 1
    assert _content_files(home) == content_before
    new = read_kek_file(home / "kek")
    assert new != old and stat.S_IMODE((home / "kek").stat().st_mode) == 0o600
    assert old.hex().encode() not in (home / "kek").read_bytes()
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("kek")) == ["kek"]
    with pytest.raises(WrongKek):
        Vault.open(home / "vault", old)
    with Vault.open(home / "vault", new) as vault:
        assert vault.get(A, 1) == (b'{"resourceType":"Patient"}' + A, salts[A])
        assert vault.erased(B)


def test_rotate_kek_refuses_while_the_vault_is_in_use(home: Path) -> None:
    _fill(home)
    kek_before = (home / "kek").read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_VAULT, str(home / "vault"), str(home / "kek")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        refused = run("node", "rotate-kek", "--home", str(home))
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    one_line_error(refused, "locked", str(home / "vault"))
    assert (home / "kek").read_bytes() == kek_before
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("kek")) == ["kek"]
    with Vault.open(home / "vault", read_kek_file(home / "kek")) as vault:
        assert vault.holds(A)


def test_an_interrupted_rotation_is_finished_by_running_it_again(home: Path) -> None:
    """A crash after the batch and before the KEK file is replaced: the node refuses the old KEK; a rerun finishes."""
    salts = _fill(home)
    old = read_kek_file(home / "kek")
    pending = bytes(range(1, 33))
    write_kek_file(home / "kek.new", pending)
    assert rotate_kek(home / "vault", old, pending) == 1
    with pytest.raises(WrongKek, match="rotate-kek"):
        Vault.open(home / "vault", read_kek_file(home / "kek"))

    done = run("node", "rotate-kek", "--home", str(home))

    assert done.exit_code == 0 and "finished an interrupted rotation" in done.output, done.output
    assert read_kek_file(home / "kek") == pending and not (home / "kek.new").exists()
    with Vault.open(home / "vault", pending) as vault:
        assert vault.get(A, 1)[1] == salts[A]


def test_rotate_kek_refuses_a_kek_from_the_environment(home: Path) -> None:
    one_line_error(run("node", "rotate-kek", "--home", str(home), env={KEK_ENV: KEK.hex()}), KEK_ENV)
