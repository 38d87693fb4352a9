"""Front matter of one-line keys read the short way (:mod:`publisher.plainyaml`)
gives the data the long way (libyaml's node tree, :func:`parse_located`) gives."""

from __future__ import annotations

import os
from importlib import resources

import pytest
from hypothesis import example, given, settings, strategies as st

from bench.corpus import generate
from publisher.content.postfile import split_front_matter
from publisher.plainyaml import plain_mapping
from publisher.yamlsource import YamlSyntaxError, parse_located, parse_yaml

#: characters YAML treats specially somewhere (or that are no YAML), and some it does not
SPECIAL = " #:,[]{}'\"&*!|>%@`?-._+~()/\\=<\t\r\x85\xa0\u2028\u2029\ufeff\x7f\x00"
PLAIN_CHARACTERS = "abcXYZ019 éß–’😀"
ALPHABET = st.sampled_from(PLAIN_CHARACTERS + SPECIAL)
TYPED = (
    "1 0x1f 0o17 017 1_000 +1 -1 1.5e3 .inf .NaN 1:20:30 yes No off ON ~ null Null "
    "true FALSE y n 2019-12-05 2019-02-30 2019-12-05T10:30:00+01:00 2015-01-01T16:00:00Z "
    "2019-12-05t10:30:00.123456789-05 2019-12-05 10:30:00 2019-1-5 10000-01-01 = << - "
    "published Topic&1 a#b a:b a: (x) .x +x ~x"
).split(" ")
ESCAPES = st.sampled_from(
    ["\\\\", '\\"', "\\n", "\\t", "\\r", "\\b", "\\f", "\\/", "\\e", "\\0", "\\x41"]
    + ["\\'", "\\u00e9", "\\u0000", "\\ud800", "\\udfff", "\\uFFFE", "\\U0001F600", "\\"]
    + ["\\u12"]
)


def mostly(common: st.SearchStrategy[str], rare: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``common`` nine times in ten, else ``rare``."""
    return st.integers(0, 9).flatmap(lambda draw: rare if draw == 0 else common)


def text(size: int) -> st.SearchStrategy[str]:
    """Text mostly of plain characters, now and then one YAML treats specially."""
    common = st.text(st.sampled_from(PLAIN_CHARACTERS), min_size=1, max_size=size).filter(
        lambda text: text.strip() == text
    )
    return mostly(common, st.text(ALPHABET, min_size=1, max_size=size))


KEYS = mostly(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,4}", fullmatch=True),
    st.one_of(st.sampled_from(["yes", "on", "null", "Off", "1", "~", "<<"]), text(3)),
)
QUOTED_PARTS = st.lists(mostly(text(3), ESCAPES), max_size=4)
#: front-matter dates and times, some that do not exist (a 30 February, hour 24)
DATETIMES = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 60),
    st.integers(0, 61),
    st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-05:30", "+14:59", "+99:99", "", "z"]),
)
SCALARS = st.one_of(
    text(12),
    st.sampled_from(TYPED),
    DATETIMES,
    QUOTED_PARTS.map(lambda parts: '"' + "".join(parts) + '"'),
    text(8).map(lambda inner: "'" + inner.replace("'", "''") + "'"),
    text(8).map(lambda inner: "'" + inner + "'"),
)
SPACES = mostly(st.just(""), st.sampled_from([" ", "  "]))


@st.composite
def flow_lists(draw: st.DrawFn) -> str:
    items = draw(st.lists(st.tuples(SPACES, SCALARS, SPACES), max_size=4))
    inside = ",".join(before + item + after for before, item, after in items)
    return "[" + inside + draw(mostly(st.just(""), st.sampled_from([",", " ", ", "]))) + "]"


VALUES = mostly(
    st.one_of(SCALARS, flow_lists()),
    st.sampled_from(["", "{}", "{a: b}", "|", ">-", "&a x", "*a", "!!str x"]),
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", "# a comment", "  indented: x", "- item", " "])))
        else:
            separator = draw(mostly(st.just(": "), st.sampled_from([":", ":  ", " : ", ":\t"])))
            trailing = draw(mostly(st.just(""), st.sampled_from([" ", " # note", "\t"])))
            lines.append(draw(KEYS) + separator + draw(VALUES) + trailing)
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


# Invariant: whenever the short way reads a text, the long way reads it too, to the
# same data: the same keys in the same order, the same values of the same types
# (repr tells 1 from 1.0 and True, a date from a datetime, and each time zone).
@settings(max_examples=int(os.environ.get("PUBLISHER_FUZZ_EXAMPLES", 2000)), deadline=None)
@given(documents())
@example("title: Hello, world\ndate: 2019-12-05\ntags: [a, 'b', \"c\"]\n")
@example('title: "\\u00e9\\"\\\\"\nn: 1\nyes_: no\nz: ~\n')
@example("a: 2019-12-05 10:30:00\nb: [1, 1.5, .inf, null]\nc:\n# done\n")
@example("a: x:y\nb: (a) b+c ~d\n")
def test_the_short_way_reads_what_the_long_way_reads(text: str) -> None:
    short = plain_mapping(text)
    if short is None:
        return
    assert repr(short) == repr(parse_located(text).data)


def front_matters() -> dict[str, str]:
    found = {}
    folder = resources.files("publisher") / "sample"
    for item in folder.iterdir():
        if item.name.endswith(".md"):
            found[item.name] = split_front_matter(item.read_text(), item.name)[0]
    for post in generate(200):
        found[post.file_name] = split_front_matter(post.publisher_file(), post.file_name)[0]
    return found


# Invariant: front matter of one-line keys (the generated posts, most of the
# sample) takes the short way; nested values take the long way; both give the
# same data.
@pytest.mark.parametrize(("name", "text"), sorted(front_matters().items()))
def test_front_matter_takes_the_short_way_when_it_can(name: str, text: str) -> None:
    nested = "\n  " in text
    short = plain_mapping(text)
    assert (short is None) == nested
    assert repr(parse_yaml(text).data) == repr(parse_located(text).data)


# Invariant: what the short way leaves alone is reported by the long way with its
# line, and a document read the short way still finds the line of each key.
@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("title: a\ndate: 2019-02-30\n", 3),
        ("title: a\nstatus: b\ntitle: c\n", 4),
        ("title: a\ntags: [a, b\n", 3),
    ],
)
def test_problems_are_reported_with_their_line(text: str, line: int) -> None:
    assert plain_mapping(text) is None
    with pytest.raises(YamlSyntaxError) as refused:
        parse_yaml(text, first_line=2)
    assert refused.value.line == line


def test_a_document_read_the_short_way_knows_its_lines() -> None:
    doc = parse_yaml("title: a\n\n# c\ntags: [x, y]\n", first_line=2)
    assert doc.composed is None  # the node tree is made only when asked
    assert doc.line_of(["tags", 1]) == 5
    assert doc.line_of(["title"]) == 2
