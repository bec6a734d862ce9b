"""The guest lane's one error type: a one-line reason (the CLI prints it, tests fail with it)."""

from __future__ import annotations

from composer.errors import ComposerError


class VMError(ComposerError):
    """A guest could not be built, booted or driven; the message says which and why."""
