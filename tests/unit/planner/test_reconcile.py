"""Golden plans: the reconciler's decisions, compared as rendered text."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest

from composer import labels
from composer.contract.backend import ContainerSpec
from composer.contract.observed import ObservedNetwork, ObservedState
from composer.contract.options import DownOptions, StopOptions, UpOptions
from composer.contract.plan import CreatePayload, NetworkPayload, OpKind, Plan
from composer.errors import ExternalResourceNotFoundError
from composer.planner.hashing import network_hash
from composer.planner.reconcile import (
    reconcile_down,
    reconcile_start,
    reconcile_stop,
    reconcile_up,
    reconcile_up_images,
)
from composer.spec.models import Project
from tests.unit.conftest import LoadFn
from tests.unit.planner.conftest import container, converged, image_id

STACK = """
    services:
      web:
        image: nginx
        depends_on:
          api: {condition: service_started}
        ports: ["8080:80"]
      api:
        build: .
        depends_on:
          db: {condition: service_healthy, restart: true}
          migrate: {condition: service_completed_successfully}
      migrate:
        image: app-migrate
        depends_on: {db: {condition: service_healthy}}
      db:
        image: postgres
        volumes: [data:/var/lib/postgresql/data]
        healthcheck: {test: ["CMD", "pg_isready"]}
    volumes:
      data: {}
"""

SCALED = """
    services:
      web: {image: nginx, scale: 3}
"""


def golden(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _network() -> tuple[ObservedNetwork, ...]:
    return (ObservedNetwork("n1", "demo_default", "default"),)


def test_first_up_creates_everything_in_dependency_order(load: LoadFn) -> None:
    plan = reconcile_up(load(STACK), ObservedState("demo"))
    assert plan.render() == golden("""
        [] -> #1 image:demo-api, BuildImage, image not found
        [] -> #2 image:postgres, PullImage, image not found
        [] -> #3 image:app-migrate, PullImage, image not found
        [] -> #4 image:nginx, PullImage, image not found
        [1 2 3 4] -> #5 network:default, CreateNetwork, not found
        [1 2 3 4] -> #6 volume:data, CreateVolume, not found
        [2 5 6] -> #7 service:db:1, CreateContainer, no existing container
        [3 5 7] -> #8 service:migrate:1, CreateContainer, no existing container
        [1 5 7 8] -> #9 service:api:1, CreateContainer, no existing container
        [4 5 9] -> #10 service:web:1, CreateContainer, no existing container
        [7 8 9 10] -> #11 service:db:1, StartContainer, created
        [11] -> #12 service:db, WaitCondition, service_healthy, required by migrate
        [8 12] -> #13 service:migrate:1, StartContainer, created
        [11] -> #14 service:db, WaitCondition, service_healthy, required by api
        [13] -> #15 service:migrate, WaitCondition, service_completed_successfully, required by api
        [9 14 15] -> #16 service:api:1, StartContainer, created
        [16] -> #17 service:api, WaitCondition, service_started, required by web
        [10 17] -> #18 service:web:1, StartContainer, created
    """)
    assert plan.warnings == ()


def test_second_up_is_empty(load: LoadFn) -> None:
    project = load(STACK)
    plan = reconcile_up(project, converged(project))
    assert plan.is_empty
    assert plan.render() == ""


def test_changed_service_is_recreated_and_restart_dependents_restarted(load: LoadFn) -> None:
    before = load(STACK)
    after = load(STACK.replace("image: postgres", "image: postgres:17"))
    plan = reconcile_up(after, converged(before))
    assert plan.render() == golden("""
        [] -> #1 image:postgres:17, PullImage, image not found
        [1] -> #2 service:db:1, CreateContainer, config changed [recreate:db:1]
        [2] -> #3 service:db:1, StopContainer, replaced by #2 [recreate:db:1]
        [3] -> #4 service:db:1, RemoveContainer, replaced by #2 [recreate:db:1]
        [4] -> #5 service:db:1, RenameContainer, replaced by #2 [recreate:db:1]
        [5] -> #6 service:db:1, StartContainer, recreated
        [6] -> #7 service:db, WaitCondition, service_healthy, required by api
        [5] -> #8 service:migrate, WaitCondition, service_completed_successfully, required by api
        [7 8] -> #9 service:api:1, StopContainer, dependency db recreated
        [7 8 9] -> #10 service:api:1, StartContainer, dependency db recreated
    """)


def test_recreate_creates_under_a_temporary_name_and_inherits_volumes(load: LoadFn) -> None:
    before = load(STACK)
    after = load(STACK.replace("image: postgres", "image: postgres:17"))
    observed = converged(before)
    create = reconcile_up(after, observed).operation(2)
    assert isinstance(create.payload, CreatePayload)
    old = next(c for c in observed.containers if c.service_name == "db")
    assert create.payload.spec.container_name == f"{old.container_id[:12]}_demo-db-1"
    assert create.payload.spec.replaces is not None
    assert create.payload.spec.replaces.container_id == old.container_id
    renewed = reconcile_up(after, observed, UpOptions(renew_anon_volumes=True)).operation(2)
    assert isinstance(renewed.payload, CreatePayload)
    assert renewed.payload.spec.replaces is None


def _interrupted_recreate(load: LoadFn, *, old: bool, new_up_to_date: bool = True) -> tuple[Project, ObservedState]:
    """What a recreate of web-1 killed midway leaves (reconcile._recreate: create the new container as
    ``<old id>_<name>``, remove the old one, rename the new one): the new one, created, under its
    temporary name, with (``old``) or without the old one beside it."""
    project = load(SCALED.replace("scale: 3", "scale: 1"))
    current = container(project, "web", 1)
    stale = replace(current, config_hash="old")
    left = replace(current if new_up_to_date else stale, container_id="n".ljust(64, "0"),
                   name=f"{stale.container_id[:12]}_demo-web-1", state="created")
    return project, ObservedState("demo", ((stale,) if old else ()) + (left,), _network(),
                                  images=frozenset({"nginx:latest"}))


def test_after_an_interrupted_recreate_the_new_container_is_kept_and_renamed(load: LoadFn) -> None:
    """Killed after the create: the old container is removed, then the new one (up to date) takes
    the service's name and starts. Killed after the remove: the new one alone is renamed and started."""
    project, both = _interrupted_recreate(load, old=True)
    assert reconcile_up(project, both).render() == golden("""
        [] -> #1 service:web:1, StopContainer, duplicate (an interrupted recreate)
        [1] -> #2 service:web:1, RemoveContainer, duplicate (an interrupted recreate)
        [2] -> #3 service:web:1, RenameContainer, left under a temporary name
        [3] -> #4 service:web:1, StartContainer, container is created
    """)
    project, alone = _interrupted_recreate(load, old=False)
    assert reconcile_up(project, alone).render() == golden("""
        [] -> #1 service:web:1, RenameContainer, left under a temporary name
        [1] -> #2 service:web:1, StartContainer, container is created
    """)


