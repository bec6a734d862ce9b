"""The public API is what ``__all__`` says: complete, and every name resolves (as anyio checks)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from types import ModuleType

import pytest

import composer
import composer.api
import composer.errors
import composer.owner
import composer.readiness


def _public_names(module: ModuleType) -> set[str]:
    """Classes and functions defined in ``module`` (or named in its ``__all__``) without a leading underscore."""
    found = set(getattr(module, "__all__", ()))
    for name, value in vars(module).items():
        if name.startswith("_") or not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if getattr(value, "__module__", None) == module.__name__:
            found.add(name)
    return found


@pytest.mark.parametrize("module", [composer.api, composer.owner, composer.readiness, composer.errors])
def test_module_all_lists_every_public_name(module: ModuleType) -> None:
    exported = set(getattr(module, "__all__", _public_names(module)))
    assert _public_names(module) <= exported


@pytest.mark.parametrize("module", [composer.api, composer.errors])
def test_package_all_reexports_the_library(module: ModuleType) -> None:
    missing = _public_names(module) - set(composer.__all__)
    assert not missing, f"not in composer.__all__: {sorted(missing)}"


def test_package_all_resolves_to_the_defining_objects() -> None:
    assert len(composer.__all__) == len(set(composer.__all__))
    assert composer.__all__ == sorted(composer.__all__)
    for name in composer.__all__:
        value = getattr(composer, name)
        home = importlib.import_module(value.__module__)
        assert getattr(home, value.__qualname__.split(".")[0]) is value


def test_every_module_all_resolves() -> None:
    for module in (composer.api, composer.owner, composer.readiness):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = composer.no_such_thing


def test_exceptions_share_one_root() -> None:
    for name in composer.__all__:
        value = getattr(composer, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, composer.ComposerError)


def test_importing_composer_imports_nothing_heavy() -> None:
    # composer._lazy, the re-export helper, is the one (tiny, stdlib-only) module allowed.
    code = ("import sys, composer; "
            "print(sorted(m for m in sys.modules if m.startswith(('composer.', 'anyio', 'pydantic'))"
            " and m != 'composer._lazy'))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_py_typed_ships() -> None:
    from importlib.resources import files

    assert files("composer").joinpath("py.typed").is_file()
