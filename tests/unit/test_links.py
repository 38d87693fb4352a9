"""The one URL rule: http, https and mailto, relative links made absolute, nothing else."""

from __future__ import annotations

import pytest

from publisher.links import WEB_SCHEMES, UnsafeUrl, check_url, revealed_scheme, safe_url

SITE = "https://news.example.org/"

# Every way a script URL is written that a browser still runs, and the other
# schemes no reader should be sent to.
DISGUISED = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "  javascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "&#0000106;avascript:alert(1)",
    "jav&Tab;ascript:alert(1)",
    "javascript&colon;alert(1)",
    "&amp;#106;avascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://example.org/x",
]


@pytest.mark.parametrize("url", DISGUISED)
def test_script_and_other_schemes_are_refused_however_written(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, base=SITE)
    assert safe_url(url, SITE) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a?b=1&c=2#d", "https://example.org/a?b=1&c=2#d"),
        ("HTTP://example.org/", "http://example.org/"),
        (" https://example.org/x \n", "https://example.org/x"),
        ("mailto:news@example.org", "mailto:news@example.org"),
        ("/downloads/report.pdf", "https://news.example.org/downloads/report.pdf"),
        ("report.pdf", "https://news.example.org/report.pdf"),
        ("//cdn.example.org/a.png", "https://cdn.example.org/a.png"),
    ],
)
def test_safe_links_pass_and_relative_ones_become_absolute(url: str, expected: str) -> None:
    assert check_url(url, base=SITE) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://exa mple.org/", "space"),
        ("not a url", "space"),
        ("https:///path", "no host"),
        ("https://example.org:port/", "not a valid URL"),
        ("/relative", "not an absolute URL"),
        ("https://example.org/" + "x" * 3000, "longer than"),
        ("ht&#116;ps://example.org/", "character references"),
    ],
)
def test_broken_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        check_url(url, schemes=WEB_SCHEMES)


def test_mailto_needs_an_address_and_is_not_a_web_address() -> None:
    with pytest.raises(UnsafeUrl, match="no address"):
        check_url("mailto:")
    with pytest.raises(UnsafeUrl, match="scheme 'mailto'"):
        check_url("mailto:a@example.org", schemes=WEB_SCHEMES)


def test_revealed_scheme() -> None:
    assert revealed_scheme("j&#97;va\tscript:x") == "javascript"
    assert revealed_scheme("/a:b") is None
    assert revealed_scheme("") is None
