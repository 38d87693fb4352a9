"""Urls: the one place public URLs are made."""

from __future__ import annotations

from dataclasses import dataclass
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

    @classmethod
    def from_settings(cls, settings: Settings) -> Urls:
        feeds = settings.feeds.url or settings.site.base_url + "feeds/"
        return cls(
            base=settings.site.base_url,
            feeds=feeds if feeds.endswith("/") else feeds + "/",
            post_path=settings.site.post_path,
        )

    def post(self, slug: str) -> str:
        return self.base + self.post_path.replace("{slug}", quote(slug))

    def feed(self, path: str) -> str:
        """URL of a feed file, given its path inside the feed folder."""
        return self.feeds + path
