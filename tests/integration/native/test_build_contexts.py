"""Real native builds with the ``build:`` keys that shape every RUN container (extra_hosts with
host-gateway, shm_size, ulimits) and the named contexts of ``additional_contexts`` (a folder,
``docker-image://``, ``service:``) wherever BuildKit takes a named context: FROM, COPY --from and
RUN --mount from=. The effects are read back from files the RUN steps wrote.

Docker's behaviour, side by side with ``DOCKER_BUILDKIT=1 /usr/bin/docker build`` on the engine
here (BuildKit 0.8, its Dockerfile frontend 1.2): ``--add-host`` lines are appended to the RUN's
/etc/hosts (host-gateway as the host's address), compared below. That BuildKit ignores
``--shm-size`` and ``--ulimit`` (seen: /dev/shm stays 64 MiB, ``ulimit -n`` the daemon's; its
frontend predates both: later ones mount a tmpfs of the size on /dev/shm and set the ExecOp's
ulimits), so their documented result is asserted instead, and
Debian's CLI has no ``--build-context`` (a buildx flag; named contexts need frontend 1.4), so
the named contexts are checked against BuildKit's documented rules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from secrets import token_hex
from typing import Any

import pytest

from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image.store import ImageStore
from composer.errors import ImageBuildError, UnsupportedFeatureError
from tests.integration.native.test_build import _the_cgroup_parent_goes, build, context, read
from tests.integration.native.test_lifecycle import Project, env, project
from tests.integration.registry import LocalRegistry

__all__ = ["_the_cgroup_parent_goes", "context", "env", "project"]  # the fixtures, imported for pytest

DOCKER = "/usr/bin/docker"  # Debian's CLI: DOCKER_BUILDKIT=1 drives the engine's BuildKit without buildx
PROBES = """\
FROM {base}
RUN cat /etc/hosts > /hosts; df -k /dev/shm | tail -1 | awk '{{print $2}}' > /shm; \\
    ulimit -Sn > /nofile; ulimit -Hn >> /nofile; ip route | awk '/default/ {{print $3}}' > /gateway
"""


def _extra(hosts: str) -> list[str]:
    """The lines of an /etc/hosts that name the test's hosts."""
    return [" ".join(line.split()) for line in hosts.splitlines() if line.split()[-1:] in (["alpha"], ["gw"])]


def test_extra_hosts_shm_size_and_ulimits_reach_every_run(store: ImageStore, context: Path,
                                                          local_registry: LocalRegistry) -> None:
    rootfs = build(store, context, PROBES.format(base=local_registry.busybox),
                   extra_hosts=["alpha=10.1.2.3", "gw=host-gateway"], shm_size="96m",
                   ulimits={"nofile": {"soft": 1024, "hard": 2048}})
    hosts = _extra(read(rootfs, "/hosts"))
    assert hosts[0] == "10.1.2.3 alpha"
    gateway = hosts[1].split()[0]
    # host-gateway: as a service's, the gateway of the RUN's (the build's own) network: the host
    assert gateway == read(rootfs, "/gateway").strip()
    assert read(rootfs, "/shm") == f"{96 * 1024}\n"  # shm_size: the size of the RUN's /dev/shm
    assert read(rootfs, "/nofile") == "1024\n2048\n"  # ulimits: soft and hard
    default = build(store, context, PROBES.format(base=local_registry.busybox), image="demo-plain")
    assert _extra(read(default, "/hosts")) == []
    assert read(default, "/shm") == f"{64 * 1024}\n"  # Docker's 64 MiB without shm_size


def test_extra_hosts_cache_on_names_not_addresses(store: ImageStore, context: Path,
                                                  local_registry: LocalRegistry) -> None:
    """As BuildKit's ExecOp cache map: a host's address is not in the key, its name is; the
    shm size and the ulimits are."""
    dockerfile = (f"FROM {local_registry.busybox}\n"
                  "RUN cat /proc/sys/kernel/random/uuid > /stamp; cat /etc/hosts > /hosts\n")

    def stamp(**keys: Any) -> tuple[str, list[str]]:
        rootfs = build(store, context, dockerfile, **keys)
        return read(rootfs, "/stamp"), _extra(read(rootfs, "/hosts"))

    first, hosts = stamp(extra_hosts=["alpha=10.1.2.3"])
    assert hosts == ["10.1.2.3 alpha"]
    assert stamp(extra_hosts=["alpha=10.9.9.9"]) == (first, hosts)  # cached: the old address stays, as BuildKit's
    assert stamp(extra_hosts=["alpha=10.1.2.3", "gw=10.0.0.1"])[0] != first  # a new name: built again
    assert stamp(extra_hosts=["alpha=10.1.2.3"], shm_size="80m")[0] != first
    assert stamp(extra_hosts=["alpha=10.1.2.3"], ulimits={"nofile": 4096})[0] != first
    assert stamp(extra_hosts=["alpha=10.1.2.3"])[0] == first


