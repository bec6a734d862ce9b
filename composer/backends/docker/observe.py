"""Engine listings -> ObservedState, through the com.docker.compose.* labels (pure).

Accepts both shapes the engine returns for a container: the list entry (``State`` a string,
health and exit code only in the ``Status`` text) and the inspect document (``State`` an
object). Recorded engine JSON in tests/unit/backends/docker/data/ pins both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from composer import labels
from composer.contract.backend import ContainerState
from composer.contract.observed import ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume, PortMapping

_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_EXIT_IN_STATUS = re.compile(r"^Exited \((-?\d+)\)")

Json = Mapping[str, Any]


def _labels(item: Json) -> Mapping[str, str]:
    found = item.get("Labels")
    if found is None:
        found = (item.get("Config") or {}).get("Labels")
    return found or {}


def container_name(item: Json) -> str:
    names = item.get("Names")
    name = names[0] if names else item.get("Name", "")
    return str(name).lstrip("/")


def container_state(item: Json) -> ContainerState:
    """Status, health, exit code and OOM kill of a listed or inspected container."""
    state = item.get("State")
    if isinstance(state, Mapping):
        health = (state.get("Health") or {}).get("Status") or None
        status = str(state.get("Status", ""))
        exit_code = state.get("ExitCode") if status in ("exited", "dead") else None
        return ContainerState(status, None if health == "none" else health, exit_code, bool(state.get("OOMKilled")))
    status = str(state or "")
    text = str(item.get("Status") or "")
    match = _HEALTH_IN_STATUS.search(text)
    health = None if match is None else match.group(1).removeprefix("health: ")
    exit_match = _EXIT_IN_STATUS.match(text)
    exit_code = int(exit_match.group(1)) if exit_match else None
    return ContainerState(status, health, exit_code)


def observed_container(item: Json) -> ObservedContainer | None:
    """None for a container without composer/Compose labels."""
    found = _labels(item)
    service_name = found.get(labels.SERVICE)
    if service_name is None:
        return None
    state = container_state(item)
    number = found.get(labels.CONTAINER_NUMBER, "")
    image_id = item.get("ImageID") if "Names" in item else item.get("Image")  # list entry, or inspect
    return ObservedContainer(
        container_id=str(item.get("Id", "")),
        name=container_name(item),
        service_name=service_name,
        number=int(number) if number.isdigit() else 0,
        config_hash=found.get(labels.CONFIG_HASH, ""),
        state=state.status,
        health=state.health,
        exit_code=state.exit_code,
        oneoff=found.get(labels.ONEOFF, "False").lower() == "true",
        image_id=str(image_id) if image_id else None,
        oom_killed=state.oom_killed,
        **_listing_fields(item),
    )


def _created(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        from datetime import datetime

        try:
            return datetime.fromisoformat(value[:26].rstrip("Z") + "+00:00").timestamp()
        except ValueError:
            return None
    return None


def port_mappings(item: Json) -> tuple[PortMapping, ...]:
    """Ports of a listed (``Ports`` a list) or inspected (``NetworkSettings.Ports``) container."""
    found: list[PortMapping] = []
    listed = item.get("Ports")
    if isinstance(listed, list):
        for entry in listed:
            public = entry.get("PublicPort")
            found.append(PortMapping(int(entry.get("PrivatePort", 0)), str(entry.get("Type") or "tcp"),
                                     entry.get("IP") or None, int(public) if public else None))
    else:
        settings = (item.get("NetworkSettings") or {}).get("Ports") or {}
        for key, bindings in settings.items():
            port, _, protocol = str(key).partition("/")
            if not bindings:
                found.append(PortMapping(int(port), protocol or "tcp"))
            for binding in bindings or ():
                host_port = binding.get("HostPort")
                found.append(PortMapping(int(port), protocol or "tcp", binding.get("HostIp") or None,
                                         int(host_port) if host_port else None))
    unique = dict.fromkeys(found)
    # IPv4 bindings first, as the engine lists them: dockerd 20.10 may give the IPv6 binding of a port
    # another host port, and v2's `port` answers with the first binding the engine lists.
    return tuple(sorted(unique, key=lambda p: (p.private_port, p.protocol, ":" in (p.host_ip or ""),
                                               p.host_port or 0, p.host_ip or "")))


def _listing_fields(item: Json) -> dict[str, Any]:
    """image, command, created, status_text, ports, volumes, labels, networks and mounts, from either shape."""
    mounts = item.get("Mounts") or ()
    listing = {
        "volumes": tuple(str(m.get("Name")) for m in mounts if m.get("Type") == "volume" and m.get("Name")),
        "labels": tuple(sorted(_labels(item).items())),
        "networks": tuple(sorted((item.get("NetworkSettings") or {}).get("Networks") or {})),
        "mounts": tuple(str(m.get("Name") or m.get("Source") or "") for m in mounts),
        "local_volumes": sum(1 for m in mounts if m.get("Driver") == "local"),
    }
    if "Names" in item:  # a list entry
        return {"image": str(item.get("Image") or ""), "command": str(item.get("Command") or ""),
                "created": _created(item.get("Created")), "status_text": str(item.get("Status") or ""),
                "ports": port_mappings(item), **listing}
    config = item.get("Config") or {}
    command = [str(item.get("Path") or ""), *(str(arg) for arg in item.get("Args") or ())]
    return {"image": str(config.get("Image") or ""), "command": " ".join(part for part in command if part),
            "created": _created(item.get("Created")), "status_text": "", "ports": port_mappings(item),
            **listing}


def observed_network(item: Json) -> ObservedNetwork | None:
    found = _labels(item)
    key = found.get(labels.NETWORK)
    if key is None:
        return None
    return ObservedNetwork(str(item.get("Id", "")), str(item.get("Name", "")), key, found.get(labels.CONFIG_HASH))


def observed_volume(item: Json) -> ObservedVolume | None:
    found = _labels(item)
    key = found.get(labels.VOLUME)
    if key is None:
        return None
    return ObservedVolume(str(item.get("Name", "")), key, found.get(labels.CONFIG_HASH),
                          driver=str(item.get("Driver") or "local"), labels=tuple(sorted(found.items())),
                          mountpoint=str(item.get("Mountpoint") or ""), scope=str(item.get("Scope") or "local"))


def image_references(images: Iterable[Json]) -> frozenset[str]:
    """Every local tag and digest, plus ``name`` for ``name:latest`` and each image id."""
    found: set[str] = set()
    for image in images:
        for tag in image.get("RepoTags") or ():
            if tag == "<none>:<none>":
                continue
            found.add(tag)
            if tag.endswith(":latest"):
                found.add(tag.removesuffix(":latest"))
        found.update(digest for digest in image.get("RepoDigests") or () if digest != "<none>@<none>")
        if image.get("Id"):
            found.add(str(image["Id"]))
    return frozenset(found)


def image_ids(images: Iterable[Json]) -> tuple[tuple[str, str], ...]:
    """(reference, id) for every reference image_references finds."""
    found = {(reference, str(image["Id"])) for image in images if image.get("Id")
             for reference in image_references([image])}
    return tuple(sorted(found))


def project_images(project_name: str, images: Iterable[Json]) -> tuple[tuple[str, str], ...]:
    """(first tag, service) of the tagged images labelled with the project, as v2's ``down --rmi`` finds them."""
    found = set()
    for image in images:
        found_labels = image.get("Labels") or (image.get("Config") or {}).get("Labels") or {}  # listed, inspected
        tags = [tag for tag in image.get("RepoTags") or () if tag != "<none>:<none>"]
        if found_labels.get(labels.PROJECT) == project_name and tags:
            found.add((tags[0], str(found_labels.get(labels.SERVICE, ""))))
    return tuple(sorted(found))


def external_network(item: Json) -> ObservedNetwork:
    """A network asked about by name (``external: true``): its key is empty."""
    return ObservedNetwork(str(item.get("Id", "")), str(item.get("Name", "")), "")


def external_volume(item: Json) -> ObservedVolume:
    return ObservedVolume(str(item.get("Name", "")), "")


def observed_state(
    project_name: str,
    containers: Iterable[Json],
    networks: Iterable[Json] = (),
    volumes: Iterable[Json] = (),
    images: Iterable[Json] = (),
    *,
    external_networks: Iterable[Json] = (),
    external_volumes: Iterable[Json] = (),
) -> ObservedState:
    """The snapshot of one project, sorted so that it compares and prints deterministically.

    ``external_*`` are the engine's documents of the external resources found by name; one the
    project labels as its own is listed once, with its key.
    """

    images = list(images)  # read twice: references, and the project's own images

    def belongs(item: Json) -> bool:
        return _labels(item).get(labels.PROJECT) == project_name

    found_containers = [c for c in map(observed_container, filter(belongs, containers)) if c is not None]
    found_networks = [n for n in map(observed_network, filter(belongs, networks)) if n is not None]
    found_volumes = [v for v in map(observed_volume, filter(belongs, volumes)) if v is not None]
    own_networks = {n.name for n in found_networks}
    own_volumes = {v.name for v in found_volumes}
    found_networks += [n for n in map(external_network, external_networks) if n.name not in own_networks]
    found_volumes += [v for v in map(external_volume, external_volumes) if v.name not in own_volumes]
    return ObservedState(
        project_name=project_name,
        containers=tuple(sorted(found_containers, key=lambda c: (c.service_name, c.oneoff, c.number, c.name))),
        networks=tuple(sorted(found_networks, key=lambda n: (n.key, n.name))),
        volumes=tuple(sorted(found_volumes, key=lambda v: (v.key, v.name))),
        images=image_references(images),
        project_images=project_images(project_name, images),
        image_ids=image_ids(images),
    )
