"""Ed25519 sign and verify throughput: PyNaCl (libsodium) against ``cryptography`` (OpenSSL).

Run ``medchain bench signing [--seconds S] [--json]``.

Rules of the measurement, so that the ratio means something:

* one process, one thread, one run: both backends see the same machine state;
* the same keys (one seed each, loaded into both backends) and the same
  messages: ``signed_bytes`` frames of ~120 bytes, the size of a consensus vote;
* the backends take turns in several short rounds, so drift in CPU clock or
  load hits both alike;
* before timing, both backends must produce the same signature for every
  (key, message) pair (RFC 8032 signatures are deterministic), which proves
  they compute the same function.
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cryptography
import nacl
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from primitives.signing import SEED_SIZE, signed_bytes

BACKENDS = ("pynacl", "cryptography")
DOMAIN = b"medchain/v1/commit"
CHAIN_ID = "medchain-bench"
MESSAGE_BYTES = 120
KEY_COUNT = 16
MESSAGE_COUNT = 64
ROUNDS = 4
BATCH = 64  # operations between clock reads


@dataclass(frozen=True, slots=True)
class Rate:
    backend: str
    sign_per_s: float
    verify_per_s: float


@dataclass(frozen=True, slots=True)
class Report:
    seconds_per_measurement: float
    rounds: int
    keys: int
    messages: int
    message_bytes: int
    rates: tuple[Rate, ...]
    verify_ratio_pynacl_over_cryptography: float
    sign_ratio_pynacl_over_cryptography: float
    versions: dict[str, str]


Op = Callable[[int], None]


def _workload(seed: int) -> tuple[list[bytes], list[bytes]]:
    """Key seeds and signed-bytes frames of exactly ``MESSAGE_BYTES`` bytes."""
    rng = random.Random(seed)
    seeds = [rng.randbytes(SEED_SIZE) for _ in range(KEY_COUNT)]
    # The framing (array, domain, chain id, bin8 header) is the same for any payload under 256 bytes.
    payload_size = MESSAGE_BYTES - len(signed_bytes(DOMAIN, CHAIN_ID, b""))
    messages = [signed_bytes(DOMAIN, CHAIN_ID, rng.randbytes(payload_size)) for _ in range(MESSAGE_COUNT)]
    return seeds, messages


def _operations(seeds: Sequence[bytes], messages: Sequence[bytes]) -> dict[str, tuple[Op, Op]]:
    """Per backend: (sign the i-th pair, verify the i-th pair), checked to agree first."""
    nacl_keys = [nacl.signing.SigningKey(s) for s in seeds]
    nacl_verify = [k.verify_key for k in nacl_keys]
    ossl_keys = [Ed25519PrivateKey.from_private_bytes(s) for s in seeds]
    ossl_verify = [k.public_key() for k in ossl_keys]
    pairs = [(k, m) for k in range(len(seeds)) for m in range(len(messages))]
    signatures = [nacl_keys[k].sign(messages[m]).signature for k, m in pairs]
    for (k, m), sig in zip(pairs, signatures, strict=True):
        if ossl_keys[k].sign(messages[m]) != sig:
            raise RuntimeError("the two backends disagree on a signature: they are not both RFC 8032 Ed25519")
    n = len(pairs)

    def nacl_sign(i: int) -> None:
        k, m = pairs[i % n]
        nacl_keys[k].sign(messages[m])

    def nacl_check(i: int) -> None:
        k, m = pairs[i % n]
        nacl_verify[k].verify(messages[m], signatures[i % n])

    def ossl_sign(i: int) -> None:
        k, m = pairs[i % n]
        ossl_keys[k].sign(messages[m])

    def ossl_check(i: int) -> None:
        k, m = pairs[i % n]
        ossl_verify[k].verify(signatures[i % n], messages[m])

    return {"pynacl": (nacl_sign, nacl_check), "cryptography": (ossl_sign, ossl_check)}


def _run(op: Op, seconds: float) -> tuple[int, float]:
    """Call ``op`` in batches for about ``seconds``; return (operations, elapsed)."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for i in range(done, done + BATCH):
            op(i)
        done += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return done, now - start


def measure(seconds: float, rounds: int = ROUNDS, seed: int = 2024) -> Report:
    """Measure sign/s and verify/s for both backends, ``seconds`` per (backend, operation)."""
    ops = _operations(*_workload(seed))
    totals = {(b, kind): [0, 0.0] for b in BACKENDS for kind in ("sign", "verify")}
    for _ in range(1, 4):  # warm-up: first calls pay for lazy initialisation
        for sign, check in ops.values():
            sign(0)
            check(0)
    for r in range(rounds):
        order = BACKENDS if r % 2 == 0 else BACKENDS[::-1]
        for kind_index, kind in enumerate(("sign", "verify")):
            for backend in order:
                count, elapsed = _run(ops[backend][kind_index], seconds / rounds)
                total = totals[(backend, kind)]
                total[0] += count
                total[1] += elapsed
    rates = tuple(
        Rate(b, totals[(b, "sign")][0] / totals[(b, "sign")][1], totals[(b, "verify")][0] / totals[(b, "verify")][1])
        for b in BACKENDS
    )
    by_name = {r.backend: r for r in rates}
    return Report(
        seconds_per_measurement=seconds,
        rounds=rounds,
        keys=KEY_COUNT,
        messages=MESSAGE_COUNT,
        message_bytes=MESSAGE_BYTES,
        rates=rates,
        verify_ratio_pynacl_over_cryptography=by_name["pynacl"].verify_per_s / by_name["cryptography"].verify_per_s,
        sign_ratio_pynacl_over_cryptography=by_name["pynacl"].sign_per_s / by_name["cryptography"].sign_per_s,
        versions=_versions(),
    )


def _versions() -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pynacl": str(getattr(nacl, "__version__", "unknown")),
        "cryptography": str(getattr(cryptography, "__version__", "unknown")),
    }
    try:
        from cryptography.hazmat.backends.openssl.backend import backend as openssl

        versions["openssl"] = str(openssl.openssl_version_text())
    except (ImportError, AttributeError):
        pass
    return versions


def format_table(report: Report) -> str:
    lines = [
        f"Ed25519, {report.message_bytes}-byte messages, {report.keys} keys x {report.messages} messages, "
        f"{report.rounds} alternating rounds, {report.seconds_per_measurement:g} s per measurement, 1 thread",
        "",
        f"{'backend':<14}{'sign/s':>12}{'verify/s':>12}",
    ]
    lines += [f"{r.backend:<14}{r.sign_per_s:>12,.0f}{r.verify_per_s:>12,.0f}" for r in report.rates]
    lines += [
        "",
        f"verify ratio pynacl / cryptography: {report.verify_ratio_pynacl_over_cryptography:.2f}x",
        f"sign ratio   pynacl / cryptography: {report.sign_ratio_pynacl_over_cryptography:.2f}x",
        "versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()),
    ]
    return "\n".join(lines)
