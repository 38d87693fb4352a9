"""The tree a newcomer finds their way in: small modules, no import cycle, and
web pages that never load the send loop.

Read from the source (``ast``), except the last check, which imports the web
pages in a fresh interpreter, as a server process does, and lists what came along.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "publisher"
#: lines a module may have; a module that needs more is two nouns
LIMIT = 400
#: modules allowed over the limit for now, each with the reason (remove an entry
#: once its module is split; a module not listed here fails the test)
OVER_LIMIT = {}


def modules() -> dict[str, Path]:
    """``publisher.x.y`` → its file, for every module but the migration scripts."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent)
        if "versions" in relative.parts:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def test_no_module_is_over_400_lines() -> None:
    over = {
        path.relative_to(PACKAGE.parent).as_posix(): count
        for path in modules().values()
        if (count := len(path.read_text().splitlines())) > LIMIT
    }
    unexplained = {name: count for name, count in over.items() if name not in OVER_LIMIT}
    assert not unexplained, f"modules over {LIMIT} lines (split them, or say why): {unexplained}"


# The tree is read from the docstrings (a module's first line says what it owns;
# a package's also says what it may import): a module without one is a room
# without a name on the door.
def test_every_module_says_what_it_owns() -> None:
    silent = [
        path.relative_to(PACKAGE.parent).as_posix()
        for path in modules().values()
        if not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert not silent, f"modules without a docstring: {silent}"


def imports_at_load(name: str, path: Path, known: set[str]) -> set[str]:
    """The publisher modules ``name`` imports when it is loaded (top level only:
    an import inside a function, or under ``if TYPE_CHECKING``, runs later or never)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in known and target != name:
                found.add(target)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    found = modules()
    known = set(found)
    graph = {name: imports_at_load(name, path, known) for name, path in found.items()}
    done: set[str] = set()
    trail: list[str] = []

    def visit(name: str) -> None:
        if name in trail:
            cycle = trail[trail.index(name) :] + [name]
            pytest.fail("import cycle: " + " → ".join(cycle))
        if name in done:
            return
        trail.append(name)
        for target in sorted(graph[name]):
            visit(target)
        trail.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


PROBE = """\
import json, sys, importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


# A feed request or an unsubscribe page must not load the digest's send loop: a
# web process that cannot send a digest cannot send one by mistake, and starts
# light. (The subscription pages do load SMTP: they send confirmation emails.)
@pytest.mark.parametrize("page", ["publisher.web.feeds", "publisher.web.subscriptions"])
def test_web_pages_do_not_import_the_send_loop(page: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, page], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert page in loaded
    assert "publisher.mail.send" not in loaded
    # nor the digest renderer: premailer and cssutils are for the digest alone
    assert "publisher.mail.render" not in loaded
    assert "premailer" not in loaded
