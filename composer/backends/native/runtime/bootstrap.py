"""The launcher of the runtime's helper processes: ``python -S -I <this file> <module> <args...>``
runs ``main([<this file>, *args])`` of ``composer.backends.native.runtime.<module>`` (``command``
builds that line: ``init`` for a container start, ``forkserver``, ``nsexec`` for exec and health
probes, ``cpexec`` for cp; ``supervisor`` runs the same way with site, see below).

In a helper (``-S``: no site) the enclosing packages are registered as bare namespaces, so that
importing the helper's module (byte-compiled and cached, unlike this script) does not run
composer's package ``__init__``s (typing, errors...: 10-15 ms of every helper). A process started
with site (the project supervisor) imports composer's packages in full, from the tree that holds
this file. Imports only ``os`` and ``sys``: the helpers import this module too.
"""

from __future__ import annotations

import os
import sys

FOLDER = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "composer.backends.native.runtime"
_ROOT = os.path.realpath(FOLDER).rsplit("/", 4)[0]  # the folder that holds composer/


def command(module: str, *args: str, python: str | None = None, site: bool = False) -> list[str]:
    """The command line running ``module``'s main with ``args``: ``-S -I`` (no site, no environment,
    nothing of the working directory on sys.path) unless ``site``, then only ``-P``."""
    flags = ["-P"] if site else ["-S", "-I"]
    return [python or sys.executable, *flags, os.path.join(FOLDER, "bootstrap.py"), module, *args]


def _bare_packages() -> None:
    import types

    folder = FOLDER
    for name in (PACKAGE, "composer.backends.native", "composer.backends", "composer"):
        package = types.ModuleType(name)
        package.__path__ = [folder]
        sys.modules[name] = package
        folder = folder.rsplit("/", 1)[0]


def run(argv: list[str]) -> int:
    """Import ``argv[1]`` (a module of this package) and run its main with the rest of ``argv``."""
    if sys.flags.no_site:
        _bare_packages()
    else:
        sys.path.insert(0, _ROOT)
    module = __import__(f"{PACKAGE}.{argv[1]}", fromlist=["main"])
    code: int = module.main([argv[0], *argv[2:]])
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv))
