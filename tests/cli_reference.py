"""The README's command reference, generated from ``--help`` (cog runs it; see README).

``make test`` runs ``cog --check README.md``, so the reference cannot drift
from the commands: after changing a command, run ``make docs`` and commit.
"""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from publisher.cli import cli

WIDTH = 80


def walk(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command under ``group``, depth first, in the order ``--help`` lists them."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="publisher", terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def reference() -> str:
    """A table of every command with its one-line help, then each command's ``--help``."""
    lines = ["| command | what it does |", "|---|---|"]
    for path, command in walk(cli):
        summary = command.get_short_help_str(limit=200).replace("|", "\\|")
        lines.append(f"| `publisher {' '.join(path)}` | {summary} |")
    lines += [
        "",
        "### Command reference",
        "",
        "`publisher --help`:",
        "",
        "```text",
        help_text(()).rstrip(),
        "```",
    ]
    for path, _ in walk(cli):
        lines += [
            "",
            f"`publisher {' '.join(path)} --help`:",
            "",
            "```text",
            help_text(path).rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"
