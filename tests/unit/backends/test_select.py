"""The backends' registry: built-in backends by name, third-party ones through a real installed entry
point of the group ``composer.backends`` (a distribution's dist-info on sys.path, as pip leaves it)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.backends.memory import MemoryBackend
from composer.backends.select import BUILTIN, ENTRY_POINT_GROUP, backend_class, choose_backend, make_backend
from composer.errors import UsageError

PLUGIN_MODULE = "composer_toy_backend"


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution ``composer-toy-backend`` installed into tmp_path, which is put on sys.path:
    its module, and the dist-info that registers ``toy`` under the group."""
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(textwrap.dedent("""
        from typing import ClassVar

        from composer.backends.memory import MemoryBackend


        class ToyBackend(MemoryBackend):
            name: ClassVar[str] = "toy"
    """))
    dist_info = tmp_path / "composer_toy_backend-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: composer-toy-backend\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoy = {PLUGIN_MODULE}:ToyBackend\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates the import system's caches
    try:
        yield tmp_path
    finally:
        sys.modules.pop(PLUGIN_MODULE, None)


def test_a_backend_registered_under_the_entry_point_group_is_chosen_and_made(installed_plugin: Path) -> None:
    choice = choose_backend(None, {"COMPOSER_BACKEND": "toy"})
    assert (choice.name, choice.reason) == ("toy", "chosen with COMPOSER_BACKEND")
    assert choose_backend("toy", {}).name == "toy"
    toy = backend_class("toy")
    assert toy.__module__ == PLUGIN_MODULE
    assert toy.name == "toy"
    backend = make_backend("toy")
    assert isinstance(backend, toy)
    assert isinstance(backend, MemoryBackend)


def test_without_the_distribution_the_name_is_unknown() -> None:
    assert PLUGIN_MODULE not in sys.modules
    with pytest.raises(UsageError, match="unknown backend 'toy'; choose one of: docker, native, swarm"):
        choose_backend("toy", {})
    with pytest.raises(UsageError, match="unknown backend 'toy'; known: docker, memory, native, swarm"):
        backend_class("toy")


def test_built_in_backends_are_named_not_imported_until_chosen() -> None:
    assert set(BUILTIN) == {"docker", "memory", "native", "swarm"}
    assert backend_class("memory") is MemoryBackend
    # memory is the tests' engine: a user cannot choose it, as before the registry existed
    with pytest.raises(UsageError, match="unknown backend 'memory'"):
        choose_backend("memory", {})


def test_an_entry_point_cannot_take_a_built_in_name(installed_plugin: Path) -> None:
    dist_info = installed_plugin / "composer_toy_backend-1.0.dist-info"
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmemory = {PLUGIN_MODULE}:ToyBackend\n")
    assert backend_class("memory") is MemoryBackend
    with pytest.raises(UsageError, match="unknown backend 'memory'"):
        choose_backend("memory", {})


# A plain install (no extras) has every backend's modules; when one is missing all the same (a
# broken environment, a vendored copy), the command fails in one line naming the package to
# install, before it does anything. The block is a real import hook in a real process.
_BLOCKED_RUN = """
import sys

for name in [n for n in sys.modules if n.partition(".")[0] == {blocked!r}]:
    del sys.modules[name]
sys.modules[{blocked!r}] = None  # what the import system does for a module it must not find
from composer.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize(("backend", "blocked", "package"), [
    ("docker", "docker", "docker"),      # the backend's own module: found missing when the backend is chosen
    ("native", "pyroute2", "pyroute2"),
    ("docker", "requests", "requests"),  # one docker-py imports: found missing when it is imported
])
def test_a_missing_module_is_one_line_naming_the_package(tmp_path: Path, backend: str, blocked: str,
                                                         package: str) -> None:
    import os
    import subprocess

    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: busybox\n")
    argv = ["--backend", backend, "ps"]
    environment = {**os.environ, "COMPOSER_SERVER": "0", "PYTHONPATH": str(Path(__file__).parents[3])}
    result = subprocess.run([sys.executable, "-c", _BLOCKED_RUN.format(blocked=blocked, argv=argv)], cwd=tmp_path,
                            env=environment, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert "internal error" not in result.stderr
    assert "Traceback" not in result.stderr
    first, hint = result.stderr.strip().splitlines()
    who = f"the {backend} backend needs" if blocked == package == {"docker": "docker", "native": "pyroute2"}[backend] \
        else "composer needs"
    assert first.startswith(f"composer: {who} ")
    assert f"Python package '{package}', which is not installed" in first
    assert hint == f"hint: pip install {package}"
