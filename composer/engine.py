"""The engine: observe → reconcile → plan → execute, for each verb.

Each function takes a typed Project (or a project name), a backend and an event sink, and
returns what it did. Decisions are the reconciler's (composer.planner.reconcile), effects
the executor's (composer.planner.execute); this module only sequences the two. It never
prints: progress goes to the sink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from composer.events import EventSink, NullSink

if TYPE_CHECKING:
    from composer.backends.base import Backend
    from composer.planner.images import BuildOptions, PullOptions, PushOptions
    from composer.planner.observed import ObservedContainer
    from composer.planner.operations import Plan
    from composer.planner.reconcile import UpOptions
    from composer.planner.teardown import DownOptions, StopOptions
    from composer.spec.models import Project


@dataclass(frozen=True, slots=True)
class Outcome:
    """A plan and whether it ran (False under --dry-run)."""

    plan: Plan
    executed: bool


async def up(
    project: Project, backend: Backend, options: UpOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Bring the project to its desired state.

    :raises composer.errors.ComposerError: planning or execution failed.
    """
    from composer.planner.execute import execute
    from composer.planner.observe import observe_project
    from composer.planner.reconcile import reconcile_up

    observed = await observe_project(backend, project.name, project)
    plan = reconcile_up(project, observed, options)
    if not dry_run:
        await execute(plan, backend, sink or NullSink(), parallel=parallel)
    return Outcome(plan, not dry_run)


async def down(
    project_name: str, project: Project | None, backend: Backend, options: DownOptions,
    sink: EventSink | None = None, *, parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Stop and remove the project's containers and networks (and volumes with ``-v``)."""
    from composer.planner.execute import execute
    from composer.planner.observe import observe_project
    from composer.planner.teardown import reconcile_down

    observed = await observe_project(backend, project_name, project)
    plan = reconcile_down(project_name, project, observed, options)
    if not dry_run:
        await execute(plan, backend, sink or NullSink(), parallel=parallel)
    return Outcome(plan, not dry_run)


async def stop(
    project: Project, backend: Backend, options: StopOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Stop the selected services' containers, dependents first."""
    from composer.planner.execute import execute
    from composer.planner.observe import observe_project
    from composer.planner.teardown import reconcile_stop

    observed = await observe_project(backend, project.name, project)
    plan = reconcile_stop(project, observed, options)
    if not dry_run:
        await execute(plan, backend, sink or NullSink(), parallel=parallel)
    return Outcome(plan, not dry_run)


async def containers(project_name: str, backend: Backend, *, include_stopped: bool = False) -> list[ObservedContainer]:
    """The project's containers, by service then number (``ps``)."""
    observed = await backend.observe(project_name)
    found = [c for c in observed.containers if include_stopped or c.state in ("running", "restarting", "paused")]
    return sorted(found, key=lambda c: (c.service_name, c.number, c.name))


async def build(
    project: Project, backend: Backend, options: BuildOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Build the selected services' images (``composer build``)."""
    from composer.planner.execute import execute
    from composer.planner.images import reconcile_build

    plan = reconcile_build(project, options)
    if not dry_run:
        await execute(plan, backend, sink or NullSink(), parallel=parallel)
    return Outcome(plan, not dry_run)


async def pull(
    project: Project, backend: Backend, options: PullOptions, sink: EventSink | None = None, *,
    parallel: int | None = None, dry_run: bool = False,
) -> Outcome:
    """Pull the selected services' images (``composer pull``); see composer.planner.images."""
    from composer.planner.execute import execute
    from composer.planner.images import reconcile_pull

    observed = await backend.observe(project.name)
    plan = reconcile_pull(project, observed.images, options)
    if not dry_run:
        await execute(plan, backend, sink or NullSink(), parallel=parallel)
    return Outcome(plan, not dry_run)


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
    from composer.planner.execute import parallel_limit
    from composer.planner.images import push_targets, repository_of

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
