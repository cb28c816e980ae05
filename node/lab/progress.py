"""Progress of a lab run on stderr: a line per event, a click progress bar over each timed period.

Stdout stays for the report, so ``--json`` output can be piped while the run
is watched.  On a terminal the bar redraws in place; elsewhere click prints
only its label, and the events still come one per line.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator

import click


class Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, text: str) -> None:
        """One event, on a line of its own."""
        if not self.quiet:
            click.echo(text, err=True)

    @contextlib.contextmanager
    def period(self, label: str, seconds: float) -> Iterator[Callable[[float, str], None]]:
        """A bar over a period of known length: the caller reports (elapsed seconds, a short status)."""
        if self.quiet:
            yield lambda elapsed, status: None
            return
        length = max(1, round(seconds))
        counted: Iterable[str] | None = None  # the bar counts seconds; each update carries a status line
        with click.progressbar(
            counted,
            length=length,
            label=label,
            file=sys.stderr,
            show_eta=False,
            show_percent=False,
            show_pos=False,
            item_show_func=_status,
        ) as bar:

            def report(elapsed: float, text: str) -> None:
                bar.update(max(0, min(length, int(elapsed)) - bar.pos), text)

            yield report


def _status(text: str | None) -> str | None:
    return text
