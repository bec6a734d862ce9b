"""The CLI's project cache: a hit skips the loader, and nothing the load read may change unseen."""

from __future__ import annotations

import os
import pickle
import textwrap
from pathlib import Path

import pytest

import composer.errors
import composer.spec
from composer.spec import Project, ProjectOptions
from composer.spec.cache import cache_dir, load_project_cached
from composer.spec.models import ServiceConfig


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """The cache in a folder of its own; counts the real loads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("COMPOSER_CACHE", raising=False)
    calls: list[int] = []
    real = composer.spec.load_project

    def counting(*args: object, **kwargs: object) -> Project:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(composer.spec, "load_project", counting)
    return calls


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def load(folder: Path, **options: object) -> Project:
    return load_project_cached(ProjectOptions(working_directory=str(folder), **options))  # type: ignore[arg-type]


def project_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    write(folder / "compose.yaml", """\
        services:
          web:
            image: "busybox:${TAG:-1}"
            env_file: [{path: web.env, required: false}]
            extends: {file: base.yaml, service: base}
        include:
          - inc/compose.yaml
        """)
    write(folder / "base.yaml", "services:\n  base:\n    command: [sleep, '1']\n")
    write(folder / "inc" / "compose.yaml", "services:\n  db:\n    image: db:1\n")
    return folder


def test_a_second_load_is_a_hit_with_an_equal_project(tmp_path: Path, loads: list[int]) -> None:
    folder = project_dir(tmp_path)
    first = load(folder)
    second = load(folder)
    assert loads == [1]
    assert second == first
    assert second.services["web"].image == "busybox:1"
    assert os.listdir(cache_dir())


@pytest.mark.parametrize("change", ["compose", "extends", "include", "dotenv", "env_file", "override", "variable"])
def test_any_change_to_an_input_loads_again(
    tmp_path: Path, loads: list[int], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    folder = project_dir(tmp_path)
    before = load(folder)
    if change == "compose":
        text = (folder / "compose.yaml").read_text().replace("${TAG:-1}", "${TAG:-2}")
        (folder / "compose.yaml").write_text(text)
    elif change == "extends":
        write(folder / "base.yaml", "services:\n  base:\n    command: [sleep, '2']\n")
    elif change == "include":
        write(folder / "inc" / "compose.yaml", "services:\n  db:\n    image: db:2\n")
    elif change == "dotenv":  # a .env file appears
        write(folder / ".env", "TAG=3\n")
    elif change == "env_file":  # an optional env_file appears
        write(folder / "web.env", "A=1\n")
    elif change == "override":
        write(folder / "compose.override.yaml", "services:\n  web:\n    command: ['true']\n")
    else:
        monkeypatch.setenv("TAG", "4")
    after = load(folder)
    assert loads == [1, 1]
    assert after != before
    assert load(folder) == after  # and the new result is cached in turn
    assert loads == [1, 1]


def test_options_are_part_of_the_key(tmp_path: Path, loads: list[int]) -> None:
    folder = project_dir(tmp_path)
    assert load(folder, project_name="one").name == "one"
    assert load(folder, project_name="two").name == "two"
    assert load(folder, project_name="one").name == "one"
    assert loads == [1, 1]


def test_a_corrupt_entry_loads_again(tmp_path: Path, loads: list[int]) -> None:
    folder = project_dir(tmp_path)
    first = load(folder)
    for name in os.listdir(cache_dir()):
        Path(cache_dir(), name).write_bytes(b"not a pickle")
    assert load(folder) == first
    assert loads == [1, 1]


def test_a_changed_dependency_in_an_entry_is_not_served(tmp_path: Path, loads: list[int]) -> None:
    folder = project_dir(tmp_path)
    load(folder)
    (entry,) = Path(cache_dir()).iterdir()
    dependencies, payload, derived = pickle.loads(entry.read_bytes())
    kinds = {kind for kind, _, _ in dependencies}
    paths = {path for _, path, _ in dependencies}
    assert {"read", "probe"} <= kinds
    assert {str(folder / "compose.yaml"), str(folder / "base.yaml"), str(folder / "inc" / "compose.yaml")} <= paths
    assert str(folder / ".env") in paths
    assert str(folder / "web.env") in paths
    tampered = [(kind, path, "x" if kind == "read" else found) for kind, path, found in dependencies]
    entry.write_bytes(pickle.dumps((tampered, payload, derived)))
    load(folder)
    assert loads == [1, 1]


def test_off_and_stdin_are_never_cached(tmp_path: Path, loads: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project_dir(tmp_path)
    monkeypatch.setenv("COMPOSER_CACHE", "0")
    load(folder)
    load(folder)
    assert loads == [1, 1]
    assert not os.path.exists(cache_dir())
    monkeypatch.delenv("COMPOSER_CACHE")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("services:\n  a:\n    image: a\n"))
    load(folder, files=("-",))
    assert not os.path.exists(cache_dir())


def test_a_failed_load_is_not_cached(tmp_path: Path, loads: list[int]) -> None:
    folder = tmp_path / "bad"
    write(folder / "compose.yaml", "services:\n  web:\n    image: [1\n")
    with pytest.raises(composer.errors.SpecError):
        load(folder)
    assert not os.path.exists(cache_dir()) or not os.listdir(cache_dir())


def test_derived_values_are_kept_with_the_entry_and_restored_on_a_hit(tmp_path: Path, loads: list[int]) -> None:
    from composer.planner import hashing

    folder = project_dir(tmp_path)
    options = ProjectOptions(working_directory=str(folder))
    first = load_project_cached(options, derived=hashing.ServiceHashes())
    expected = {name: hashing.config_hash(service) for name, service in first.services.items()}
    computed: list[str] = []
    original = hashing._config_hash

    def counting(service: ServiceConfig) -> str:
        computed.append(service.name)
        return original(service)

    hashing._config_hash = counting
    try:
        again = load_project_cached(options, derived=hashing.ServiceHashes())
        assert again is not first
        assert {name: hashing.config_hash(service) for name, service in again.services.items()} == expected
    finally:
        hashing._config_hash = original
    assert loads == [1]
    assert computed == []  # every hash came from the entry, none was computed again
