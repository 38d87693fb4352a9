"""YAML documents that remember where each value came from.

config.yaml and the front matter of posts are both YAML validated by pydantic;
when validation fails, the user needs the file *and the line*. PyYAML's
composed node tree keeps line marks, so we parse once into nodes, build the
Python data from them, and map a pydantic error location back to a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .plainyaml import plain_mapping


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML plus its node tree, for line look-ups."""

    data: Any
    text: str
    #: line of the document's first line in the file (front matter starts at 2)
    first_line: int = 1
    #: the node tree, when the text was read the long way (None: empty, or not yet)
    composed: yaml.Node | None = None

    @cached_property
    def node(self) -> yaml.Node | None:
        """The node tree; composed only now when the text was read the short way
        (:mod:`.plainyaml`): only a problem to report needs it."""
        if self.composed is not None:
            return self.composed
        loader = _Loader(self.text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()

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
    plain = plain_mapping(text)
    if plain is not None:  # one-line keys and values: the short way (no node tree)
        return YamlDocument(data=plain, text=text, first_line=first_line)
    return parse_located(text, first_line)


def parse_located(text: str, first_line: int = 1) -> YamlDocument:
    """:func:`parse_yaml` the long way, whatever the text: libyaml's node tree,
    checked for keys written twice and loops, and the data built from it."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicate_keys(node, first_line)
        data = _construct_plain(loader, node) if node is not None else None
    except YamlSyntaxError:
        raise
    except RecursionError:
        raise YamlSyntaxError("values are nested too deeply", None) from None
    except (ValueError, OverflowError) as e:
        # a value YAML recognises but Python cannot hold, e.g. the date 2019-02-30
        bad = _unconstructable(node) if node is not None else None
        line = bad.start_mark.line + first_line if bad is not None else None
        shown = f"{bad.value!r}: " if bad is not None else ""
        raise YamlSyntaxError(f"{shown}{e}", line) from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        last_line = max(text.count("\n") - (1 if text.endswith("\n") else 0), 0)
        # an unclosed bracket is only noticed at the end of the text: point at its last line
        line = min(mark.line, last_line) + first_line if mark is not None else None
        message = "; ".join(str(part) for part in (e.context, e.problem) if part)
        lines = text.splitlines()
        at = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        raise YamlSyntaxError(_with_hint(message or "invalid YAML", at), line) from e
    except yaml.YAMLError as e:  # pragma: no cover - PyYAML marks nearly everything
        raise YamlSyntaxError(str(e), None) from e
    finally:
        loader.dispose()
    return YamlDocument(data=data, text=text, first_line=first_line, composed=node)


def _with_hint(message: str, line: str) -> str:
    """PyYAML's words, and what usually causes them (``line``: the line it stopped on)."""
    if "mapping values are not allowed" in message:
        return message + ' (a value with ": " in it goes in quotes: title: "Strategy: 2019")'
    if "\t" in line and "cannot start any token" in message:
        return message + " (a tab: YAML indents with spaces)"
    return message


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
#: the scalar tags a key may have for the short way to take it (PyYAML's resolver
#: gives plain scalars one of these; anything else is left to PyYAML)
_PLAIN_KEYS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "timestamp")
)


class _NotPlain(Exception):
    """A node the short way does not construct (an alias, a merge key, another tag)."""


def _construct_plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """What ``loader.construct_document(node)`` makes of ``node``, the short way for
    the mappings, lists and strings that front matter and config files are made of.

    PyYAML's constructor handles every node through generators and bookkeeping
    for recursive documents: about half of the time a post's front matter takes
    to read. Here mappings, sequences and strings are built directly, and every
    other scalar (numbers, dates, booleans, null) by PyYAML's own constructor;
    a document with anything else (an alias, a merge key, a tag of its own) is
    constructed by PyYAML as a whole (``tests/unit/test_yamlsource.py`` holds
    the two to the same data).
    """
    try:
        return _plain(loader, node, set())
    except _NotPlain:
        return loader.construct_document(node)


