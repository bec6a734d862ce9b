"""What each command was asked to do: the options a caller (the CLI, the library) hands the
engine, and the planner reads. Plain frozen values, without defaults that depend on the
project; the planner applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.spec.models import PortConfig, ServiceVolume


@dataclass(frozen=True, slots=True)
class UpOptions:
    """What ``up`` (and ``create``, with ``no_start``) was asked to do."""

    services: tuple[str, ...] = ()
    """The selected services; empty: all. Their dependencies are included unless ``no_deps``."""
    no_deps: bool = False
    force_recreate: bool = False
    """Recreate the selected services' containers even when unchanged."""
    no_recreate: bool = False
    """Never recreate an existing container, even when it has diverged."""
    always_recreate_deps: bool = False
    """Recreate the containers of the dependencies of the selected services too."""
    remove_orphans: bool = False
    scale: Mapping[str, int] = field(default_factory=dict)
    """Replicas per service, overriding ``scale``/``deploy.replicas``."""
    renew_anon_volumes: bool = False
    """Recreated containers get new anonymous volumes instead of inheriting the old ones."""
    pull: str | None = None
    """``--pull``: always, missing, never or build; overrides each service's ``pull_policy``."""
    build: bool | None = None
    """True: ``--build`` (build every service that has ``build``); False: ``--no-build``."""
    no_start: bool = False
    """Create only (``composer create``, ``up --no-start``): no start, no waits."""
    wait: bool = False
    """``--wait``: end with a WAIT_READY per service (running, and healthy with a health check)."""
    wait_timeout: float | None = None
    timeout: float | None = None
    """Seconds to wait for a container to stop before killing it (recreate, scale down)."""
    images_ready: bool = False
    """The images were pulled and built already (reconcile_up_images' plan ran): pull or build none."""


@dataclass(frozen=True, slots=True)
class DownOptions:
    services: tuple[str, ...] = ()
    """``down SERVICE...``: only these services' containers, and the networks and (``-v``) volumes
    no other service with containers still uses; empty: the whole project."""
    remove_orphans: bool = False
    remove_volumes: bool = False
    """``-v``: named volumes of the project and anonymous volumes of its containers."""
    timeout: float | None = None
    rmi: str | None = None
    """``--rmi``: ``local`` (images Compose built) or ``all`` (every service image too)."""


@dataclass(frozen=True, slots=True)
class StopOptions:
    services: tuple[str, ...] = ()
    """Empty: every service."""
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``run`` was asked to change in the service for its one-off container."""

    command: tuple[str, ...] | None = None
    """None: the service's command."""
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    workdir: str | None = None
    volumes: tuple[ServiceVolume, ...] = ()
    ports: tuple[PortConfig, ...] = ()
    service_ports: bool = False
    """Keep the service's published ports (v2 drops them by default)."""
    name: str | None = None
    tty: bool = False
    interactive: bool = False
    console_size: tuple[int, int] | None = None
    """With ``tty``: the caller's terminal size (rows, columns), the container's terminal's first."""
    use_aliases: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    """``--cap-add``: added to the service's, and taken out of its ``cap_drop`` (v2)."""
    cap_drop: tuple[str, ...] = ()
    """``--cap-drop``: added to the service's ``cap_drop``, and taken out of its ``cap_add`` (v2)."""


@dataclass(frozen=True, slots=True)
class BuildOptions:
    services: tuple[str, ...] = ()
    """The selected services; empty: all."""
    with_dependencies: bool = False
    no_cache: bool = False
    pull: bool = False
    args: Mapping[str, str] = field(default_factory=dict)
    """``--build-arg``: override ``build.args`` of every built service."""


@dataclass(frozen=True, slots=True)
class PullOptions:
    services: tuple[str, ...] = ()
    include_deps: bool = False
    ignore_failures: bool = False
    ignore_buildable: bool = False


@dataclass(frozen=True, slots=True)
class PushOptions:
    services: tuple[str, ...] = ()
    ignore_failures: bool = False


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """What ``watch`` (and ``up --watch``) was asked to do."""

    services: tuple[str, ...] = ()
    """The services to watch; empty: every one with a ``develop.watch``."""
    build: bool | None = True
    """False (``--no-build``): a ``rebuild`` rule is refused, as in v2."""
