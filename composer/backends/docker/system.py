"""``composer system df | prune`` on the docker backend: the engine's own ``/system/df`` and
``/<kind>/prune`` endpoints, added up as the docker CLI does (docker/cli's formatter/disk_usage.go
and system prune). ``check`` is dockerd's business: composer leaves nothing of its own there
beyond containers, networks and volumes, which ``down`` and ``prune`` remove."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from composer.contract.system import Finding, PruneOptions, PruneReport, UsageRow
from composer.errors import UnsupportedFeatureError

if TYPE_CHECKING:
    from composer.contract.system import SystemCommands

RUNNING = ("running", "paused", "restarting")


def usage_rows(df: dict[str, Any]) -> list[UsageRow]:
    """The CLI's four rows from the engine's ``/system/df`` answer."""
    images = df.get("Images") or []
    layers = int(df.get("LayersSize") or 0)
    used = sum(int(i["Size"]) - int(i["SharedSize"]) for i in images
               if i.get("Containers") and int(i.get("Size", -1)) != -1 and int(i.get("SharedSize", -1)) != -1)
    containers = df.get("Containers") or []
    size_rw = [(int(c.get("SizeRw") or 0), c.get("State") in RUNNING) for c in containers]
    volumes = df.get("Volumes") or []
    usage = [v.get("UsageData") or {} for v in volumes]
    volume_sizes = [(int(u.get("Size", -1)), int(u.get("RefCount", 0))) for u in usage]
    cache = df.get("BuildCache") or []
    return [
        UsageRow("Images", len(images), sum(1 for i in images if i.get("Containers")), layers, max(0, layers - used)),
        UsageRow("Containers", len(containers), sum(1 for _, running in size_rw if running),
                 sum(size for size, _ in size_rw), sum(size for size, running in size_rw if not running)),
        UsageRow("Local Volumes", len(volumes), sum(1 for _, refs in volume_sizes if refs > 0),
                 sum(size for size, _ in volume_sizes if size != -1),
                 sum(size for size, refs in volume_sizes if size != -1 and refs == 0)),
        UsageRow("Build Cache", len(cache), sum(1 for c in cache if c.get("InUse")),
                 sum(int(c.get("Size") or 0) for c in cache if not c.get("Shared")),
                 sum(int(c.get("Size") or 0) for c in cache if not c.get("Shared") and not c.get("InUse"))),
    ]


def filters(options: PruneOptions, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = dict(extra)
    if options.until is not None:
        found["until"] = str(int(options.until))
    labels = [label for label in options.labels if not label.startswith("!")]
    negated = [label[1:] for label in options.labels if label.startswith("!")]
    if labels:
        found["label"] = labels
    if negated:
        found["label!"] = negated
    return found


class DockerSystem:
    """The docker backend's ``composer system`` commands, against the engine the docker CLI uses."""

    def __init__(self) -> None:
        self._client: Any = None

    def _api(self) -> Any:
        if self._client is None:
            from composer.backends.docker.client import connect_from_env

            self._client = connect_from_env()
        return self._client

    def check(self, *, fix: bool = False) -> list[Finding]:
        raise UnsupportedFeatureError("composer system check looks for the native backend's residue; dockerd keeps "
                                      "its own (docker system df, docker system prune)", backend_name="docker",
                                      operation="system check")

    def disk_usage(self) -> list[UsageRow]:
        from composer.backends.docker.errors import translated

        with translated("system df"):
            return usage_rows(self._api().df())

    def prune(self, options: PruneOptions) -> PruneReport:
        from composer.backends.docker.errors import translated

        api = self._api()
        report = PruneReport()
        reclaimed = 0
        with translated("system prune"):
            answer = api.prune_containers(filters=filters(options)) or {}
            report.containers.extend(answer.get("ContainersDeleted") or [])
            reclaimed += int(answer.get("SpaceReclaimed") or 0)
            answer = api.prune_networks(filters=filters(options)) or {}
            report.networks.extend(answer.get("NetworksDeleted") or [])
            if options.volumes:
                volume_filters = filters(options)
                volume_filters.pop("until", None)  # the engine refuses until= on volumes, so does the CLI
                answer = api.prune_volumes(filters=volume_filters) or {}
                report.volumes.extend(answer.get("VolumesDeleted") or [])
                reclaimed += int(answer.get("SpaceReclaimed") or 0)
            answer = api.prune_images(filters=filters(options, dangling=str(not options.all).lower())) or {}
            for item in answer.get("ImagesDeleted") or []:
                report.images.extend(f"{key.lower()}: {value}" for key, value in item.items())
            reclaimed += int(answer.get("SpaceReclaimed") or 0)
            answer = api._result(api._post(api._url("/build/prune"), params=build_prune_params(options)), True) or {}
            report.build_cache.extend(answer.get("CachesDeleted") or [])
            reclaimed += int(answer.get("SpaceReclaimed") or 0)
        return PruneReport(report.containers, report.networks, report.volumes, report.images, report.build_cache,
                           reclaimed)


    def prune_build_cache(self, options: PruneOptions) -> PruneReport:
        from composer.backends.docker.errors import translated

        api = self._api()
        with translated("builder prune"):
            answer = api._result(api._post(api._url("/build/prune"), params=build_prune_params(options)), True) or {}
        return PruneReport(build_cache=list(answer.get("CachesDeleted") or []),
                           reclaimed=int(answer.get("SpaceReclaimed") or 0))


def build_prune_params(options: PruneOptions, now: float | None = None) -> dict[str, str]:
    """/build/prune's parameters: the engine reads ``until`` as a Go duration (BuildKit's keep
    duration: "unused for"), never a timestamp, so the time is sent as the seconds since it."""
    import time

    params = {"all": "1" if options.all else "0"}
    if options.until is not None:
        since = max(0, int((time.time() if now is None else now) - options.until))
        params["filters"] = json.dumps({"until": [f"{since}s"]})
    return params


if TYPE_CHECKING:  # mypy checks that the class keeps to the contract
    _offered: type[SystemCommands] = DockerSystem
