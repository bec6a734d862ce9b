"""The Backend contract: one behaviour suite, run against every backend through its protocol.

Each test drives a backend only through composer.contract.backend.Backend, with the same specs, and
asserts what the planner and the CLI rely on: the observed state after each step, errors as
composer's error types, what a container printed in its logs, an exec's exit code and output.
A new backend must pass it: add one line to BACKENDS (a Kind that makes the backend, its image
and its clean-up), and list in its ``gaps`` what it cannot do by design, with the reason.

A gap is a strict xfail: the test must fail on that backend, so a gap that closes shows up as
XPASS and the list is corrected. The memory backend is the planner's double: it models states,
not processes or engine errors, so it passes what it can model and nothing here claims that it
works as an engine. Docker runs on the engine of the suite (everything labelled with the project
is removed after each test); native runs as root in a tmp COMPOSER_ROOT / COMPOSER_RUN_ROOT under
a unique COMPOSER_CGROUP_PARENT, and the residue check of test_runtime runs after the module.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import pytest

from composer import labels
from composer.contract.backend import (
    Backend,
    ContainerRef,
    ContainerSpec,
    ContainerState,
    ExecSpec,
    LogLine,
    NetworkAttachment,
    Streams,
)
from composer.errors import AlreadyExistsError, BackendError, ImageNotFoundError, NotFoundError
from composer.spec.models import NetworkConfig, ServiceConfig, VolumeConfig

pytestmark = pytest.mark.anyio

PROCESSES = "processes"
"""Runs what a container's command says: exit codes, output, files, signals."""
ENGINE_ERRORS = "engine errors"
"""Refuses what an engine refuses (missing, duplicate), with composer's error types."""
LABELS = "labels"
"""Reads what it observes from the resources' labels: an external resource (another project's) has no Compose key."""

MEMORY_RUNS_NOTHING = "a planner double: it keeps states in a dict and runs no process"
MEMORY_ERRORS = "a planner double: it raises its own MemoryBackendError, or nothing, where an engine refuses"
MEMORY_KEYS = "a planner double: it keeps the key a resource was created with, whoever's it is"

# A command that stays up and ends with its own exit code (3) on SIGTERM, with or without an init.
SERVE = ["sh", "-c", "trap 'exit 3' TERM; echo ready; while true; do sleep 0.1; done"]


@dataclass
class Harness:
    """One backend under test, a project name of its own, and an image it can run."""

    backend: Backend
    project: str
    image: str
    gaps: Mapping[str, str] = field(default_factory=dict)
    """Behaviour (PROCESSES, ENGINE_ERRORS) -> why this backend cannot show it, by design."""

    def spec(self, service: dict[str, Any], *, number: int = 1, **fields: Any) -> ContainerSpec:
        config = ServiceConfig.model_validate({"command": SERVE, **service})
        container_labels = {labels.PROJECT: self.project, labels.SERVICE: config.name,
                            labels.CONTAINER_NUMBER: str(number), labels.CONFIG_HASH: "contract",
                            labels.ONEOFF: "False"}
        return ContainerSpec(self.project, config, f"{self.project}-{config.name}-{number}", number,
                             fields.pop("image", self.image), container_labels, **fields)

    def needs(self, request: pytest.FixtureRequest, behaviour: str) -> None:
        """The rest of the test needs ``behaviour``: on a backend that lacks it by design, it must fail."""
        reason = self.gaps.get(behaviour)
        if reason is not None:
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"{self.backend.name}: {reason}"))


class Kind(Protocol):
    """How to run the suite on one backend: make it (sync: fixtures may run event loops of their own)."""

    def __call__(self, request: pytest.FixtureRequest, project: str) -> Harness: ...


def memory(request: pytest.FixtureRequest, project: str) -> Harness:
    from composer.backends.memory import MemoryBackend

    return Harness(MemoryBackend(), project, "composer-test/busybox:latest",
                   {PROCESSES: MEMORY_RUNS_NOTHING, ENGINE_ERRORS: MEMORY_ERRORS, LABELS: MEMORY_KEYS})


def docker(request: pytest.FixtureRequest, project: str) -> Harness:
    from composer.backends.docker import DockerBackend
    from tests.integration.conftest import remove_project

    api = request.getfixturevalue("docker_api")
    image = request.getfixturevalue("busybox_image")
    request.addfinalizer(lambda: remove_project(api, project))  # runs after the harness's own clean-up
    return Harness(DockerBackend(), project, image)


