"""The README documents every config key and every command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from pydantic import BaseModel

from publisher.cli import cli
from publisher.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        yield key
        nested: Any = field.annotation
        separator = "[]." if getattr(nested, "__origin__", None) in (tuple, list) else "."
        for candidate in (nested, *getattr(nested, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from config_keys(candidate, key + separator)


@pytest.mark.parametrize("key", list(config_keys(Settings)))
def test_config_key_is_documented(key: str) -> None:
    assert f"`{key}`" in README, f"README.md has no entry for the config key `{key}`"


def commands(group: click.Group, prefix: str = "publisher") -> Iterator[str]:
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


@pytest.mark.parametrize("command", list(commands(cli)))
def test_command_is_documented(command: str) -> None:
    assert f"`{command}" in README, f"README.md does not describe `{command}`"
