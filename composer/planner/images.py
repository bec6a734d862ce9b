"""Plans for ``build``, ``pull`` and ``push``: which images, and why, by Compose v2's rules.

Pure functions, like the reconciler: no I/O, no engine. ``build`` and ``pull`` are Plans of
BUILD_IMAGE / PULL_IMAGE operations (independent, so the executor runs them in parallel);
``push`` is a list of references, since it only talks to registries.

v2's rules:

- ``build`` builds every selected service that has ``build:``, tagged ``image`` or
  ``<project>-<service>``; other services are ignored.
- ``pull`` pulls every selected service's ``image``, skipping services without one, with
  ``pull_policy`` ``never`` or ``build``, with ``missing`` when the image is present, and (with
  ``--ignore-buildable``) services that can build it. An image shared by services is pulled once.
  A failure is only a warning for a service that can build its image, or with
  ``--ignore-pull-failures``.
- ``push`` pushes ``image`` and ``build.tags`` of every selected service with both ``build`` and
  ``image``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from composer.contract.observed import image_present
from composer.contract.options import BuildOptions, PullOptions, PushOptions
from composer.contract.plan import ImagePayload, OpKind, Plan
from composer.errors import PlanError
from composer.planner.builder import PlanBuilder
from composer.planner.container_specs import build_spec, context_services, image_name

if TYPE_CHECKING:
    from composer.spec.models import Project, ServiceConfig


def _selected(project: Project, services: tuple[str, ...], with_dependencies: bool) -> list[ServiceConfig]:
    """The selected services, by name. :raises SpecValidationError: an unknown service."""
    chosen = project.with_selected_services(services, include_dependencies=with_dependencies)
    return [chosen.services[name] for name in sorted(chosen.services)]


def reconcile_build(project: Project, options: BuildOptions | None = None) -> Plan:
    """One BUILD_IMAGE per image of the selected services that have ``build:``, and of the
    services their ``build.additional_contexts`` name (``service:<name>``), each of those first."""
    options = options or BuildOptions()
    plan = PlanBuilder()
    ops: dict[str, int] = {}  # image -> its build

    def add(service: ServiceConfig, cause: str, path: tuple[str, ...]) -> int:
        image = image_name(project.name, service)
        if image in ops:
            return ops[image]
        if service.name in path:
            raise PlanError(f"service {service.name}: build.additional_contexts: a cycle ({' -> '.join(path)} -> "
                            f"{service.name})")
        after = [add(other, f"additional_contexts of {service.name}", (*path, service.name))
                 for other in context_services(project, service).values()]
        spec = build_spec(project.name, service, args=dict(options.args), no_cache=options.no_cache,
                          pull=options.pull, project=project)
        ops[image] = plan.add(OpKind.BUILD_IMAGE, f"image:{image}", cause, ImagePayload(image, service, "build", spec),
                              after)
        return ops[image]

    for service in _selected(project, options.services, options.with_dependencies):
        if service.build is not None:
            add(service, "build", ())
    return plan.build()


def reconcile_pull(project: Project, images: frozenset[str], options: PullOptions | None = None) -> Plan:
    """One PULL_IMAGE (policy ``always``) per image to pull; skipped services leave a warning-free
    gap, as v2 only says "Skipped" for them. ``images`` are the local ones."""
    options = options or PullOptions()
    plan = PlanBuilder()
    seen: set[str] = set()
    for service in _selected(project, options.services, options.include_deps):
        image = service.image
        if not image or image in seen:
            continue
        policy = service.pull_policy or ""
        if policy in ("never", "build"):
            continue
        if policy == "missing" and image_present(image, images):
            continue
        if service.build is not None and options.ignore_buildable:
            continue
        seen.add(image)
        best_effort = options.ignore_failures or service.build is not None
        plan.add(OpKind.PULL_IMAGE, f"image:{image}", "pull", ImagePayload(image, service, "always"),
                 best_effort=best_effort)
    return plan.build()


def push_targets(project: Project, options: PushOptions | None = None) -> list[tuple[ServiceConfig, str]]:
    """(service, reference) for each reference to push, in service order, each reference once."""
    options = options or PushOptions()
    targets: list[tuple[ServiceConfig, str]] = []
    seen: set[str] = set()
    for service in _selected(project, options.services, False):
        if service.build is None or not service.image:
            continue
        for reference in (service.image, *service.build.tags):
            if reference not in seen:
                seen.add(reference)
                targets.append((service, reference))
    return targets
