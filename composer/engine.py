"""The engine: observe → reconcile → plan → execute, for each verb.

Each function takes a typed Project (or a project name), a backend and an event sink, and
returns what it did. Decisions are the reconciler's (composer.planner.reconcile), effects
the executor's (composer.planner.execute); this module only sequences the two. It never
prints: progress goes to the sink.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from composer.errors import ComposerError
from composer.events import EventSink, NullSink

if TYPE_CHECKING:
    from composer.contract.backend import Backend, EngineEvent
    from composer.contract.observed import ObservedContainer, ObservedVolume
    from composer.contract.options import (
        BuildOptions,
        DownOptions,
        PullOptions,
        PushOptions,
        StopOptions,
        UpOptions,
        WatchOptions,
    )
    from composer.contract.plan import Outcome, Plan
    from composer.planner.watch import Batch, ServiceSync
    from composer.spec.models import Project
    from composer.spec.options import ProjectOptions


def load_project_cached(options: ProjectOptions) -> Project:
    """The project through the CLI's cache (composer.spec.cache), with the planner's configuration
    hashes kept in the same entry: a cached ``up`` skips computing them again."""
    from composer.planner.hashing import ServiceHashes
    from composer.spec.cache import load_project_cached as load

    return load(options, derived=ServiceHashes())


def refuse_unsupported(project: Project, backend: Backend) -> None:
    """Refuse, before anything is pulled or created, a key the backend's coverage table refuses
    (composer.contract.coverage); a backend without a table refuses at its own create.

    :raises UnsupportedFeatureError: the first key refused, in the table's words.
    """
    from composer.contract.coverage import refuse_project

    table = getattr(backend, "coverage", None)
    if table is not None:
        refuse_project(table, backend.name, project)


async def _execute(plan: Plan, backend: Backend, sink: EventSink | None, parallel: int | None,
                   dry_run: bool) -> Outcome:
    """Run ``plan`` unless this is a dry run; the plan is returned either way."""
    from composer.contract.plan import Outcome
    from composer.planner.execute import execute

    if not dry_run:
        await execute(plan, backend, sink or NullSink(), parallel=parallel)
    return Outcome(plan, not dry_run)


async def up(
    project: Project, backend: Backend, options: UpOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Bring the project to its desired state: the pulls and builds first (when there are any),
    then, from a second observation, everything else. The outcome lists both plans' operations.

    :raises composer.errors.ComposerError: planning or execution failed.
    """
    from dataclasses import replace

    from composer.contract.plan import Outcome
    from composer.contract.plan import Plan as PlanValue
    from composer.contract.services import is_service_backend
    from composer.planner.execute import execute
    from composer.planner.reconcile import reconcile_up, reconcile_up_images
    from composer.planner.snapshot import observe_project

    if is_service_backend(backend):
        return await _up_stack(project, backend, options, sink, parallel, dry_run)
    refuse_unsupported(project, backend)
    observed = await observe_project(backend, project.name, project, images="project")
    images = reconcile_up_images(project, observed, options)
    if dry_run or images.is_empty:
        return await _execute(reconcile_up(project, observed, options), backend, sink, parallel, dry_run)
    # As v2: pull and build first, then compare the containers with the images as they are now
    # (a container whose image changed is recreated, and new ones are labelled with the new ids).
    await execute(images, backend, sink or NullSink(), parallel=parallel)
    observed = await observe_project(backend, project.name, project, images="project")
    plan = reconcile_up(project, observed, replace(options, images_ready=True))
    await execute(plan, backend, sink or NullSink(), parallel=parallel)
    return Outcome(PlanValue(images.operations + plan.operations, plan.warnings), True)


