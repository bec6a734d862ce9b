"""Which names may name an engine object: Docker's rule, and the native backend's for names that
become paths.

Docker refuses a container or local volume name that does not match
``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` as a whole ("Invalid container name (...), only [a-zA-Z0-9][a-zA-Z0-9_.-]
are allowed"). The Compose schema's pattern is the same but unanchored, so v2's ``config`` accepts
``container_name: ../../../xy``; the engine refuses it at create time, and so does composer, for
every backend (the native one would otherwise use it as a path under its run root). Project names
are lower case and may be one character (v2's rule, composer.spec.options); as path components they
must only start with a letter or digit, which keeps ``/``, ``.`` and ``..`` out.
"""

from __future__ import annotations

import re

ALLOWED = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_RESTRICTED = re.compile(ALLOWED + "+")  # containers and volumes: at least two characters
_COMPONENT = re.compile(ALLOWED + "*")  # projects (v2 allows one character): a safe path component


def valid_container_name(name: str) -> bool:
    """Whether Docker would accept ``name`` for a container (or a local volume)."""
    return _RESTRICTED.fullmatch(name) is not None


def valid_path_component(name: str) -> bool:
    """Whether ``name`` may be joined to a folder as one entry of it: no ``/``, not ``.`` or ``..``."""
    return _COMPONENT.fullmatch(name) is not None


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` cannot name a ``kind`` ("container", "volume" or "project"), or None when it can."""
    valid = valid_path_component(name) if kind == "project" else valid_container_name(name)
    if valid:
        return None
    return f'invalid {kind} name "{name}": only {ALLOWED} are allowed'