def _plain(loader: yaml.SafeLoader, node: yaml.Node, seen: set[int]) -> Any:
    if id(node) in seen:  # an alias: the same node a second time
        raise _NotPlain
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR else loader.construct_object(node)
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        return [_plain(loader, item, seen) for item in node.value]
    if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
        data = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag not in _PLAIN_KEYS:
                raise _NotPlain
            data[_plain(loader, key, seen)] = _plain(loader, value, seen)
        return data
    raise _NotPlain


def _refuse_duplicate_keys(node: yaml.Node, first_line: int) -> None:
    """A key written twice in one mapping is an error naming both lines; so is an
    alias inside the value it names (``a: &x [*x]``), a loop no post or config needs.

    YAML 1.2 requires keys to be unique; PyYAML keeps the last value silently,
    so a second ``title:`` further down would win without a word.
    """
    checked: set[int] = set()
    inside: set[int] = set()  # the nodes on the path from the root to the current one

    def walk(current: yaml.Node) -> None:
        if id(current) in inside:
            raise YamlSyntaxError(
                "an alias stands inside the value it names (a loop); write the value out",
                current.start_mark.line + first_line,
            )
        if id(current) in checked:  # an alias of a value checked already
            return
        checked.add(id(current))
        children: list[yaml.Node] = []
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    earlier = seen.setdefault(key.value, key)
                    if earlier is not key:
                        one = earlier.start_mark.line + first_line
                        two = key.start_mark.line + first_line
                        raise YamlSyntaxError(
                            f"key {key.value!r} is written twice (lines {one} and {two}); keep one",
                            two,
                        )
                children.append(value)
        elif isinstance(current, yaml.SequenceNode):
            children = current.value
        inside.add(id(current))
        for child in children:
            walk(child)
        inside.discard(id(current))

    walk(node)


def _unconstructable(node: yaml.Node) -> yaml.ScalarNode | None:
    """The first scalar under ``node`` that PyYAML cannot turn into a value."""
    pending = [node]
    while pending:
        current = pending.pop(0)
        if isinstance(current, yaml.ScalarNode):
            loader = _Loader("")
            try:
                loader.construct_object(current, deep=True)
            except (ValueError, OverflowError, yaml.YAMLError):
                return current
            finally:
                loader.dispose()
        elif isinstance(current, yaml.MappingNode):
            pending.extend(n for pair in current.value for n in pair)
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
    return None


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
    items = [(item, [p for p in item["loc"] if not _is_branch(p)]) for item in error.errors()]
    problems: list[FieldProblem] = []
    for item, loc in items:
        key = ".".join(str(p) for p in loc)
        if any(problem.key == key for problem in problems):
            continue  # each member of a union refused the value: its first reason says it
        kind = item["type"]
        if kind.endswith("_type") and any(
            other is not item and len(other_loc) > len(loc) and other_loc[: len(loc)] == loc
            for other, other_loc in items
        ):
            # a value that may be a string or a mapping (``author: Name`` or
            # ``author: {name: …}``): report what is wrong inside the mapping,
            # not that it is no string
            continue
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            message = "unknown key"
            if allowed:
                message += f"; expected one of: {', '.join(allowed)}"
        elif kind == "missing":
            message = "is required but missing"
        elif (kind.endswith("_type") and item.get("input", "") is None) or (
            kind == "string_too_short" and not str(item.get("input", "x")).strip()
        ):
            message = "is empty"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            # (a validator that says what it got, from elsewhere than the file, says it once)
            if "input" in item and not isinstance(item["input"], dict | list):
                if ", got " not in message:
                    message += f", got {item['input']!r}"
                # YAML reads 1984, 007 or yes as a number or a yes/no: text is quoted
                if kind == "string_type" and isinstance(item["input"], int | float | bool):
                    message += '; put it in quotes to have it as written ("...")'
        problems.append(FieldProblem(key=key, message=message, line=doc.line_of(loc)))
    return problems


def _is_branch(part: str | int) -> bool:
    """A part of a pydantic error location that names a validator or a union
    member (``function-after[…]``, ``constrained-str``, ``AuthorFields``), not a key."""
    if not isinstance(part, str):
        return False
    return (
        part.startswith("function-") or "[" in part or part.endswith("-str") or part[:1].isupper()
    )


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