def test_a_stale_leftover_of_a_recreate_is_removed_before_its_name_is_taken_again(load: LoadFn) -> None:
    """Both obsolete (the file changed again): the one with the service's name is recreated, and its
    temporary name is free (the leftover removed) before the create takes it."""
    project, both = _interrupted_recreate(load, old=True, new_up_to_date=False)
    assert reconcile_up(project, both).render() == golden("""
        [] -> #1 service:web:1, RemoveContainer, duplicate (an interrupted recreate)
        [1] -> #2 service:web:1, CreateContainer, config changed [recreate:web:1]
        [2] -> #3 service:web:1, StopContainer, replaced by #2 [recreate:web:1]
        [3] -> #4 service:web:1, RemoveContainer, replaced by #2 [recreate:web:1]
        [4] -> #5 service:web:1, RenameContainer, replaced by #2 [recreate:web:1]
        [5] -> #6 service:web:1, StartContainer, recreated
    """)


def test_changes_to_scale_build_and_depends_on_recreate_nothing(load: LoadFn) -> None:
    before = load(STACK)
    migrate = "image: app-migrate\n        pull_policy: never\n        scale: 1\n"
    after = load(STACK.replace("image: app-migrate\n", migrate)
                 .replace("build: .", "build: {context: ., target: prod}")
                 .replace("api: {condition: service_started}", "api: {condition: service_healthy}"))
    assert after.services["migrate"].scale == 1
    assert reconcile_up(after, converged(before)).is_empty


