"""DockerBackend against the real engine: each test uses its own project, removed afterwards."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from composer import labels
from composer.backends.docker import DockerBackend
from composer.contract.backend import ContainerRef, ContainerSpec, ContainerState, LogLine, NetworkAttachment
from composer.errors import AlreadyExistsError, ImageNotFoundError, ImagePullError, NotFoundError, PortInUseError
from composer.events import ListSink
from composer.spec.models import NetworkConfig, ServiceConfig, VolumeConfig

pytestmark = pytest.mark.anyio


@pytest.fixture
async def backend(docker_api: Any) -> AsyncIterator[DockerBackend]:
    instance = DockerBackend()
    yield instance
    await instance.aclose()


def spec(project_name: str, image: str, service: dict[str, Any], *, number: int = 1, **fields: Any) -> ContainerSpec:
    config = ServiceConfig.model_validate(service)
    container_labels = {labels.PROJECT: project_name, labels.SERVICE: config.name,
                        labels.CONTAINER_NUMBER: str(number), labels.CONFIG_HASH: "test", labels.ONEOFF: "False"}
    return ContainerSpec(project_name, config, f"{project_name}-{config.name}-{number}", number, image,
                         container_labels, **fields)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def poll(backend: DockerBackend, ref: ContainerRef, done: Callable[[ContainerState], bool],
               seconds: float) -> ContainerState:
    for _ in range(int(seconds * 10)):
        state = await backend.container_state(ref)
        if done(state):
            return state
        await anyio.sleep(0.1)
    raise AssertionError(f"{ref.name} is still {state}")


async def collect(lines: AsyncGenerator[LogLine, None], count: int | None = None) -> list[LogLine]:
    found: list[LogLine] = []
    async with aclosing(lines):
        async for line in lines:
            found.append(line)
            if count is not None and len(found) == count:
                break
    return found


async def test_lifecycle(backend: DockerBackend, busybox_image: str, project_name: str, docker_api: Any) -> None:
    front = await backend.create_network(project_name, "front", f"{project_name}_front", NetworkConfig())
    await backend.create_network(project_name, "back", f"{project_name}_back", NetworkConfig(internal=True))
    volume_name = await backend.create_volume(project_name, "data", f"{project_name}_data", VolumeConfig())
    assert front
    assert volume_name == f"{project_name}_data"
    web = spec(project_name, busybox_image, {
        "name": "web", "init": True,
        "command": ["sh", "-c", "echo out-line; echo err-line >&2; echo $GREETING > /data/g; exec sleep 300"],
        "environment": {"GREETING": "hello", "UNSET": None},
        "volumes": [{"type": "volume", "source": "data", "target": "/data"}],
        "healthcheck": {"test": ["CMD", "test", "-f", "/data/g"], "interval": "1s"},
        "stop_grace_period": "1s",
    }, networks=[NetworkAttachment(f"{project_name}_front", aliases=("web", "www")),
                 NetworkAttachment(f"{project_name}_back", aliases=("web",))],
       volume_names={"data": volume_name})
    ref = await backend.create_container(web)
    assert (await backend.container_state(ref)).status == "created"
    inspected = docker_api.inspect_container(ref.container_id)
    assert set(inspected["NetworkSettings"]["Networks"]) == {f"{project_name}_front", f"{project_name}_back"}
    assert "UNSET" not in " ".join(inspected["Config"]["Env"])

    await backend.start_container(ref)
    state = await poll(backend, ref, lambda state: state.health == "healthy", 30)
    assert state.status == "running"

    lines = await collect(backend.logs([ref], follow=False))
    assert [(line.text, line.stream) for line in sorted(lines, key=lambda line: line.stream)] == [
        ("err-line", "stderr"), ("out-line", "stdout")]
    assert all(line.service_name == "web" and line.container_name == ref.name and line.timestamp for line in lines)

    observed = await backend.observe(project_name)
    assert [(c.service_name, c.number, c.state, c.health) for c in observed.containers] == [("web", 1, "running",
                                                                                             "healthy")]
    assert [n.key for n in observed.networks] == ["back", "front"]
    assert [v.key for v in observed.volumes] == ["data"]
    assert busybox_image in observed.images

    await backend.stop_container(ref, grace_seconds=1)
    stopped = await backend.container_state(ref)
    assert (stopped.status, stopped.exit_code) == ("exited", 143)  # sleep under init gets SIGTERM

    await backend.remove_container(ref, remove_volumes=True)
    with pytest.raises(NotFoundError):
        await backend.container_state(ref)
    await backend.remove_network(f"{project_name}_front")
    await backend.remove_network(f"{project_name}_back")
    await backend.remove_volume(volume_name)
    left = await backend.observe(project_name)
    assert left == type(observed)(project_name, images=observed.images, image_ids=observed.image_ids)


async def test_follow_logs_of_several_containers(backend: DockerBackend, busybox_image: str, project_name: str) -> None:
    refs = []
    for name in ("a", "b"):
        ref = await backend.create_container(spec(project_name, busybox_image, {
            "name": name, "command": ["sh", "-c", f"i=0; while true; do echo {name}$i; i=$((i+1)); sleep 0.2; done"]}))
        await backend.start_container(ref)
        refs.append(ref)
    with anyio.fail_after(20):
        lines = await collect(backend.logs(refs, follow=True, tail=0), count=6)
    assert {line.service_name for line in lines} == {"a", "b"}
    for name in ("a", "b"):  # each container's own lines arrive in order
        numbers = [int(line.text[1:]) for line in lines if line.service_name == name]
        assert numbers == sorted(numbers)


async def test_kill(backend: DockerBackend, busybox_image: str, project_name: str) -> None:
    ref = await backend.create_container(spec(project_name, busybox_image, {"name": "k", "command": ["sleep", "300"]}))
    await backend.start_container(ref)
    await backend.kill_container(ref, signal="SIGKILL")
    state = await poll(backend, ref, lambda state: state.status == "exited", 10)
    assert state.exit_code == 137


async def test_missing_image(backend: DockerBackend, busybox_image: str, project_name: str) -> None:
    ghost = f"composer-test/ghost-{project_name}:latest"
    with pytest.raises(ImageNotFoundError, match="No such image"):
        await backend.create_container(spec(project_name, ghost, {"name": "g"}))
    with pytest.raises(ImageNotFoundError):
        await backend.ensure_image(ServiceConfig(name="g"), ghost, "never", ListSink())
    sink = ListSink()
    await backend.ensure_image(ServiceConfig(name="b"), busybox_image, "missing", sink)  # present: no pull
    assert sink.events == []


async def test_unreachable_registry(backend: DockerBackend, project_name: str) -> None:
    sink = ListSink()
    port = free_port()  # nothing listens there
    with pytest.raises((ImagePullError, ImageNotFoundError)) as caught:
        await backend.ensure_image(ServiceConfig(name="g"), f"127.0.0.1:{port}/ghost:1", "always", sink)
    assert "\n" not in str(caught.value)
    # the image's own Pulling / Error are the executor's (it runs every pull): none from the backend
    assert [event for event in sink.events if event.resource_id.startswith("image:")] == []


async def test_port_already_allocated(backend: DockerBackend, busybox_image: str, project_name: str) -> None:
    port = free_port()
    published = {"target": 80, "published": str(port), "host_ip": "127.0.0.1"}
    service = {"name": "p", "command": ["sleep", "300"], "ports": [published]}
    first = await backend.create_container(spec(project_name, busybox_image, service, number=1))
    await backend.start_container(first)
    second = await backend.create_container(spec(project_name, busybox_image, service, number=2))
    with pytest.raises(PortInUseError, match="port is already allocated"):
        await backend.start_container(second)


async def test_conflicts(backend: DockerBackend, busybox_image: str, project_name: str) -> None:
    await backend.create_network(project_name, "default", f"{project_name}_default", NetworkConfig())
    with pytest.raises(AlreadyExistsError):
        await backend.create_network(project_name, "default", f"{project_name}_default", NetworkConfig())
    web = spec(project_name, busybox_image, {"name": "web", "command": ["sleep", "300"]})
    await backend.create_container(web)
    with pytest.raises(AlreadyExistsError, match="already in use"):
        await backend.create_container(web)
    with pytest.raises(NotFoundError):
        await backend.remove_network(f"{project_name}_nothing")


async def test_recreate_keeps_anonymous_volumes(backend: DockerBackend, busybox_image: str, project_name: str,
                                                docker_api: Any) -> None:
    service = {"name": "db", "command": ["sleep", "300"], "volumes": [{"type": "volume", "target": "/var/lib/db"}]}
    old = await backend.create_container(spec(project_name, busybox_image, service))
    old_volume = docker_api.inspect_container(old.container_id)["Mounts"][0]["Name"]
    await backend.remove_container(old, remove_volumes=False)
    new = await backend.create_container(spec(project_name, busybox_image, service, number=2, replaces=old))
    assert docker_api.inspect_container(new.container_id)["Mounts"][0]["Name"] != old_volume  # old one gone already
    third = await backend.create_container(spec(project_name, busybox_image, service, number=3, replaces=new))
    new_volume = docker_api.inspect_container(new.container_id)["Mounts"][0]["Name"]
    assert docker_api.inspect_container(third.container_id)["Mounts"][0]["Name"] == new_volume
    docker_api.remove_volume(old_volume)


async def test_observe_looks_only_for_the_images_asked_about(backend: DockerBackend, busybox_image: str,
                                                             project_name: str, docker_api: Any) -> None:
    """The planner asks for its services' images (v2 inspects them one by one) instead of listing
    every local image; None lists them all (``down --rmi``), empty asks for none."""
    repository = busybox_image.rsplit(":", 1)[0]
    asked = await backend.observe(project_name, images=[repository, f"docker.io/{busybox_image}", "no/such-image:1"])
    assert busybox_image in asked.images
    assert repository in asked.images  # found by the name it was asked for: nginx means nginx:latest
    assert f"docker.io/{busybox_image}" in asked.images
    assert "no/such-image:1" not in asked.images
    assert docker_api.inspect_image(busybox_image)["Id"] in asked.images
    assert (await backend.observe(project_name, images=())).images == frozenset()
    every = (await backend.observe(project_name)).images
    assert busybox_image in every
    assert {tag for image in docker_api.images() for tag in image["RepoTags"] or () if tag != "<none>:<none>"} <= every


def test_the_negotiated_api_version_is_remembered_per_engine_run(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                                               docker_api: Any) -> None:
    """The first client asks the engine its API version; the next ones reuse it (no GET /version)
    until the engine makes a new socket (restarted, maybe upgraded)."""
    import docker

    from composer.backends.docker import client

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    endpoint = client.resolve_endpoint({})
    first = client.connect(endpoint)
    remembered = list((tmp_path / "composer").glob("docker-api-*"))
    assert [path.read_text().strip() for path in remembered] == [first.api_version]
    first.close()

    def no_negotiation(self: Any) -> str:
        raise AssertionError("asked the engine its version again")

    monkeypatch.setattr(docker.APIClient, "_retrieve_server_version", no_negotiation)
    second = client.connect(endpoint)
    try:
        assert second.api_version == first.api_version
        assert second.version()["ApiVersion"]  # it talks to the engine all the same
    finally:
        second.close()
    # a new engine run makes a new socket: another file, so the version is asked again
    path = tmp_path / "engine.sock"
    names = []
    for _ in range(2):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        names.append(client._api_version_file(client.resolve_endpoint({"DOCKER_HOST": f"unix://{path}"})))
        listener.close()
        path.unlink()
        time.sleep(0.05)  # past the file system's timestamp granularity: a daemon restart takes longer
    assert None not in names
    assert names[0] != names[1]


def test_plain_calls_share_one_kept_alive_connection_and_errors_stay_docker_pys(docker_api: Any) -> None:
    import os

    import docker.errors

    from composer.backends.docker import transport
    from composer.backends.docker.client import connect, resolve_endpoint

    endpoint = resolve_endpoint(os.environ)
    if not endpoint.host.startswith("unix://"):
        pytest.skip("the fast transport is for an engine on a unix socket")
    api = connect(endpoint)
    try:
        assert api.ping() is True
        first = transport._local.connection
        assert first is not None
        assert api.version()["ApiVersion"] == docker_api.version()["ApiVersion"]
        names = {n["Name"] for n in api.networks(filters={"name": "bridge"})}
        assert "bridge" in names
        assert transport._local.connection is first  # kept alive, reused
        with pytest.raises(docker.errors.NotFound) as missing:
            api.inspect_container(f"composer-no-such-{time.time_ns()}")
        assert missing.value.status_code == 404
        assert "No such container" in str(missing.value)
        with pytest.raises(docker.errors.APIError):
            api.create_container("composer-test/busybox:latest", name="bad name with spaces")
        stream = api.events(since=0, until=1, decode=True)  # a stream: requests' path, unchanged
        assert list(stream) == []
    finally:
        api.close()
    assert transport._local.connection is None  # closed with its client


class _InFlight:
    """A real docker-py client whose calls of some methods are counted while they are in flight."""

    def __init__(self, api: Any, methods: tuple[str, ...]) -> None:
        import threading

        self._api = api
        self._methods = methods
        self._lock = threading.Lock()
        self.now = dict.fromkeys(methods, 0)
        self.most = dict.fromkeys(methods, 0)

    def reset(self) -> None:
        self.most = dict.fromkeys(self._methods, 0)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._api, name)
        if name not in self._methods:
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.now[name] += 1
                self.most[name] = max(self.most[name], self.now[name])
            try:
                return attribute(*args, **kwargs)
            finally:
                with self._lock:
                    self.now[name] -= 1

        return counted


async def test_starts_and_stops_without_grace_are_sent_a_few_at_once(busybox_image: str, project_name: str) -> None:
    import os

    from composer.backends.docker.backend import KILLS_AT_ONCE, STARTS_AT_ONCE
    from composer.backends.docker.client import connect, resolve_endpoint

    api = _InFlight(connect(resolve_endpoint(os.environ)), ("start", "stop"))
    backend = DockerBackend(client=api)
    try:
        # sleep as PID 1 ignores SIGTERM: a stop with a grace period lasts all of it
        service = {"name": "s", "command": ["sleep", "300"]}
        refs = [await backend.create_container(spec(project_name, busybox_image, service, number=number))
                for number in range(1, STARTS_AT_ONCE + 2)]

        async def each(call: Callable[[ContainerRef], Any]) -> None:
            async with anyio.create_task_group() as group:
                for ref in refs:
                    group.start_soon(call, ref)

        await each(backend.start_container)
        assert 1 <= api.most["start"] <= STARTS_AT_ONCE
        await each(lambda ref: backend.stop_container(ref, grace_seconds=1))
        assert api.most["stop"] == len(refs)  # each waits its grace period: all at once, as v2
        assert {(await backend.container_state(ref)).status for ref in refs} == {"exited"}
        await each(backend.start_container)
        api.reset()
        await each(lambda ref: backend.stop_container(ref, grace_seconds=0))
        assert 1 <= api.most["stop"] <= KILLS_AT_ONCE
        assert {(await backend.container_state(ref)).status for ref in refs} == {"exited"}
    finally:
        await backend.aclose()



async def test_an_event_stream_closes_once_whoever_closes_it(backend: DockerBackend) -> None:
    # docker-py's close shuts the socket down again while no reader has seen the stream's end (EBADF
    # on the second close): the events pump and the swarm waiter both close the stream they share,
    # and CI's swarm wait failed when the pump thread had not yet read the end
    stream = await backend._open_events({"type": ["container"], "label": ["composer.test=nothing"]})
    stream.close()
    stream.close()
    events = backend._pumped_events(await backend._open_events({"type": ["container"]}), "events-test")
    with anyio.move_on_after(0.2):
        async for _ in events:
            pass
    await events.aclose()
