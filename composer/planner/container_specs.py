"""Names, labels and ContainerSpecs: how the desired project translates into engine objects.

Names and labels follow Compose v2 exactly, so that each tool sees and manages the stacks of
the other: containers ``<project>-<service>-<n>`` (or ``container_name``), images
``<project>-<service>`` for services that only build. Pure functions; no I/O, no engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from composer import labels, names
from composer.contract.backend import BuildSecret, BuildSpec, ContainerRef, ContainerSpec, NetworkAttachment
from composer.errors import PlanError, SpecValidationError
from composer.planner.api_socket import with_api_socket
from composer.planner.hashing import config_hash
from composer.planner.injected_files import injected_files, variable_value

if TYPE_CHECKING:
    from composer.spec.models import Project, ServiceConfig

_NAMESPACE_KEYS = ("network_mode", "ipc", "pid")


def container_name(project_name: str, service: ServiceConfig, number: int) -> str:
    """``container_name`` when set, else ``<project>-<service>-<number>``."""
    if service.container_name:
        return service.container_name
    return f"{project_name}-{service.name}-{number}"


def image_name(project_name: str, service: ServiceConfig) -> str:
    """The image a service runs: ``image``, or ``<project>-<service>`` for a build-only service."""
    return service.image or f"{project_name}-{service.name}"


def depends_on_label(service: ServiceConfig) -> str:
    """v2's ``com.docker.compose.depends_on``: ``svc:condition:restart`` joined by commas
    (sorted, where v2 uses Go's random map order)."""
    entries = [
        f"{name}:{dependency.condition}:{str(dependency.restart).lower()}"
        for name, dependency in sorted(service.depends_on.items())
    ]
    return ",".join(entries)


def container_labels(project: Project, service: ServiceConfig, number: int, *,
                     hashed: ServiceConfig | None = None, image_id: str | None = None) -> dict[str, str]:
    """The service's own labels, then v2's (which win on a clash). The config hash is that of
    ``hashed`` when given (a one-off's: its service as the project has it). ``image_id`` is the
    id of the image the container is created from, which v2 labels it with to see, on a later
    ``up``, that the image has changed (no label when it is not known, as in v2)."""
    result = dict(service.labels)
    result.update({
        labels.PROJECT: project.name,
        labels.SERVICE: service.name,
        labels.CONTAINER_NUMBER: str(number),
        labels.CONFIG_HASH: config_hash(hashed or service),
        labels.ONEOFF: "False",
        labels.WORKING_DIR: project.working_dir,
        labels.CONFIG_FILES: ",".join(project.files),
        labels.DEPENDS_ON: depends_on_label(service),
        labels.VERSION: labels.COMPATIBLE_VERSION,
    })
    if image_id:
        result[labels.IMAGE] = image_id
    return result


def build_labels(project_name: str, service: ServiceConfig) -> dict[str, str]:
    """The labels of a built image: ``build.labels``, then v2's project, service and version."""
    result = dict(service.build.labels) if service.build is not None else {}
    result.update({labels.VERSION: labels.COMPATIBLE_VERSION, labels.PROJECT: project_name,
                   labels.SERVICE: service.name})
    return result


def build_secrets(project: Project, service: ServiceConfig) -> dict[str, BuildSecret]:
    """``build.secrets`` by id (the grant's ``target``, else its source, as v2 hands them to
    BuildKit): the secret's host file, or its variable's value.

    :raises PlanError: an unknown or external secret, or its variable is not set (v2's message).
    """
    found: dict[str, BuildSecret] = {}
    for grant in service.build.secrets if service.build is not None else ():
        secret = project.secrets.get(grant.source)
        name = (secret.name if secret is not None else None) or grant.source
        if secret is None or secret.external or not (secret.file or secret.environment):
            raise PlanError(f"service {service.name}: build secret {name!r} has no file or environment source")
        key = grant.target or grant.source
        if secret.file:
            found[key] = BuildSecret(file=secret.file)
        else:
            assert secret.environment is not None
            found[key] = BuildSecret(value=variable_value(project, secret.environment, "secret", name).encode())
    return found


CONTEXT_SERVICE = "service:"
"""``build.additional_contexts`` values naming another service's image (v2's ServicePrefix)."""


def context_services(project: Project, service: ServiceConfig) -> dict[str, ServiceConfig]:
    """The services whose images ``build.additional_contexts`` names (``service:<name>``), by
    name: v2 builds them first (addBuildDependencies).

    :raises PlanError: the name is no service of the project, or one without ``build:``.
    """
    found: dict[str, ServiceConfig] = {}
    for key, value in sorted(service.build.additional_contexts.items() if service.build is not None else ()):
        if not value.startswith(CONTEXT_SERVICE):
            continue
        name = value[len(CONTEXT_SERVICE):]
        other = project.services.get(name)
        if other is None or other.build is None:
            raise PlanError(f"service {service.name}: build.additional_contexts.{key}: {value}: no such service "
                            "with a build section")
        found[name] = other
    return found


def build_spec(
    project_name: str, service: ServiceConfig, *, args: dict[str, str] | None = None, no_cache: bool = False,
    pull: bool = False, try_pull: bool = False, project: Project | None = None,
) -> BuildSpec:
    """What building ``service``'s image takes; ``args`` override ``build.args`` (``--build-arg``);
    ``project`` gives the build secrets' sources."""
    build = service.build
    if build is None:
        raise ValueError(f"service {service.name} has no build section")
    merged = {key: value for key, value in build.args.items() if value is not None}
    merged.update(args or {})
    return BuildSpec(
        project_name=project_name, service=service, image=image_name(project_name, service),
        labels=build_labels(project_name, service), args=merged, tags=tuple(build.tags),
        no_cache=no_cache or build.no_cache, pull=pull or build.pull, try_pull=try_pull,
        secrets=build_secrets(project, service) if project is not None else {},
        service_images={name: image_name(project_name, other)
                        for name, other in context_services(project, service).items()} if project is not None else {},
    )


def network_labels(project_name: str, key: str, own: dict[str, str]) -> dict[str, str]:
    return {**own, labels.NETWORK: key, labels.PROJECT: project_name, labels.VERSION: labels.COMPATIBLE_VERSION}


def volume_labels(project_name: str, key: str, own: dict[str, str]) -> dict[str, str]:
    return {**own, labels.VOLUME: key, labels.PROJECT: project_name, labels.VERSION: labels.COMPATIBLE_VERSION}


def network_attachments(project: Project, service: ServiceConfig) -> tuple[NetworkAttachment, ...]:
    """The networks a container joins, by descending priority then key (as v2 orders them).
    Aliases: the service name and the configured ones; engines add the container name."""
    if service.network_mode is not None:
        return ()
    attachments: list[tuple[int, str, NetworkAttachment]] = []
    for key, options in service.networks.items():
        network = project.networks.get(key)
        network_name = network.name if network is not None and network.name else f"{project.name}_{key}"
        aliases = (service.name, *(alias for alias in (options.aliases if options else ()) if alias != service.name))
        priority = (options.priority or 0) if options else 0
        attachment = NetworkAttachment(
            network_name=network_name,
            aliases=aliases,
            ipv4_address=options.ipv4_address if options else None,
            ipv6_address=options.ipv6_address if options else None,
            mac_address=options.mac_address if options else None,
            priority=priority,
        )
        attachments.append((-priority, key, attachment))
    return tuple(attachment for _, _, attachment in sorted(attachments, key=lambda item: item[:2]))


def _first_container(project: Project, service_name: str) -> str:
    service = project.services.get(service_name) or project.disabled_services.get(service_name)
    if service is None:
        return f"{project.name}-{service_name}-1"
    return container_name(project.name, service, 1)


def namespace_containers(project: Project, service: ServiceConfig) -> dict[str, str]:
    """``network_mode``/``ipc``/``pid`` set to ``service:x``, mapped to x's first container."""
    found: dict[str, str] = {}
    for key in _NAMESPACE_KEYS:
        value = getattr(service, key)
        if isinstance(value, str) and value.startswith("service:"):
            found[key] = _first_container(project, value.removeprefix("service:"))
    return found


def volumes_from(project: Project, service: ServiceConfig) -> tuple[str, ...]:
    """``volumes_from`` entries as engine references: ``name[:mode]``."""
    result: list[str] = []
    for entry in service.volumes_from:
        if entry.startswith("container:"):
            result.append(entry.removeprefix("container:"))
            continue
        source, _, mode = entry.partition(":")
        name = _first_container(project, source)
        result.append(f"{name}:{mode}" if mode else name)
    return tuple(result)


def links(project: Project, service: ServiceConfig, number: int) -> tuple[tuple[str, str], ...]:
    """Each container of each ``links`` service with the names v2 links it by (its getLinks):
    the link's alias, then ``<service>-<number>`` and ``<project>-<service>-<number>`` (the
    linking container's number, as v2 writes them)."""
    result: list[tuple[str, str]] = []
    for entry in service.links:
        source, _, alias = entry.partition(":")
        linked = project.services.get(source)
        if linked is None:
            continue
        for replica in range(1, linked.replicas + 1):
            name = container_name(project.name, linked, replica)
            result += [(name, alias or source), (name, f"{source}-{number}"),
                       (name, f"{project.name}-{source}-{number}")]
    return tuple(result)


def _resource_files(project: Project, service: ServiceConfig) -> tuple[dict[str, str], dict[str, str]]:
    secrets = {m.source: s.file for m in service.secrets if (s := project.secrets.get(m.source)) and s.file}
    configs = {m.source: c.file for m in service.configs if (c := project.configs.get(m.source)) and c.file}
    return secrets, configs


def container_spec(
    project: Project, service: ServiceConfig, number: int, *, name: str | None = None,
    replaces: ContainerRef | None = None, hashed: ServiceConfig | None = None, image_id: str | None = None,
) -> ContainerSpec:
    """Everything a backend needs to create replica ``number`` of ``service``; ``name``
    overrides the container name (the temporary name of a recreate); ``hashed`` and
    ``image_id``: see container_labels."""
    service = with_api_socket(project, service)  # before hashing, as v2 transforms it
    hashed = with_api_socket(project, hashed) if hashed is not None else None
    container_labels_ = container_labels(project, service, number, hashed=hashed, image_id=image_id)
    if replaces is not None:
        container_labels_[labels.REPLACE] = replaces.container_id
    secrets, configs = _resource_files(project, service)
    chosen = name or container_name(project.name, service, number)
    problem = names.name_problem("container", chosen)
    if problem is not None:  # v2's config accepts what the engine refuses at create time (composer.names)
        key = ".container_name" if service.container_name else ""
        raise SpecValidationError(problem, path=f"services.{service.name}{key}")
    return ContainerSpec(
        project_name=project.name,
        service=service,
        container_name=chosen,
        number=number,
        image=image_name(project.name, service),
        labels=container_labels_,
        networks=network_attachments(project, service),
        volume_names={key: volume.name or f"{project.name}_{key}" for key, volume in project.volumes.items()},
        secret_files=secrets,
        config_files=configs,
        injected_files=injected_files(project, service),
        namespace_containers=namespace_containers(project, service),
        volumes_from=volumes_from(project, service),
        links=links(project, service, number),
        replaces=replaces,
    )
