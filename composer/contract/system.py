"""The ``composer system`` commands: what a backend offers about the host as a whole rather than
one project (``check``: residue nobody accounts for; ``df``: disk usage; ``prune``: unused data).

``SystemCommands`` is an optional capability, like ``ImageStoreCommands``: the CLI finds a
backend's through ``composer.backends.select.system_commands`` and never reaches into the
backend's own modules. A backend may leave ``check`` out (raise UnsupportedFeatureError): an
engine such as dockerd keeps its own house.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# The kinds of residue, in the order ``check`` reports them (host objects first, then processes,
# then files): a finding's ``kind`` is one of these.
KINDS = ("mount", "netns", "veth", "bridge", "iptables-rule", "iptables-chain", "cgroup", "supervisor", "monitor",
         "dns", "proxy", "run-folder", "lock", "container-data", "blob", "layer")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing of composer's on the host that no project accounts for.

    ``name`` says which (a link, a path, a pid with its command, a rule as iptables-save prints
    it); ``reason`` why it counts as residue; ``project`` the project it names, when it names
    one. After ``check(fix=True)``: ``removed`` whether it is gone, else ``error`` why not."""

    kind: str
    name: str
    reason: str
    project: str | None = None
    removed: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"Kind": self.kind, "Name": self.name, "Reason": self.reason, "Project": self.project or "",
                "Removed": self.removed, "Error": self.error or ""}


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One line of ``system df``: Docker's TYPE (Images, Containers, Local Volumes, Build Cache)."""

    type: str
    total: int
    active: int
    size: int  # bytes
    reclaimable: int  # bytes


@dataclass(frozen=True, slots=True)
class PruneOptions:
    """``system prune``: ``all`` unused images, not only dangling ones; ``volumes`` unused
    anonymous volumes too (named ones stay, as docker's since API 1.42);
    ``until`` only what was created before this time (seconds since the epoch); ``labels``
    ``label=`` filters (key or key=value; ``!`` first for ``label!=``)."""

    all: bool = False
    volumes: bool = False
    until: float | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What ``prune`` removed, by Docker's headings, and the bytes freed."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # "untagged: ref" / "deleted: sha256:..."
    build_cache: list[str] = field(default_factory=list)
    reclaimed: int = 0


@runtime_checkable
class SystemCommands(Protocol):
    """The ``composer system`` commands of one backend (blocking calls)."""

    def check(self, *, fix: bool = False) -> list[Finding]:
        """Everything of composer's on the host that no project accounts for; with ``fix``, each
        removed (never anything not named or labelled as composer's, never a live project's).

        :raises UnsupportedFeatureError: the backend has no residue of its own to look for.
        """
        ...

    def disk_usage(self) -> list[UsageRow]:
        """Docker's four rows: Images, Containers, Local Volumes, Build Cache."""
        ...

    def prune(self, options: PruneOptions) -> PruneReport:
        """Remove stopped containers, unused networks, dangling (``all``: unused) images and,
        with ``volumes``, unused volumes."""
        ...

    def prune_build_cache(self, options: PruneOptions) -> PruneReport:
        """``builder prune``: remove the dangling (``all``: every) build cache record, ``until``:
        only those last used before that time; the ids removed in ``build_cache``."""
        ...
