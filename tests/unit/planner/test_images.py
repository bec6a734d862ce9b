"""Plans for build, pull and push (v2's selection rules), and up's build decisions, as text."""

from __future__ import annotations

import pytest

from composer.backends.memory import MemoryBackend
from composer.contract.observed import ObservedState
from composer.contract.options import BuildOptions, PullOptions, PushOptions, UpOptions
from composer.contract.plan import ImagePayload
from composer.errors import ImagePullError
from composer.events import ListSink
from composer.planner.execute import execute
from composer.planner.images import (
    push_targets,
    reconcile_build,
    reconcile_pull,
)
from composer.planner.reconcile import reconcile_up
from tests.unit.conftest import LoadFn

STACK = """
services:
  api:
    build:
      context: .
      args: {A: from-file, B: kept}
      labels: {team: x}
      tags: ["reg.local:5000/api:extra"]
  worker:
    image: reg.local:5000/worker:1
    build: .
  db:
    image: postgres
  cache:
    image: redis
    pull_policy: missing
  tool:
    image: tool
    pull_policy: never
  twin:
    image: postgres
"""


def test_build_plans_every_buildable_service_with_args_and_labels(load: LoadFn) -> None:
    plan = reconcile_build(load(STACK), BuildOptions(args={"A": "cli"}, no_cache=True))
    assert plan.render() == "\n".join([
        "[] -> #1 image:demo-api, BuildImage, build",
        "[] -> #2 image:reg.local:5000/worker:1, BuildImage, build",
    ])
    payload = plan.operation(1).payload
    assert isinstance(payload, ImagePayload)
    assert payload.build is not None
    spec = payload.build
    assert dict(spec.args) == {"A": "cli", "B": "kept"}
    assert spec.labels["team"] == "x"
    assert spec.labels["com.docker.compose.project"] == "demo"
    assert spec.labels["com.docker.compose.service"] == "api"
    assert spec.tags == ("reg.local:5000/api:extra",)
    assert spec.no_cache
    assert not spec.try_pull


def test_build_of_named_services_ignores_the_others(load: LoadFn) -> None:
    plan = reconcile_build(load(STACK), BuildOptions(services=("worker", "db")))
    assert plan.render() == "[] -> #1 image:reg.local:5000/worker:1, BuildImage, build"


def test_pull_follows_pull_policy_and_presence(load: LoadFn) -> None:
    plan = reconcile_pull(load(STACK), frozenset({"redis:latest"}))
    assert plan.render() == "\n".join([
        "[] -> #1 image:postgres, PullImage, pull",
        "[] -> #2 image:reg.local:5000/worker:1, PullImage, pull (best effort)",
    ])
    missing = reconcile_pull(load(STACK), frozenset())
    assert "image:redis" in missing.render()
    ignoring = reconcile_pull(load(STACK), frozenset({"redis"}), PullOptions(ignore_buildable=True,
                                                                             ignore_failures=True))
    assert ignoring.render() == "[] -> #1 image:postgres, PullImage, pull (best effort)"


def test_pull_of_named_services_with_and_without_deps(load: LoadFn) -> None:
    project = load("""
    services:
      web: {image: web, depends_on: [db]}
      db: {image: db}
    """)
    assert reconcile_pull(project, frozenset(), PullOptions(services=("web",))).render() == (
        "[] -> #1 image:web, PullImage, pull")
    assert len(reconcile_pull(project, frozenset(), PullOptions(services=("web",), include_deps=True))) == 2


def test_push_targets_are_images_of_buildable_services_and_their_tags(load: LoadFn) -> None:
    targets = [reference for _, reference in push_targets(load(STACK), PushOptions())]
    assert targets == ["reg.local:5000/worker:1"]
    project = load(STACK.replace("    build:\n      context: .", "    image: reg.local:5000/api\n    build:\n"
                                 "      context: ."))
    assert [r for _, r in push_targets(project)] == ["reg.local:5000/api", "reg.local:5000/api:extra",
                                                     "reg.local:5000/worker:1"]


