"""The ``medchain`` command line: one click group, one module per command family.

The lab tools' commands (benchmarks, experiments, the simulator) load on first
use: every node process and every operator command starts without importing them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import click

from node.cli.common import MedchainGroup
from node.cli.drugs import DRUG_COMMANDS
from node.cli.ehr import EHR_COMMANDS
from node.cli.identity import IDENTITY_COMMANDS
from node.cli.ops import COMMANDS
from node.cli.validators import VALIDATOR_COMMANDS

HEALTHCARE_COMMANDS = [*IDENTITY_COMMANDS, *EHR_COMMANDS, *DRUG_COMMANDS]
# command name -> "module:attribute" of a command loaded when it is first asked for
LAZY_COMMANDS = {
    "bench": "node.cli.lab:bench",
    "chaos": "node.cli.chaos:chaos_group",
    "counterfeit": "node.cli.lab:counterfeit_command",
    "fault": "node.cli.fault:fault_group",
    "story": "node.cli.lab:story_command",
    "sim": "node.lab.sim:sim",
}


class RootGroup(MedchainGroup):
    """The ``medchain`` group: the commands registered below, plus ``LAZY_COMMANDS`` imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)


Walk = Iterator[tuple[tuple[str, ...], click.Command]]


def walk(command: click.Command, path: tuple[str, ...] = ("medchain",)) -> Walk:
    """Every command under ``command`` (itself first, groups included) with its path of names, in name order."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from walk(sub, (*path, name))


@click.group("medchain", cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medchain")
def main() -> None:
    """medchain: a permissioned PBFT blockchain for healthcare.

    \b
    Start here:
      medchain cluster up --nodes 4 --dir ./net     a local 4-validator cluster
      medchain cluster status --dir ./net           what every node is doing
      medchain anchor put FILE --node URL --key K   anchor a document
      medchain sim --nodes 4 --seeds 20 --json      simulate the consensus engine

    \b
    Healthcare:
      medchain cluster up --consortium configs/consortium-4.toml --dir ./hc
                                                    four nodes run by hospitals, a pharmacy, makers, a regulator
      medchain drug verify CODE --node URL          is this pack genuine?
      medchain ehr read RECORD --node URL --key K   read a health record (audited)
      medchain alerts --follow --node URL           watch suspicious scans live

    Commands that talk to a node take --node HOST:PORT (or a URL) or read
    $MEDCHAIN_NODE; --json prints data for scripts; an error is one line on
    stderr with exit code 2.
    """


for command in [*COMMANDS, *VALIDATOR_COMMANDS, *HEALTHCARE_COMMANDS]:
    main.add_command(command)
