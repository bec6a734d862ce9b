"""Plans for a service-level engine (Swarm): a project deployed as a stack of services.

Pure, like composer.planner.reconcile: the same project, snapshot and objects give the same plan.
The rules are ``docker stack deploy``'s, so each tool manages the other's stacks:

- names ``<stack>_<service>``, ``<stack>_<network>``; everything labelled
  ``com.docker.stack.namespace=<stack>``; the default network is an overlay ``<stack>_default``;
- a service is created when missing and updated when its spec changed (composer labels each with a
  hash of its Compose configuration and of the secrets and configs it uses; one without the label,
  deployed by another tool, is updated, and the engine restarts nothing when nothing changed);
- replicas are the engine's to schedule: a service is one operation, not one per container;
- ``depends_on`` orders nothing (Swarm has no such notion; ``docker stack deploy`` ignores it
  too), and the plan says so in a warning;
- secrets and configs are immutable cluster objects named by their content
  (composer.planner.stack_objects); objects of the stack no longer used are removed afterwards;
- services of the stack that are no longer in the file are removed with ``--remove-orphans``,
  otherwise reported in ``Plan.warnings``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from composer import labels
from composer.contract.options import DownOptions, UpOptions
from composer.contract.plan import (
    ClusterObjectPayload,
    NetworkPayload,
    OpKind,
    Plan,
    ServicePayload,
    ServiceRemovalPayload,
    ServiceWaitPayload,
    VolumePayload,
)
from composer.contract.services import ObjectGrant, ServiceSpec
from composer.errors import ExternalResourceNotFoundError, SpecValidationError
from composer.planner.builder import PlanBuilder
from composer.planner.container_specs import network_attachments
from composer.planner.hashing import config_hash
from composer.planner.stack_objects import object_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from composer.contract.observed import ObservedService, ObservedState
    from composer.contract.services import ClusterObject, ObjectKind
    from composer.spec.models import Project, ServiceConfig
    from composer.spec.models.service import FileMount

GLOBAL_MODES = frozenset({"global", "global-job"})
DEPENDS_ON_WARNING = "depends_on is ignored by the swarm backend: Swarm starts every service at once ({names})"
ORPHAN_WARNING = ("Found orphan services ({names}) for this stack. If you removed or renamed this service in your "
                  "compose file, you can run this command with the --remove-orphans flag to clean it up.")
BUILD_REFUSAL = ("the swarm backend deploys images from a registry: service {name} has build but no image "
                 "to push it as")
BUILD_WARNING = ("the swarm backend does not build: {names} deployed from the image in the registry "
                 "(composer build and composer push first)")
BUILD_OPTION_REFUSAL = "up --build is not supported by the swarm backend: run composer build and composer push first"

def service_name(project_name: str, service: str) -> str:
    return f"{project_name}_{service}"


def network_name(project: Project, key: str) -> str:
    config = project.networks.get(key)
    return config.name if config is not None and config.name else f"{project.name}_{key}"


def _grants(project: Project, service: ServiceConfig,
            objects: Mapping[tuple[ObjectKind, str], ClusterObject]) -> tuple[ObjectGrant, ...]:
    found: list[ObjectGrant] = []
    mounts: list[tuple[ObjectKind, FileMount]] = [("secret", m) for m in service.secrets]
    mounts += [("config", m) for m in service.configs]
    for kind, mount in mounts:
        made = objects.get((kind, mount.source))
        name = made.name if made is not None else object_name(project, kind, mount.source, None)
        target = mount.target or (f"/run/secrets/{mount.source}" if kind == "secret" else f"/{mount.source}")
        if kind == "secret":  # Swarm places a relative name under /run/secrets
            target = target.removeprefix("/run/secrets/")
        mode = int(mount.mode, 8) if mount.mode else 0o444
        found.append(ObjectGrant(kind, name, target, mount.uid or "0", mount.gid or "0", mode))
    return tuple(sorted(found, key=lambda grant: (grant.kind, grant.target)))


def service_spec(project: Project, service: ServiceConfig,
                 objects: Mapping[tuple[ObjectKind, str], ClusterObject]) -> ServiceSpec:
    """Everything the engine needs to deploy ``service`` as ``<stack>_<service>``.

    :raises SpecValidationError: the service builds an image it has no name to push as.
    """
    if service.image is None:
        raise SpecValidationError(BUILD_REFUSAL.format(name=service.name), path=f"services.{service.name}")
    grants = _grants(project, service, objects)
    digest = hashlib.sha256(config_hash(service).encode())
    for grant in grants:  # a new secret content is a new object name: the service rolls to it
        digest.update(f"\0{grant.kind}:{grant.name}".encode())
    deploy = service.deploy
    service_labels = dict(deploy.labels) if deploy is not None else {}
    service_labels.update({labels.STACK_NAMESPACE: project.name, labels.STACK_IMAGE: service.image,
                           labels.CONFIG_HASH: digest.hexdigest()})
    mode = deploy.mode if deploy is not None and deploy.mode else "replicated"
    return ServiceSpec(
        project_name=project.name,
        service=service,
        service_name=service_name(project.name, service.name),
        image=service.image,
        replicas=None if mode in GLOBAL_MODES else service.replicas,
        labels=service_labels,
        container_labels={**service.labels, labels.STACK_NAMESPACE: project.name},
        networks=network_attachments(project, service),
        volume_names={key: volume.name or f"{project.name}_{key}" for key, volume in project.volumes.items()},
        grants=grants,
    )


def reconcile_stack_up(project: Project, observed: ObservedState,
                       objects: Mapping[tuple[ObjectKind, str], ClusterObject],
                       options: UpOptions | None = None) -> Plan:
    """The plan that deploys ``project`` as a stack: networks and objects, then every service.

    :raises ExternalResourceNotFoundError: an external network, secret or config does not exist.
    :raises SpecValidationError: a selected service does not exist, or cannot be deployed.
    """
    options = options or UpOptions()
    if options.build:
        raise SpecValidationError(BUILD_OPTION_REFUSAL)
    project = project.with_selected_services(options.services, include_dependencies=not options.no_deps)
    plan = PlanBuilder()
    built = [name for name in sorted(project.services) if project.services[name].build is not None]
    if built:
        plan.warn(BUILD_WARNING.format(names=", ".join(built)))
    ready = _networks(project, observed, plan) + _objects(project, observed, objects, plan)
    deployed: list[int] = []
    existing = {service.name: service for service in observed.services}
    ordered = [name for name in sorted(project.services) if project.services[name].depends_on]
    if ordered:
        plan.warn(DEPENDS_ON_WARNING.format(names=", ".join(ordered)))
    for name in sorted(project.services):
        spec = service_spec(project, project.services[name], objects)
        cause = _deploy_cause(spec, existing.get(spec.service_name), options)
        if cause is not None:
            deployed.append(plan.add(OpKind.DEPLOY_SERVICE, f"service:{name}", cause, ServicePayload(spec), ready))
    orphans = sorted(service.name for service in observed.services
                     if service.name not in {service_name(project.name, name) for name in project.services}
                     and service.key not in project.disabled_services)
    removed = _orphans(orphans, options, plan)
    _unused_objects(project, observed, objects, plan, deployed + removed)
    if options.wait and not options.no_start:
        names = tuple(service_name(project.name, name) for name in sorted(project.services))
        plan.add(OpKind.WAIT_SERVICES, "stack:" + project.name, "up --wait",
                 ServiceWaitPayload(names, options.wait_timeout), deployed)
    return plan.build()


def _deploy_cause(spec: ServiceSpec, found: ObservedService | None, options: UpOptions) -> str | None:
    if found is None:
        return "no existing service"
    if options.force_recreate:
        return "--force-recreate"
    if found.config_hash is None:
        return "deployed without composer's config hash"
    if found.config_hash != spec.labels[labels.CONFIG_HASH]:
        return "config hash changed"
    if options.scale.get(spec.service.name) is not None and found.replicas != spec.replicas:
        return "scale changed"
    return None


def _networks(project: Project, observed: ObservedState, plan: PlanBuilder) -> list[int]:
    existing = {network.name for network in observed.networks}
    used = {key for service in project.services.values() if service.network_mode is None for key in service.networks}
    made: list[int] = []
    for key in sorted(used):
        config = project.networks.get(key)
        name = network_name(project, key)
        if name in existing:
            continue
        if config is not None and config.external:
            raise ExternalResourceNotFoundError("network", name)
        if config is None:
            continue
        made.append(plan.add(OpKind.CREATE_NETWORK, f"network:{key}", "no existing network",
                             NetworkPayload(project.name, key, name, config)))
    return made


def _objects(project: Project, observed: ObservedState, objects: Mapping[tuple[ObjectKind, str], ClusterObject],
             plan: PlanBuilder) -> list[int]:
    existing = {(item.kind, item.name) for item in observed.cluster_objects}
    for service in project.services.values():
        mounts: list[tuple[ObjectKind, FileMount]] = [("secret", m) for m in service.secrets]
        mounts += [("config", m) for m in service.configs]
        for kind, mount in mounts:
            declared = (project.secrets if kind == "secret" else project.configs).get(mount.source)
            name = (declared.name if declared is not None else None) or mount.source
            if declared is not None and declared.external and (kind, name) not in existing:
                raise ExternalResourceNotFoundError(kind, name)
    made: list[int] = []
    for (kind, key), item in sorted(objects.items()):
        if (kind, item.name) in existing:
            continue
        made.append(plan.add(OpKind.CREATE_CLUSTER_OBJECT, f"{kind}:{key}", f"no existing {kind} {item.name}",
                             ClusterObjectPayload(kind, item.name, item)))
    return made


def _orphans(orphans: list[str], options: UpOptions, plan: PlanBuilder) -> list[int]:
    if not orphans:
        return []
    if not options.remove_orphans:
        plan.warn(ORPHAN_WARNING.format(names=", ".join(orphans)))
        return []
    return [plan.add(OpKind.REMOVE_SERVICE, f"service:{name}", "orphan service", ServiceRemovalPayload(name))
            for name in orphans]


def _unused_objects(project: Project, observed: ObservedState, objects: Mapping[tuple[ObjectKind, str], ClusterObject],
                    plan: PlanBuilder, after: list[int]) -> None:
    """Old versions of the stack's secrets and configs (composer's, by their key label), once the
    services no longer use them. Best effort: a service outside the file may still use one."""
    wanted = {(item.kind, item.name) for item in objects.values()}
    for item in sorted(observed.cluster_objects, key=lambda found: (found.kind, found.name)):
        if not item.key or (item.kind, item.name) in wanted:
            continue
        kind: ObjectKind = "secret" if item.kind == "secret" else "config"
        plan.add(OpKind.REMOVE_CLUSTER_OBJECT, f"{kind}:{item.key}", f"{kind} {item.name} no longer used",
                 ClusterObjectPayload(kind, item.name), after, best_effort=True)


def reconcile_stack_down(project_name: str, project: Project | None, observed: ObservedState,
                         options: DownOptions | None = None) -> Plan:
    """Remove the stack: its services (as ``docker stack rm``, all of them), then its secrets,
    configs and networks, and its named volumes with ``-v`` (on this node)."""
    options = options or DownOptions()
    plan = PlanBuilder()
    removed = [plan.add(OpKind.REMOVE_SERVICE, f"service:{service.key or service.name}", "down",
                        ServiceRemovalPayload(service.name))
               for service in sorted(observed.services, key=lambda found: found.name)]
    for item in sorted(observed.cluster_objects, key=lambda found: (found.kind, found.name)):
        if not item.key:  # not the stack's: an external one, or another stack's
            continue
        kind: ObjectKind = "secret" if item.kind == "secret" else "config"
        plan.add(OpKind.REMOVE_CLUSTER_OBJECT, f"{kind}:{item.key}", "down",
                 ClusterObjectPayload(kind, item.name), removed)
    for network in sorted(observed.networks, key=lambda found: found.name):
        if network.key:  # the stack's own (external ones are observed with no key)
            plan.add(OpKind.REMOVE_NETWORK, f"network:{network.key}", "down",
                     NetworkPayload(project_name, network.key, network.name), removed)
    if options.remove_volumes:
        for volume in sorted(observed.volumes, key=lambda found: found.name):
            if volume.key:
                plan.add(OpKind.REMOVE_VOLUME, f"volume:{volume.key}", "down -v",
                         VolumePayload(project_name, volume.key, volume.name), removed)
    del project
    return plan.build()
