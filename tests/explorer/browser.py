"""Driving Debian's Chromium for the explorer's tests, with Playwright (its Python package; no browser download).

``./scripts/test`` installs Debian's ``chromium`` when it is missing and it
may (as root, with apt-get).  ``MEDCHAIN_CHROMIUM`` names another binary.
Without one the tests fail with ``MissingChromium``, whose message names the
package to install: a browser test is never skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")
# The flags a headless Chromium needs on a machine with no network beyond loopback, run as root.
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
OUT = Path(__file__).resolve().parents[2] / "out" / "test-run" / "explorer"


class MissingChromium(RuntimeError):
    """No Chromium to drive: the message says which package to install."""


def find_chromium(candidates: Sequence[str] = CANDIDATES, env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    chosen = env.get("MEDCHAIN_CHROMIUM")
    if chosen:
        if Path(chosen).is_file() and os.access(chosen, os.X_OK):
            return chosen
        raise MissingChromium(f"MEDCHAIN_CHROMIUM={chosen} is not an executable file")
    for path in candidates:
        if Path(path).is_file() and os.access(path, os.X_OK):
            return path
    on_path = shutil.which("chromium", path=env.get("PATH"))
    if on_path:
        return on_path
    raise MissingChromium(
        "the explorer's browser tests need Chromium, and none was found (looked for "
        f"{', '.join(candidates)} and 'chromium' on PATH): install Debian's 'chromium' package "
        "(apt-get install chromium; ./scripts/test does this when run as root), or set MEDCHAIN_CHROMIUM"
    )


@dataclass
class ConsoleLog:
    """The errors a page printed to its console and threw, for asserting 'no errors'."""

    errors: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.errors.clear()
