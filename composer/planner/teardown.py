"""Plans for ``down``, ``stop`` and ``start``: pure, like composer.planner.reconcile.

Containers stop in reverse dependency order (a service stops after everything that depends on
it), and are removed after they stop; networks and volumes go last, once no container of the
project uses them. External networks and volumes are never removed. Nothing here awaits,
calls a backend or does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from composer.contract.observed import observed_ref
from composer.contract.options import DownOptions, StopOptions
from composer.contract.plan import (
    ContainerTarget,
    ImageRemovalPayload,
    NetworkPayload,
    OpKind,
    Plan,
    VolumePayload,
    WaitPayload,
)
from composer.image_reference import with_latest
from composer.planner.builder import PlanBuilder, grace_seconds, is_running, start_payload, stop_payload
from composer.planner.injected_files import injected_files
from composer.spec.graph import Graph, service_graph

if TYPE_CHECKING:
    from composer.contract.observed import ObservedContainer, ObservedState
    from composer.spec.models import Project, ServiceConfig

ORPHAN_DOWN_WARNING = (
    "Found orphan containers ({names}) for this project. If you removed or renamed this service in your "
    "compose file, you can run this command with the --remove-orphans flag to clean it up."
)


def _empty_graph() -> Graph[ServiceConfig | None]:
    return Graph()


def _container_graph(project: Project | None, observed: ObservedState) -> Graph[ServiceConfig | None]:
    """Services of the project (with their edges), plus services only seen in containers."""
    graph: Graph[ServiceConfig | None] = _empty_graph()
    if project is not None:
        services = service_graph(project)
        for key in services.keys():
            graph.add_vertex(key, services.value(key))
        for key in services.keys():
            for dependency in services.dependencies(key):
                graph.add_edge(key, dependency)
    for container in observed.containers:
        if container.service_name not in graph:
            graph.add_vertex(container.service_name, None)
    return graph


def _service_containers(observed: ObservedState, service_name: str) -> list[ObservedContainer]:
    """Every container of the service, one-off ones (``run``) included, by number then name."""
    found = [c for c in observed.containers if c.service_name == service_name]
    return sorted(found, key=lambda c: (c.oneoff, c.number, c.name))


def _known(project: Project | None, service_name: str) -> bool:
    if project is None:
        return True
    return service_name in project.services or service_name in project.disabled_services


def reconcile_down(
    project_name: str, project: Project | None, observed: ObservedState, options: DownOptions | None = None,
) -> Plan:
    """Stop and remove the project's containers in reverse dependency order, then its networks,
    then (with ``remove_volumes``) its volumes. Without a project (``down -p name``), everything
    observed with the project label goes, orphans included.

    :raises DependencyCycleError: services depend on each other in a cycle.
    """
    options = options or DownOptions()
    if options.services and project is not None:
        for service_name in options.services:
            project.service(service_name)
    plan = PlanBuilder()
    graph = _container_graph(project, observed)
    removed = _remove_containers(plan, project, observed, graph, options)
    kept = _kept_services(project, observed, options)
    _remove_networks(plan, project_name, project, observed, removed, kept)
    if options.remove_volumes:
        _remove_volumes(plan, project_name, project, observed, removed, kept)
    if options.rmi:
        for image in images_to_remove(project_name, project, observed, options.rmi,
                                      remove_orphans=options.remove_orphans):
            plan.add(OpKind.REMOVE_IMAGE, f"image:{image}", f"down --rmi {options.rmi}", ImageRemovalPayload(image),
                     removed, best_effort=True)
    return plan.build()


def images_to_remove(
    project_name: str, project: Project | None, observed: ObservedState, mode: str, *, remove_orphans: bool = False,
) -> list[str]:
    """The images ``down --rmi`` removes, by v2's rule: with ``local`` the images built for the
    project (labelled with it, of a service of the project unless ``remove_orphans``; or named
    ``<project>-<service>`` for services without ``image:``); with ``all`` also every service's
    ``image:``. Only images present locally; sorted, without duplicates."""
    services = project.services if project is not None else {}
    found: set[str] = set()
    if mode == "all":
        found.update(s.image for s in services.values() if s.image and s.image in observed.images)
    for tag, service_name in observed.project_images:
        if project is None or remove_orphans or service_name in services:
            found.add(tag)
    for service in services.values():
        default = f"{project_name}-{service.name}"
        if not service.image and default in observed.images:
            found.add(default)
    return sorted({with_latest(image) for image in found})  # as v2 names the images it removes


def _remove_containers(
    plan: PlanBuilder, project: Project | None, observed: ObservedState, graph: Graph[ServiceConfig | None],
    options: DownOptions,
) -> list[int]:
    stops: dict[str, list[int]] = {}
    removed: list[int] = []
    orphans: list[str] = []
    for service_name in graph.topological_order(reverse=True):
        stops[service_name] = []
        containers = _service_containers(observed, service_name)
        if options.services and service_name not in options.services:
            continue  # down SERVICE...: the others, orphans included, stay
        if not _known(project, service_name) and not options.remove_orphans:
            orphans += [c.name for c in containers if not c.oneoff]
            continue
        cause = "down" if _known(project, service_name) else "orphan container"
        after = [op for dependent in graph.dependents(service_name) for op in stops.get(dependent, [])]
        grace = grace_seconds(graph.value(service_name), options.timeout)
        for container in containers:
            resource_id = f"service:{service_name}:{container.number}"
            stop, remove = plan.stop_and_remove(container, resource_id, cause, grace, after=after,
                                                remove_volumes=options.remove_volumes,
                                                service=graph.value(service_name) if cause == "down" else None)
            if stop is not None:
                stops[service_name].append(stop)
            removed.append(remove)
    if orphans:
        plan.warn(ORPHAN_DOWN_WARNING.format(names=", ".join(orphans)))
    return removed


def _kept_services(project: Project | None, observed: ObservedState, options: DownOptions) -> list[str]:
    """``down SERVICE...``: the services of the project that keep containers."""
    if not options.services or project is None:
        return []
    return [name for name in project.services
            if name not in options.services and observed.service_containers(name)]


def _remove_networks(
    plan: PlanBuilder, project_name: str, project: Project | None, observed: ObservedState, after: list[int],
    kept: Sequence[str] = (),
) -> None:
    existing = {network.name: network for network in observed.networks}
    if project is None:
        wanted = sorted((n.key, n.name) for n in observed.networks if n.key)
    else:
        used = {key for name in kept for key in project.services[name].networks}
        wanted = sorted((key, c.name or f"{project_name}_{key}") for key, c in project.networks.items()
                        if not c.external and key not in used)
    for key, network_name in wanted:
        if network_name in existing:
            payload = NetworkPayload(project_name, key, network_name)
            plan.add(OpKind.REMOVE_NETWORK, f"network:{key}", "down", payload, after)


def _remove_volumes(
    plan: PlanBuilder, project_name: str, project: Project | None, observed: ObservedState, after: list[int],
    kept: Sequence[str] = (),
) -> None:
    existing = {volume.name for volume in observed.volumes}
    if project is None:
        wanted = sorted((v.key, v.name) for v in observed.volumes if v.key)
    else:
        used = {v.source for name in kept for v in project.services[name].volumes if v.type == "volume"}
        wanted = sorted((key, c.name or f"{project_name}_{key}") for key, c in project.volumes.items()
                        if not c.external and key not in used)
    for key, volume_name in wanted:
        if volume_name in existing:
            volume_payload = VolumePayload(project_name, key, volume_name)
            plan.add(OpKind.REMOVE_VOLUME, f"volume:{key}", "down -v", volume_payload, after)


def reconcile_stop(project: Project, observed: ObservedState, options: StopOptions | None = None) -> Plan:
    """Stop the running containers of the selected services (all by default), dependents first.

    :raises DependencyCycleError: services depend on each other in a cycle.
    :raises SpecValidationError: a selected service does not exist.
    """
    options = options or StopOptions()
    for service_name in options.services:
        project.service(service_name)
    selected = set(options.services or project.services)
    graph = service_graph(project)
    plan = PlanBuilder()
    stops: dict[str, list[int]] = {}
    for service_name in graph.topological_order(reverse=True):
        stops[service_name] = []
        if service_name not in selected:
            continue
        after = [op for dependent in graph.dependents(service_name) for op in stops[dependent]]
        grace = grace_seconds(graph.value(service_name), options.timeout)
        for container in observed.service_containers(service_name):
            if is_running(container):
                target = ContainerTarget(container.name, ref=observed_ref(container))
                stop = plan.add(OpKind.STOP_CONTAINER, f"service:{service_name}:{container.number}", "stop",
                                stop_payload(target, grace, graph.value(service_name)), after)
                stops[service_name].append(stop)
    return plan.build()


def reconcile_start(project: Project, observed: ObservedState, services: Sequence[str] = ()) -> Plan:
    """Start the stopped containers of the selected services (all by default) in dependency
    order, each after the ``depends_on`` conditions of its service hold. Creates nothing.

    :raises DependencyCycleError: services depend on each other in a cycle.
    :raises SpecValidationError: a selected service does not exist.
    """
    for service_name in services:
        project.service(service_name)
    selected = set(services or project.services)
    graph = service_graph(project)
    plan = PlanBuilder()
    starts: dict[str, list[int]] = {}
    for service_name in graph.topological_order():
        starts[service_name] = []
        stopped = [c for c in observed.service_containers(service_name) if not is_running(c)]
        if service_name not in selected or not stopped:
            continue
        waits = [_start_wait(plan, project.services[service_name], dependency, observed, starts)
                 for dependency in graph.dependencies(service_name)]
        for container in stopped:
            target = ContainerTarget(container.name, ref=observed_ref(container))
            start = plan.add(OpKind.START_CONTAINER, f"service:{service_name}:{container.number}",
                             f"container is {container.state}", start_payload(target, project.services[service_name],
                                           injected_files(project, project.services[service_name])), waits)
            starts[service_name].append(start)
    return plan.build()


def _start_wait(
    plan: PlanBuilder, service: ServiceConfig, dependency_name: str, observed: ObservedState,
    starts: dict[str, list[int]],
) -> int:
    dependency = service.depends_on[dependency_name]
    targets = tuple(ContainerTarget(c.name, ref=observed_ref(c)) for c in observed.service_containers(dependency_name))
    payload = WaitPayload(dependency_name, dependency.condition, targets, required=dependency.required,
                          dependent=service.name)
    return plan.add(OpKind.WAIT_CONDITION, f"service:{dependency_name}",
                    f"{dependency.condition}, required by {service.name}", payload, starts[dependency_name])
