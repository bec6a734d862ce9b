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
