"""Fixtures for planner tests: projects from inline YAML, observed states as literals."""

from __future__ import annotations

import hashlib

import pytest

from composer.contract.observed import ObservedContainer, ObservedState
from composer.planner.hashing import config_hash
from composer.spec.models import Project


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"




def image_id(image: str) -> str:
    """The id the image ``image`` has in these tests' observed states."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def container(project: Project, service_name: str, number: int = 1, *, state: str = "running",
              config_hash_: str | None = None, health: str | None = None) -> ObservedContainer:
    """An observed container of ``service_name``, up to date with ``project`` unless told otherwise."""
    service = project.services.get(service_name)
    hash_ = config_hash_ if config_hash_ is not None else (config_hash(service) if service else "old")
    image = (service.image or f"demo-{service.name}") if service else "old"
    return ObservedContainer(
        container_id=f"{service_name}{number}".ljust(64, "0"), name=f"demo-{service_name}-{number}",
        service_name=service_name, number=number, config_hash=hash_, state=state, health=health,
        image_id=image_id(image))


def converged(project: Project, *, images: frozenset[str] | None = None) -> ObservedState:
    """What a successful ``up`` of ``project`` leaves behind."""
    from composer.contract.observed import ObservedNetwork, ObservedVolume

    containers = tuple(container(project, name, number) for name, service in project.services.items()
                       for number in range(1, service.replicas + 1))
    networks = tuple(ObservedNetwork(f"n-{key}", network.name or key, key) for key, network in project.networks.items())
    volumes = tuple(ObservedVolume(volume.name or key, key) for key, volume in project.volumes.items())
    all_images = frozenset(service.image or f"demo-{service.name}" for service in project.services.values())
    present = images if images is not None else all_images
    return ObservedState("demo", containers, networks, volumes, present,
                         image_ids=tuple(sorted((image, image_id(image)) for image in present)))