async def down(
    project_name: str, project: Project | None, backend: Backend, options: DownOptions,
    sink: EventSink | None = None, *, parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Stop and remove the project's containers and networks (and volumes with ``-v``)."""
    from composer.contract.services import is_service_backend
    from composer.planner.snapshot import observe_project
    from composer.planner.teardown import reconcile_down

    if is_service_backend(backend):
        from composer.planner.stack import reconcile_stack_down

        observed = await observe_project(backend, project_name, project)
        return await _execute(reconcile_stack_down(project_name, project, observed, options), backend, sink,
                              parallel, dry_run)
    observed = await observe_project(backend, project_name, project, images="all" if options.rmi else "none")
    plan = reconcile_down(project_name, project, observed, options)
    return await _execute(plan, backend, sink, parallel, dry_run)


async def _up_stack(project: Project, backend: Backend, options: UpOptions, sink: EventSink | None,
                    parallel: int | None, dry_run: bool) -> Outcome:
    """``up`` on a service-level engine: the engine pulls on its nodes and schedules the replicas;
    composer deploys the services, their networks and their secrets and configs."""
    from composer.contract.plan import ServicePayload
    from composer.contract.services import ServiceBackend
    from composer.errors import UnsupportedFeatureError
    from composer.planner.snapshot import observe_project
    from composer.planner.stack import reconcile_stack_up
    from composer.planner.stack_objects import stack_objects

    objects = stack_objects(project)
    observed = await observe_project(backend, project.name, project)
    plan = reconcile_stack_up(project, observed, objects, options)
    services = cast("ServiceBackend", backend)
    problems = [problem for operation in plan.operations if isinstance(operation.payload, ServicePayload)
                for problem in services.refusals(operation.payload.spec)]
    if problems:  # refused before anything is created
        raise UnsupportedFeatureError("; ".join(problems), backend_name=backend.name, operation="up")
    return await _execute(plan, backend, sink, parallel, dry_run)


async def stop(
    project: Project, backend: Backend, options: StopOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Stop the selected services' containers, dependents first."""
    from composer.planner.snapshot import observe_project
    from composer.planner.teardown import reconcile_stop

    observed = await observe_project(backend, project.name, project)
    plan = reconcile_stop(project, observed, options)
    return await _execute(plan, backend, sink, parallel, dry_run)


async def containers(project_name: str, backend: Backend, *, include_stopped: bool = False) -> list[ObservedContainer]:
    """The project's containers, by service then number (``ps``)."""
    observed = await backend.observe(project_name, images=())
    found = [c for c in observed.containers if include_stopped or c.state in ("running", "restarting", "paused")]
    return sorted(found, key=lambda c: (c.service_name, c.number, c.name))


async def volumes(project_name: str, backend: Backend, services: Sequence[str] = ()) -> list[ObservedVolume]:
    """The project's volumes (by its label), by name; with ``services``, only those their
    containers mount (v2's ``volumes``)."""
    observed = await backend.observe(project_name, images=())
    found = [volume for volume in observed.volumes if volume.key]
    if services:
        used = {name for c in observed.containers if c.service_name in services for name in c.volumes}
        found = [volume for volume in found if volume.name in used]
    return sorted(found, key=lambda volume: volume.name)


# --- the container commands (start, restart, kill, rm, pause, exec, run, cp, ls...) ----------------

if TYPE_CHECKING:
    from composer.contract.backend import (
        ContainerRef,
        ExecSpec,
        ImageSummary,
        PathStat,
        ProcessList,
        ProjectSummary,
        Streams,
    )
    from composer.contract.options import RunOptions
    from composer.contract.plan import ContainerTarget




async def start(
    project: Project, backend: Backend, services: tuple[str, ...] = (), sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Start the selected services' stopped containers, in dependency order (creates nothing)."""
    from composer.planner.snapshot import observe_project
    from composer.planner.teardown import reconcile_start

    observed = await observe_project(backend, project.name, project)
    return await _execute(reconcile_start(project, observed, services), backend, sink, parallel, dry_run)


async def restart(
    project: Project, backend: Backend, services: tuple[str, ...] = (), sink: EventSink | None = None, *,
    stop_timeout: float | None = None, parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Stop the selected services' containers (dependents first), then start them all again in
    dependency order; the outcome lists both plans' operations (the start plan's ids follow)."""
    from composer.contract.options import StopOptions
    from composer.contract.plan import Outcome
    from composer.contract.plan import Plan as PlanValue

    options = StopOptions(services, stop_timeout)
    stopped = await stop(project, backend, options, sink, parallel=parallel, dry_run=dry_run)
    started = await start(project, backend, services, sink, parallel=parallel, dry_run=dry_run)
    return Outcome(PlanValue(stopped.plan.operations + started.plan.operations), not dry_run)


async def kill(
    project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...] = (),
    signal: str = "SIGKILL", sink: EventSink | None = None, *, parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Send ``signal`` to the selected services' running containers."""
    from composer.planner.container_plans import check_services, reconcile_kill
    from composer.planner.snapshot import observe_project

    check_services(project, services)
    observed = await observe_project(backend, project_name, project)
    return await _execute(reconcile_kill(observed, services, signal), backend, sink, parallel, dry_run)


async def removable(
    project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...] = (), *,
    stop: bool = False,
) -> list[ObservedContainer]:
    """What ``rm`` would remove (to confirm with the user first)."""
    from composer.planner import container_plans as planner
    from composer.planner.snapshot import observe_project

    planner.check_services(project, services)
    return planner.removable(await observe_project(backend, project_name, project), services, stop=stop)


async def remove(
    project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...] = (),
    sink: EventSink | None = None, *, stop: bool = False, remove_volumes: bool = False,
    stop_timeout: float | None = None, parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Remove the selected services' stopped containers (with ``stop``, stop running ones first)."""
    from composer.planner.container_plans import check_services, reconcile_remove
    from composer.planner.snapshot import observe_project

    check_services(project, services)
    observed = await observe_project(backend, project_name, project)
    plan = reconcile_remove(project, observed, services, stop=stop, remove_volumes=remove_volumes,
                            timeout=stop_timeout)
    return await _execute(plan, backend, sink, parallel, dry_run)


async def _set_paused(
    project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...], sink: EventSink | None,
    *, paused: bool,
) -> list[ObservedContainer]:
    import anyio

    from composer.contract.observed import observed_ref
    from composer.events import Event, EventStatus
    from composer.planner.container_plans import check_services, select

    check_services(project, services)
    out = sink or NullSink()
    observed = await backend.observe(project_name, images=())
    chosen = select(observed, services, states=("running",) if paused else ("paused",), oneoff=None)
    working, done = ("Pausing", "Paused") if paused else ("Unpausing", "Unpaused")

    async def one(container: ObservedContainer) -> None:
        resource_id = f"container:{container.name}"
        out.emit(Event(resource_id, EventStatus.WORKING, working))
        ref = observed_ref(container)
        await (backend.pause_container(ref) if paused else backend.unpause_container(ref))
        out.emit(Event(resource_id, EventStatus.DONE, done))

    async with anyio.create_task_group() as group:
        for container in chosen:
            group.start_soon(one, container)
    return chosen


async def pause(project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...] = (),
                sink: EventSink | None = None) -> list[ObservedContainer]:
    """Pause the selected services' running containers; returns them."""
    return await _set_paused(project_name, project, backend, services, sink, paused=True)