def test_scale_up_adds_the_next_numbers(load: LoadFn) -> None:
    project = load(SCALED)
    observed = ObservedState("demo", (container(project, "web", 1), container(project, "web", 2)), _network(),
                             images=frozenset({"nginx:latest"}))
    assert reconcile_up(project, observed).render() == golden("""
        [] -> #1 service:web:3, CreateContainer, no existing container
        [1] -> #2 service:web:3, StartContainer, created
    """)


def test_scale_down_removes_the_highest_numbers_first(load: LoadFn) -> None:
    project = load(SCALED)
    observed = ObservedState("demo", tuple(container(project, "web", n) for n in (1, 2, 3)), _network(),
                             images=frozenset({"nginx:latest"}))
    assert reconcile_up(project, observed, UpOptions(scale={"web": 1})).render() == golden("""
        [] -> #1 service:web:3, StopContainer, scale down
        [1] -> #2 service:web:3, RemoveContainer, scale down
        [] -> #3 service:web:2, StopContainer, scale down
        [3] -> #4 service:web:2, RemoveContainer, scale down
    """)


def _with_orphans(load: LoadFn) -> tuple[object, ObservedState]:
    project = load(SCALED)
    containers = (*(container(project, "web", n) for n in (1, 2, 3)), container(project, "old", 1),
                  container(project, "old", 2, state="exited"))
    return project, ObservedState("demo", containers, _network(), images=frozenset({"nginx"}))


def test_orphans_are_only_reported_without_remove_orphans(load: LoadFn) -> None:
    project = load(SCALED)
    _, observed = _with_orphans(load)
    plan = reconcile_up(project, observed)
    assert plan.is_empty
    assert plan.warnings == (
        "Found orphan containers (demo-old-1, demo-old-2) for this project. If you removed or renamed this "
        "service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
    )


def test_orphans_are_removed_with_remove_orphans(load: LoadFn) -> None:
    project = load(SCALED)
    _, observed = _with_orphans(load)
    plan = reconcile_up(project, observed, UpOptions(remove_orphans=True))
    assert plan.render() == golden("""
        [] -> #1 service:old:1, StopContainer, orphan container
        [1] -> #2 service:old:1, RemoveContainer, orphan container
        [] -> #3 service:old:2, RemoveContainer, orphan container
    """)
    assert plan.warnings == ()


def test_no_deps_touches_only_the_selected_service(load: LoadFn) -> None:
    before = load(STACK)
    after = load(STACK.replace("image: nginx", "image: nginx:2").replace("image: postgres", "image: postgres:17"))
    plan = reconcile_up(after, converged(before), UpOptions(services=("web",), no_deps=True))
    assert plan.render() == golden("""
        [] -> #1 image:nginx:2, PullImage, image not found
        [1] -> #2 service:web:1, CreateContainer, config changed [recreate:web:1]
        [2] -> #3 service:web:1, StopContainer, replaced by #2 [recreate:web:1]
        [3] -> #4 service:web:1, RemoveContainer, replaced by #2 [recreate:web:1]
        [4] -> #5 service:web:1, RenameContainer, replaced by #2 [recreate:web:1]
        [5] -> #6 service:web:1, StartContainer, recreated
    """)


def test_force_recreate_recreates_unchanged_selected_services(load: LoadFn) -> None:
    project = load(STACK)
    plan = reconcile_up(project, converged(project), UpOptions(services=("web",), force_recreate=True))
    assert plan.render() == golden("""
        [] -> #1 service:web:1, CreateContainer, --force-recreate [recreate:web:1]
        [1] -> #2 service:web:1, StopContainer, replaced by #1 [recreate:web:1]
        [2] -> #3 service:web:1, RemoveContainer, replaced by #1 [recreate:web:1]
        [3] -> #4 service:web:1, RenameContainer, replaced by #1 [recreate:web:1]
        [4] -> #5 service:api, WaitCondition, service_started, required by web
        [4 5] -> #6 service:web:1, StartContainer, recreated
    """)


def test_always_recreate_deps_recreates_dependencies_too(load: LoadFn) -> None:
    project = load(STACK)
    plan = reconcile_up(project, converged(project), UpOptions(services=("migrate",), always_recreate_deps=True))
    assert [op.resource_id for op in plan.operations if op.kind is OpKind.CREATE_CONTAINER] == ["service:db:1"]


def test_no_recreate_keeps_diverged_containers(load: LoadFn) -> None:
    before = load(STACK)
    after = load(STACK.replace("ports: [\"8080:80\"]", "ports: [\"8081:80\"]"))
    assert reconcile_up(after, converged(before), UpOptions(no_recreate=True)).is_empty
    assert not reconcile_up(after, converged(before)).is_empty


