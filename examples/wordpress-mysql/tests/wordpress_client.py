"""A small browser-like WordPress client over urllib (cookies, no proxy), for the tests' stack on 127.0.0.1."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NamedTuple


class Page(NamedTuple):
    status: int
    body: str
    location: str
    headers: dict[str, str] = {}  # names in lower case


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Site:
    """A browser-like client (cookies, no proxy) for the WordPress published on 127.0.0.1."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        handlers = (urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies))
        self._following = urllib.request.build_opener(*handlers)
        self._direct = urllib.request.build_opener(*handlers, _NoRedirect())

    def get(self, path: str, *, follow: bool = True) -> Page:
        return self._open(urllib.request.Request(self.base + path), follow)

    def post(self, path: str, fields: dict[str, str]) -> Page:
        data = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self.base + path, data=data), True)

    def _open(self, request: urllib.request.Request, follow: bool) -> Page:
        opener = self._following if follow else self._direct
        try:
            with opener.open(request, timeout=60) as response:
                return Page(response.status, response.read().decode("utf-8", "replace"),
                            response.headers.get("Location", ""), _headers(response.headers))
        except urllib.error.HTTPError as error:  # 3xx without following, 4xx, 5xx
            with error:
                return Page(error.code, error.read().decode("utf-8", "replace"), error.headers.get("Location", ""),
                            _headers(error.headers))

    def logged_in(self) -> bool:
        return any(cookie.name.startswith("wordpress_logged_in_") for cookie in self.cookies)


def _headers(message: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in message.items()}