def test_up_builds_a_missing_build_only_image_and_pulls_first_when_image_is_set(load: LoadFn) -> None:
    plan = reconcile_up(load(STACK), ObservedState("demo", images=frozenset({"postgres", "redis", "tool"})))
    builds = {op.resource_id: op.payload for op in plan.operations if op.kind.title == "BuildImage"}
    assert sorted(builds) == ["image:demo-api", "image:reg.local:5000/worker:1"]
    api, worker = builds["image:demo-api"], builds["image:reg.local:5000/worker:1"]
    assert isinstance(api, ImagePayload)
    assert api.build is not None
    assert not api.build.try_pull
    assert isinstance(worker, ImagePayload)
    assert worker.build is not None
    assert worker.build.try_pull


def test_up_no_build_and_build_flags(load: LoadFn) -> None:
    present = ObservedState("demo", images=frozenset({"postgres", "redis", "tool", "demo-api",
                                                      "reg.local:5000/worker:1"}))
    assert "Image" not in reconcile_up(load(STACK), present).render()
    forced = reconcile_up(load(STACK), present, UpOptions(build=True)).render()
    assert "image:demo-api, BuildImage, --build" in forced
    absent = ObservedState("demo", images=frozenset({"postgres", "redis", "tool"}))
    no_build = reconcile_up(load(STACK), absent, UpOptions(build=False)).render()
    assert "BuildImage" not in no_build
    assert "image:reg.local:5000/worker:1, PullImage" in no_build
    assert "image:demo-api" not in no_build  # build-only: nothing to pull either


@pytest.mark.anyio
async def test_a_failed_pull_of_a_buildable_image_falls_back_to_building(load: LoadFn) -> None:
    project = load("services:\n  worker:\n    image: reg.local:5000/worker:1\n    build: .\n")
    plan = reconcile_up(project, ObservedState("demo"), UpOptions(no_start=True))
    backend = MemoryBackend()
    backend.fail("ensure_image", "reg.local:5000/worker:1",
                 ImagePullError("pull access denied", backend_name="memory", operation="pull"))
    sink = ListSink()
    await execute(plan, backend, sink)
    assert backend.call_names("build_image") == ["reg.local:5000/worker:1"]
    assert any(e.text == "Warning" and "building it instead" in e.details for e in sink.events)


CONTEXTS = """
services:
  app:
    build:
      context: .
      additional_contexts: {base: "service:base", files: ./files, img: "docker-image://busybox"}
  base:
    build:
      context: .
      additional_contexts: {root: "service:root"}
  root:
    image: reg.local:5000/root
    build: .
"""


def test_build_builds_the_services_additional_contexts_name_first(load: LoadFn) -> None:
    """v2's addBuildDependencies: ``service:<name>`` contexts are built too, and before."""
    plan = reconcile_build(load(CONTEXTS), BuildOptions(services=("app",)))
    assert plan.render() == "\n".join([
        "[] -> #1 image:reg.local:5000/root, BuildImage, additional_contexts of base",
        "[1] -> #2 image:demo-base, BuildImage, additional_contexts of app",
        "[2] -> #3 image:demo-app, BuildImage, build",
    ])
    payload = plan.operation(3).payload
    assert isinstance(payload, ImagePayload)
    assert payload.build is not None
    assert dict(payload.build.service_images) == {"base": "demo-base"}
    up = reconcile_up(load(CONTEXTS), ObservedState("demo", images=frozenset({"reg.local:5000/root"}))).render()
    # as v2's up (its build takes the context services along, present or not): the chain, in order
    assert up.startswith("\n".join([
        "[] -> #1 image:reg.local:5000/root, BuildImage, additional_contexts of base",
        "[1] -> #2 image:demo-base, BuildImage, additional_contexts of app",
        "[2] -> #3 image:demo-app, BuildImage, image not found\n"]))
    assert up.count("BuildImage") == 3


def test_an_unknown_or_cyclic_context_service_is_one_line(load: LoadFn) -> None:
    from composer.errors import PlanError

    with pytest.raises(PlanError, match=r"^service app: build.additional_contexts.base: service:nope: no such "
                                        r"service with a build section$"):
        reconcile_build(load(CONTEXTS.replace("service:base", "service:nope")))
    with pytest.raises(PlanError, match=r"^service app: build.additional_contexts.base: service:db: no such"):
        reconcile_build(load(CONTEXTS.replace("service:base", "service:db") + "  db: {image: postgres}\n"))
    with pytest.raises(PlanError, match=r"^service \w+: build.additional_contexts: a cycle \(.*\)$"):
        reconcile_build(load(CONTEXTS.replace("service:root", "service:app")))
