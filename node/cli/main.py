"""The ``medchain`` command line: one click group, one module per command family."""

from __future__ import annotations

import click

from node.cli.common import MedchainGroup
from node.cli.drugs import DRUG_COMMANDS
from node.cli.ehr import EHR_COMMANDS
from node.cli.identity import IDENTITY_COMMANDS
from node.cli.lab import LAB_COMMANDS
from node.cli.ops import COMMANDS
from node.lab.sim import sim

HEALTHCARE_COMMANDS = [*IDENTITY_COMMANDS, *EHR_COMMANDS, *DRUG_COMMANDS]


@click.group("medchain", cls=MedchainGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


main.add_command(sim)
for command in [*COMMANDS, *HEALTHCARE_COMMANDS, *LAB_COMMANDS]:
    main.add_command(command)
