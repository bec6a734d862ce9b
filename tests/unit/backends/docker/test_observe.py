"""Recorded engine JSON (data/*.json, captured from Docker 20.10 / API 1.41) -> ObservedState."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from composer.backends.docker import observe
from composer.contract.backend import ContainerState

DATA = Path(__file__).parent / "data"
PROJECT = "composer-rec"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_observed_state_from_listings() -> None:
    state = observe.observed_state(
        PROJECT, load("containers_list.json"), load("networks_list.json"), load("volumes_list.json")["Volumes"],
        load("images_list.json"),
    )
    summary = [(c.service_name, c.number, c.state, c.health, c.exit_code, c.config_hash) for c in state.containers]
    assert summary == [
        ("job", 1, "exited", None, 3, "def"),
        ("web", 1, "running", "healthy", None, "abc"),
        ("web", 2, "created", None, None, "abc"),
    ]
    assert [c.name for c in state.service_containers("web")] == ["composer-rec-web-1", "composer-rec-web-2"]
    assert all(c.image_id and c.image_id.startswith("sha256:") for c in state.containers)
    assert [(n.name, n.key) for n in state.networks] == [("composer-rec_default", "default")]
    assert [(v.name, v.key) for v in state.volumes] == [("composer-rec_data", "data")]
    assert {"composer-test/busybox:latest", "composer-test/busybox"} <= state.images


def test_other_projects_and_unlabelled_resources_are_ignored() -> None:
    stranger = {"Id": "x", "Names": ["/x"], "Labels": {}, "State": "running", "Status": "Up"}
    state = observe.observed_state("another", [*load("containers_list.json"), stranger], load("networks_list.json"))
    assert state.containers == ()
    assert state.networks == ()


def test_inspect_documents() -> None:
    assert observe.container_state(load("inspect_running_healthy.json")) == ContainerState("running", "healthy")
    assert observe.container_state(load("inspect_exited.json")) == ContainerState("exited", None, 3, False)
    assert observe.container_state(load("inspect_created.json")) == ContainerState("created")
    container = observe.observed_container(load("inspect_running_healthy.json"))
    assert container is not None
    assert (container.name, container.service_name, container.number) == ("composer-rec-web-1", "web", 1)


def test_status_text_forms() -> None:
    def state(status: str, text: str) -> ContainerState:
        return observe.container_state({"State": status, "Status": text})

    assert state("running", "Up 2 minutes (health: starting)").health == "starting"
    assert state("running", "Up 2 minutes (unhealthy)").health == "unhealthy"
    assert state("exited", "Exited (137) 5 seconds ago").exit_code == 137
    assert state("running", "Up 1 second").health is None


def test_oom_killed() -> None:
    document = load("inspect_exited.json")
    document["State"]["OOMKilled"] = True
    assert observe.container_state(document).oom_killed
