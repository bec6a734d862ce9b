"""A service's Compose keys as a native container records them in its config.json, decided at
create: the healthcheck and restart policy (in the runtime's and the supervisor's terms), the
file-based secrets and configs as bind mounts, the exposed ports, and the image user check."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.native.errors import error, unsupported
from composer.backends.native.runtime.init import read_image_file

if TYPE_CHECKING:
    from composer.backends.native.image.store import ImageRecord, ImageStore
    from composer.contract.backend import ContainerSpec
    from composer.spec.models import ServiceConfig

SECOND = 1_000_000_000


def _seconds(duration: Any, default: float) -> float:
    if duration is None:
        return default
    return float(duration.nanoseconds) / SECOND


def with_file_mounts(spec: ContainerSpec) -> ServiceConfig:
    """The service with its file-based secrets and configs added as read-only bind mounts, as
    v2 mounts them without Swarm (uid, gid and mode cannot apply to a bind mount)."""
    pairs = spec.file_mounts()
    if not pairs:
        return spec.service
    from composer.spec.models import ServiceVolume  # the models load lazily

    binds = tuple(ServiceVolume(type="bind", source=source, target=target, read_only=True)
                  for source, target in pairs)
    return spec.service.model_copy(update={"volumes": (*spec.service.volumes, *binds)})


def exposed_ports(service: ServiceConfig, image_config: Mapping[str, Any]) -> list[str]:
    """``80/tcp`` for each port the image exposes or the service lists under ``expose``."""
    found = list((image_config.get("config") or {}).get("ExposedPorts") or {})
    for entry in service.expose:
        ports, _, protocol = str(entry).partition("/")
        first, _, last = ports.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found += [f"{port}/{protocol or 'tcp'}" for port in range(int(first), int(last or first) + 1)]
    return list(dict.fromkeys(found))


def healthcheck(service: ServiceConfig, image_config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The effective healthcheck (the service's over the image's HEALTHCHECK), in seconds; None
    when there is none or it is disabled.

    :raises UnsupportedFeatureError: a test that is not CMD, CMD-SHELL or NONE, or an empty one.
    """
    image = (image_config.get("config") or {}).get("Healthcheck") or {}
    check = service.healthcheck
    if check is not None and check.disable:
        return None
    test = list(check.test) if check is not None and check.test is not None else list(image.get("Test") or ())
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2 or not any(part.strip() for part in test[1:]):
        raise unsupported(f"service {service.name}: healthcheck test {test!r} is not valid: it must be "
                           "[\"CMD\", args...], [\"CMD-SHELL\", command] or [\"NONE\"]")

    def pick(attribute: str, key: str, default: float) -> float:
        value = getattr(check, attribute, None) if check is not None else None
        if value is not None:
            return _seconds(value, default)
        return float(image[key]) / SECOND if image.get(key) else default

    retries = check.retries if check is not None and check.retries is not None else image.get("Retries")
    interval = pick("interval", "Interval", 30.0)
    # start_interval unset: the supervisor takes the shorter of the interval and Docker's 5 s
    return {"test": test, "interval": interval, "timeout": pick("timeout", "Timeout", 30.0),
            "start_period": pick("start_period", "StartPeriod", 0.0),
            "start_interval": pick("start_interval", "StartInterval", 0.0) or None,
            "retries": int(retries) if retries else 3}


def restart_policy(service: ServiceConfig) -> dict[str, Any] | None:
    """``restart`` (no, always, on-failure[:N], unless-stopped) or ``deploy.restart_policy``."""
    policy = service.deploy.restart_policy if service.deploy is not None else None
    if service.restart:
        name, _, maximum = service.restart.partition(":")
        if name not in ("no", "always", "on-failure", "unless-stopped"):
            raise unsupported(f"service {service.name}: unknown restart policy {service.restart!r}")
        return {"name": name, "max_attempts": int(maximum) if maximum.isdigit() else 0}
    if policy is not None:
        condition = {"none": "no", "on-failure": "on-failure", "any": "always", None: "always"}.get(policy.condition)
        if condition is None:
            raise unsupported(f"service {service.name}: unknown restart_policy condition {policy.condition!r}")
        return {"name": condition, "max_attempts": policy.max_attempts or 0,
                "delay": _seconds(policy.delay, 0.0)}
    return None


def check_user(store: ImageStore, service: ServiceConfig, record: ImageRecord, image_config: Mapping[str, Any]) -> None:
    """A user name must exist in the image's /etc/passwd (group names in /etc/group), as
    Docker checks at start; checked at create so that nothing is left behind."""
    spec = service.user or (image_config.get("config") or {}).get("User") or ""
    user, _, group = spec.partition(":")
    wanted = [("passwd", user)] if user and not user.isdigit() else []
    wanted += [("group", g) for g in [group, *service.group_add] if g and not g.isdigit()]
    if not wanted:
        return
    layers = list(reversed(store.layers(record)))

    def names(file: str) -> set[str] | None:
        for layer in layers:
            # The image's files: no symlink followed (it would lead to the host's), nothing
            # that could block (a FIFO) or never end (a device) read.
            data = _layer_file(layer.path, ("etc", file))
            if data is not None:
                return {line.split(":", 1)[0] for line in data.decode(errors="replace").splitlines()}
        return None

    for file, name in wanted:
        if name not in (names(file) or set()):
            kind = "user" if file == "passwd" else "group"
            raise error(f"service {service.name}: unable to find {kind} {name}: no matching entries in "
                         f"{file} file", "create")


def _layer_file(layer_dir: Path, parts: tuple[str, ...]) -> bytes | None:
    """A regular file of an unpacked layer, its path walked without following any symlink; None
    when it is not there as one."""
    try:
        fd = os.open(layer_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError:
                return None
            os.close(fd)
            fd = inner
        return read_image_file(parts[-1], dir_fd=fd, follow=False)
    finally:
        os.close(fd)
