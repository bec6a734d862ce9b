"""The configuration hash that decides whether a container must be recreated.

A container is labelled with the hash of the service it was created from; when the hash of
the service in the file differs, the container has diverged. Fields that never change a
running container (how the image is obtained, how many replicas run, what the service waits
for) are dropped before hashing, as Compose v2 does, so changing them recreates nothing.
The hash is composer's own: a stack started by Compose v2 diverges once, on the first
``composer up``. This module does no I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.spec.models import NetworkConfig, Project, ServiceConfig, VolumeConfig

# Top-level service fields that must not cause a recreate.
_IGNORED_FIELDS = frozenset({"build", "pull_policy", "pull_refresh_after", "scale", "depends_on", "profiles",
                             "develop", "extends", "post_start", "pre_stop"})


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# id(service) -> (service, hash): frozen models, so a hash once known stays right; the service is
# kept so that its id is never reused by another object while the entry lives.
_KNOWN: dict[int, tuple[ServiceConfig, str]] = {}


def config_hash(service: ServiceConfig) -> str:
    """sha256 (hex) of the canonical JSON of ``service`` without the fields that must not
    cause a recreate (build, pull_policy, scale, deploy.replicas, depends_on, profiles,
    develop, extends, hooks). Deterministic across runs and processes."""
    known = _KNOWN.get(id(service))
    if known is not None and known[0] is service:
        return known[1]
    digest = _config_hash(service)
    _remember(service, digest)
    return digest


def _remember(service: ServiceConfig, digest: str) -> None:
    if len(_KNOWN) >= 4096:  # a long-lived library user loads many projects: keep this bounded
        _KNOWN.clear()
    _KNOWN[id(service)] = (service, digest)


class ServiceHashes:
    """The services' configuration hashes as values kept in the CLI's project cache
    (composer.spec.cache.Derived): the first model_dump of a run builds pydantic's serializers,
    ~35 ms of every ``up``, which a cached project then skips."""

    def compute(self, project: Project) -> dict[str, str]:
        return {name: config_hash(service) for name, service in project.services.items()}

    def restore(self, project: Project, values: Any) -> None:
        for name, service in project.services.items():
            digest = values.get(name) if isinstance(values, dict) else None
            if isinstance(digest, str):
                _remember(service, digest)


def _config_hash(service: ServiceConfig) -> str:
    data = service.model_dump(mode="json", exclude=set(_IGNORED_FIELDS))
    deploy = data.get("deploy")
    if isinstance(deploy, dict):
        deploy.pop("replicas", None)
    return _digest(data)


def network_hash(config: NetworkConfig) -> str:
    """sha256 of a network's configuration (labels included)."""
    return _digest(config.model_dump(mode="json"))


def volume_hash(config: VolumeConfig) -> str:
    """sha256 of a volume's configuration (labels included)."""
    return _digest(config.model_dump(mode="json"))