def test_host_gateway_without_a_network_is_one_line(store: ImageStore, context: Path,
                                                    local_registry: LocalRegistry) -> None:
    """As a service's ``extra_hosts``: host-gateway is the gateway of the container's network,
    so a RUN without one (``--network=none``) is refused in one line (Docker writes docker0's
    address, unreachable from that RUN: stricter here)."""
    with pytest.raises(UnsupportedFeatureError, match=r"^service web: .*Dockerfile:2: RUN --network=none true: "
                                                      r"build\.extra_hosts: host-gateway needs a network[^\n]*$"):
        build(store, context, f"FROM {local_registry.busybox}\nRUN --network=none true\n",
              extra_hosts=["gw=host-gateway"])


def test_extra_hosts_equal_buildkits(store: ImageStore, context: Path, local_registry: LocalRegistry) -> None:
    """The engine's BuildKit appends the same lines (host-gateway: its own docker0 address, the
    host's, where the native backend writes its build network's gateway, the host's too)."""
    native = build(store, context, PROBES.format(base=local_registry.busybox), extra_hosts=["alpha=10.1.2.3",
                                                                                           "gw=host-gateway"])
    image = f"composer-test-hosts-{token_hex(4)}:latest"
    try:
        subprocess.run([DOCKER, "build", "-q", "-t", image, "--add-host", "alpha:10.1.2.3", "--add-host",
                        "gw:host-gateway", str(context)], check=True, capture_output=True,
                       env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
        theirs = subprocess.run([DOCKER, "run", "--rm", "--network=none", image, "cat", "/hosts"], check=True,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True)
    ours = _extra(read(native, "/hosts"))
    assert [line.split()[1] for line in ours] == [line.split()[1] for line in _extra(theirs)] == ["alpha", "gw"]
    assert ours[0] == _extra(theirs)[0] == "10.1.2.3 alpha"
    assert "host-gateway" not in theirs + "".join(ours)



NAMED = """\
FROM {base} AS tools
RUN --network=none mkdir -p /opt && echo tool > /opt/tool

FROM files AS from-folder

FROM img
COPY --from=files greeting.txt /from-folder.txt
COPY --from=img /bin/busybox /from-image-busybox
COPY --from=from-folder /greeting.txt /via-from.txt
RUN --network=none --mount=from=files,target=/named cat /named/greeting.txt > /mounted-folder.txt; \\
    ls /named > /mounted-ls
RUN --network=none --mount=type=bind,from=img,source=/bin,target=/img-bin ls /img-bin > /mounted-image-bin
RUN --network=none --mount=type=bind,from={base},source=/bin,target=/ref-bin test -x /ref-bin/busybox && \\
    echo yes > /mounted-ref
RUN --network=none --mount=type=cache,from=files,target=/seeded,id=seed-{tag} cat /seeded/greeting.txt > /seeded.txt
RUN --network=none --mount=type=bind,from=tools,source=/opt,target=/t cat /t/tool > /from-stage
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "greeting.txt").write_text("hello from a named context\n")
    (folder / "hidden.txt").write_text("left out\n")
    (folder / ".dockerignore").write_text("hidden.txt\n")
    return folder


def test_named_contexts_in_from_copy_and_mounts(store: ImageStore, context: Path, files: Path,
                                                local_registry: LocalRegistry) -> None:
    """A folder (after its own .dockerignore) and a docker-image:// context by name in FROM,
    COPY --from and RUN --mount from= (bind and cache), and an image reference in a mount's
    from=, as BuildKit takes them."""
    tag = token_hex(4)
    contexts = {"files": str(files), "img": f"docker-image://{local_registry.busybox}"}
    rootfs = build(store, context, NAMED.format(base=local_registry.busybox, tag=tag), additional_contexts=contexts)
    assert read(rootfs, "/from-folder.txt") == "hello from a named context\n"
    assert read(rootfs, "/via-from.txt") == "hello from a named context\n"  # FROM files: its files at /
    assert read(rootfs, "/mounted-folder.txt") == "hello from a named context\n"
    assert read(rootfs, "/mounted-ls") == "greeting.txt\n"  # the context's .dockerignore applies
    assert "busybox" in read(rootfs, "/mounted-image-bin").split()
    assert read(rootfs, "/mounted-ref") == "yes\n"
    assert read(rootfs, "/seeded.txt") == "hello from a named context\n"
    assert read(rootfs, "/from-stage") == "tool\n"
    _, busybox = rootfs.resolve("/from-image-busybox")
    assert busybox is not None
    assert busybox.info.st_size > 100_000
    config = store.config(store.get("docker.io/library/demo-web:latest"))  # type: ignore[arg-type]
    assert config["config"]["Cmd"] == ["sh"]  # FROM img: the image's config, as FROM its reference


def test_named_folder_content_is_in_the_cache_key(store: ImageStore, context: Path, files: Path,
                                                  local_registry: LocalRegistry) -> None:
    """As the main context's: a COPY --from or a mount of a folder context is built again when
    the files it reads change, and only then (a file .dockerignore leaves out changes nothing).
    A context the Dockerfile does not use is not resolved, as BuildKit's (an image no registry
    has breaks nothing)."""
    dockerfile = f"""\
FROM {local_registry.busybox}
COPY --from=files greeting.txt /copied.txt
RUN --network=none --mount=from=files,target=/named cat /proc/sys/kernel/random/uuid > /stamp
"""

    def once() -> tuple[str, str]:
        rootfs = build(store, context, dockerfile, additional_contexts={
            "files": str(files), "unused": "docker-image://127.0.0.1:9/composer-test/absent:1"})
        return read(rootfs, "/copied.txt"), read(rootfs, "/stamp")

    copied, stamp = once()
    (files / "hidden.txt").write_text("changed, and ignored\n")
    assert once() == (copied, stamp)
    (files / "greeting.txt").write_text("changed\n")
    again, new_stamp = once()
    assert again == "changed\n"
    assert new_stamp != stamp


def test_bad_named_contexts_are_one_line(store: ImageStore, context: Path, files: Path,
                                         local_registry: LocalRegistry) -> None:
    dockerfile = f"FROM {local_registry.busybox}\nCOPY --from=x a /a\n"
    with pytest.raises(ImageBuildError, match=r"^service web: build.additional_contexts.x: /nowhere/at-all is not a "
                                              r"folder$"):
        build(store, context, dockerfile, additional_contexts={"x": "/nowhere/at-all"})
    with pytest.raises(ImageBuildError, match=r"^service web: build.additional_contexts.x: 'docker-image://' names "
                                              r"no image$"):
        build(store, context, dockerfile, additional_contexts={"x": "docker-image://"})
    with pytest.raises(UnsupportedFeatureError, match=r"^service web: build.additional_contexts.x: oci-layout://"
                                                      r"/tmp/l is not supported by the native builder"):
        build(store, context, dockerfile, additional_contexts={"x": "oci-layout:///tmp/l"})
    with pytest.raises(ImageBuildError, match=r"^service web: build.additional_contexts.x: service:api: no such "
                                              r"service with a build section$"):
        build(store, context, dockerfile, additional_contexts={"x": "service:api"})  # no image handed over
    with pytest.raises(UnsupportedFeatureError, match=r"^service web: build.additional_contexts.x replacing the "
                                                      r"stage of that name is not supported"):
        build(store, context, f"FROM {local_registry.busybox} AS x\n", additional_contexts={"x": str(files)})
    assert store.get("docker.io/library/demo-web:latest") is None
    assert not list((store.root / "tmp").iterdir())


def test_a_service_context_is_built_first_and_read_through_the_cli(project: Project) -> None:
    """``service:<name>``: that service's image, built first by the same ``build`` (v2's
    addBuildDependencies), read by FROM, COPY --from and RUN --mount from=; a folder relative to
    the project folder (v2 resolves it there); an unknown service is one line naming the key."""
    (project.folder / "base").mkdir()
    (project.folder / "extra").mkdir()
    (project.folder / "extra" / "note.txt").write_text("from the project folder\n")
    base = "FROM IMAGE\\nRUN --network=none echo built-base > /base.txt"
    app = ("FROM parent\\nCOPY --from=parent /base.txt /copied.txt\\nCOPY --from=extra note.txt /note.txt\\n"
           "RUN --network=none --mount=from=parent,target=/p cat /p/base.txt > /mounted.txt")
    project.write(f"""\
app:
  image: {project.name}-app
  build:
    context: base
    dockerfile_inline: "{app}"
    additional_contexts:
      parent: service:base
      extra: ./extra
base:
  image: {project.name}-base
  build:
    context: base
    dockerfile_inline: "{base}"
""")
    try:
        built = project.run("build", "app", timeout=180)
        output = built.stdout + built.stderr
        assert output.index(f"{project.name}-base  Built") < output.index(f"{project.name}-app  Building"), output
        store = ImageStore.open(project.env.root / "store")
        record = store.get(f"docker.io/library/{project.name}-app:latest")
        assert record is not None
        rootfs = RootFS([layer.path for layer in store.layers(record)])
        shown = [read(rootfs, path) for path in ("/base.txt", "/copied.txt", "/note.txt", "/mounted.txt")]
        assert shown == ["built-base\n", "built-base\n", "from the project folder\n", "built-base\n"]
        project.write(f"app:\n  image: {project.name}-app\n  build:\n    context: base\n"
                      "    additional_contexts: {parent: 'service:nope'}\n")
        failed = project.run("build", check=False)
        assert failed.returncode != 0
        assert failed.stderr.strip().splitlines()[-1].endswith(
            "service app: build.additional_contexts.parent: service:nope: no such service with a build section"), \
            failed.stderr
        assert "Traceback" not in failed.stderr
    finally:
        project.run("down", "--rmi", "all", check=False)
        store = ImageStore.open(project.env.root / "store")
        for reference in (f"docker.io/library/{project.name}-{name}:latest" for name in ("app", "base")):
            if store.get(reference) is not None:
                store.remove(reference)
        store.gc()
