"""The node's key-encryption key (KEK): the one secret that unwraps the vault's data keys.

Rules:

* the KEK is 32 random bytes, taken from the environment variable
  ``MEDCHAIN_KEK`` (64 hex digits) when it is set, else from the KEK file named
  in config.toml (64 hex digits, or the 32 raw bytes);
* a KEK file must be a regular file that neither group nor others may read or
  write (mode 0600 or stricter): a key anyone on the machine can read protects
  nothing, so the node refuses it rather than warn;
* a KEK file is written whole or not at all: a new file next to it, flushed,
  then renamed over it, so a crash leaves the old key or the new one, never half.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from primitives.errors import UsageError
from storage.database import sync_directory

KEK_BYTES = 32
KEK_ENV = "MEDCHAIN_KEK"


class KekError(UsageError):
    """The KEK is missing, exposed or malformed: the message says what to fix."""


def new_kek() -> bytes:
    return secrets.token_bytes(KEK_BYTES)


def load_kek(path: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The KEK from ``MEDCHAIN_KEK`` if set, else from the file ``path``, checked."""
    env = os.environ if environ is None else environ
    if KEK_ENV in env:
        return _parse(env[KEK_ENV].encode(), f"the environment variable {KEK_ENV}", text_only=True)
    return read_kek_file(path)


def read_kek_file(path: Path) -> bytes:
    try:
        # Symbolic links are followed (secret mounts use them); the mode checked is the target's.
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KekError(
            f"no KEK file at {path} (the key that wraps the vault's data keys): create it with "
            f"'(umask 077; openssl rand -hex 32 > {path})', or set {KEK_ENV}"
        ) from None
    except OSError as exc:
        raise KekError(f"cannot read the KEK file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise KekError(f"the KEK file {path} is not a regular file")
        if mode & 0o077:
            raise KekError(
                f"the KEK file {path} is open to group or others (mode {stat.S_IMODE(mode):04o}): "
                f"run 'chmod 600 {path}', and replace the key if others may have read it"
            )
        data = fh.read(4 * KEK_BYTES)
    return _parse(data, f"the KEK file {path}", text_only=False)


def write_kek_file(path: Path, kek: bytes) -> None:
    """Write ``kek`` as hex to ``path`` (mode 0600), replacing any file there atomically and durably."""
    if len(kek) != KEK_BYTES:
        raise KekError(f"a KEK is {KEK_BYTES} bytes, got {len(kek)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode of open() applies only to a file it creates
        os.write(fd, kek.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    sync_directory(path.parent)


def _parse(data: bytes, where: str, *, text_only: bool) -> bytes:
    text = data.strip()
    if len(text) == 2 * KEK_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except ValueError:
            pass
    if not text_only and len(data) == KEK_BYTES:
        return data
    form = f"{2 * KEK_BYTES} hex digits" if text_only else f"{2 * KEK_BYTES} hex digits or {KEK_BYTES} raw bytes"
    raise KekError(f"{where} does not hold a {KEK_BYTES}-byte key ({form}); it holds {len(data)} bytes")
