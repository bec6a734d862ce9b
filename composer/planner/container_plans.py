"""Plans and decisions for the container commands: kill, rm, pause/unpause and run.

Pure, like composer.planner.reconcile: nothing here awaits, calls a backend or does I/O. The
rules are Compose v2's:

- ``kill`` signals the running containers of the selected services;
- ``rm`` removes stopped containers (one-off ones included); with ``stop`` it stops running
  ones first, in reverse dependency order;
- ``run`` first brings up what the one-off container needs (networks, volumes, image and,
  unless ``no_deps``, the dependencies) through the normal ``up`` plan, leaving the service's
  own containers alone; the one-off container is ``<project>-<service>-run-<slug[:12]>``,
  labelled ``com.docker.compose.oneoff=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from composer import labels, names
from composer.contract.observed import observed_ref
from composer.contract.options import RunOptions
from composer.contract.plan import ContainerPayload, ContainerTarget, OpKind, Plan
from composer.errors import UsageError
from composer.planner.builder import PlanBuilder, grace_seconds, is_running
from composer.planner.container_specs import container_spec
from composer.spec.graph import service_graph

if TYPE_CHECKING:
    from composer.contract.backend import ContainerSpec
    from composer.contract.observed import ObservedContainer, ObservedState
    from composer.spec.models import Project, ServiceConfig

_ACTIVE = frozenset({"running", "restarting", "paused"})


def check_services(project: Project | None, services: Iterable[str]) -> None:
    """:raises SpecValidationError: a name is not an enabled service (``no such service: x``)."""
    if project is None:
        return
    for name in services:
        project.service(name)


def select(
    observed: ObservedState, services: Sequence[str] = (), *, states: Iterable[str] | None = None,
    oneoff: bool | None = False,
) -> list[ObservedContainer]:
    """The containers of ``services`` (all when empty) in one of ``states`` (any when None),
    one-off ones only, never or also (``oneoff`` True, False, None), by service then number."""
    wanted = None if states is None else set(states)
    found = [c for c in observed.containers
             if (not services or c.service_name in services)
             and (wanted is None or c.state in wanted)
             and (oneoff is None or c.oneoff == oneoff)]
    return sorted(found, key=lambda c: (c.service_name, c.oneoff, c.number, c.name))


def reconcile_kill(observed: ObservedState, services: Sequence[str] = (), signal: str = "SIGKILL") -> Plan:
    """Send ``signal`` to every running container of the selected services (one-offs included)."""
    plan = PlanBuilder()
    for container in select(observed, services, states=_ACTIVE, oneoff=None):
        target = ContainerTarget(container.name, ref=observed_ref(container))
        plan.add(OpKind.KILL_CONTAINER, f"service:{container.service_name}:{container.number}", f"kill {signal}",
                 ContainerPayload(target, signal=signal))
    return plan.build()


def removable(observed: ObservedState, services: Sequence[str] = (), *, stop: bool = False) -> list[ObservedContainer]:
    """What ``rm`` removes: the stopped containers of the services, and with ``stop`` the running ones."""
    return [c for c in select(observed, services, oneoff=None) if stop or not is_running(c)]


def reconcile_remove(
    project: Project | None, observed: ObservedState, services: Sequence[str] = (), *, stop: bool = False,
    remove_volumes: bool = False, timeout: float | None = None,
) -> Plan:
    """Remove the services' stopped containers; with ``stop``, stop the running ones first
    (dependents before their dependencies), then remove them too."""
    plan = PlanBuilder()
    chosen = removable(observed, services, stop=stop)
    by_service: dict[str, list[ObservedContainer]] = {}
    for container in chosen:
        by_service.setdefault(container.service_name, []).append(container)
    order = sorted(by_service)
    dependents: Mapping[str, Sequence[str]] = {}
    if project is not None:
        graph = service_graph(project)
        known = [name for name in graph.topological_order(reverse=True) if name in by_service]
        order = known + [name for name in order if name not in known]
        dependents = {name: graph.dependents(name) for name in known}
    stops: dict[str, list[int]] = {}
    for service_name in order:
        service = project.services.get(service_name) if project is not None else None
        after = [op for dependent in dependents.get(service_name, ()) for op in stops.get(dependent, [])]
        stops[service_name] = []
        for container in by_service[service_name]:
            resource_id = f"service:{service_name}:{container.number}"
            stop_op, _ = plan.stop_and_remove(container, resource_id, "rm", grace_seconds(service, timeout),
                                              after=after, remove_volumes=remove_volumes, service=service)
            if stop_op is not None:
                stops[service_name].append(stop_op)
    return plan.build()


# --- run ----------------------------------------------------------------------------------------


def reconcile_run_prerequisites(
    project: Project, observed: ObservedState, service_name: str, *, no_deps: bool = False,
    pull: str | None = None, build: bool | None = None, remove_orphans: bool = False,
) -> Plan:
    """The ``up`` plan that prepares a one-off container of ``service_name``: its networks,
    volumes and image (built first with ``build``), unless ``no_deps`` its dependencies, and with
    ``remove_orphans`` the removal of the containers of services the file no longer declares. Its
    own containers are left as they are (they are hidden from the reconciler, which is asked for none).

    :raises SpecValidationError: ``service_name`` is not an enabled service.
    """
    from composer.contract.observed import ObservedState as State
    from composer.contract.options import UpOptions
    from composer.planner.reconcile import reconcile_up

    project.service(service_name)
    others = tuple(c for c in observed.containers if c.service_name != service_name)
    hidden = State(observed.project_name, others, observed.networks, observed.volumes, observed.images,
                   image_ids=observed.image_ids)
    options = UpOptions(services=(service_name,), no_deps=no_deps, scale={service_name: 0}, pull=pull, build=build,
                        remove_orphans=remove_orphans)
    plan = reconcile_up(project, hidden, options)
    return Plan(plan.operations, ())  # orphan warnings are up's business


def oneoff_name(project_name: str, service_name: str, slug: str) -> str:
    """v2's one-off container name: ``<project>-<service>-run-<first 12 hex digits>``."""
    return f"{project_name}-{service_name}-run-{slug[:12]}"


