"""The ``medchain`` command line: one click group, one module per command family."""

from __future__ import annotations

import click

from node.cli_health import HEALTH_COMMANDS
from node.cli_ops import COMMANDS
from node.sim_command import sim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medchain")
def main() -> None:
    """medchain: a permissioned PBFT blockchain for healthcare.

    \b
    Start here:
      medchain cluster up --nodes 4 --dir ./net     a local 4-validator cluster
      medchain cluster status --dir ./net           what every node is doing
      medchain anchor put FILE --node URL --key K   anchor a document
      medchain sim --nodes 4 --seeds 20 --json      simulate the consensus engine
    """


main.add_command(sim)
for command in [*COMMANDS, *HEALTH_COMMANDS]:
    main.add_command(command)
