"""The command-line reference, rendered as Markdown from the click command tree.

``python -m node.cli.reference > docs/cli.md`` writes it; a test fails when
docs/cli.md differs from what this renders, so the reference follows the
commands' own help.  Only the introduction below is written by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import click

from node.cli.main import main

INTRO = """\
# The `medchain` command line

This reference is generated from the commands' own help
(`python -m node.cli.reference > docs/cli.md`); do not edit it by hand.
Every command also answers `--help` (or `-h`) with the same text.

## Conventions

- **Which node.** A command that talks to a node takes `--node URL`, the node's
  HTTP API (node `i` of a local cluster serves it on `base + 2i + 1`, e.g.
  `http://127.0.0.1:26601`, or just `127.0.0.1:26601`). Without `--node` it
  uses the `MEDCHAIN_NODE` environment variable.
- **Who signs.** A command that acts signs a transaction with `--key FILE`.
  The healthcare commands wait until it commits; `anchor put` waits with
  `--wait`.
- **Output.** Output is for people; `--json` prints the node's JSON answer
  instead, for scripts.
- **Exit codes.** `0`: done. `1`: the ledger refused the transaction (printed as
  `rejected: <code>: <message>`), a scanned pack did not verify, a proof did not
  verify, or a simulation found a safety violation or a stall. `2`: bad input,
  or no answer from the node; the error is one line on stderr.
"""


def paragraphs(text: str) -> Iterator[str]:
    """A click help text as Markdown: prose paragraphs rewrapped, ``\\b`` blocks kept verbatim as code."""
    text = inspect.cleandoc(text.split("\f")[0])
    for block in text.split("\n\n"):
        if block.startswith("\b"):
            yield "```\n" + block[1:].strip("\n") + "\n```"
        elif block.strip():
            yield " ".join(line.strip() for line in block.splitlines())


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_table(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        # Arguments are in the usage line; --help is on every command (see Conventions).
        if isinstance(param, click.Argument) or param is command.get_help_option(ctx):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        rows.append(f"| `{cell(names)}` | {cell(help_text)} |")
    if not rows:
        return []
    return ["| option | meaning |", "|---|---|", *rows]


def render_command(command: click.Command, ctx: click.Context) -> list[str]:
    """The command, then its subcommands in name order: every one a section of its own, headed by its full name."""
    path = ctx.command_path
    lines = [f"### `{path}`", "", "```", f"{path} {' '.join(command.collect_usage_pieces(ctx))}", "```", ""]
    for paragraph in paragraphs(command.help or command.short_help or ""):
        lines += [paragraph, ""]
    table = options_table(command, ctx)
    if table:
        lines += [*table, ""]
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            lines += render_command(sub, click.Context(sub, info_name=name, parent=ctx))
    return lines


def render(root: click.Command = main, name: str = "medchain") -> str:
    """The whole reference: the introduction, then every command in tree order."""
    ctx = click.Context(root, info_name=name)
    lines = [INTRO, "## Commands", ""]
    lines += render_command(root, ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    click.echo(render(), nl=False)