def test_stopped_containers_are_started(load: LoadFn) -> None:
    project = load(SCALED)
    observed = ObservedState("demo", (container(project, "web", 1), container(project, "web", 2, state="exited"),
                                      container(project, "web", 3, state="created")), _network(),
                             images=frozenset({"nginx"}))
    assert reconcile_up(project, observed).render() == golden("""
        [] -> #1 service:web:2, StartContainer, container is exited
        [] -> #2 service:web:3, StartContainer, container is created
    """)


def test_wait_adds_a_wait_ready_per_service(load: LoadFn) -> None:
    plan = reconcile_up(load(SCALED), ObservedState("demo", images=frozenset({"nginx"})),
                        UpOptions(wait=True, wait_timeout=30))
    assert plan.render() == golden("""
        [] -> #1 network:default, CreateNetwork, not found
        [1] -> #2 service:web:1, CreateContainer, no existing container
        [1] -> #3 service:web:2, CreateContainer, no existing container
        [1] -> #4 service:web:3, CreateContainer, no existing container
        [2 3 4] -> #5 service:web:1, StartContainer, created
        [2 3 4] -> #6 service:web:2, StartContainer, created
        [2 3 4] -> #7 service:web:3, StartContainer, created
        [5 6 7] -> #8 service:web, WaitReady, --wait
    """)


def test_every_pull_comes_before_anything_else(load: LoadFn) -> None:
    # v2 ensures the images before it creates anything: a failed pull must leave no network or volume
    project = load("""
        services:
          web: {image: nginx, volumes: [data:/data]}
          cache: {image: redis}
        volumes:
          data: {}
    """)
    stopped = (container(project, "cache", 1, state="exited"),)
    plan = reconcile_up(project, ObservedState("demo", stopped, images=frozenset({"redis"})))
    assert plan.render() == golden("""
        [] -> #1 image:nginx, PullImage, image not found
        [1] -> #2 network:default, CreateNetwork, not found
        [1] -> #3 volume:data, CreateVolume, not found
        [1 2 3] -> #4 service:web:1, CreateContainer, no existing container
        [4] -> #5 service:cache:1, StartContainer, container is exited
        [4] -> #6 service:web:1, StartContainer, created
    """)
    # with nothing to pull, nothing waits but the starts, for every container to be created (as v2)
    present = reconcile_up(project, ObservedState("demo", stopped, images=frozenset({"nginx", "redis"})))
    assert present.render().splitlines() == [
        "[] -> #1 network:default, CreateNetwork, not found",
        "[] -> #2 volume:data, CreateVolume, not found",
        "[1 2] -> #3 service:web:1, CreateContainer, no existing container",
        "[3] -> #4 service:cache:1, StartContainer, container is exited",
        "[3] -> #5 service:web:1, StartContainer, created",
    ]


def test_pull_policies(load: LoadFn) -> None:
    project = load("""
        services:
          always: {image: a, pull_policy: always}
          never: {image: b, pull_policy: never}
          present: {image: c}
          built: {image: d, build: ., pull_policy: build}
    """)
    observed = ObservedState("demo", images=frozenset({"a", "c:latest", "d"}))
    plan = reconcile_up(project, observed, UpOptions(no_start=True))
    images = [line for line in plan.render().splitlines() if "image:" in line]
    assert images == [
        "[] -> #1 image:a, PullImage, pull_policy: always",
        "[] -> #2 image:d, BuildImage, pull_policy: build",
    ]


def test_missing_external_network_is_an_error(load: LoadFn) -> None:
    project = load("""
        services:
          web: {image: nginx, networks: [front]}
        networks:
          front: {external: true, name: shared}
    """)
    with pytest.raises(ExternalResourceNotFoundError, match="network shared declared as external"):
        reconcile_up(project, ObservedState("demo"))
    found = ObservedState("demo", networks=(ObservedNetwork("n", "shared", ""),), images=frozenset({"nginx"}))
    assert [op.kind for op in reconcile_up(project, found).operations] == [OpKind.CREATE_CONTAINER,
                                                                           OpKind.START_CONTAINER]