def native(request: pytest.FixtureRequest, project: str) -> Harness:
    from composer.backends.native.backend import NativeBackend

    env: NativeEnv = request.getfixturevalue("native_env")
    return Harness(NativeBackend(env.root / "store", environ=env.environ), project, env.image)


# One line per backend; the swarm backend joins here.
BACKENDS = [
    pytest.param(memory, id="memory"),
    pytest.param(docker, id="docker", marks=pytest.mark.docker),
    pytest.param(native, id="native", marks=(pytest.mark.native, pytest.mark.root)),
]


@dataclass
class NativeEnv:
    root: Path
    image: str
    environ: dict[str, str]


@pytest.fixture(scope="module")
def native_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeEnv]:
    """The busybox test image pulled from the local registry into a module store; the residue
    check (mounts, namespaces, cgroups, processes, state files, volumes, networks) after the module."""
    from composer.backends.native.image.pull import pull
    from composer.backends.native.image.store import ImageRecord, ImageStore
    from composer.backends.native.runtime.api import Runtime
    from composer.events import ListSink
    from tests.integration.native.conftest import unavailable
    from tests.integration.native.test_runtime import residue

    if os.geteuid() != 0:
        unavailable("the native backend needs root to run containers")
    registry = request.getfixturevalue("local_registry")
    root = tmp_path_factory.mktemp("native-contract")
    environ = {"COMPOSER_RUN_ROOT": str(root / "run"),
               "COMPOSER_CGROUP_PARENT": f"composer-test-{uuid.uuid4().hex[:8]}",
               "COMPOSER_REGISTRY_CONFIG": str(root / "no-registries.json")}
    saved = {key: os.environ.get(key) for key in ("COMPOSER_REGISTRY_CONFIG", "COMPOSER_REGISTRY_MIRRORS")}
    os.environ["COMPOSER_REGISTRY_CONFIG"] = environ["COMPOSER_REGISTRY_CONFIG"]
    os.environ.pop("COMPOSER_REGISTRY_MIRRORS", None)
    try:
        store = ImageStore.open(root / "store")
        record: ImageRecord = anyio.run(pull, registry.busybox, store, ListSink())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield NativeEnv(root, record.reference, environ)
    (root / "run" / "networks" / ".lock").unlink(missing_ok=True)  # the network manager's lock stays by design
    with contextlib.suppress(OSError):
        (root / "run" / "networks").rmdir()
    residue(Runtime(store, run_root=root / "run", cgroup_parent=environ["COMPOSER_CGROUP_PARENT"]))


