"""What each backend does with each key of the Compose model: the coverage guarantee.

Every field of the typed model (composer/spec/models/), nested ones included, is a key here,
named by its path from the top of a Compose file (``services.deploy.resources.limits.cpus``;
a list's or a mapping's items add nothing to the path). A backend's table (``COVERAGE`` in
``composer/backends/<name>/coverage.py``) marks each key:

- ``applied``, with the integration tests (pytest node ids) that show its effect on a real
  container of that backend;
- ``refused``, with the one line the backend emits when a file sets the key: the backend reads
  that message from its table (``refusals``), so the documentation and the error cannot differ;
- ``not applicable``, with why (Swarm-only keys on a single host, the loader's bookkeeping).

``tests/unit/contract/test_coverage.py`` walks the model and fails on a key missing from a
table; docs/compose-support.md is rendered from the tables (``scripts/compose-support`` writes it;
a unit test compares it with the committed file).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from composer.errors import UnsupportedFeatureError

if TYPE_CHECKING:
    from pydantic import BaseModel


class Status(Enum):
    APPLIED = "applied"
    REFUSED = "refused"
    NOT_APPLICABLE = "not applicable"
    IGNORED = "ignored"
    """Neither applied nor refused: a bug, each with its ``gap`` (owned by issue 19's other parts)."""


@dataclass(frozen=True, slots=True)
class Entry:
    status: Status
    note: str = ""
    """refused: the message (``<key> is not supported...``); not applicable: why; applied: a
    caveat worth a reader's eye (values refused, partial support)."""
    tests: tuple[str, ...] = ()
    """applied: integration tests (``tests/...py::test_name``) that show the key's effect."""
    gap: str = ""
    """A known gap, as the code stands (issue 19's owners fix them): the status says what happens today."""
    when: str = ""
    """refused only in that case (``an image must be built``): the backend refuses it where that
    happens, and ``refuse`` leaves it alone."""


def applied(*tests: str, note: str = "", gap: str = "") -> Entry:
    return Entry(Status.APPLIED, note, tests, gap)


def refused(message: str, *, gap: str = "", when: str = "") -> Entry:
    return Entry(Status.REFUSED, message, (), gap, when)


def not_applicable(why: str, *, gap: str = "") -> Entry:
    return Entry(Status.NOT_APPLICABLE, why, (), gap)


def ignored(gap: str) -> Entry:
    return Entry(Status.IGNORED, "", (), gap)


EXTENSIONS = not_applicable("x- extensions: kept for `config`, read by nothing (v2 likewise)")


def with_extensions(table: Mapping[str, Entry]) -> dict[str, Entry]:
    """``table`` with every model's ``extensions`` (its ``x-`` keys) marked not applicable."""
    return {**{key: EXTENSIONS for key in model_keys() if key.rpartition(".")[2] == "extensions"}, **table}


Table = Mapping[str, Entry]

SWARM = "Swarm only (a single engine has no nodes, tasks or service updates); v2 ignores it too"
BOOKKEEPING = "the loader's bookkeeping, not a key of the file"
MERGED = "the loader has merged or read it already (nothing is left for a backend)"

SINGLE_HOST: Table = {
    # The loader's own fields of the typed project.
    "working_dir": not_applicable(BOOKKEEPING + ": the project folder"),
    "disabled_services": not_applicable(BOOKKEEPING + ": services left out by profiles (their keys are "
                                        "those of services)"),
    "environment": not_applicable(BOOKKEEPING + ": the interpolation environment"),
    "files": not_applicable(BOOKKEEPING + ": the files read (labelled on each container)"),
    "warnings": not_applicable(BOOKKEEPING + ": messages printed by the loader"),
    "profiles": not_applicable("the loader selects the services of the active profiles"),
    "services.name": not_applicable(BOOKKEEPING + ": the service's key"),
    "services.profiles": not_applicable("the loader selects the services of the active profiles"),
    "services.extends.service": not_applicable(MERGED),
    "services.extends.file": not_applicable(MERGED),
    "services.env_file.path": not_applicable(MERGED + " into environment"),
    "services.env_file.required": not_applicable(MERGED + " into environment"),
    "services.env_file.format": not_applicable(MERGED + " into environment"),
    "services.label_file": not_applicable(MERGED + " into labels"),
    "services.depends_on.required": not_applicable("the loader drops a missing optional dependency"),
    # Swarm's keys: v2 ignores them on a single engine.
    "services.deploy.mode": not_applicable(SWARM),
    "services.deploy.endpoint_mode": not_applicable(SWARM),
    "services.deploy.labels": not_applicable(SWARM + " (service labels, not container labels)"),
    **{f"services.deploy.{section}.{key}": not_applicable(SWARM)
       for section in ("rollback_config", "update_config")
       for key in ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")},
    "services.deploy.placement.constraints": not_applicable(SWARM),
    "services.deploy.placement.preferences.spread": not_applicable(SWARM),
    "services.deploy.placement.max_replicas_per_node": not_applicable(SWARM),
    "services.deploy.resources.limits.generic_resources.discrete_resource_spec.kind": not_applicable(SWARM),
    "services.deploy.resources.limits.generic_resources.discrete_resource_spec.value": not_applicable(SWARM),
    "services.deploy.resources.reservations.generic_resources.discrete_resource_spec.kind": not_applicable(SWARM),
    "services.deploy.resources.reservations.generic_resources.discrete_resource_spec.value": not_applicable(SWARM),
    "services.deploy.resources.reservations.cpus": not_applicable(
        "a Swarm scheduling hint: an engine reserves no CPU; v2 ignores it too"),
    "services.deploy.resources.reservations.pids": not_applicable("pids are only limited; v2 ignores it too"),
    "services.deploy.restart_policy.window": not_applicable(SWARM),
    "services.ports.mode": not_applicable("ingress is Swarm's routing mesh; a single engine publishes on the host "
                                          "either way"),
    "services.ports.name": not_applicable("a label for humans and Swarm; v2 ignores it too"),
    "services.ports.app_protocol": not_applicable("a hint for Swarm and proxies; v2 ignores it too"),
    "services.networks.priority": not_applicable("orders the networks joined, which the planner does (v2 likewise)"),
    "secrets.driver": not_applicable(SWARM + " (secret stores)"),
    "secrets.driver_opts": not_applicable(SWARM + " (secret stores)"),
    "secrets.template_driver": not_applicable(SWARM),
    "secrets.labels": not_applicable(SWARM + " (the secret object's labels)"),
    "configs.template_driver": not_applicable(SWARM),
    "configs.labels": not_applicable(SWARM + " (the config object's labels)"),
    "networks.attachable": not_applicable("Swarm overlay networks only; a bridge takes any container"),
    "services.attach": not_applicable("read by the CLI (`up` follows the service's output or not)"),
    "services.pull_refresh_after": not_applicable("read by the planner with pull_policy"),
}
"""Keys that are the same on every single-host backend (one engine, no Swarm)."""

WATCH_KEYS = (*(f"services.develop.watch.{key}" for key in ("path", "action", "target", "ignore", "include",
                                                            "initial_sync")),
              *(f"services.develop.watch.exec.{key}" for key in ("command", "user", "privileged", "working_dir",
                                                                 "environment")))
"""Read by ``watch`` (composer/planner/watch.py) through the backend's copy, exec and restart."""

# Refused for every backend by the planner (composer/planner/refusals.py formats these lines):
# composer runs neither the Docker Model Runner nor a provider plugin.
MODELS_REFUSAL = "models: AI models (the Docker Model Runner) are not supported by composer (model {models})"
PROVIDER_REFUSAL = "provider: services run by a provider (type {type}) are not supported by composer"
_PLANNER = "a selected service uses it: the planner refuses it before any pull"
NO_BACKEND: Table = {
    "services.provider.type": refused(PROVIDER_REFUSAL, when=_PLANNER),
    "services.provider.options": refused(PROVIDER_REFUSAL, when=_PLANNER),
    "services.models.endpoint_var": refused(MODELS_REFUSAL, when=_PLANNER),
    "services.models.model_var": refused(MODELS_REFUSAL, when=_PLANNER),
    **{f"models.{key}": refused(MODELS_REFUSAL, when=_PLANNER + " (an unused model is left out by the loader, as v2 "
                                                  "leaves it)")
       for key in ("name", "model", "context_size", "runtime_flags")},
}
"""Keys no backend runs: refused, in the planner's words, with the service that uses them."""


# --- the walk of the model -----------------------------------------------------------------


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, tuple, Mapping, Annotated)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _models_in(typing.get_args(annotation)[0])
        return
    if origin is not None or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            yield from _models_in(argument)


def model_keys(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every field's key under ``model`` (default: the whole project), nested models' fields
    included; a field that holds models is named by its own fields only."""
    if model is None:
        from composer.spec.models import Project

        model = Project
    keys: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if key == "disabled_services":  # services too, left out by profiles: their keys are services.*
            keys.append(key)
            continue
        nested = list(dict.fromkeys(_models_in(field.annotation)))
        if not nested:
            keys.append(key)
        for inner in nested:
            keys.extend(k for k in model_keys(inner, key + ".") if k not in keys)
    return keys


# --- refusals --------------------------------------------------------------------------------


def _is_set(value: Any) -> bool:
    """Whether a field holds something a backend must act on: not None, False, 0-free empty."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | tuple | list | Mapping) and len(value) == 0)


def _values(model: Any, parts: list[str]) -> Iterator[Any]:
    """The values at ``parts`` under ``model``, through tuples and mappings of models."""
    if not parts:
        yield model
        return
    if model is None:
        return
    if isinstance(model, tuple | list):
        for item in model:
            yield from _values(item, parts)
        return
    if isinstance(model, Mapping):
        for item in model.values():
            yield from _values(item, parts)
        return
    value = getattr(model, parts[0], None)
    yield from _values(value, parts[1:])


def set_refused(table: Table, service: Any) -> list[tuple[str, str]]:
    """(key, message) of each refused ``services.*`` key that ``service`` sets, in table order."""
    found = []
    for key, entry in table.items():
        if entry.status is Status.REFUSED and not entry.when and key.startswith("services."):
            if any(_is_set(value) for value in _values(service, key.split(".")[1:])):
                found.append((key, entry.note))
    return found


def refuse(table: Table, backend: str, service: Any, operation: str = "create") -> None:
    """Raise the first refusal of ``service``'s keys, as the table words it.

    :raises UnsupportedFeatureError: ``service`` sets a key the backend refuses.
    """
    for _key, message in set_refused(table, service):
        raise UnsupportedFeatureError(f"service {service.name}: {message}", backend_name=backend,
                                      operation=operation)


def refuse_project(table: Table, backend: str, project: Any, operation: str = "create") -> None:
    """``refuse`` each enabled service, then the top-level resources' refused keys.

    :raises UnsupportedFeatureError: the project sets a key the backend refuses.
    """
    for service in project.services.values():
        refuse(table, backend, service, operation)
    for key, entry in table.items():
        section, _, rest = key.partition(".")
        if entry.status is not Status.REFUSED or entry.when or section == "services" or not rest:
            continue
        for name, resource in (getattr(project, section, None) or {}).items():
            if section in ("secrets", "configs") and not _granted(project, section, name):
                continue  # declared and unused: v2 does not look at it either
            if any(_is_set(value) for value in _values(resource, rest.split("."))):
                raise UnsupportedFeatureError(f"{section.rstrip('s')} {name}: {entry.note}", backend_name=backend,
                                              operation=operation)


def _granted(project: Any, section: str, name: str) -> bool:
    return any(grant.source == name for service in project.services.values() for grant in getattr(service, section))


# --- the document ----------------------------------------------------------------------------


def _cell(entry: Entry | None) -> str:
    if entry is None:
        return "?"
    text = entry.status.value
    if entry.note:
        text += f": {entry.note}"
    if entry.when:
        text += f" (when {entry.when})"
    if entry.status is Status.APPLIED and not entry.tests:
        text += " (no integration test yet)"
    if entry.gap:
        text += f" (gap: {entry.gap})"
    return text.replace("|", "\\|")


def render(tables: Mapping[str, Table]) -> str:
    """docs/compose-support.md: one row per key, one column per backend."""
    backends = list(tables)
    lines = [
        "# Compose support by backend",
        "",
        "Generated from the backends' coverage tables (`composer/backends/*/coverage.py`) by",
        "`scripts/compose-support`; do not edit by hand.",
        "",
        "Each key of the Compose model is `applied` (integration tests show its effect on a real",
        "container), `refused` (with the one line the backend prints, before it creates anything) or",
        "`not applicable` (with why). A gap names what the code does not do yet.",
        "",
        "| key | " + " | ".join(backends) + " |",
        "|---|" + "---|" * len(backends),
    ]
    for key in model_keys():
        lines.append(f"| `{key}` | " + " | ".join(_cell(tables[b].get(key)) for b in backends) + " |")
    return "\n".join(lines) + "\n"
