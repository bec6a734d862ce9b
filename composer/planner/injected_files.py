"""Secrets and configs whose content Compose holds, written into the container after create.

A secret from ``environment:``, a config from ``content:`` or ``environment:`` has no host file
to bind: v2 copies each into the created container as a one-file tar archive (pkg/compose/
secrets.go, ``injectSecrets``/``injectConfigs``), at ``/run/secrets/<name>`` (secrets) or the
config's target (``/<name>`` by default), owned by ``uid``/``gid`` (default root) with ``mode``
(default 0444). Every backend does the same through its ``copy_to_container``: on docker the
file lands in the container's writable layer as with v2; on native in the container's writable
layer too, a directory only root can read on the host (composer.backends.native.runtime.api).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from composer.contract.backend import CONFIGS_DIR, SECRETS_DIR, InjectedFile, file_target, injection_archive
from composer.errors import PlanError

if TYPE_CHECKING:
    from composer.contract.backend import Backend, ContainerRef, ContainerSpec
    from composer.spec.models import FileMount, Project, ServiceConfig


class _Found(NamedTuple):
    kind: str  # secret, config
    name: str
    value: InjectedFile


def injected_files(project: Project, service: ServiceConfig) -> tuple[InjectedFile, ...]:
    """The service's secrets from ``environment`` and configs from ``content``/``environment``.

    :raises PlanError: the variable a secret or config reads is not set, the service has a
        read-only root filesystem (v2's messages), or a ``uid``/``gid`` is not a number.
    """
    found: list[_Found] = []
    for grant in service.secrets:
        secret = project.secrets.get(grant.source)
        if secret is None or not secret.environment or secret.file:
            continue
        value = variable_value(project, secret.environment, "secret", secret.name or grant.source)
        found.append(_Found("secret", secret.name or grant.source,
                            _file(grant, file_target(grant.source, grant.target, SECRETS_DIR), value, "secret")))
    for grant in service.configs:
        config = project.configs.get(grant.source)
        if config is None or config.file:
            continue
        if config.environment:
            value = variable_value(project, config.environment, "config", config.name or grant.source)
        elif config.content:  # v2 skips an empty content, as it skips a config with none
            value = config.content
        else:
            continue
        found.append(_Found("config", config.name or grant.source,
                            _file(grant, file_target(grant.source, grant.target, CONFIGS_DIR), value, "config")))
    if found and service.read_only:  # nothing can be written into a read-only root filesystem
        kind, name = found[0].kind, found[0].name
        raise PlanError(f'cannot create {kind} "{name}" in read-only service {service.name}: `file` is the sole '
                        "supported option")
    return tuple(file.value for file in found)


def variable_value(project: Project, variable: str, kind: str, name: str) -> str:
    value = project.environment.get(variable)
    if value is None:
        raise PlanError(f"environment variable {variable!r} required by {kind} {name!r} is not set"
                        .replace("'", '"'))
    return value


def _file(grant: FileMount, target: str, value: str, kind: str) -> InjectedFile:
    def number(field: str, text: str | None) -> int:
        if not text:
            return 0
        if not text.isdigit():
            raise PlanError(f"{kind} {grant.source}: {field} {text!r} must be a number")
        return int(text)

    mode = grant.mode_bits
    return InjectedFile(target=target, content=value.encode(), uid=number("uid", grant.uid),
                        gid=number("gid", grant.gid), mode=0o444 if mode is None else mode)


async def create_container(backend: Backend, spec: ContainerSpec) -> ContainerRef:
    """Create the container, then write its injected files into it (v2's order: create, then
    copy). A failed copy leaves the container created, as v2 does."""
    ref = await backend.create_container(spec)
    if spec.injected_files:
        await backend.copy_to_container(ref, "/", injection_archive(spec.injected_files))
    return ref