def oneoff_service(service: ServiceConfig, options: RunOptions) -> ServiceConfig:
    """The service as its one-off container runs it: ``run``'s overrides applied, no
    ``container_name``, no restart policy, ports only with ``service_ports`` or ``-p``."""
    update: dict[str, object] = {
        "container_name": None, "restart": None, "scale": None, "tty": options.tty,
        "stdin_open": options.interactive,
    }
    if options.command is not None:
        update["command"] = options.command
    if options.entrypoint is not None:
        update["entrypoint"] = options.entrypoint
        if options.command is None:
            update["command"] = ()  # v2: --entrypoint clears the image's command
    if options.environment:
        update["environment"] = {**service.environment, **options.environment}
    if options.user is not None:
        update["user"] = options.user
    if options.workdir is not None:
        update["working_dir"] = options.workdir
    if options.volumes:
        targets = {v.target for v in options.volumes}
        update["volumes"] = (*(v for v in service.volumes if v.target not in targets), *options.volumes)
    update["ports"] = (*(service.ports if options.service_ports else ()), *options.ports)
    if options.labels:
        update["labels"] = {**service.labels, **options.labels}
    cap_add, cap_drop = list(service.cap_add), list(service.cap_drop)
    if options.cap_add:  # v2's order: --cap-add first, then --cap-drop, each taking its names from the other
        cap_add += options.cap_add
        cap_drop = [name for name in cap_drop if name not in options.cap_add]
    if options.cap_drop:
        cap_drop += options.cap_drop
        cap_add = [name for name in cap_add if name not in options.cap_drop]
    if options.cap_add or options.cap_drop:
        update["cap_add"], update["cap_drop"] = tuple(cap_add), tuple(cap_drop)
    return service.model_copy(update=update)


def oneoff_spec(project: Project, service_name: str, options: RunOptions, slug: str, *,
                image_id: str | None = None) -> ContainerSpec:
    """The ContainerSpec of a one-off container of ``service_name`` (``slug``: 64 hex digits;
    ``image_id``: its image's, for v2's image label)."""
    declared = project.service(service_name)
    service = oneoff_service(declared, options)
    name = options.name or oneoff_name(project.name, service_name, slug)
    problem = names.name_problem("container", name)
    if options.name and problem is not None:
        raise UsageError(f"run --name: {problem}")
    # A one-off is never reconciled, so its hash label is the service's as declared (known from
    # the CLI's cache) rather than the overridden copy's, whose serializers would cost ~35 ms.
    spec = container_spec(project, service, 1, name=name, hashed=declared, image_id=image_id)
    spec_labels = dict(spec.labels)
    spec_labels.pop(labels.CONTAINER_NUMBER, None)
    spec_labels[labels.ONEOFF] = "True"
    spec_labels[f"{labels.PREFIX}.slug"] = slug
    networks = spec.networks
    if not options.use_aliases:
        networks = tuple(replace(n, aliases=tuple(a for a in n.aliases if a != service_name)) for n in networks)
    return replace(spec, labels=spec_labels, networks=networks, number=0,
                   console_size=options.console_size if options.tty else None)


def dependency_waits(project: Project, service_name: str, observed: ObservedState) -> list[tuple[str, str, bool]]:
    """(dependency, condition, required) for each enabled dependency of the service that has
    containers: what a one-off container waits for before it starts."""
    service = project.service(service_name)
    return [(name, dependency.condition, dependency.required) for name, dependency in service.depends_on.items()
            if name in project.services and observed.service_containers(name)]
