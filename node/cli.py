"""The ``medchain`` command line: one click group, one module per command family."""

from __future__ import annotations

import click

from node.sim_command import sim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medchain")
def main() -> None:
    """medchain: a permissioned PBFT blockchain for healthcare.

    Run a deterministic simulation of the consensus engine with `medchain sim`.
    """


main.add_command(sim)