async def unpause(project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...] = (),
                  sink: EventSink | None = None) -> list[ObservedContainer]:
    """Unpause the selected services' paused containers; returns them."""
    return await _set_paused(project_name, project, backend, services, sink, paused=False)


async def service_container(
    project_name: str, project: Project | None, backend: Backend, service_name: str, index: int = 1, *,
    running: bool = True,
) -> ObservedContainer:
    """Container ``index`` of the service (not a one-off), as ``exec``, ``port`` and ``cp`` address it.

    :raises SpecValidationError: the service does not exist (``no such service: x``).
    :raises ComposerError: it has no such container, or (``running``) that container is not running.
    """
    from composer.errors import ComposerError
    from composer.planner.container_plans import check_services

    check_services(project, (service_name,))
    observed = await backend.observe(project_name, images=())
    found = observed.service_containers(service_name)
    chosen = [c for c in found if c.number == index]
    if not chosen or (running and chosen[0].state not in ("running", "restarting", "paused")):
        if running:
            raise ComposerError(f'service "{service_name}" is not running')
        raise ComposerError(f"service {service_name!r} has no container {index}")
    return chosen[0]


async def exec_(
    project_name: str, project: Project | None, backend: Backend, service_name: str, spec: ExecSpec,
    streams: Streams | None, *, index: int = 1,
) -> int | None:
    """Run a command in a running container of the service; its exit code (None when detached)."""
    from composer.contract.observed import observed_ref

    container = await service_container(project_name, project, backend, service_name, index)
    return await backend.exec_in_container(observed_ref(container), spec, streams)


