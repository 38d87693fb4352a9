"""YAML with line marks: the short way of constructing it gives PyYAML's data."""

from __future__ import annotations

from datetime import date, datetime
from importlib import resources

import pytest
import yaml

from bench.corpus import generate
from publisher.content.postfile import split_front_matter
from publisher.yamlsource import parse_yaml
from tests.conftest import CONFIG_TEXT

EDGE_CASES = {
    "scalars": "a: 1\nb: 0x1f\nc: 1_000\nd: 1.5e3\ne: .inf\nf: yes\ng: off\nh: ~\ni: ''\n",
    "times": "d: 2019-12-05\nt: 2019-12-05 10:30:00\nz: 2019-12-05T10:30:00+01:00\n",
    "quoted": "a: '2019-12-05'\nb: \"yes\"\nc: \"line\\nbreak\\x00\"\nd: '1'\n",
    "blocks": "a: |\n  one\n  two\nb: >\n  folded\n  text\n",
    "nested": "a: [1, {b: [c, d]}, [e]]\nf: {g: {h: i}}\nj: []\nk: {}\nl:\n  - m: n\n",
    "keys": "1: a\nfalse: b\n2019-01-01: c\n~: d\n1.5: e\n",
    "empty values": "a:\nb: [~, null]\n",
    "alias": "a: &x [1, 2]\nb: *x\n",
    "merge": "base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3}\n",
    "value key": "a: {=: 1}\n",
    "set": "a: !!set {x, y}\n",
    "omap": "a: !!omap [{x: 1}, {y: 2}]\n",
    "binary": "a: !!binary aGVsbG8=\n",
    "explicit tags": "a: !!str 1\nb: !!int '2'\nc: !!float '3'\n",
    "a list": "- 1\n- two\n",
    "a string": "just text\n",
}


def documents() -> dict[str, str]:
    found = dict(EDGE_CASES)
    found["config"] = CONFIG_TEXT
    folder = resources.files("publisher") / "sample"
    for item in folder.iterdir():
        if item.name.endswith(".md"):
            found[item.name] = split_front_matter(item.read_text(), item.name)[0]
    for post in generate(50):
        found[post.file_name] = split_front_matter(post.publisher_file(), post.file_name)[0]
    return found


# Invariant: whatever a document holds, parse_yaml gives the data PyYAML's safe
# loader gives (the short way for mappings, lists and strings; PyYAML's own for
# the rest).
@pytest.mark.parametrize(("name", "text"), sorted(documents().items()))
def test_data_is_what_pyyaml_loads(name: str, text: str) -> None:
    expected = yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 (a safe loader)
    got = parse_yaml(text).data
    assert got == expected
    assert type(got) is type(expected)


def test_scalars_keep_their_types() -> None:
    data = parse_yaml(EDGE_CASES["times"] + EDGE_CASES["keys"]).data
    assert type(data["d"]) is date and type(data["t"]) is datetime
    assert set(map(type, data)) == {str, int, bool, date, type(None), float}


def test_an_alias_is_the_same_object_as_in_pyyaml() -> None:
    data = parse_yaml(EDGE_CASES["alias"]).data
    assert data["a"] is data["b"]


@pytest.mark.parametrize("text", ["d: 2019-02-30\n", "a: !unknown x\n", "a: [1, 2\n"])
def test_errors_are_the_same(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        parse_yaml(text)
    with pytest.raises((ValueError, yaml.YAMLError)):
        yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506
    assert ours.value.args


# An alias inside the value it names would make a value that contains itself:
# refused with its line, where reading it used to loop for ever.
@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a\n  b: [1, *a]\n"])
def test_an_alias_inside_its_own_value_is_refused(text: str) -> None:
    from publisher.yamlsource import YamlSyntaxError

    with pytest.raises(YamlSyntaxError, match="a loop") as refused:
        parse_yaml(text, first_line=2)
    assert refused.value.line == 2


# libyaml refuses 1,000 levels; below that, Python's recursion limit came first
@pytest.mark.parametrize("depth", [900, 5000])
def test_deep_nesting_is_an_error_not_a_crash(depth: int) -> None:
    from publisher.yamlsource import YamlSyntaxError

    with pytest.raises(YamlSyntaxError, match="nested too deeply|maximum nesting depth"):
        parse_yaml("a: " + "[" * depth + "]" * depth + "\n")
