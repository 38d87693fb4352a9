"""A small HTTP client for the web tests: real requests, a cookie jar, form tokens."""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from werkzeug.datastructures import Headers

Form = dict[str, str | list[str]]


@dataclass(frozen=True)
class Answer:
    status: int
    #: case-insensitive, as HTTP header names are
    headers: Headers
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def wait_until_served(url: str, seconds: float = 10.0) -> bool:
    """Whether ``url`` answered within ``seconds`` (a server process starting up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Browser:
    """Keeps cookies like a browser; never follows redirects (tests look at them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(
        self,
        path: str,
        form: Form | None = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> Answer:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        url = path if path.startswith("http") else self.base + path
        request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with self.opener.open(request, timeout=10) as response:
                return Answer(
                    response.status, Headers(list(response.headers.items())), response.read()
                )
        except urllib.error.HTTPError as e:
            return Answer(e.code, Headers(list(e.headers.items())), e.read())

    def get(self, path: str, **headers: str) -> Answer:
        return self.request(path, headers=headers)

    def head(self, path: str, form: Form | None = None) -> Answer:
        """A HEAD request (with a form body, as a careless or hostile client may send)."""
        return self.request(path, form, method="HEAD")

    def post(self, path: str, form: Form, **headers: str) -> Answer:
        return self.request(path, form, headers)

    def submit(self, path: str, form: Form) -> Answer:
        """GET the page, then POST ``form`` to it with the page's CSRF token."""
        return self.post(path, {"csrf_token": csrf_token(self.get(path).text), **form})


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)
