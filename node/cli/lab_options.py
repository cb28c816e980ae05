"""What the lab commands share: number options with bounds, the command line for reports, Ctrl-C, --json, --quiet."""

from __future__ import annotations

import math
import shlex
from typing import Any, NoReturn

import click
from click.core import ParameterSource

INTERRUPTED_EXIT = 130


class PositiveNumber(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """A number above 0 and at most ``high`` (NaN and infinity refused)."""

    def __init__(self, kind: type[int] | type[float], high: float) -> None:
        self.kind = kind
        self.high = high
        self.name = "integer" if kind is int else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = self.kind(value)
            except (TypeError, ValueError):
                self.fail(f"not {'a whole number' if self.kind is int else 'a number'}: {value!r}", param, ctx)
        if math.isnan(number) or not 0 < number <= self.high:
            self.fail(f"must be above 0 and at most {self.high:g}, got {value}", param, ctx)
        return number


def command_line(ctx: click.Context) -> str:
    """The command as it was given (the options set on the command line or from the environment), for reports."""
    words = ["medchain", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        given = ctx.get_parameter_source(param.name or "") in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if not given or not isinstance(param, click.Option):
            continue
        value = ctx.params[param.name or ""]
        words.append(param.opts[0])
        if not param.is_flag:
            words.append(f"{value:g}" if isinstance(value, float) else str(value))
    return shlex.join(words)


def interrupted(what: str) -> NoReturn:
    click.echo(f"interrupted: {what}", err=True)
    raise SystemExit(INTERRUPTED_EXIT)


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
QUIET_OPTION = click.option("--quiet", is_flag=True, help="No progress on stderr.")
