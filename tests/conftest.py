"""Suite-wide set-up: the CLI's warm command servers belong to the test session.

Every ``composer`` the tests start goes through the command server (composer/cli/server.py), as
a user's would. The session gives the servers a folder of its own (COMPOSER_SERVER_DIR, set
before any test module builds its environment) and stops them at the end, so that the suite
leaves no process behind. Commands run with a bare environment fall back to the user's default
folder: its servers are stopped too.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_ORIGINAL_SERVER_DIR = os.environ.get("COMPOSER_SERVER_DIR")


def pytest_configure(config: pytest.Config) -> None:
    folder = tempfile.mkdtemp(prefix="composer-servers-")
    config.stash[_FOLDER] = folder
    os.environ["COMPOSER_SERVER_DIR"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    from composer.cli import server

    folder = config.stash.get(_FOLDER, None)
    if folder is None:
        return
    if _ORIGINAL_SERVER_DIR is None:
        os.environ.pop("COMPOSER_SERVER_DIR", None)
    else:
        os.environ["COMPOSER_SERVER_DIR"] = _ORIGINAL_SERVER_DIR
    server.stop_servers(folder)
    server.stop_servers()  # the default folder's: commands run with a bare environment
    shutil.rmtree(folder, ignore_errors=True)


_FOLDER = pytest.StashKey[str]()
