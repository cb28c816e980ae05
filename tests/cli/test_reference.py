"""docs/cli.md is the reference rendered from the click tree, and it stays true as commands change."""

from pathlib import Path

import click

from node.cli.main import main, walk
from node.cli.reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_is_what_the_commands_render():
    assert DOC.read_text() == render(), "docs/cli.md is stale: run python -m node.cli.reference > docs/cli.md"


def test_every_command_and_option_has_its_section():
    text = render()
    for path in (" ".join(path) for path, command in walk(main) if not command.hidden):
        assert f"### `{path}`\n" in text, path
    cluster_up = text.split("### `medchain cluster up`")[1].split("### ")[0]
    assert "| `--consortium FILE` |" in cluster_up and "| `--dir " in cluster_up
    assert "MEDCHAIN_NODE" in text and "Exit codes" in text


def test_a_new_command_appears_with_its_usage_help_and_options():
    @click.group()
    def tool() -> None:
        """A tool."""

    @tool.command("frob")
    @click.argument("target")
    @click.option("--times", type=int, default=3, show_default=True, help="How often | how hard.")
    def frob(target: str, times: int) -> None:
        """Frob TARGET.

        \b
        keep   this
          layout
        """

    text = render(tool, "tool")
    assert "### `tool frob`\n\n```\ntool frob [OPTIONS] TARGET\n```" in text
    assert "Frob TARGET." in text
    assert "```\nkeep   this\n  layout\n```" in text
    assert "| `--times INTEGER` | How often \\| how hard.  [default: 3] |" in text
    assert "`--help`" not in text.split("## Commands")[1]
