"""The configuration hash that decides whether a container must be recreated.

A container is labelled with the hash of the service it was created from; when the hash of
the service in the file differs, the container has diverged. The service hash is Compose v2's
own (composer.spec.gojson: Go's JSON of the service as ``config`` prints it, without the fields
that never change a running container), so that each tool keeps the containers the other
created. This module does no I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.spec.models import NetworkConfig, Project, ServiceConfig, VolumeConfig

def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# id(model) -> (model, hash): frozen models, so a hash once known stays right; the model is kept
# so that its id is never reused by another object while the entry lives.
_KNOWN: dict[int, tuple[object, str]] = {}


def _known(model: object) -> str | None:
    found = _KNOWN.get(id(model))
    return found[1] if found is not None and found[0] is model else None


def _remember(model: object, digest: str) -> str:
    if len(_KNOWN) >= 4096:  # a long-lived library user loads many projects: keep this bounded
        _KNOWN.clear()
    _KNOWN[id(model)] = (model, digest)
    return digest


def config_hash(service: ServiceConfig) -> str:
    """Compose v2's configuration hash of ``service`` (sha256, hex): build, pull_policy, scale,
    deploy.replicas, depends_on and profiles do not count. Deterministic across runs and processes."""
    return _known(service) or _remember(service, _config_hash(service))


def network_hash(config: NetworkConfig) -> str:
    """Compose v2's configuration hash of a network (its name and labels included)."""
    return _known(config) or _remember(config, _network_hash(config))


def _network_hash(config: NetworkConfig) -> str:
    from composer.spec import gojson, render

    data = _without_extensions(config.model_dump(mode="json", by_alias=True, exclude_unset=True))
    return gojson.network_hash(render.resource_output("networks", data))


def volume_hash(config: VolumeConfig) -> str:
    """sha256 of a volume's configuration (labels included)."""
    return _known(config) or _remember(config, _digest(config.model_dump(mode="json")))


class ServiceHashes:
    """The configuration hashes of a project's services, networks and volumes as values kept in
    the CLI's project cache (composer.spec.cache.Derived): the first model_dump of a run builds
    pydantic's serializers, ~35 ms of every ``up``, which a cached project then skips."""

    def compute(self, project: Project) -> dict[str, dict[str, str]]:
        return {"services": {name: config_hash(s) for name, s in project.services.items()},
                "networks": {name: network_hash(n) for name, n in project.networks.items()},
                "volumes": {name: volume_hash(v) for name, v in project.volumes.items()}}

    def restore(self, project: Project, values: Any) -> None:
        if not isinstance(values, dict):
            return
        for kind, models in (("services", project.services), ("networks", project.networks),
                             ("volumes", project.volumes)):
            known = values.get(kind)
            for name, model in models.items():
                digest = known.get(name) if isinstance(known, dict) else None
                if isinstance(digest, str):
                    _remember(model, digest)


def _config_hash(service: ServiceConfig) -> str:
    from composer.spec import gojson, render

    # The fields the file set, as the loader's tree held them (what v2's config prints)
    data = _without_extensions(service.model_dump(mode="json", by_alias=True, exclude_unset=True))
    data.pop("name", None)
    return gojson.service_hash(render.service_output(data))


def _without_extensions(value: Any, key: str = "") -> Any:
    """The model's ``extensions`` (its x- attributes) taken out, as Go's JSON leaves them out, and
    single-number ulimits given back as numbers."""
    from composer.spec.gojson import MAPS

    if isinstance(value, dict):
        if key == "ulimits":  # a limit given as one number is that number to Go (UlimitsConfig)
            return {name: limit["single"] if isinstance(limit, dict) and limit.get("single") is not None
                    else _without_extensions(limit, name) for name, limit in value.items()}
        return {name: _without_extensions(item, name) for name, item in value.items()
                if key in MAPS or name != "extensions"}
    if isinstance(value, list):
        return [_without_extensions(item, key) for item in value]
    return value
