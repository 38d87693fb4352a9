"""YAML documents that remember where each value came from.

config.yaml and the front matter of posts are both YAML validated by pydantic;
when validation fails, the user needs the file *and the line*. PyYAML's
composed node tree keeps line marks, so we parse once into nodes, build the
Python data from them, and map a pydantic error location back to a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML plus its node tree, for line look-ups."""

    data: Any
    node: yaml.Node | None
    #: line of the document's first line in the file (front matter starts at 2)
    first_line: int = 1

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based file line of the value at ``loc``, or of its nearest parent."""
        node = self.node
        line = node.start_mark.line if node is not None else None
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            key_node, node = child
            line = (key_node or node).start_mark.line
        return None if line is None else line + self.first_line


def _child(node: yaml.Node | None, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return None, node.value[part]
    return None


#: libyaml's C parser when PyYAML was built with it (about 10x faster), else pure Python
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSyntaxError(ValueError):
    """The text is not YAML; carries the 1-based line of the problem."""

    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
        super().__init__(message)


def parse_yaml(text: str, first_line: int = 1) -> YamlDocument:
    """Parse one YAML document, keeping line marks.

    :param first_line: where the text starts in its file, for messages.
    :raises YamlSyntaxError: with the line of the problem.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        last_line = max(text.count("\n") - (1 if text.endswith("\n") else 0), 0)
        # an unclosed bracket is only noticed at the end of the text: point at its last line
        line = min(mark.line, last_line) + first_line if mark is not None else None
        message = "; ".join(str(part) for part in (e.context, e.problem) if part)
        raise YamlSyntaxError(message or "invalid YAML", line) from e
    except yaml.YAMLError as e:  # pragma: no cover - PyYAML marks nearly everything
        raise YamlSyntaxError(str(e), None) from e
    finally:
        loader.dispose()
    return YamlDocument(data=data, node=node, first_line=first_line)


@dataclass(frozen=True)
class FieldProblem:
    """One pydantic error, made readable: dotted key, message, line."""

    key: str
    message: str
    line: int | None


def describe_errors(
    error: ValidationError, doc: YamlDocument, model: type[BaseModel]
) -> list[FieldProblem]:
    """Turn a pydantic error into problems a user can act on, one per field."""
    problems = []
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if not isinstance(p, str) or not p.startswith("function-")]
        key = ".".join(str(p) for p in loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            message = "unknown key"
            if allowed:
                message += f"; expected one of: {', '.join(allowed)}"
        elif kind == "missing":
            message = "is required but missing"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            if "input" in item and not isinstance(item["input"], dict | list):
                message += f", got {item['input']!r}"
        problems.append(FieldProblem(key=key, message=message, line=doc.line_of(loc)))
    return problems


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the (nested) model at ``loc``, for 'did you mean' help."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        is_model = isinstance(current, type) and issubclass(current, BaseModel)
        field = current.model_fields.get(part) if is_model else None
        if field is None:
            return []
        current = field.annotation
        args = getattr(current, "__args__", ())
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []
