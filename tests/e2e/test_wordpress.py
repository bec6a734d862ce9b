"""The WordPress example end to end on the native and docker backends (issue 7's acceptance).

``up -d --wait`` with the example's own compose file (a unique project name, and WORDPRESS_PORT when
8080 is taken), the installer, a login, a post published through the application and seen on the
front page; ``down`` and ``up`` keep it (volumes), ``down -v`` brings the installer back, and the last
``down -v`` leaves nothing behind (on the engine; for the native backend in its run root, store and
on the host). A second test drives Debian's headless Chromium at the site. Every test runs once per
backend (the ``backend`` parameter); the native backend pulls the images into a session store
through the same local mirror dockerd uses.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Stack, unavailable
from tests.e2e.wordpress import WordPress

pytestmark = pytest.mark.docker

ADMIN, PASSWORD, EMAIL = "composer", "e2e-Very-Long-Passphrase-42", "composer@example.test"


def assert_installer(site: WordPress) -> None:
    front = site.wait_until_answering()
    assert front.status == 302, front
    assert front.location.endswith("/wp-admin/install.php"), front
    installer = site.get("/wp-admin/install.php")
    assert installer.status == 200, installer
    assert "Installation" in installer.body, installer.body[:500]


def install_site(site: WordPress, title: str) -> None:
    assert_installer(site)
    done = site.install(title, ADMIN, PASSWORD, EMAIL)
    assert done.status == 200, done
    assert "Success!" in done.body, done.body[:2000]
    home = site.get("/")
    assert home.status == 200
    assert html.escape(title) in home.body


def pulled_image_id(stack: Stack, api: Any, name: str) -> str | None:
    if stack.native is None:
        return str(api.inspect_image(name)["Id"])
    from composer.backends.native.image.store import ImageStore
    from composer.image_reference import parse

    record = ImageStore.open(stack.native.store).get(str(parse(name)))
    return None if record is None else record.config


def test_install_publish_survive_down_up_and_reset(stack: Stack, example_images: dict[str, str], e2e_docker_api: Any,
                                                   output_dir: Path) -> None:
    stack.composer("up", "-d", "--wait")
    # The images came through the backend's pull path (the mirror), as the stand-ins the script prepared.
    for name, image_id in example_images.items():
        assert pulled_image_id(stack, e2e_docker_api, name) == image_id, name
    site = WordPress(stack.base)
    title = f"composer e2e {uuid.uuid4().hex[:6]}"
    install_site(site, title)

    site.log_in(ADMIN, PASSWORD)
    assert site.logged_in(), "no wordpress_logged_in_ cookie after logging in"
    dashboard = site.get("/wp-admin/")
    assert dashboard.status == 200
    assert "Dashboard" in dashboard.body

    post_title = f"Hello from composer {uuid.uuid4().hex[:8]}"
    post = site.publish_post(post_title, "<p>Published end to end through the REST API.</p>")
    assert post["status"] == "publish"
    front = site.get("/")
    assert front.status == 200
    assert post_title in front.body
    (output_dir / "front-page.html").write_text(front.body)

    # down, then up: the database and the site files are kept in the named volumes.
    stack.composer("down")
    assert not [x for x in stack.leftovers() if not x.startswith("volume ")]
    stack.composer("up", "-d", "--wait")
    again = WordPress(stack.base)
    again.wait_until_answering()
    front = again.get("/")
    assert front.status == 200, front
    assert post_title in front.body, "the post did not survive down and up"
    assert html.escape(title) in front.body

    # down -v drops the volumes: a fresh up shows the installer again.
    stack.composer("down", "-v")
    stack.composer("up", "-d", "--wait")
    assert_installer(WordPress(stack.base))

    stack.composer("down", "-v")
    assert stack.leftovers() == []


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("Debian's chromium is not installed (make deps)")
    raise AssertionError("unreachable")


def headless(browser: str, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.parametrize("backend", ["native"], indirect=True)
def test_headless_chromium_front_page(stack: Stack, output_dir: Path) -> None:
    browser = chromium()
    stack.composer("up", "-d", "--wait")
    site = WordPress(stack.base)
    title = f"Composer Chromium {uuid.uuid4().hex[:6]}"
    install_site(site, title)

    screenshot = output_dir / "front-page.png"
    with tempfile.TemporaryDirectory(prefix="composer-chromium-") as profile:
        shot = headless(browser, profile, f"--screenshot={screenshot}", "--window-size=1280,900", f"{stack.base}/")
        assert screenshot.is_file(), f"no screenshot:\n{shot.stderr[-2000:]}"
        assert screenshot.stat().st_size > 10_000, f"a blank screenshot?\n{shot.stderr[-2000:]}"
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        dom = headless(browser, profile, "--dump-dom", f"{stack.base}/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    (output_dir / "front-page.dom.html").write_text(dom.stdout)
    assert html.escape(title) in dom.stdout or title in dom.stdout, dom.stdout[:2000]
    stack.composer("down", "-v")
    assert stack.leftovers() == []


@pytest.mark.parametrize("backend", ["native"], indirect=True)
def test_demo_script_brings_the_site_up(stack: Stack) -> None:
    """scripts/demo, which `make demo` runs (the native backend), under the stack's project name and port."""
    env = {**stack.environ(), "COMPOSER_DEMO_PROJECT": stack.project,
           "COMPOSER_BIN": str(Path(sys.executable).parent / "composer")}
    demo = subprocess.run([str(ROOT / "scripts" / "demo")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800, check=False)
    assert demo.returncode == 0, f"{demo.stdout[-3000:]}\n{demo.stderr[-3000:]}"
    assert f"WordPress: {stack.base}/" in demo.stdout
    assert "down" in demo.stdout
    assert_installer(WordPress(stack.base))
    again = subprocess.run([str(ROOT / "scripts" / "demo")], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600, check=False)
    assert again.returncode == 0, f"{again.stdout[-3000:]}\n{again.stderr[-3000:]}"
    assert "not rebuilt" in again.stdout
    stack.composer("down", "-v")
    assert stack.leftovers() == []
