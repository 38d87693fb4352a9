"""Checks every feed we write must pass: the validators' rules tests can express.

Shared by the feed tests. feedparser and the schemas in tests/schemas/
do the parsing; the assertions here cover what schemas cannot say.
"""

from __future__ import annotations

import email.utils
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree

SCHEMAS = Path(__file__).resolve().parent / "schemas"
ATOM_NS = "{http://www.w3.org/2005/Atom}"


def parse_ok(data: bytes) -> Any:
    """feedparser's view of a feed, which must parse without any complaint."""
    parsed = feedparser.parse(data)
    assert not parsed.bozo, f"feedparser: {parsed.get('bozo_exception')!r}"
    return parsed


def _schema(name: str) -> Path:
    return SCHEMAS / name


def check_atom(data: bytes, self_url: str, home: str) -> None:
    """RFC 4287 by RELAX NG, plus what the schema cannot express."""
    relaxng = _relaxng()
    document = etree.fromstring(data)
    assert relaxng.validate(document), relaxng.error_log
    feed_links = document.findall(f"{ATOM_NS}link")
    assert [x.get("href") for x in feed_links if x.get("rel") == "self"] == [self_url]
    assert [x.get("href") for x in feed_links if x.get("rel") in (None, "alternate")] == [home]
    feed_has_author = document.find(f"{ATOM_NS}author") is not None
    for entry in document.findall(f"{ATOM_NS}entry"):
        assert feed_has_author or entry.find(f"{ATOM_NS}author") is not None, (
            "RFC 4287 4.1.1: an entry without an author needs a feed-level author"
        )
        alternates = [
            (x.get("type"), x.get("hreflang"))
            for x in entry.findall(f"{ATOM_NS}link")
            if x.get("rel") in (None, "alternate")
        ]
        assert len(alternates) == len(set(alternates)) == 1, "one alternate link per entry"
        for enclosure in entry.findall(f"{ATOM_NS}link[@rel='enclosure']"):
            assert enclosure.get("type"), "enclosures carry their media type"
    parse_ok(data)


@cache
def _relaxng() -> Any:
    return etree.RelaxNG(etree.parse(str(_schema("atom.rng"))))


@cache
def _json_feed_validator() -> Any:
    """Compiled once: building a validator costs more than validating a feed."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(_schema("jsonfeed-1.1.schema.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def check_rss(data: bytes, self_url: str, home: str) -> None:
    document = etree.fromstring(data)
    channel = document.find("channel")
    assert channel is not None
    assert channel.findtext("link") == home, "the channel link is the site"
    selfs = channel.findall(f"{ATOM_NS}link[@rel='self']")
    assert [x.get("href") for x in selfs] == [self_url]
    dates = [channel.findtext("lastBuildDate")] + [
        i.findtext("pubDate") for i in channel.iter("item")
    ]
    for text in dates:
        assert text and re.match(r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$", text), (
            text
        )
        assert email.utils.parsedate_to_datetime(text).tzinfo is not None
    for item in channel.iter("item"):
        assert len(item.findall("enclosure")) <= 1, "at most one enclosure per RSS item"
        guid = item.find("guid")
        assert guid is not None and guid.get("isPermaLink") == "false"
    parse_ok(data)


def check_json(data: bytes) -> dict[str, Any]:
    feed: dict[str, Any] = json.loads(data)
    _json_feed_validator().validate(feed)
    return feed
