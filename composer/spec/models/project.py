"""The typed project: what every part of composer outside composer.spec works with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import model_validator

from composer.errors import SpecValidationError
from composer.spec.models.resources import ConfigObjConfig, ModelConfig, NetworkConfig, SecretConfig, VolumeConfig
from composer.spec.models.scalars import EMPTY, ComposeModel, FrozenDict, FrozenMapping, StrTuple
from composer.spec.models.service import ServiceConfig

_SERVICE_SECTIONS = ("services", "disabled_services")
_RESOURCE_SECTIONS = ("networks", "volumes", "secrets", "configs", "models")


class Project(ComposeModel):
    """A loaded, resolved Compose project. Immutable: helpers return new projects."""

    name: str
    """The project name (``-p``, COMPOSE_PROJECT_NAME, ``name:`` or the folder's name, normalised)."""
    working_dir: str
    """The project folder, against which relative paths were resolved."""
    services: FrozenMapping[str, ServiceConfig] = EMPTY
    """The enabled services, in file order."""
    networks: FrozenMapping[str, NetworkConfig] = EMPTY
    """Networks used by the enabled services, by key (``NetworkConfig.name`` is the engine name)."""
    volumes: FrozenMapping[str, VolumeConfig] = EMPTY
    secrets: FrozenMapping[str, SecretConfig] = EMPTY
    configs: FrozenMapping[str, ConfigObjConfig] = EMPTY
    models: FrozenMapping[str, ModelConfig] = EMPTY
    disabled_services: FrozenMapping[str, ServiceConfig] = EMPTY
    """Services left out because none of their profiles is active (or not selected)."""
    profiles: StrTuple = ()
    """The active profiles."""
    environment: FrozenMapping[str, str] = EMPTY
    """The project environment used for interpolation (process environment and ``.env``)."""
    files: StrTuple = ()
    """The Compose files loaded, in order (``-`` for standard input)."""
    warnings: StrTuple = ()
    """Messages from loading (obsolete ``version``, deprecated syntax) for the user to see."""

    @model_validator(mode="before")
    @classmethod
    def _fill_names(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        result = dict(data)
        for section in _SERVICE_SECTIONS:
            services = result.get(section)
            if isinstance(services, Mapping) and not isinstance(services, FrozenDict):
                result[section] = {key: _named(key, service) for key, service in services.items()}
        for section in _RESOURCE_SECTIONS:
            resources = result.get(section)
            if resources is None and section in result:
                result[section] = {}
            elif isinstance(resources, Mapping) and not isinstance(resources, FrozenDict):
                result[section] = {key: {} if value is None else value for key, value in resources.items()}
        return result

    @model_validator(mode="after")
    def _check_names(self) -> Project:
        for section in (self.services, self.disabled_services):
            for key, service in section.items():
                if service.name != key:
                    raise ValueError(f"service {key!r} is named {service.name!r}")
        return self

    # --- queries -------------------------------------------------------------------------

    @property
    def service_names(self) -> tuple[str, ...]:
        """The enabled services' names, in file order."""
        return tuple(self.services)

    def service(self, name: str) -> ServiceConfig:
        """The enabled service ``name``.

        :raises SpecValidationError: no enabled service has that name.
        """
        try:
            return self.services[name]
        except KeyError:
            pass
        if name in self.disabled_services:
            raise SpecValidationError(f"service {name!r} is disabled",
                                      hint="enable one of its profiles with --profile") from None
        raise SpecValidationError(f"no such service: {name}") from None

    def dependencies(self, name: str, *, recursive: bool = False) -> tuple[str, ...]:
        """The enabled services ``name`` depends on, in declaration order; with ``recursive``,
        their dependencies too (nearest first, each once).

        :raises SpecValidationError: ``name`` is not an enabled service.
        """
        pending = list(self.service(name).depends_on)
        found: list[str] = []
        while pending:
            dependency = pending.pop(0)
            if dependency in found or dependency == name or dependency not in self.services:
                continue
            found.append(dependency)
            if recursive:
                pending.extend(self.services[dependency].depends_on)
        return tuple(found)

    def dependents(self, name: str) -> tuple[str, ...]:
        """The enabled services that depend directly on ``name``."""
        self.service(name)
        return tuple(other for other, service in self.services.items() if name in service.depends_on)

    # --- derived projects ------------------------------------------------------------------

    def with_selected_services(self, names: Iterable[str], *, include_dependencies: bool = True) -> Project:
        """A project whose enabled services are ``names`` and (by default) everything they
        depend on; the others move to ``disabled_services``. Resources are kept as they are.
        An empty ``names`` selects every service.

        :raises SpecValidationError: a name is not an enabled service.
        """
        wanted = list(names)
        if not wanted:
            return self
        keep: set[str] = set()
        for name in wanted:
            self.service(name)
            keep.add(name)
            if include_dependencies:
                keep.update(self.dependencies(name, recursive=True))
        services = {key: service for key, service in self.services.items() if key in keep}
        disabled = dict(self.disabled_services)
        disabled.update({key: service for key, service in self.services.items() if key not in keep})
        return self.model_copy(update={"services": FrozenDict(services), "disabled_services": FrozenDict(disabled)})


def _named(key: str, service: Any) -> Any:
    if service is None:
        return {"name": key}
    if isinstance(service, Mapping) and "name" not in service:
        return {"name": key, **service}
    return service