async def wait(
    project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...],
    on_exit: Callable[[ObservedContainer, int], None] | None = None,
) -> int:
    """Block until the services' running containers (one-offs included) stop; ``on_exit`` is
    told of each as it stops. Returns the exit code of the last one to stop (as v2 does).

    :raises ComposerError: the services have no running container.
    """
    import anyio

    from composer.contract.observed import observed_ref
    from composer.errors import ComposerError
    from composer.planner.container_plans import check_services, select

    check_services(project, services)
    observed = await backend.observe(project_name, images=())
    chosen = select(observed, services, states=("running", "restarting", "paused"), oneoff=None)
    if not chosen:
        raise ComposerError(f'no containers for project "{project_name}"')
    codes: list[int] = []

    async def one(container: ObservedContainer) -> None:
        code = await backend.wait_container(observed_ref(container))
        codes.append(code)
        if on_exit is not None:
            on_exit(container, code)

    async with anyio.create_task_group() as group:
        for container in chosen:
            group.start_soon(one, container)
    return codes[-1]


async def top(
    project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...] = (),
) -> list[tuple[ObservedContainer, ProcessList]]:
    """The processes of the selected services' running containers, by service and number."""
    from composer.contract.observed import observed_ref
    from composer.planner.container_plans import check_services, select

    check_services(project, services)
    observed = await backend.observe(project_name, images=())
    chosen = select(observed, services, states=("running", "restarting", "paused"))
    return [(container, await backend.container_top(observed_ref(container))) for container in chosen]


async def projects(backend: Backend, *, include_stopped: bool = False) -> Sequence[ProjectSummary]:
    """Every project the engine has containers of (``ls``)."""
    return await backend.list_projects(include_stopped=include_stopped)


async def images(
    project_name: str, project: Project | None, backend: Backend, services: tuple[str, ...] = (),
) -> Sequence[ImageSummary]:
    """The images the project's containers run (``images``), one row per container."""
    from composer.contract.observed import observed_ref
    from composer.planner.container_plans import check_services, select

    check_services(project, services)
    observed = await backend.observe(project_name, images=())
    return await backend.list_images([observed_ref(c) for c in select(observed, services, oneoff=None)])


async def stat_path(backend: Backend, ref: ContainerRef, path: str) -> PathStat | None:
    return await backend.stat_container_path(ref, path)


async def run(
    project: Project, backend: Backend, service_name: str, options: RunOptions, streams: Streams | None,
    sink: EventSink | None = None, *, no_deps: bool = False, remove: bool = False, pull: str | None = None,
    parallel: int | None = None, build: bool | None = None, remove_orphans: bool = False,
) -> tuple[ContainerRef, int | None]:
    """Run a one-off container of the service: what it needs first (networks, volumes, image,
    dependencies and their conditions) through the normal up plan, then the container.
    Without ``streams`` it is started detached (exit code None); else attached until it stops,
    then removed with ``remove``.

    :raises SpecValidationError: no such service.
    :raises ExecutionError: preparing failed (a dependency did not start or its condition failed).
    """
    import secrets

    import anyio

    from composer.contract.observed import observed_ref
    from composer.contract.plan import ContainerTarget, WaitPayload
    from composer.errors import DependencyConditionError
    from composer.events import Event, EventStatus
    from composer.planner.container_plans import dependency_waits, oneoff_spec, reconcile_run_prerequisites
    from composer.planner.container_specs import image_name
    from composer.planner.execute import execute
    from composer.planner.injected_files import create_container
    from composer.planner.snapshot import observe_project
    from composer.planner.wait import wait_for

    out = sink or NullSink()
    observed = await observe_project(backend, project.name, project, images="project")
    plan = reconcile_run_prerequisites(project, observed, service_name, no_deps=no_deps, pull=pull, build=build,
                                       remove_orphans=remove_orphans)
    await execute(plan, backend, out, parallel=parallel)
    image = image_name(project.name, project.service(service_name))
    if any(operation.resource_id == f"image:{image}" for operation in plan.operations):
        observed = await backend.observe(project.name, images=(image,))  # pulled or built just now
    image_id = observed.image_id(image)
    if not no_deps and project.service(service_name).depends_on:  # the dependencies' containers, as they are now
        observed = await backend.observe(project.name, images=())
        for dependency, condition, required in dependency_waits(project, service_name, observed):
            containers_ = observed.service_containers(dependency)
            targets = tuple(ContainerTarget(c.name, ref=observed_ref(c)) for c in containers_)
            payload = WaitPayload(dependency, condition, targets, required=required, dependent=service_name)
            try:
                await wait_for(backend, payload, _existing_ref, out, poll_interval=0.5)
            except DependencyConditionError as exc:
                if required:
                    raise
                out.emit(Event(f"service:{dependency}", EventStatus.WARNING, "Warning", str(exc)))
    spec = oneoff_spec(project, service_name, options, secrets.token_hex(32), image_id=image_id)
    ref = await create_container(backend, spec)
    if streams is None:
        await backend.start_container(ref)
        return ref, None
    detached = False
    try:
        code = await backend.attach_container(ref, streams, tty=options.tty, start=True)
        detached = code is None
    finally:
        # detached (the detach keys): it keeps running, and --rm does not remove it later (docker
        # run --rm -it would, its daemon removes it when it exits)
        if remove and not detached:
            with anyio.CancelScope(shield=True):
                await backend.remove_container(ref, remove_volumes=True)
    return ref, code