@pytest.fixture(params=BACKENDS)
def prepared(request: pytest.FixtureRequest) -> Harness:
    kind: Kind = request.param
    return kind(request, f"contract{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def harness(prepared: Harness) -> AsyncGenerator[Harness, None]:
    """The backend under test; whatever the test left of its project is removed through it, pass or fail."""
    yield prepared
    backend = prepared.backend
    try:
        left = await backend.observe(prepared.project)
        for container in left.containers:
            with contextlib.suppress(NotFoundError):
                await backend.remove_container(ContainerRef(container.container_id, container.name),
                                               remove_volumes=True)
        for network in left.networks:
            await backend.remove_network(network.name)
        for volume in left.volumes:
            await backend.remove_volume(volume.name)
    finally:
        await backend.aclose()


@contextlib.asynccontextmanager
async def closing(lines: AsyncIterator[LogLine]) -> AsyncGenerator[AsyncIterator[LogLine], None]:
    """``lines``, closed at the end (the protocol promises an AsyncIterator; backends return generators)."""
    try:
        yield lines
    finally:
        aclose = getattr(lines, "aclose", None)
        if aclose is not None:
            await aclose()


async def collect(lines: AsyncIterator[LogLine]) -> list[tuple[str, str]]:
    """(text, stream) of each line, ordered by stream (the two streams interleave as they come)."""
    async with closing(lines):
        found = [(line.text, line.stream) async for line in lines]
    return sorted(found, key=lambda pair: pair[1])


async def poll(backend: Backend, ref: ContainerRef, done: Callable[[ContainerState], bool]) -> ContainerState:
    for _ in range(300):
        state = await backend.container_state(ref)
        if done(state):
            return state
        await anyio.sleep(0.1)
    raise AssertionError(f"{ref.name} is still {state}")


def missing(harness: Harness, service: str = "ghost") -> ContainerRef:
    return ContainerRef("0" * 64, f"{harness.project}-{service}-1")


# --- create, start, stop, observe, remove -----------------------------------------------------------


async def test_each_step_of_a_container_is_observed(harness: Harness) -> None:
    backend = harness.backend
    assert (await backend.observe(harness.project)).containers == ()

    ref = await backend.create_container(harness.spec({"name": "web"}))
    assert ref.name == f"{harness.project}-web-1"
    assert (await backend.container_state(ref)).status == "created"
    observed = await backend.observe(harness.project)
    assert [(c.container_id, c.name, c.service_name, c.number, c.config_hash, c.state, c.oneoff)
            for c in observed.containers] == [(ref.container_id, ref.name, "web", 1, "contract", "created", False)]

    await backend.start_container(ref)
    assert (await backend.container_state(ref)).status == "running"
    assert [c.state for c in (await backend.observe(harness.project)).containers] == ["running"]

    await backend.stop_container(ref, grace_seconds=10)  # returns once the container has stopped
    assert (await backend.container_state(ref)).status == "exited"
    assert [c.state for c in (await backend.observe(harness.project)).containers] == ["exited"]

    await backend.start_container(ref)  # a stopped container starts again
    assert (await backend.container_state(ref)).status == "running"

    await backend.remove_container(ref, remove_volumes=True)  # a running one too: removal forces
    assert (await backend.observe(harness.project)).containers == ()


async def test_observe_sees_only_its_own_project(harness: Harness) -> None:
    ours = await harness.backend.create_container(harness.spec({"name": "web"}))
    other = Harness(harness.backend, f"{harness.project}x", harness.image)
    theirs = await harness.backend.create_container(other.spec({"name": "web"}))
    try:
        assert [c.name for c in (await harness.backend.observe(harness.project)).containers] == [ours.name]
        assert [c.name for c in (await harness.backend.observe(other.project)).containers] == [theirs.name]
    finally:
        await harness.backend.remove_container(theirs, remove_volumes=True)


async def test_stop_delivers_sigterm_and_keeps_the_exit_code(harness: Harness, request: pytest.FixtureRequest) -> None:
    backend = harness.backend
    ref = await backend.create_container(harness.spec({"name": "web"}))
    await backend.start_container(ref)
    harness.needs(request, PROCESSES)
    # the command printed "ready" once its trap was set: a SIGTERM before that would kill sh outright
    async with closing(backend.logs([ref], follow=True)) as lines:
        with anyio.fail_after(30):
            assert (await lines.__anext__()).text == "ready"
    await backend.stop_container(ref, grace_seconds=10)
    state = await backend.container_state(ref)
    assert (state.status, state.exit_code) == ("exited", 3)
    assert [(c.state, c.exit_code) for c in (await backend.observe(harness.project)).containers] == [("exited", 3)]


async def test_kill_ends_the_container_with_the_signal(harness: Harness) -> None:
    ref = await harness.backend.create_container(harness.spec({"name": "web"}))
    await harness.backend.start_container(ref)
    await harness.backend.kill_container(ref, signal="SIGKILL")
    state = await poll(harness.backend, ref, lambda state: state.status == "exited")
    assert state.exit_code == 137  # 128 + 9


async def test_wait_returns_the_exit_code(harness: Harness, request: pytest.FixtureRequest) -> None:
    ref = await harness.backend.create_container(harness.spec({"name": "job", "command": ["sh", "-c", "exit 5"]}))
    await harness.backend.start_container(ref)
    harness.needs(request, PROCESSES)
    with anyio.fail_after(30):
        assert await harness.backend.wait_container(ref) == 5
    state = await harness.backend.container_state(ref)
    assert (state.status, state.exit_code) == ("exited", 5)


# --- networks and volumes ----------------------------------------------------------------------


async def test_networks_are_created_observed_and_removed(harness: Harness) -> None:
    backend = harness.backend
    front, back = f"{harness.project}_front", f"{harness.project}_back"
    assert await backend.create_network(harness.project, "front", front, NetworkConfig())
    assert await backend.create_network(harness.project, "back", back, NetworkConfig(internal=True))
    observed = await backend.observe(harness.project)
    assert [(n.key, n.name) for n in observed.networks] == [("back", back), ("front", front)]

    spec = harness.spec({"name": "web"}, networks=[NetworkAttachment(front, aliases=("web", "www")),
                                                   NetworkAttachment(back, aliases=("web",))])
    ref = await backend.create_container(spec)
    await backend.start_container(ref)
    assert (await backend.container_state(ref)).status == "running"
    await backend.remove_container(ref, remove_volumes=True)

    await backend.remove_network(front)
    await backend.remove_network(back)
    assert (await backend.observe(harness.project)).networks == ()


async def test_an_external_network_is_observed_only_when_named(harness: Harness, request: pytest.FixtureRequest
                                                               ) -> None:
    shared = f"{harness.project}_shared"
    await harness.backend.create_network(f"{harness.project}x", "shared", shared, NetworkConfig())
    try:
        assert (await harness.backend.observe(harness.project)).networks == ()
        named = (await harness.backend.observe(harness.project, external_networks=[shared])).networks
        assert [n.name for n in named] == [shared]
        harness.needs(request, LABELS)
        assert [n.key for n in named] == [""]  # another project's network has no Compose key in this one
    finally:
        await harness.backend.remove_network(shared)


async def test_volumes_are_created_observed_shared_and_removed(harness: Harness, request: pytest.FixtureRequest
                                                              ) -> None:
    backend = harness.backend
    name = f"{harness.project}_data"
    assert await backend.create_volume(harness.project, "data", name, VolumeConfig()) == name
    assert await backend.create_volume(harness.project, "data", name, VolumeConfig()) == name  # exists: kept
    assert [(v.name, v.key) for v in (await backend.observe(harness.project)).volumes] == [(name, "data")]

    mount = {"volumes": [{"type": "volume", "source": "data", "target": "/data"}]}
    writer = await backend.create_container(harness.spec(
        {"name": "writer", "command": ["sh", "-c", "echo kept > /data/file"], **mount}, volume_names={"data": name}))
    reader = await backend.create_container(harness.spec(
        {"name": "reader", "command": ["cat", "/data/file"], **mount}, volume_names={"data": name}))
    await backend.start_container(writer)
    harness.needs(request, PROCESSES)
    with anyio.fail_after(30):
        assert await backend.wait_container(writer) == 0
    await backend.remove_container(writer, remove_volumes=True)  # a named volume outlives its containers
    await backend.start_container(reader)
    with anyio.fail_after(30):
        assert await backend.wait_container(reader) == 0
    assert await collect(backend.logs([reader], follow=False)) == [("kept", "stdout")]
    await backend.remove_container(reader, remove_volumes=True)

    await backend.remove_volume(name)
    assert (await backend.observe(harness.project)).volumes == ()


# --- logs and exec ------------------------------------------------------------------------------


async def test_logs_hold_what_the_container_printed(harness: Harness, request: pytest.FixtureRequest) -> None:
    backend = harness.backend
    ref = await backend.create_container(harness.spec(
        {"name": "job", "command": ["sh", "-c", "echo out-1; echo err-1 >&2; echo out-2"]}))
    await backend.start_container(ref)
    harness.needs(request, PROCESSES)
    with anyio.fail_after(30):
        assert await backend.wait_container(ref) == 0
    assert await collect(backend.logs([ref], follow=False)) == [("err-1", "stderr"), ("out-1", "stdout"),
                                                                 ("out-2", "stdout")]
    async with closing(backend.logs([ref], follow=False)) as lines:
        assert {(line.container_name, line.service_name) async for line in lines} == {(ref.name, "job")}
    tail = await collect(backend.logs([ref], follow=False, tail=1))
    assert tail in ([("out-2", "stdout")], [("err-1", "stderr")])  # the last line, of one stream or both
    # followed logs end when the container has stopped
    with anyio.fail_after(30):
        assert len(await collect(backend.logs([ref], follow=True))) == 3


async def test_exec_returns_the_exit_code_and_output(harness: Harness, request: pytest.FixtureRequest) -> None:
    backend = harness.backend
    ref = await backend.create_container(harness.spec({"name": "web"}))
    await backend.start_container(ref)
    harness.needs(request, PROCESSES)
    stdout, stderr = io.BytesIO(), io.BytesIO()
    command = ExecSpec(("sh", "-c", "echo out $GREETING; echo err >&2; exit 7"), environment={"GREETING": "hi"},
                       interactive=False)
    with anyio.fail_after(30):
        assert await backend.exec_in_container(ref, command, Streams(stdout, stderr)) == 7
    assert (stdout.getvalue(), stderr.getvalue()) == (b"out hi\n", b"err\n")
    as_user = ExecSpec(("sh", "-c", "id -u; pwd"), user="1000", workdir="/etc", interactive=False)
    stdout = io.BytesIO()
    with anyio.fail_after(30):
        assert await backend.exec_in_container(ref, as_user, Streams(stdout, io.BytesIO())) == 0
    assert stdout.getvalue().split() == [b"1000", b"/etc"]


async def test_stats_sample_a_running_container(harness: Harness, request: pytest.FixtureRequest) -> None:
    backend = harness.backend
    ref = await backend.create_container(harness.spec({"name": "web", "mem_limit": "64m"}))
    await backend.start_container(ref)
    harness.needs(request, PROCESSES)
    first = await backend.container_stats(ref)
    stdout = io.BytesIO()
    busy = ExecSpec(("sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done"), interactive=False)
    with anyio.fail_after(60):
        assert await backend.exec_in_container(ref, busy, Streams(stdout, io.BytesIO())) == 0
    second = await backend.container_stats(ref)
    assert second.cpu_ns > first.cpu_ns > 0  # the loop's CPU time is the container's
    assert second.system_ns > first.system_ns
    assert second.online_cpus >= 1
    assert second.memory_limit == 64 * 1024 * 1024
    assert 0 < second.memory_usage < second.memory_limit
    assert second.pids >= 1
    await backend.stop_container(ref, grace_seconds=1)
    with pytest.raises(BackendError):
        await backend.container_stats(ref)


# --- errors -----------------------------------------------------------------------------------


async def test_a_missing_container_is_not_found(harness: Harness, request: pytest.FixtureRequest) -> None:
    harness.needs(request, ENGINE_ERRORS)
    for operation in (lambda ref: harness.backend.container_state(ref),
                      lambda ref: harness.backend.start_container(ref),
                      lambda ref: harness.backend.stop_container(ref, grace_seconds=1),
                      lambda ref: harness.backend.remove_container(ref, remove_volumes=True)):
        with pytest.raises(NotFoundError) as caught:
            await operation(missing(harness))
        assert "\n" not in str(caught.value)


async def test_a_removed_container_is_not_found(harness: Harness, request: pytest.FixtureRequest) -> None:
    ref = await harness.backend.create_container(harness.spec({"name": "web"}))
    await harness.backend.remove_container(ref, remove_volumes=True)
    harness.needs(request, ENGINE_ERRORS)
    with pytest.raises(NotFoundError):
        await harness.backend.container_state(ref)
    with pytest.raises(NotFoundError):
        await harness.backend.remove_container(ref, remove_volumes=True)


async def test_a_duplicate_container_already_exists(harness: Harness, request: pytest.FixtureRequest) -> None:
    spec = harness.spec({"name": "web"})
    await harness.backend.create_container(spec)
    harness.needs(request, ENGINE_ERRORS)
    with pytest.raises(AlreadyExistsError, match="already in use"):
        await harness.backend.create_container(spec)
    assert len((await harness.backend.observe(harness.project)).containers) == 1


async def test_a_duplicate_network_already_exists(harness: Harness, request: pytest.FixtureRequest) -> None:
    name = f"{harness.project}_default"
    await harness.backend.create_network(harness.project, "default", name, NetworkConfig())
    harness.needs(request, ENGINE_ERRORS)
    with pytest.raises(AlreadyExistsError):
        await harness.backend.create_network(harness.project, "default", name, NetworkConfig())


async def test_missing_networks_and_volumes_are_not_found(harness: Harness, request: pytest.FixtureRequest) -> None:
    harness.needs(request, ENGINE_ERRORS)
    with pytest.raises(NotFoundError):
        await harness.backend.remove_network(f"{harness.project}_nothing")
    with pytest.raises(NotFoundError):
        await harness.backend.remove_volume(f"{harness.project}_nothing")


async def test_a_missing_image_is_not_found_and_nothing_is_created(harness: Harness, request: pytest.FixtureRequest
                                                                  ) -> None:
    harness.needs(request, ENGINE_ERRORS)
    ghost = f"composer-test/ghost-{harness.project}:latest"
    with pytest.raises(ImageNotFoundError) as caught:
        await harness.backend.create_container(harness.spec({"name": "web"}, image=ghost))
    assert isinstance(caught.value, BackendError)
    assert "\n" not in str(caught.value)
    assert (await harness.backend.observe(harness.project)).containers == ()
