"""The reconciler: from the desired project and an observed snapshot, the Plan that converges them.

Pure functions: nothing here awaits, calls a backend or does I/O, so plans are tested as text.
Every walk is in sorted or dependency order, so the same inputs give the same plan, op ids
included. The rules are Compose v2's:

- networks and named volumes are created when missing; external ones are never created, and
  a missing one is an ExternalResourceNotFoundError;
- images are pulled (or built) when missing, or always, per pull policy and ``--pull``/``--build``;
  every other operation waits for all of them, as v2 ensures the images before it creates
  anything, so a failed pull or build leaves no network, volume or container behind;
- each service has ``scale`` containers ``<project>-<service>-<n>``: missing ones are created,
  diverged ones (config hash) recreated, stopped ones started, extra ones (highest numbers
  first) stopped and removed;
- a container starts once the ``depends_on`` conditions of its service hold: each condition is
  a WAIT_CONDITION operation, so the plan shows the whole ``up``;
- orphan containers (of services no longer in the file) are removed with ``--remove-orphans``,
  otherwise reported in ``Plan.warnings``.

Recreate follows v2: create the new container under a temporary name (it inherits the old one's
anonymous volumes), stop the old, remove it, rename the new one, start it. The old container
keeps running until its replacement exists. Services whose ``depends_on`` entry on a recreated
service says ``restart: true`` are restarted (stop, start) once the dependency is back.

Down, stop and start live in composer.planner.teardown and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from composer.contract.observed import image_present, observed_ref
from composer.contract.options import UpOptions
from composer.contract.plan import (
    ContainerPayload,
    ContainerTarget,
    CreatePayload,
    ImagePayload,
    NetworkPayload,
    OpKind,
    Plan,
    VolumePayload,
    WaitPayload,
)
from composer.errors import ExternalResourceNotFoundError, PlanError
from composer.planner.api_socket import with_api_socket
from composer.planner.builder import PlanBuilder, grace_seconds, is_running, start_payload, stop_payload
from composer.planner.container_specs import build_spec, container_name, container_spec, context_services, image_name
from composer.planner.hashing import config_hash, network_hash
from composer.planner.injected_files import injected_files
from composer.planner.refusals import refuse_unsupported
from composer.planner.teardown import reconcile_down, reconcile_start, reconcile_stop
from composer.spec.graph import service_graph

if TYPE_CHECKING:
    from composer.contract.observed import ObservedContainer, ObservedState
    from composer.spec.models import NetworkConfig, Project, ServiceConfig

__all__ = [
    "reconcile_down", "reconcile_start", "reconcile_stop", "reconcile_up",
    "reconcile_up_images",
]

ORPHAN_WARNING = (
    "Found orphan containers ({names}) for this project. If you removed or renamed this service in your "
    "compose file, you can run this command with the --remove-orphans flag to clean it up."
)


def reconcile_up_images(project: Project, observed: ObservedState, options: UpOptions | None = None) -> Plan:
    """The pulls and builds that reconcile_up's plan starts with, alone. Run first, they let a
    second observation see the images' new ids, as v2 pulls and builds before it compares
    containers with images.

    :raises SpecValidationError: a selected service does not exist.
    """
    options = options or UpOptions()
    selected = set(options.services or project.services)
    project = project.with_selected_services(options.services, include_dependencies=not options.no_deps)
    return _Up(project, observed, options, selected).images_only()


def reconcile_up(project: Project, observed: ObservedState, options: UpOptions | None = None) -> Plan:
    """The plan that brings ``observed`` to ``project``: images, then (once they are all there)
    networks, volumes, orphans, each service in dependency order and ``--wait``. Empty when
    nothing differs.

    :raises DependencyCycleError: services depend on each other in a cycle.
    :raises ExternalResourceNotFoundError: an external network or volume does not exist.
    :raises SpecValidationError: a selected service does not exist.
    """
    options = options or UpOptions()
    selected = set(options.services or project.services)
    project = project.with_selected_services(options.services, include_dependencies=not options.no_deps)
    up = _Up(project, observed, options, selected)
    return up.run()


class _Up:
    """The state of one reconcile_up walk: what each service's containers will be, and the ids
    of the operations that produce them, for the services that depend on it."""

    def __init__(self, project: Project, observed: ObservedState, options: UpOptions, selected: set[str]) -> None:
        refuse_unsupported(project)
        self.project = project
        self.observed = observed
        self.options = options
        self.selected = selected
        self.plan = PlanBuilder()
        self.networks: dict[str, int] = {}  # key -> create op
        self.volumes: dict[str, int] = {}
        self.images: dict[str, int] = {}  # image -> pull/build op
        self.created: dict[str, list[int]] = {}  # service -> ops after which its containers exist
        self.started: dict[str, list[int]] = {}  # service -> ops after which its containers run
        self.targets: dict[str, list[ContainerTarget]] = {}  # service -> its containers, once converged
        self.cleared: dict[str, list[int]] = {}  # service -> removals of its duplicates (_one_per_number)
        self.recreated: set[str] = set()
        self.network_changed: set[str] = set()  # services on a network that is created again
        self.stopped: set[str] = set()  # containers this plan stops before anything else
        self.starts: list[Callable[[], None]] = []  # added once every container is created (see run)

    def images_only(self) -> Plan:
        self._images(service_graph(self.project).topological_order())
        return self.plan.build()

    def run(self) -> Plan:
        graph = service_graph(self.project)
        order = graph.topological_order()
        if not self.options.images_ready:
            self._images(order)
        # v2 has every image before it creates anything: a failed pull or build leaves nothing behind
        self.plan.gate(self.images.values())
        self._networks()
        self._volumes()
        self._orphans()
        for service_name in order:
            self._service(self.project.services[service_name])
        # As v2 does, every container is created (or recreated) before any starts: the engine then
        # creates them all at once instead of interleaving starts with the remaining creates.
        self.plan.gate(op for ops in self.created.values() for op in ops)
        for add_start in self.starts:
            add_start()
        if self.options.wait and not self.options.no_start:
            self._wait_ready(order)
        return self.plan.build()

    # --- resources ---------------------------------------------------------------------------

    def _used_networks(self) -> set[str]:
        return {key for service in self.project.services.values() if service.network_mode is None
                for key in service.networks}

    def _networks(self) -> None:
        existing = {network.name: network for network in self.observed.networks}
        used = self._used_networks()
        for key in sorted(self.project.networks):
            config = self.project.networks[key]
            network_name = config.name or f"{self.project.name}_{key}"
            if key not in used:
                continue
            found = existing.get(network_name)
            if found is not None:
                # v2 compares the hash it labelled the network with; a network without one is kept
                if not config.external and found.config_hash and found.config_hash != network_hash(config):
                    self._replace_network(key, network_name, config)
                continue
            if config.external:
                raise ExternalResourceNotFoundError("network", network_name)
            payload = NetworkPayload(self.project.name, key, network_name, config, network_hash(config))
            self.networks[key] = self.plan.add(OpKind.CREATE_NETWORK, f"network:{key}", "not found", payload)

    def _replace_network(self, key: str, network_name: str, config: NetworkConfig) -> None:
        """As v2: a network whose configuration changed goes, once the containers of the services
        on it are stopped, and is created again; those services' containers are then recreated."""
        stops = []
        for service in self.project.services.values():
            if service.network_mode is not None or key not in service.networks:
                continue
            self.network_changed.add(service.name)
            grace = grace_seconds(service, self.options.timeout)
            for container in self.observed.service_containers(service.name):
                if is_running(container):
                    target = ContainerTarget(container.name, ref=observed_ref(container))
                    stops.append(self.plan.add(OpKind.STOP_CONTAINER, f"service:{service.name}:{container.number}",
                                               f"network {key} changed", stop_payload(target, grace, service)))
                    self.stopped.add(container.container_id)
        remove = self.plan.add(OpKind.REMOVE_NETWORK, f"network:{key}", "config changed",
                               NetworkPayload(self.project.name, key, network_name), stops)
        payload = NetworkPayload(self.project.name, key, network_name, config, network_hash(config))
        self.networks[key] = self.plan.add(OpKind.CREATE_NETWORK, f"network:{key}", "config changed", payload,
                                           [remove])

    def _used_volumes(self) -> set[str]:
        return {mount.source for service in self.project.services.values() for mount in service.volumes
                if mount.type == "volume" and mount.source}

    def _volumes(self) -> None:
        existing = {volume.name for volume in self.observed.volumes}
        used = self._used_volumes()
        for key in sorted(self.project.volumes):
            config = self.project.volumes[key]
            volume_name = config.name or f"{self.project.name}_{key}"
            if key not in used or volume_name in existing:
                continue
            if config.external:
                raise ExternalResourceNotFoundError("volume", volume_name)
            payload = VolumePayload(self.project.name, key, volume_name, config)
            self.volumes[key] = self.plan.add(OpKind.CREATE_VOLUME, f"volume:{key}", "not found", payload)

    def _images(self, order: list[str]) -> None:
        for service_name in sorted(order):
            service = self.project.services[service_name]
            image = image_name(self.project.name, service)
            if image in self.images:
                continue
            decision = self._image_decision(service, image)
            if decision is not None:
                kind, policy, cause = decision
                build = None
                after: list[int] = []
                if kind is OpKind.BUILD_IMAGE:
                    # v2 pulls a service's own image first and builds only when that fails
                    effective = self.options.pull or service.pull_policy or "missing"
                    try_pull = (service.image is not None and effective != "never"
                                and cause in ("image not found", "pull_policy: always"))
                    build = build_spec(self.project.name, service, try_pull=try_pull, project=self.project)
                    after = self._context_builds(service, ())
                payload = ImagePayload(image, service, policy, build)
                self.images[image] = self.plan.add(kind, f"image:{image}", cause, payload, after)

    def _context_builds(self, service: ServiceConfig, path: tuple[str, ...]) -> list[int]:
        """The builds of the services ``service``'s ``build.additional_contexts`` names, added
        first when missing (v2 builds them with it, addBuildDependencies)."""
        found = []
        for other in context_services(self.project, service).values():
            image = image_name(self.project.name, other)
            if image not in self.images:
                if other.name in (*path, service.name):
                    raise PlanError(f"service {other.name}: build.additional_contexts: a cycle "
                                    f"({' -> '.join((*path, service.name, other.name))})")
                after = self._context_builds(other, (*path, service.name))
                build = build_spec(self.project.name, other, project=self.project)
                payload = ImagePayload(image, other, "build", build)
                self.images[image] = self.plan.add(OpKind.BUILD_IMAGE, f"image:{image}",
                                                   f"additional_contexts of {service.name}", payload, after)
            found.append(self.images[image])
        return found

    def _image_decision(self, service: ServiceConfig, image: str) -> tuple[OpKind, str, str] | None:
        """(pull or build, policy, cause), or None when the image is fine as it is."""
        policy = self.options.pull or service.pull_policy or "missing"
        present = image_present(image, self.observed.images)
        if service.build is not None and self.options.build is not False:
            if self.options.build:
                return OpKind.BUILD_IMAGE, "build", "--build"
            if policy == "build":
                return OpKind.BUILD_IMAGE, "build", "pull_policy: build"
            if not present and (service.image is None or policy != "always"):
                return OpKind.BUILD_IMAGE, "build", "image not found"
        if service.image is None:
            return None  # build-only under --no-build: nothing to pull (v2: creating it fails, No such image)
        if policy == "always":
            buildable = service.build is not None and self.options.build is not False
            return OpKind.BUILD_IMAGE if buildable else OpKind.PULL_IMAGE, policy, "pull_policy: always"
        if present or policy in ("never", "build"):
            return None
        # missing, refresh, daily, weekly, every_<d>: the last pull time is not observed, so
        # these pull only when the image is missing.
        return OpKind.PULL_IMAGE, policy, "image not found"

    def _orphans(self) -> None:
        known = set(self.project.services) | set(self.project.disabled_services)
        orphans = sorted(
            (c for c in self.observed.containers if not c.oneoff and c.service_name not in known),
            key=lambda c: (c.service_name, c.number),
        )
        if not orphans:
            return
        if not self.options.remove_orphans:
            self.plan.warn(ORPHAN_WARNING.format(names=", ".join(c.name for c in orphans)))
            return
        for container in orphans:
            resource_id = f"service:{container.service_name}:{container.number}"
            self.plan.stop_and_remove(container, resource_id, "orphan container", self.options.timeout or 10.0)

    # --- containers --------------------------------------------------------------------------

    def _service(self, service: ServiceConfig) -> None:
        replicas = self.options.scale.get(service.name, service.replicas)
        existing = self.observed.service_containers(service.name)
        chosen, duplicates = self._one_per_number(service, existing)
        keep, extra = chosen[:replicas], chosen[replicas:]
        self.created[service.name] = []
        self.started[service.name] = []
        self.targets[service.name] = []
        self.cleared[service.name] = []
        grace = grace_seconds(service, self.options.timeout)
        for container in reversed(extra):
            resource_id = f"service:{service.name}:{container.number}"
            self.plan.stop_and_remove(container, resource_id, "scale down", grace, service=service)
        for container in duplicates:
            resource_id = f"service:{service.name}:{container.number}"
            _, remove = self.plan.stop_and_remove(container, resource_id, "duplicate (an interrupted recreate)",
                                                  grace, service=service)
            self.cleared[service.name].append(remove)
        for container in keep:
            self._existing(service, container)
        numbers = [container.number for container in existing]
        next_number = max(numbers, default=0) + 1
        for number in range(next_number, next_number + replicas - len(keep)):
            self._new(service, number)

    def _one_per_number(self, service: ServiceConfig, containers: list[ObservedContainer],
                        ) -> tuple[list[ObservedContainer], list[ObservedContainer]]:
        """The container to keep for each number, by number, and the other ones of the same number.

        A recreate creates the new container under a temporary name (``<old id>_<name>``), removes
        the old one, then renames the new one: killed midway it leaves both, or the new one alone
        under its temporary name. Of the containers of one number the one up to date is kept (as
        v2 sorts the obsolete ones out first), then the one with the service's name, then the
        first; the others are removed before anything takes their names (``cleared``)."""
        def preference(container: ObservedContainer) -> tuple[bool, bool]:
            canonical = container_name(self.project.name, service, container.number)
            return self._recreate_cause(service, container) is not None, container.name != canonical

        chosen: dict[int, ObservedContainer] = {}
        duplicates = []
        for container in sorted(containers, key=lambda c: (c.number, *preference(c))):
            if container.number in chosen:
                duplicates.append(container)
            else:
                chosen[container.number] = container
        return list(chosen.values()), duplicates

    def _recreate_cause(self, service: ServiceConfig, container: ObservedContainer) -> str | None:
        is_selected = service.name in self.selected
        if service.name in self.network_changed:
            return "network changed"  # its network is created again: it cannot be kept
        if self.options.no_recreate:
            return None
        if is_selected and self.options.force_recreate:
            return "--force-recreate"
        if not is_selected and self.options.always_recreate_deps:
            return "--always-recreate-deps"
        if container.config_hash != config_hash(with_api_socket(self.project, service)):  # as labelled
            return "config changed"
        # v2 compares its image label; the container's own image id says the same of a container
        # labelled by anyone (or by an older composer, which labelled it with the image's name)
        image_id = self._image_id(service)
        if image_id is not None and container.image_id is not None and container.image_id != image_id:
            return "image changed"
        return None

    def _image_id(self, service: ServiceConfig) -> str | None:
        """The id of the service's image as observed; None when it is not there (yet)."""
        if image_name(self.project.name, service) in self.images:
            return None  # pulled or built by this plan: the new id is not known yet
        return self.observed.image_id(image_name(self.project.name, service))

    def _restart_cause(self, service: ServiceConfig) -> str | None:
        changed = [name for name, dependency in service.depends_on.items()
                   if dependency.restart and name in self.recreated]
        return f"dependency {', '.join(sorted(changed))} recreated" if changed else None

    def _create_deps(self, service: ServiceConfig) -> list[int]:
        deps = [self.networks[key] for key in service.networks if key in self.networks]
        deps += [self.volumes[m.source] for m in service.volumes if m.source in self.volumes]
        image_op = self.images.get(image_name(self.project.name, service))
        if image_op is not None:
            deps.append(image_op)
        for dependency in service.depends_on:
            deps += self.created.get(dependency, [])
        return deps

    def _existing(self, service: ServiceConfig, container: ObservedContainer) -> None:
        recreate = self._recreate_cause(service, container)
        if recreate is not None:
            self._recreate(service, container, recreate)
            return
        ref = observed_ref(container)
        resource_id = f"service:{service.name}:{container.number}"
        target = ContainerTarget(container.name, ref=ref)
        deps: list[int] = []
        name = container_name(self.project.name, service, container.number)
        if container.name != name and not is_running(container):  # left under its temporary name
            rename = self.plan.add(OpKind.RENAME_CONTAINER, resource_id, "left under a temporary name",
                                   ContainerPayload(target, new_name=name), self.cleared[service.name])
            target, deps = ContainerTarget(name, from_op=rename), [rename]
        self.targets[service.name].append(target)
        if self.options.no_start:
            return
        if not is_running(container):
            self._start(service, resource_id, target, f"container is {container.state}", deps)
            return
        restart = self._restart_cause(service)
        if restart is not None:
            self.starts.append(lambda: self._restart(service, resource_id, target, restart))

    def _restart(self, service: ServiceConfig, resource_id: str, target: ContainerTarget, cause: str) -> None:
        grace = grace_seconds(service, self.options.timeout)
        stop = self.plan.add(OpKind.STOP_CONTAINER, resource_id, cause,
                             stop_payload(target, grace, service), self._waits(service))
        self._add_start(service, resource_id, target, cause, [stop])

    def _new(self, service: ServiceConfig, number: int) -> None:
        name = container_name(self.project.name, service, number)
        resource_id = f"service:{service.name}:{number}"
        spec = container_spec(self.project, service, number, image_id=self._image_id(service))
        create = self.plan.add(OpKind.CREATE_CONTAINER, resource_id, "no existing container", CreatePayload(spec),
                               self._create_deps(service))
        self.created[service.name].append(create)
        target = ContainerTarget(name, from_op=create)
        self.targets[service.name].append(target)
        if not self.options.no_start:
            self._start(service, resource_id, target, "created", [create])

    def _recreate(self, service: ServiceConfig, old: ObservedContainer, cause: str) -> None:
        number = old.number
        name = container_name(self.project.name, service, number)
        resource_id = f"service:{service.name}:{number}"
        group = f"recreate:{service.name}:{number}"
        old_ref = observed_ref(old)
        temporary = f"{old.container_id[:12]}_{name}"
        if old.container_id in self.stopped:
            old = replace(old, state="exited")  # stopped already (its network is created again)
        replaces = None if self.options.renew_anon_volumes else old_ref
        spec = container_spec(self.project, service, number, name=temporary, replaces=replaces,
                              image_id=self._image_id(service))
        create = self.plan.add(OpKind.CREATE_CONTAINER, resource_id, cause, CreatePayload(spec),
                               self._create_deps(service) + self.cleared[service.name], group=group)
        replaced = f"replaced by #{create}"
        _, remove = self.plan.stop_and_remove(old, resource_id, replaced, grace_seconds(service, self.options.timeout),
                                         after=[create], group=group, service=service)
        rename = self.plan.add(OpKind.RENAME_CONTAINER, resource_id, replaced,
                               ContainerPayload(ContainerTarget(temporary, from_op=create), new_name=name),
                               [remove], group=group)
        self.recreated.add(service.name)
        self.created[service.name].append(rename)
        target = ContainerTarget(name, from_op=rename)
        self.targets[service.name].append(target)
        if not self.options.no_start:
            self._start(service, resource_id, target, "recreated", [rename])

    def _start(self, service: ServiceConfig, resource_id: str, target: ContainerTarget, cause: str,
               deps: list[int]) -> None:
        self.starts.append(lambda: self._add_start(service, resource_id, target, cause, deps))

    def _add_start(self, service: ServiceConfig, resource_id: str, target: ContainerTarget, cause: str,
                   deps: list[int]) -> None:
        payload = start_payload(target, service, injected_files(self.project, service))
        start = self.plan.add(OpKind.START_CONTAINER, resource_id, cause, payload, deps + self._waits(service))
        self.started[service.name].append(start)

    def _waits(self, service: ServiceConfig) -> list[int]:
        """The WAIT_CONDITION ops of ``service``'s dependencies, added on first use: a service
        with nothing to start waits for nothing, so an unchanged project plans nothing."""
        return [self._wait(service, dependency) for dependency in service.depends_on
                if dependency in self.project.services]

    def _wait(self, service: ServiceConfig, dependency_name: str) -> int:
        key = f"wait:{service.name}:{dependency_name}"
        found = self.plan.memo.get(key)
        if found is not None:
            return found
        dependency = service.depends_on[dependency_name]
        payload = WaitPayload(dependency_name, dependency.condition, tuple(self.targets[dependency_name]),
                              required=dependency.required, dependent=service.name)
        op_id = self.plan.add(OpKind.WAIT_CONDITION, f"service:{dependency_name}",
                              f"{dependency.condition}, required by {service.name}", payload,
                              self.started[dependency_name])
        self.plan.memo[key] = op_id
        return op_id

    def _wait_ready(self, order: list[str]) -> None:
        for service_name in order:
            targets = tuple(self.targets[service_name])
            if not targets:
                continue
            payload = WaitPayload(service_name, "ready", targets, timeout=self.options.wait_timeout)
            self.plan.add(OpKind.WAIT_READY, f"service:{service_name}", "--wait", payload,
                          self.started[service_name])

