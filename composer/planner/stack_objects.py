"""Reading the secrets and configs a stack deploys: the one step of planning a stack that reads
files, as composer.planner.snapshot is the one that awaits. The reconciler gets the result.

On a service-level engine a secret or config is a cluster object that never changes, so its
engine name carries a digest of its content: ``<stack>_<key>-<12 hex>``. A new content is a new
object, and the services that use it roll to it (what ``docker stack deploy`` cannot do: it
names them ``<stack>_<key>`` and fails on a change). External ones, and ones with ``name:``
(which the user owns), keep their name.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from composer.contract.services import ClusterObject, ObjectKind
from composer.errors import SpecValidationError
from composer.labels import STACK_NAMESPACE, STACK_OBJECT_KEY

if TYPE_CHECKING:
    from composer.spec.models import ConfigObjConfig, Project, SecretConfig

MAX_OBJECT_BYTES = 500 * 1024
"""Swarm refuses larger secrets and configs (500 KiB); refused before anything is created."""


def _content(project: Project, kind: ObjectKind, key: str, item: SecretConfig | ConfigObjConfig) -> bytes:
    where = f"{kind}s.{key}"
    content: str | None = getattr(item, "content", None)  # configs only
    if content is not None:
        data = content.encode()
    elif item.environment is not None:
        if item.environment not in project.environment:
            raise SpecValidationError(f"environment variable {item.environment} is not set", path=where)
        data = project.environment[item.environment].encode()
    elif item.file is not None:
        try:
            with open(item.file, "rb") as handle:
                data = bytes(handle.read(MAX_OBJECT_BYTES + 1))
        except OSError as exc:
            raise SpecValidationError(f"cannot read {item.file}: {exc.strerror}", path=where) from None
    else:
        raise SpecValidationError(f"{kind} {key} has no file, environment or content", path=where)
    if len(data) > MAX_OBJECT_BYTES:
        raise SpecValidationError(f"{kind} {key} is larger than Swarm's limit of 500 KiB", path=where)
    return data


def object_name(project: Project, kind: ObjectKind, key: str, data: bytes | None) -> str:
    """The engine name of a secret or config (see the module's docstring)."""
    item = (project.secrets if kind == "secret" else project.configs)[key]
    default = f"{project.name}_{key}"  # the loader names every one so, as v2 does
    if item.external or (item.name and item.name != default):
        return item.name or key
    assert data is not None
    return f"{project.name}_{key}-{hashlib.sha256(data).hexdigest()[:12]}"


def stack_objects(project: Project) -> dict[tuple[ObjectKind, str], ClusterObject]:
    """The secrets and configs the project's services use, by (kind, key), content read; external
    ones are left out (they must exist).

    :raises SpecValidationError: one cannot be read, or is too large.
    """
    found: dict[tuple[ObjectKind, str], ClusterObject] = {}
    for service in project.services.values():
        grants: list[tuple[ObjectKind, str]] = [("secret", m.source) for m in service.secrets]
        grants += [("config", m.source) for m in service.configs]
        for kind, key in grants:
            items = project.secrets if kind == "secret" else project.configs
            item = items.get(key)
            if item is None or item.external or (kind, key) in found:
                continue
            data = _content(project, kind, key, item)
            labels = {**item.labels, STACK_NAMESPACE: project.name, STACK_OBJECT_KEY: key}
            found[(kind, key)] = ClusterObject(kind, key, object_name(project, kind, key, data), data, labels)
    return found
