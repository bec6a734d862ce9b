"""The ``python -S -I -c`` code that starts a runtime helper (container start, exec, health probe).

The enclosing packages are registered as bare namespaces, so that importing the helper's module
(byte-compiled and cached, unlike a script) does not run composer's package ``__init__``s (typing,
errors...: 10-15 ms of every helper). Imports only ``os``: the helpers import this module too.
"""

from __future__ import annotations

import os

_FOLDER = os.path.dirname(os.path.abspath(__file__))


def helper_code(module: str) -> str:
    """Code that imports ``module`` (in this folder) the light way, up to where it calls its main."""
    return f"""import sys, types
folder = {_FOLDER!r}
for name in ("composer.backends.native.runtime", "composer.backends.native", "composer.backends", "composer"):
    package = types.ModuleType(name)
    package.__path__ = [folder]
    sys.modules[name] = package
    folder = folder.rsplit("/", 1)[0]
from composer.backends.native.runtime.{module} import main
"""


def helper_main(module: str) -> str:
    """``python -S -I -c`` code running ``module.main(sys.argv)``."""
    return helper_code(module) + "sys.exit(main(sys.argv))\n"
