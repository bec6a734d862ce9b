"""Model paths: the address of a value in a Compose tree, such as ``services.web.ports[0]``.

A path is a tuple of keys (str) and list indexes (int). Rule tables in the loader are
keyed by patterns, tuples in which ``"*"`` matches any single mapping key or list index.
"""

from __future__ import annotations

PathKey = tuple[str | int, ...]
ANY = "*"


def format_path(path: PathKey) -> str:
    """Render a path as users write it: ``services.web.ports[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def matches(path: PathKey, pattern: PathKey) -> bool:
    """True when ``path`` matches ``pattern`` element by element (``*`` matches anything)."""
    if len(path) != len(pattern):
        return False
    return all(want == ANY or want == got for got, want in zip(path, pattern, strict=True))
