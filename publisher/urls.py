"""Urls: the one place public URLs are made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from .config import Settings

#: file name of each feed format inside a feed's folder
FEED_FILES = {"atom": "atom.xml", "rss": "rss.xml", "json": "feed.json"}


@dataclass(frozen=True)
class Urls:
    """Public URLs of the site's posts and feeds.

    :param base: the site, ending in ``/``.
    :param feeds: the folder the feeds are published under, ending in ``/``.
    :param post_path: path of a post under ``base``, with ``{slug}``.
    """

    base: str
    feeds: str
    post_path: str = "news/{slug}/"
    #: where `publisher serve` answers the public (unsubscribe and preference links)
    web: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Urls:
        feeds = settings.feeds.url or settings.site.base_url + "feeds/"
        web = settings.web.public_url or settings.site.base_url
        return cls(
            base=settings.site.base_url,
            feeds=feeds if feeds.endswith("/") else feeds + "/",
            post_path=settings.site.post_path,
            web=web if web.endswith("/") else web + "/",
        )

    def post(self, slug: str) -> str:
        return self.base + self.post_path.replace("{slug}", quote(slug))

    def feed(self, path: str) -> str:
        """URL of a feed file, given its path inside the feed folder."""
        return self.feeds + path

    def digest_page(self, name: str, period_end: datetime) -> str:
        """The web version of a digest ("View in browser")."""
        return self.feeds + digest_page_path(name, period_end)

    def unsubscribe(self, token: str) -> str:
        return f"{self.web}unsubscribe/{token}"

    def preferences(self, token: str) -> str:
        return f"{self.web}preferences/{token}"

    def subscribe(self) -> str:
        """The subscribe form (the page a consent is given on)."""
        return f"{self.web}subscribe"

    def confirm(self, token: str) -> str:
        """A subscription's confirmation link (double opt-in)."""
        return f"{self.web}confirm/{token}"


def digest_page_path(name: str, period_end: datetime) -> str:
    """Where the web version of a digest lives, inside the feed folder: one page per
    run (its period's end, UTC, to the minute, or finer when it has seconds: two
    sends on one day each keep their own page)."""
    time = f"{period_end:%H%M}"
    if period_end.second or period_end.microsecond:
        time += f"{period_end:%S}" + (f"{period_end:%f}" if period_end.microsecond else "")
    return f"digests/{name}-{period_end:%Y-%m-%d}-{time}.html"
