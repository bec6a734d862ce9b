"""A small WordPress client over urllib, for 127.0.0.1 only: the installer, login, publishing.

It keeps cookies like a browser and never uses a proxy. Publishing goes through the REST API as the
block editor does: the login cookie plus the X-WP-Nonce that admin-ajax.php's ``rest-nonce`` hands out.
"""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NamedTuple


class Page(NamedTuple):
    status: int
    url: str
    body: str
    location: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WordPress:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        cookies = urllib.request.HTTPCookieProcessor(self.cookies)
        no_proxy = urllib.request.ProxyHandler({})
        self.following = urllib.request.build_opener(no_proxy, cookies)
        self.direct = urllib.request.build_opener(no_proxy, cookies, _NoRedirect())

    def request(self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None,
                follow: bool = True, timeout: float = 60) -> Page:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        opener = self.following if follow else self.direct
        try:
            with opener.open(request, timeout=timeout) as response:
                return Page(response.status, response.url, response.read().decode("utf-8", "replace"),
                            response.headers.get("Location", ""))
        except urllib.error.HTTPError as exc:
            with exc:
                return Page(exc.code, exc.url or "", exc.read().decode("utf-8", "replace"),
                            exc.headers.get("Location", ""))

    def get(self, path: str = "/", follow: bool = True) -> Page:
        return self.request(path, follow=follow)

    def post_form(self, path: str, fields: dict[str, str]) -> Page:
        return self.request(path, urllib.parse.urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def wait_until_answering(self, timeout: float = 120) -> Page:
        """The front page's first answer that is not a connection error or a 5xx."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                page = self.get("/", follow=False)
                if page.status < 500:
                    return page
                last = page
            except OSError as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"WordPress did not answer on {self.base}/ within {timeout}s: {last!r}")

    def install(self, title: str, user: str, password: str, email: str) -> Page:
        """Fill in the installer's form (wp-admin/install.php?step=2)."""
        return self.post_form("/wp-admin/install.php?step=2", {
            "weblog_title": title, "user_name": user, "admin_password": password, "admin_password2": password,
            "pw_weak": "on", "admin_email": email, "blog_public": "0", "language": "", "Submit": "Install WordPress",
        })

    def log_in(self, user: str, password: str) -> Page:
        self.get("/wp-login.php")  # sets wordpress_test_cookie, which the login form requires
        return self.post_form("/wp-login.php", {
            "log": user, "pwd": password, "wp-submit": "Log In", "redirect_to": f"{self.base}/wp-admin/",
            "testcookie": "1",
        })

    def logged_in(self) -> bool:
        return any(cookie.name.startswith("wordpress_logged_in_") for cookie in self.cookies)

    def publish_post(self, title: str, content: str) -> dict[str, Any]:
        """Publish through the REST API with the login cookie and a REST nonce; the created post."""
        nonce = self.get("/wp-admin/admin-ajax.php?action=rest-nonce")
        assert nonce.status == 200, f"no REST nonce: {nonce.status} {nonce.body[:200]}"
        assert nonce.body.strip().isalnum(), f"not a REST nonce: {nonce.body[:200]}"
        created = self.request(
            "/?rest_route=/wp/v2/posts",
            json.dumps({"title": title, "content": content, "status": "publish"}).encode(),
            {"Content-Type": "application/json", "X-WP-Nonce": nonce.body.strip()},
        )
        assert created.status == 201, f"creating the post answered {created.status}: {created.body[:500]}"
        post: dict[str, Any] = json.loads(created.body)
        return post