def _create_spec(plan: Plan, resource_id: str) -> ContainerSpec:
    create = next(op for op in plan.operations if op.resource_id == resource_id and op.kind is OpKind.CREATE_CONTAINER)
    assert isinstance(create.payload, CreatePayload)
    return create.payload.spec


def test_container_labels_are_compose_v2s(load: LoadFn) -> None:
    project = load(STACK)
    present = converged(project)
    plan = reconcile_up(project, ObservedState("demo", images=present.images, image_ids=present.image_ids))
    spec = _create_spec(plan, "service:api:1")
    assert spec.container_name == "demo-api-1"
    assert spec.image == "demo-api"
    assert {key: value for key, value in spec.labels.items() if key != labels.CONFIG_HASH} == {
        labels.PROJECT: "demo",
        labels.SERVICE: "api",
        labels.CONTAINER_NUMBER: "1",
        labels.ONEOFF: "False",
        labels.WORKING_DIR: project.working_dir,
        labels.CONFIG_FILES: ",".join(project.files),
        labels.DEPENDS_ON: "db:service_healthy:true,migrate:service_completed_successfully:false",
        labels.IMAGE: image_id("demo-api"),  # v2 labels with the image's id, to see it change
        labels.VERSION: labels.COMPATIBLE_VERSION,
    }
    assert len(spec.labels[labels.CONFIG_HASH]) == 64
    assert [(n.network_name, n.aliases) for n in spec.networks] == [("demo_default", ("api",))]
    # an image this plan builds or pulls has no id yet: no label (engine.up pulls and builds first)
    assert labels.IMAGE not in _create_spec(reconcile_up(project, ObservedState("demo")), "service:api:1").labels


def test_a_container_whose_image_changed_is_recreated(load: LoadFn) -> None:
    project = load(STACK)
    observed = converged(project)
    pulled = tuple((ref, "sha256:" + "1" * 64 if ref == "postgres" else id_) for ref, id_ in observed.image_ids)
    plan = reconcile_up(project, replace(observed, image_ids=pulled))
    assert plan.render() == golden("""
        [] -> #1 service:db:1, CreateContainer, image changed [recreate:db:1]
        [1] -> #2 service:db:1, StopContainer, replaced by #1 [recreate:db:1]
        [2] -> #3 service:db:1, RemoveContainer, replaced by #1 [recreate:db:1]
        [3] -> #4 service:db:1, RenameContainer, replaced by #1 [recreate:db:1]
        [4] -> #5 service:db:1, StartContainer, recreated
        [5] -> #6 service:db, WaitCondition, service_healthy, required by api
        [4] -> #7 service:migrate, WaitCondition, service_completed_successfully, required by api
        [6 7] -> #8 service:api:1, StopContainer, dependency db recreated
        [6 7 8] -> #9 service:api:1, StartContainer, dependency db recreated
    """)
    assert _create_spec(plan, "service:db:1").labels[labels.IMAGE] == "sha256:" + "1" * 64
    # a container whose image is unknown (an engine that does not say), or is not there: kept
    unknown = tuple(replace(c, image_id=None) if c.service_name == "db" else c for c in observed.containers)
    assert reconcile_up(project, replace(observed, containers=unknown, image_ids=pulled)).is_empty
    gone = tuple(pair for pair in observed.image_ids if pair[0] != "postgres")
    assert reconcile_up(project, replace(observed, image_ids=gone), UpOptions(pull="never")).is_empty
    assert reconcile_up(project, replace(observed, image_ids=pulled), UpOptions(no_recreate=True)).is_empty


def test_images_first_then_the_rest_with_the_images_ready(load: LoadFn) -> None:
    project = load(STACK)
    observed = converged(project)
    options = UpOptions(build=True, pull="always")
    images = reconcile_up_images(project, observed, options)
    assert images.render() == golden("""
        [] -> #1 image:demo-api, BuildImage, --build
        [] -> #2 image:postgres, PullImage, pull_policy: always
        [] -> #3 image:app-migrate, PullImage, pull_policy: always
        [] -> #4 image:nginx, PullImage, pull_policy: always
    """)
    full = reconcile_up(project, observed, options)
    assert full.render().splitlines()[:4] == images.render().splitlines()
    assert reconcile_up(project, observed, replace(options, images_ready=True)).is_empty