async def attach(
    project_name: str, project: Project | None, backend: Backend, service_name: str, streams: Streams, *,
    tty: bool | None = None, index: int = 1, signals: AsyncIterator[int] | None = None,
) -> int | None:
    """Attach to a running container of the service (``attach``): its output, and its stdin and
    terminal when it has them; its exit code, or None when the caller detached. Each signal
    number from ``signals`` is sent to the container meanwhile (``--sig-proxy``)."""
    import signal as signal_names

    import anyio

    from composer.contract.observed import observed_ref
    from composer.errors import BackendError

    ref = observed_ref(await service_container(project_name, project, backend, service_name, index))
    if signals is None:
        return await backend.attach_container(ref, streams, tty=tty, start=False)

    async def forward(numbers: AsyncIterator[int]) -> None:
        async for number in numbers:
            with suppress(BackendError):  # it may have stopped meanwhile
                await backend.kill_container(ref, signal=signal_names.Signals(number).name)

    async with anyio.create_task_group() as group:
        group.start_soon(forward, signals)
        code = await backend.attach_container(ref, streams, tty=tty, start=False)
        group.cancel_scope.cancel()
    return code


def _existing_ref(target: ContainerTarget) -> ContainerRef:
    assert target.ref is not None
    return target.ref


async def build(
    project: Project, backend: Backend, options: BuildOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Build the selected services' images (``composer build``)."""
    from composer.planner.images import reconcile_build

    plan = reconcile_build(project, options)
    return await _execute(plan, backend, sink, parallel, dry_run)


async def pull(
    project: Project, backend: Backend, options: PullOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Pull the selected services' images (``composer pull``); see composer.planner.images."""
    from composer.planner.images import reconcile_pull
    from composer.planner.snapshot import observe_project

    observed = await observe_project(backend, project.name, project, images="project")
    plan = reconcile_pull(project, observed.images, options)
    return await _execute(plan, backend, sink, parallel, dry_run)


def push_references(project: Project, options: PushOptions) -> list[str]:
    """The references ``push`` pushes, in order (what ``push --dry-run`` lists)."""
    from composer.planner.images import push_targets

    return [reference for _, reference in push_targets(project, options)]


async def push(
    project: Project, backend: Backend, options: PushOptions, sink: EventSink | None = None, *,
    parallel: int | None = None,
) -> list[str]:
    """Push the selected services' images and extra tags; returns the references pushed.

    :raises ExecutionError: pushes failed (without ``ignore_failures``); one line per failure.
    """
    import anyio

    from composer.errors import ExecutionError, OperationFailure
    from composer.events import Event, EventStatus
    from composer.image_reference import repository_of
    from composer.planner.execute import parallel_limit
    from composer.planner.images import push_targets

    out = sink or NullSink()
    targets = push_targets(project, options)
    limiter = anyio.CapacityLimiter(parallel_limit(parallel))
    failures: list[OperationFailure] = []
    pushed: list[str] = []

    async def push_one(index: int, reference: str) -> None:
        async with limiter:
            try:
                await backend.push_image(reference, out)
            except Exception as exc:
                if not options.ignore_failures:
                    failures.append(OperationFailure(index, f"image:{reference}", "PushImage", exc))
                else:
                    out.emit(Event(f"image:{reference}", EventStatus.WARNING, "Warning", str(exc)))
                return
            pushed.append(reference)

    async def push_repository(indexed: list[tuple[int, str]]) -> None:
        for index, reference in indexed:  # tags of one repository in turn: registries race on shared blobs
            await push_one(index, reference)

    by_repository: dict[str, list[tuple[int, str]]] = {}
    for index, (_, reference) in enumerate(targets, start=1):
        by_repository.setdefault(repository_of(reference), []).append((index, reference))
    async with anyio.create_task_group() as group:
        for indexed in by_repository.values():
            group.start_soon(push_repository, indexed)
    if failures:
        raise ExecutionError.from_failures(tuple(sorted(failures, key=lambda failure: failure.op_id)))
    return [reference for _, reference in targets if reference in pushed]


async def events(project_name: str, backend: Backend, services: Sequence[str] = ()) -> AsyncIterator[EngineEvent]:
    """The project's container events as v2's ``events`` shows them, until cancelled: one-off
    (``run``) containers left out, only the ``services`` named (all when empty), each with its
    service and without the com.docker.compose.* attributes.

    :raises UnsupportedFeatureError: the backend cannot stream events.
    """
    from dataclasses import replace

    from composer import labels

    wanted = set(services)
    async with aclosing(backend.events(project_name)) as stream:  # type: ignore[type-var]
        async for event in stream:
            attributes = event.attributes
            service = attributes.get(labels.SERVICE, "")
            if event.type != "container" or attributes.get(labels.ONEOFF) == "True":
                continue
            if wanted and service not in wanted:
                continue
            kept = {k: v for k, v in attributes.items() if not k.startswith("com.docker.compose.")}
            yield replace(event, service=service, attributes=kept)


# --- watch ------------------------------------------------------------------------------------------

# watchfiles groups the inotify events of one burst (an editor's save, a checkout) until nothing
# new came for STEP_MS, and at most DEBOUNCE_MS. v2 waits for 500 ms of quiet; composer applies a
# change within 300 ms of the write, so its quiet period is shorter.
WATCH_STEP_MS = 50
WATCH_DEBOUNCE_MS = 1600
WATCH_TICK_MS = 200  # how often the watcher wakes up with nothing to report (to start, and to stop)


@dataclass(frozen=True, slots=True)
class WatchReport:
    """Where ``watch`` says what it does (v2's watch logger), and what its exec actions print."""

    log: Callable[[str], None]
    warn: Callable[[str], None]
    streams: Streams | None = None
    debug: Callable[[str], None] | None = None
    """v2's debug lines: each batch's size and how long it took, from its arrival to applied."""


async def watch(
    project: Project, backend: Backend, options: WatchOptions, report: WatchReport, sink: EventSink | None = None,
    *, parallel: int | None = None, ready: Callable[[], None] | None = None,
) -> None:
    """Watch the ``develop.watch`` paths of the services (inotify, through watchfiles) and apply
    each batch of changes to their running containers, until cancelled: v2's ``watch``. An
    ``initial_sync`` rule is synced first; ``ready`` is called once the watches are in place.

    :raises UsageError: no selected service has a ``develop.watch``, or a rule v2 refuses.
    :raises UnsupportedFeatureError: a ``rebuild`` rule on a backend that cannot build.
    """
    import time

    import anyio
    import watchfiles

    from composer.contract.backend import Capability
    from composer.planner import watch as planning

    services = planning.selected(project, options.services)
    planning.check_rules(services, can_build=Capability.BUILD in backend.capabilities, backend=backend.name,
                         build=options.build)
    triggers, paths, warnings = planning.triggers(services)
    for warning in warnings:
        report.warn(warning)
    for trigger in triggers:
        if trigger.rule.initial_sync and trigger.rule.action in ("sync", "sync+restart"):
            initial = planning.initial_sync(trigger, project.services[trigger.service])
            if initial:
                await _sync(project, backend, trigger.service, planning.ServiceSync(tuple(initial), ()))
    if not paths:
        raise _no_watch()
    # inotify needs a path that exists: a missing one is watched through its nearest existing parent
    # (a rule still takes only what is under its own path)
    roots = sorted({_existing_parent(path, project.working_dir) for path in paths})
    await backend.release()
    stop = anyio.Event()
    announced = False
    try:
        async for changes in watchfiles.awatch(*roots, watch_filter=None, debounce=WATCH_DEBOUNCE_MS,
                                               step=WATCH_STEP_MS, rust_timeout=WATCH_TICK_MS,
                                               yield_on_timeout=True, stop_event=stop, recursive=True):
            if not announced:  # the first (empty) tick: the watches are in place
                announced = True
                report.log("Watch enabled")
                if ready is not None:
                    ready()
            if not changes:
                continue
            began = time.monotonic()
            changed = {path for _, path in changes}
            batch = planning.plan_batch(triggers, changed, _existing(changed))
            if batch.is_empty:
                continue
            try:
                await _apply_batch(project, backend, batch, report, sink, parallel)
            except ComposerError as exc:
                report.warn(f"Error handling changed files: {exc}")
            finally:
                await backend.release()
            if report.debug is not None:
                report.debug(f"batch complete: duration[{time.monotonic() - began:.3f}s] count[{len(changed)}]")
    finally:
        stop.set()


def _no_watch() -> ComposerError:
    from composer.errors import UsageError

    return UsageError("none of the selected services is configured for watch, consider setting a 'develop' section")


def _existing(paths: set[str]) -> dict[str, bool]:
    import os

    return {path: os.path.lexists(path) for path in paths}


def _existing_parent(path: str, project_dir: str) -> str:
    """``path``, or its nearest existing parent when it does not exist yet, as long as that parent
    is in the project's folder (watching a missing path's ``/`` recursively would watch everything).

    :raises UsageError: a missing path with no existing parent in the project's folder.
    """
    import os

    from composer.errors import UsageError

    found = path
    while not os.path.exists(found) and os.path.dirname(found) != found:
        found = os.path.dirname(found)
    if found != path and not (found + "/").startswith(project_dir.rstrip("/") + "/"):
        raise UsageError(f"develop.watch path {path} does not exist")
    return found


def _go_list(names: Sequence[str]) -> str:
    """A list of names as Go's ``%q`` prints a []string: ``["a" "b"]``."""
    return "[" + " ".join(f'"{name}"' for name in names) + "]"


async def _sync(project: Project, backend: Backend, service: str, sync: ServiceSync) -> None:
    from composer.contract.observed import observed_ref
    from composer.planner.sync import sync_service

    observed = await backend.observe(project.name, images=())
    refs = [observed_ref(c) for c in observed.service_containers(service)
            if not c.oneoff and c.state in ("running", "restarting", "paused")]
    await sync_service(backend, refs, sync)


async def _apply_batch(project: Project, backend: Backend, batch: Batch, report: WatchReport,
                       sink: EventSink | None, parallel: int | None) -> None:
    """One batch, in v2's order: rebuild, sync, restart, exec."""
    from composer.contract.backend import ExecSpec
    from composer.contract.observed import observed_ref
    from composer.contract.options import UpOptions

    if batch.rebuild:
        report.log(f"Rebuilding service(s) {_go_list(batch.rebuild)} after changes were detected...")
        options = UpOptions(services=batch.rebuild, no_deps=True, build=True, force_recreate=True)
        await up(project, backend, options, sink, parallel=parallel)
        report.log(f"service(s) {_go_list(batch.rebuild)} successfully built")
    for service, sync in batch.sync.items():
        report.log(f'Syncing service "{service}" after {sync.count} changes were detected')
        await _sync(project, backend, service, sync)
    if batch.restart:
        await restart(project, backend, batch.restart, sink, parallel=parallel)
        report.log(f"service(s) {_go_list(batch.restart)} restarted")
    for service, hook in batch.exec:
        observed = await backend.observe(project.name, images=())
        spec = ExecSpec(tuple(hook.command or ()), user=hook.user, workdir=hook.working_dir,
                        environment={k: v for k, v in hook.environment.items() if v is not None},
                        privileged=hook.privileged, interactive=False)
        for container in observed.service_containers(service):
            if not container.oneoff and container.state == "running":
                await backend.exec_in_container(observed_ref(container), spec, report.streams)
