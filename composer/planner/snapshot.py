"""Taking the snapshot the reconciler compares against: the one planner step that awaits a backend.

External networks and volumes carry no project label, so the backend is asked about them by
name. This module only asks; it decides nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from composer.planner.container_specs import image_name

if TYPE_CHECKING:
    from composer.contract.backend import Backend
    from composer.contract.observed import ObservedState
    from composer.spec.models import Project


def external_names(project: Project | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The engine names of the project's external networks and volumes, sorted."""
    if project is None:
        return (), ()
    networks = sorted(config.name or key for key, config in project.networks.items() if config.external)
    volumes = sorted(config.name or key for key, config in project.volumes.items() if config.external)
    return tuple(networks), tuple(volumes)


def project_images(project: Project | None) -> tuple[str, ...]:
    """The images the project's services run (or build), sorted."""
    if project is None:
        return ()
    return tuple(sorted({image_name(project.name, service) for service in project.services.values()}))


async def observe_project(backend: Backend, project_name: str, project: Project | None = None, *,
                          images: Literal["project", "all", "none"] = "none") -> ObservedState:
    """What exists of ``project_name``, plus the external resources ``project`` uses, and which
    local images: the project's services' (``up``, ``run``, ``pull``), all (``down --rmi``), or
    none (what the other commands need: no image listing)."""
    networks, volumes = external_names(project)
    wanted = {"project": project_images(project), "all": None, "none": ()}[images]
    return await backend.observe(project_name, external_networks=networks, external_volumes=volumes, images=wanted)