def test_down_removes_in_reverse_dependency_order(load: LoadFn) -> None:
    project = load(STACK)
    plan = reconcile_down("demo", project, converged(project))
    assert plan.render() == golden("""
        [] -> #1 service:web:1, StopContainer, down
        [1] -> #2 service:web:1, RemoveContainer, down
        [1] -> #3 service:api:1, StopContainer, down
        [3] -> #4 service:api:1, RemoveContainer, down
        [3] -> #5 service:migrate:1, StopContainer, down
        [5] -> #6 service:migrate:1, RemoveContainer, down
        [3 5] -> #7 service:db:1, StopContainer, down
        [7] -> #8 service:db:1, RemoveContainer, down
        [2 4 6 8] -> #9 network:default, RemoveNetwork, down
    """)


def test_down_with_volumes_and_orphans(load: LoadFn) -> None:
    project = load(STACK)
    observed = converged(project)
    observed = ObservedState("demo", (container(project, "gone", 1, state="exited"), *observed.containers),
                             observed.networks, observed.volumes)
    plan = reconcile_down("demo", project, observed, DownOptions(remove_volumes=True, remove_orphans=True))
    lines = plan.render().splitlines()
    assert lines[0] == "[] -> #1 service:gone:1, RemoveContainer, orphan container"
    assert lines[-2:] == [
        "[1 3 5 7 9] -> #10 network:default, RemoveNetwork, down",
        "[1 3 5 7 9] -> #11 volume:data, RemoveVolume, down -v",
    ]
    assert reconcile_down("demo", project, observed).warnings


def test_down_without_a_project_removes_what_carries_the_label(load: LoadFn) -> None:
    project = load(SCALED)
    observed = ObservedState("demo", (container(project, "web", 1),), _network())
    assert reconcile_down("demo", None, observed).render() == golden("""
        [] -> #1 service:web:1, StopContainer, down
        [1] -> #2 service:web:1, RemoveContainer, down
        [2] -> #3 network:default, RemoveNetwork, down
    """)


def test_stop_and_start(load: LoadFn) -> None:
    project = load(STACK)
    assert reconcile_stop(project, converged(project), StopOptions(services=("api",))).render() == golden("""
        [] -> #1 service:api:1, StopContainer, stop
    """)
    stopped = ObservedState("demo", tuple(container(project, c.service_name, state="exited")
                                          for c in converged(project).containers))
    assert reconcile_start(project, stopped, ["web"]).render() == golden("""
        [] -> #1 service:api, WaitCondition, service_started, required by web
        [1] -> #2 service:web:1, StartContainer, container is exited
    """)


def test_kind_titles() -> None:
    from composer.contract.plan import kind_title

    assert OpKind.CREATE_CONTAINER.title == "CreateContainer"
    assert kind_title(31) == "WaitReady"
    assert kind_title(999) == "Unknown(999)"
    assert {kind.name: kind.value for kind in OpKind}["WAIT_CONDITION"] == 30


def test_a_network_whose_configuration_changed_is_created_again(load: LoadFn) -> None:
    project = load("""
        services:
          web: {image: nginx, networks: [front]}
          db: {image: postgres}
        networks:
          front: {driver_opts: {com.docker.network.bridge.name: brfront}}
    """)
    observed = converged(project)
    labelled = tuple(replace(n, config_hash="a hash of another configuration") if n.key == "front" else n
                     for n in observed.networks)
    plan = reconcile_up(project, replace(observed, networks=labelled))
    assert plan.render() == golden("""
        [] -> #1 service:web:1, StopContainer, network front changed
        [1] -> #2 network:front, RemoveNetwork, config changed
        [2] -> #3 network:front, CreateNetwork, config changed
        [3] -> #4 service:web:1, CreateContainer, network changed [recreate:web:1]
        [4] -> #5 service:web:1, RemoveContainer, replaced by #4 [recreate:web:1]
        [5] -> #6 service:web:1, RenameContainer, replaced by #4 [recreate:web:1]
        [6] -> #7 service:web:1, StartContainer, recreated
    """)
    create = plan.operation(3)
    assert isinstance(create.payload, NetworkPayload)
    assert create.payload.config_hash == network_hash(project.networks["front"])
    # the same hash, or none (a network v2 did not label): kept
    same = tuple(replace(n, config_hash=network_hash(project.networks[n.key])) for n in observed.networks)
    assert reconcile_up(project, replace(observed, networks=same)).is_empty
    assert reconcile_up(project, observed).is_empty
