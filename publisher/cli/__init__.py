"""The command line: a thin shell over the library.

Each command group lives in its own module (``posts``, ``feeds``, ``digest``,
``subscribers``, ``schedule``) and is loaded only when it is run or listed;
the families each command drives are imported inside the command. Domain
errors (:class:`~publisher.errors.PublisherError`) become one readable line
and exit status 1 here, and nowhere else; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import gc
import importlib

import click

from .app import App

#: command name → "module:attribute" under publisher.cli
COMMANDS = {
    "init": "content:init",
    "db": "content:db_group",
    "import": "content:import_command",
    "posts": "content:posts",
    "build": "feeds:build",
    "serve": "feeds:serve",
    "digest": "digest:digest",
    "preview": "digest:preview",
    "subscribers": "subscribers:subscribers",
    "bounces": "bounces:bounces",
    "run": "schedule:run",
    "schedule": "schedule:schedule",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when first needed (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    default="config.yaml",
    show_default=True,
    envvar="PUBLISHER_CONFIG",
    help="The config file (or set PUBLISHER_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str, debug: bool) -> None:
    """Publish news posts as feeds and an email digest."""
    ctx.obj = App(config_path, debug)
    ctx.call_on_close(ctx.obj.close)


#: the cyclic garbage collector's thresholds in a command (Python's: 700, 10, 10)
GC_THRESHOLDS = (20_000, 20, 20)


def main() -> None:
    # A command loads large libraries (SQLAlchemy, pydantic) and makes few reference
    # cycles of its own; with Python's thresholds the collector walked the freshly
    # loaded modules again and again: ~90 ms of the ~700 ms of CPU of a one-new-post
    # `import --build` at 10,000 posts, ~25 ms with these. Cyclic garbage is still
    # freed, after 20,000 allocations instead of 700.
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        cli(prog_name="publisher")
    finally:
        # Leaving, Python's last collection walks every object still alive (the
        # loaded libraries): 85 ms of a no-change `import` of 10,000 posts, 150 ms
        # after `import --build`. Frozen, they are passed over; they are freed all
        # the same, and exit handlers (database connections, threads) still run.
        gc.freeze()
