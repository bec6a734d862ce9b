"""The example's stack as its users see it: the installer, an install and a login, a healthy database.

One stack serves the module (see conftest.py), so the tests run in file order: the first one sees
the fresh site, the second installs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from wordpress_client import Site

from composer import Project

pytestmark = pytest.mark.docker

TITLE = "composer example"
ADMIN, PASSWORD, EMAIL = "admin", "example-Long-Passphrase-42", "admin@example.test"


def test_a_fresh_site_shows_the_installer(site: Site) -> None:
    front = site.get("/", follow=False)
    assert front.status == 302, front
    assert front.location.endswith("/wp-admin/install.php"), front

    installer = site.get("/wp-admin/install.php")
    assert installer.status == 200, installer
    assert "Installation" in installer.body, installer.body[:500]


def test_install_then_log_in(site: Site) -> None:
    done = site.post("/wp-admin/install.php?step=2", {
        "weblog_title": TITLE, "user_name": ADMIN, "admin_password": PASSWORD, "admin_password2": PASSWORD,
        "pw_weak": "on", "admin_email": EMAIL, "blog_public": "0", "language": "", "Submit": "Install WordPress",
    })
    assert done.status == 200, done.status
    assert "Success!" in done.body, done.body[:2000]
    home = site.get("/")
    assert home.status == 200, home.status
    assert TITLE in home.body

    site.get("/wp-login.php")  # sets the test cookie the login form requires
    site.post("/wp-login.php", {"log": ADMIN, "pwd": PASSWORD, "wp-submit": "Log In", "testcookie": "1",
                                "redirect_to": f"{site.base}/wp-admin/"})
    assert site.logged_in(), "no wordpress_logged_in_ cookie after logging in"
    dashboard = site.get("/wp-admin/")
    assert dashboard.status == 200, dashboard.status
    assert "Dashboard" in dashboard.body


def test_the_database_is_healthy_and_answers(wordpress: Project) -> None:
    [db] = wordpress.ps("db")
    assert db.running, db
    assert db.health == "healthy", db

    password = (Path(__file__).parents[1] / "secrets" / "db_password.txt").read_text().strip()
    ping = wordpress.exec("db", ["mariadb-admin", "ping", "--user=wordpress", f"--password={password}"])
    assert ping.exit_code == 0, ping.stderr
    assert "mysqld is alive" in ping.stdout


def test_the_built_image_serves_the_site_s_plugin_and_settings(site: Site, wordpress: Project, variant: str) -> None:
    """compose.build.yaml's WordPress (site/Dockerfile): the must-use plugin names PHP's upload limit,
    which the heredoc'd php.ini sets from the build argument UPLOAD_LIMIT (64M), and Apache sends the
    header the RUN enabled. The pulled image has none of it."""
    home = site.get("/")  # installed by the test before
    assert home.status == 200, home.status
    built = variant == "build"
    assert home.headers.get("x-site-build") == ("upload_max_filesize=64M" if built else None), home.headers
    assert home.headers.get("x-content-type-options") == ("nosniff" if built else None), home.headers
    if built:  # the heredoc's body as written, its variable expanded and its apostrophe kept
        settings = wordpress.exec("wordpress", ["cat", "/usr/local/share/site/php.ini"])
        assert settings.exit_code == 0, settings.stderr
        assert settings.stdout.splitlines()[:3] == ["; this site's settings (site/Dockerfile)",
                                                    "upload_max_filesize = 64M", "post_max_size = 64M"]
