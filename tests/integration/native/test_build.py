"""Real builds with the native builder into a tmp store: FROM (the busybox test image pulled from
the local registry, and scratch), metadata through image_config, COPY from the context with
.dockerignore, --chown/--chmod and Docker's destination rules, COPY --from, multi-stage targets,
and the one-line refusals of what is not built yet. The result is checked in the store: the
record, its config and history, and the files of its layers as overlay would show them.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from composer.backends.native.backend import NativeBackend
from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image.store import ImageStore
from composer.contract.backend import BuildSecret, BuildSpec
from composer.dockerfile.parser import DockerfileSyntaxError
from composer.errors import ImageBuildError, UnsupportedFeatureError
from composer.events import ListSink
from composer.spec.models.service import ServiceConfig
from tests.integration.registry import LocalRegistry

CGROUP_PARENT = f"composer-test-build-{os.getpid()}"


@pytest.fixture(scope="module", autouse=True)
def _the_cgroup_parent_goes() -> Iterator[None]:
    """The builds' parent cgroup (empty once each build's containers are gone) is removed at the end."""
    from tests.support.isolation import remove_cgroup_parent

    yield
    remove_cgroup_parent(CGROUP_PARENT)


def build(store: ImageStore, context: Path, dockerfile: str, *, image: str = "demo-web", target: str | None = None,
          tags: tuple[str, ...] = (), labels: dict[str, str] | None = None, args: dict[str, str] | None = None,
          build_secrets: dict[str, BuildSecret] | None = None, **build: object) -> RootFS:
    (context / "Dockerfile").write_text(dockerfile)
    service = ServiceConfig.model_validate({"name": "web", "build": {"context": str(context), "target": target,
                                                                     **build}})
    run_root = store.root.parent / "run"
    backend = NativeBackend(store.root, environ={"COMPOSER_RUN_ROOT": str(run_root),
                                                 "COMPOSER_CGROUP_PARENT": CGROUP_PARENT})
    try:
        anyio.run(backend.build_image, BuildSpec("demo", service, image, labels or {}, tags=tags, args=args or {},
                                                        secrets=build_secrets or {}),
                  ListSink())
    finally:
        anyio.run(backend.aclose)
        leftovers = [str(path.relative_to(run_root)) for path in run_root.rglob("*")] if run_root.is_dir() else []
        # no build container's folder, network or DNS state is left, pass or fail (the network
        # manager's lock file stays by design)
        assert [path for path in leftovers if path not in ("networks", "networks/.lock")] == []
        containers = store.root / "containers"
        assert not containers.is_dir() or list(containers.iterdir()) == []
    record = backend.store.get(f"docker.io/library/{image}:latest")
    assert record is not None
    assert record.source == "build"
    return RootFS([layer.path for layer in backend.store.layers(record)])


def config_of(store: ImageStore, image: str = "demo-web") -> dict[str, object]:
    record = store.get(f"docker.io/library/{image}:latest")
    assert record is not None
    return store.config(record)


def mode_owner(rootfs: RootFS, path: str) -> tuple[str, int, int]:
    _, entry = rootfs.resolve(path)
    assert entry is not None, path
    return oct(stat.S_IMODE(entry.info.st_mode)), entry.info.st_uid, entry.info.st_gid


def read(rootfs: RootFS, path: str) -> str:
    _, entry = rootfs.resolve(path)
    assert entry is not None, path
    return entry.host.read_text()


@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "ctx"
    (folder / "app" / "sub").mkdir(parents=True)
    (folder / "app" / "main.sh").write_text("echo main\n")
    os.chmod(folder / "app" / "main.sh", 0o751)
    (folder / "app" / "sub" / "data.txt").write_text("data\n")
    (folder / "app" / "secret.key").write_text("nope\n")
    (folder / "app" / "keep.key").write_text("kept\n")
    (folder / "notes.md").write_text("notes\n")
    (folder / "logs").mkdir()
    (folder / "logs" / "a.log").write_text("log\n")
    (folder / ".dockerignore").write_text("# comment\nlogs\n**/*.key\n!app/keep.key\n")
    return folder


def test_from_an_image_copy_rules_dockerignore_and_metadata(store: ImageStore, context: Path,
                                                            local_registry: LocalRegistry) -> None:
    rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
ENV GREETING=hi
WORKDIR /srv
COPY app ./app/
COPY notes.md .
COPY --chown=1000:1001 --chmod=640 notes.md /opt/deep/dir/renamed.md
COPY app/main.sh /usr/local/bin/
COPY . /whole/
LABEL org.example.stage=final
EXPOSE 8080
CMD ["sh", "/srv/app/main.sh"]
""", tags=("demo-web:v1",), labels={"com.docker.compose.service": "web"})
    assert read(rootfs, "/srv/app/main.sh") == "echo main\n"
    assert mode_owner(rootfs, "/srv/app/main.sh") == ("0o751", 0, 0)
    assert read(rootfs, "/srv/app/sub/data.txt") == "data\n"
    assert read(rootfs, "/srv/notes.md") == "notes\n"
    assert read(rootfs, "/usr/local/bin/main.sh") == "echo main\n"
    assert mode_owner(rootfs, "/opt/deep/dir/renamed.md") == ("0o640", 1000, 1001)
    assert mode_owner(rootfs, "/opt/deep/dir") == ("0o755", 1000, 1001)  # created parents: --chown's
    # .dockerignore: logs and *.key gone, the exception kept
    assert rootfs.resolve("/srv/app/secret.key")[1] is None
    assert read(rootfs, "/srv/app/keep.key") == "kept\n"
    assert rootfs.resolve("/whole/logs")[1] is None
    assert read(rootfs, "/whole/notes.md") == "notes\n"
    assert rootfs.resolve("/bin/busybox")[1] is not None  # the base's layers are below
    config = config_of(store)
    inner = config["config"]
    assert isinstance(inner, dict)
    assert inner["WorkingDir"] == "/srv"
    assert inner["Cmd"] == ["sh", "/srv/app/main.sh"]
    assert inner["ExposedPorts"] == {"8080/tcp": {}}
    assert inner["Labels"] == {"org.example.stage": "final", "com.docker.compose.service": "web"}
    assert "GREETING=hi" in inner["Env"]
    history = config["history"]
    assert isinstance(history, list)
    created_by = [entry["created_by"] for entry in history if entry.get("comment") == "buildkit.dockerfile.v0"]
    assert created_by[:3] == ["ENV GREETING=hi", "WORKDIR /srv", "COPY app ./app/ # buildkit"]
    rootfs_section = config["rootfs"]
    assert isinstance(rootfs_section, dict)
    layered = [entry for entry in history if not entry.get("empty_layer")]
    assert len(layered) == len(rootfs_section["diff_ids"])
    tagged, latest = store.get("docker.io/library/demo-web:v1"), store.get("docker.io/library/demo-web:latest")
    assert tagged is not None
    assert latest is not None
    assert (tagged.manifest, tagged.config) == (latest.manifest, latest.config)


def test_multi_stage_copy_from_scratch_and_target(store: ImageStore, context: Path) -> None:
    dockerfile = """\
FROM scratch AS files
COPY --chown=7:8 app/sub /data/
FROM files AS unused
COPY notes.md /never
FROM scratch AS final
COPY --from=files /data/data.txt /out/
COPY --from=files /data /copied
"""
    rootfs = build(store, context, dockerfile)
    assert read(rootfs, "/out/data.txt") == "data\n"
    assert mode_owner(rootfs, "/out/data.txt") == ("0o644", 7, 8)  # a stage's files keep their owners
    assert read(rootfs, "/copied/data.txt") == "data\n"
    assert rootfs.resolve("/never")[1] is None
    config = config_of(store)
    assert len(config["rootfs"]["diff_ids"]) == 2  # type: ignore[index]
    target = build(store, context, dockerfile, image="demo-target", target="unused")
    assert read(target, "/never") == "notes\n"
    assert read(target, "/data/data.txt") == "data\n"


def test_errors_and_refusals_are_one_line(store: ImageStore, context: Path) -> None:
    with pytest.raises(ImageBuildError, match=r'Dockerfile:2: COPY missing /x: "/missing": not found$'):
        build(store, context, "FROM scratch\nCOPY missing /x\n")
    with pytest.raises(ImageBuildError, match=r"\"/logs/a.log\": not found \(excluded by the .dockerignore pattern "
                                              r"'logs'\)$"):
        build(store, context, "FROM scratch\nCOPY logs/a.log /x\n")  # excluded by .dockerignore
    with pytest.raises(UnsupportedFeatureError, match=r"Dockerfile:2: RUN --mount=type=ssh is not supported"):
        build(store, context, "FROM scratch\nRUN --network=none --mount=type=ssh true\n")
    with pytest.raises(UnsupportedFeatureError, match=r"Dockerfile:2: ADD of a git repository is not supported"):
        build(store, context, "FROM scratch\nADD https://example.invalid/x.git /x\n")
    with pytest.raises(UnsupportedFeatureError, match=r"Dockerfile:1: FROM --platform=linux/arm64 \(not the host's "
                                                      r"linux/amd64\) is not supported"):
        build(store, context, "FROM --platform=linux/arm64 scratch\n")
    with pytest.raises(DockerfileSyntaxError, match=r"unknown instruction: FRM"):
        build(store, context, "FRM scratch\n")
    with pytest.raises(UnsupportedFeatureError, match=r"build.ssh is not supported"):
        build(store, context, "FROM scratch\n", ssh=["default"])
    assert store.get("docker.io/library/demo-web:latest") is None
    assert not list((store.root / "tmp").iterdir())


def layer_members(store: ImageStore, image: str = "demo-web") -> list[list[tarfile.TarInfo]]:
    """The members of each built layer's blob (the form that is pushed), bottom first."""
    record = store.get(f"docker.io/library/{image}:latest")
    assert record is not None
    layers = []
    for descriptor in store.manifest(record)["layers"]:
        with tarfile.open(store.blob_path(descriptor["digest"]), "r:*") as archive:
            layers.append(archive.getmembers())
    return layers


def test_run_in_a_native_container_and_its_changes_as_a_layer(store: ImageStore, context: Path,
                                                                local_registry: LocalRegistry) -> None:
    rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
ARG GREETING=hello
COPY app /app
RUN --network=none mkdir -p /made/sub && echo "$GREETING" > /made/sub/file && chown 12:34 /made/sub/file \\
    && chmod 4750 /made/sub/file && ln /made/sub/file /made/hard && ln -s sub/file /made/soft \\
    && rm /app/main.sh && rm -rf /app/sub && mkdir /app/sub && echo new > /app/sub/fresh
RUN --network=none ["/bin/sh", "-c", "id -u > /made/uid; pwd > /made/pwd"]
RUN --network=none <<EOF
echo from heredoc > /made/heredoc
EOF
RUN --network=none cat <<EOF > /made/cat
piped $GREETING
EOF
""", args={"GREETING": "bonjour"})
    assert read(rootfs, "/made/sub/file") == "bonjour\n"  # the build argument is in RUN's environment
    assert mode_owner(rootfs, "/made/sub/file") == ("0o4750", 12, 34)
    _, hard = rootfs.resolve("/made/hard")
    _, original = rootfs.resolve("/made/sub/file")
    assert hard is not None
    assert original is not None
    assert (hard.info.st_ino, hard.info.st_nlink) == (original.info.st_ino, 2)
    soft = rootfs.resolve("/made/soft", follow_last=False)[1]
    assert soft is not None
    assert os.readlink(soft.host) == "sub/file"
    assert rootfs.resolve("/app/main.sh")[1] is None  # deleted: a whiteout
    assert rootfs.listdir(("app", "sub")) == ["fresh"]  # replaced: an opaque folder
    assert read(rootfs, "/made/uid") == "0\n"
    assert read(rootfs, "/made/pwd") == "/\n"
    assert read(rootfs, "/made/heredoc") == "from heredoc\n"
    assert read(rootfs, "/made/cat") == "piped bonjour\n"
    # the runtime's stub files (the image has no /etc) are not in a layer; the folder is, as in
    # BuildKit's RUN layers (test_build_conformance.py's run case)
    assert rootfs.listdir(("etc",)) == []
    run_layer = {member.name: member for member in layer_members(store)[-4]}
    assert "app/.wh.main.sh" in run_layer
    assert "app/sub/.wh..wh..opq" in run_layer
    assert run_layer["made/hard"].islnk() or run_layer["made/sub/file"].islnk()
    config = config_of(store)
    history = config["history"]
    assert isinstance(history, list)
    created_by = [entry["created_by"] for entry in history][-4:]
    # the stage's ARGs with their values first, as BuildKit words it
    assert created_by[1] == "RUN |1 GREETING=bonjour /bin/sh -c id -u > /made/uid; pwd > /made/pwd # buildkit"


def test_a_failing_run_names_the_step_its_code_and_its_last_lines(store: ImageStore, context: Path,
                                                                   local_registry: LocalRegistry) -> None:
    with pytest.raises(ImageBuildError) as failed:
        build(store, context, f"FROM {local_registry.busybox}\n"
                              "RUN --network=none echo first; echo second >&2; exit 3\n")
    message = str(failed.value)
    assert "\n" not in message
    assert message.endswith('Dockerfile:2: RUN --network=none echo first; echo second >&2; exit 3: process '
                            '"/bin/sh -c echo first; echo second >&2; exit 3" did not complete successfully: '
                            "exit code: 3: first | second")
    assert store.get("docker.io/library/demo-web:latest") is None


def test_run_network_none_reaches_no_host_service(store: ImageStore, context: Path,
                                                  local_registry: LocalRegistry) -> None:
    """Docker's --network=none: a namespace with loopback only; the host's 127.0.0.1 is not there."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
RUN --network=none (nc -w 2 127.0.0.1 {port} </dev/null && echo reached || echo refused) > /result; \\
    ls /sys/class/net > /links
""")
    assert read(rootfs, "/result") == "refused\n"
    assert read(rootfs, "/links") == "lo\n"
    rootfs = build(store, context, f"FROM {local_registry.busybox}\nRUN ls /sys/class/net > /links\n", network="none",
                   image="demo-none")
    assert read(rootfs, "/links") == "lo\n"  # build.network: none is every RUN's default
    with pytest.raises(UnsupportedFeatureError, match=r"service web: build.network: web_net is not supported"):
        build(store, context, "FROM scratch\n", network="web_net")  # BuildKit has no named networks either


def test_build_network_host_is_every_runs_default(store: ImageStore, context: Path,
                                                   local_registry: LocalRegistry) -> None:
    """``build.network: host``, as ``docker build --network host`` on dockerd: each RUN without a
    --network of its own is in the host's network namespace (the host's 127.0.0.1 is reached, a
    link made on the host is seen); the file asks for it, so no entitlement is needed (a
    Dockerfile's own RUN --network=host still needs one: test_build_mounts.py)."""
    link = f"cmpbh{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", link + "p"], check=True)  # no dummy here
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            port = server.getsockname()[1]
            threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
            rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
RUN (nc -w 2 127.0.0.1 {port} </dev/null && echo reached || echo refused) > /result; ls /sys/class/net > /links
RUN --network=none ls /sys/class/net > /own
""", network="host", image="demo-host")
    finally:
        subprocess.run(["ip", "link", "del", link], check=False)
    assert read(rootfs, "/result") == "reached\n"
    assert link in read(rootfs, "/links").split()
    assert read(rootfs, "/own") == "lo\n"  # a RUN's own --network still wins


def test_run_default_network_is_a_bridge_of_the_builds_own(store: ImageStore, context: Path,
                                                            local_registry: LocalRegistry) -> None:
    """Docker's default build network: a bridged namespace (eth0 beside lo), the host's services on
    127.0.0.1 out of reach (by 127.0.0.1 and by the gateway: no route_localnet); the bridge and its
    records are gone after the build."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
RUN ls /sys/class/net > /links; gateway=$(ip route | awk '/default/ {{print $3}}'); echo "$gateway" > /gateway; \\
    (nc -w 2 127.0.0.1 {port} </dev/null && echo reached || echo refused) > /loopback; \\
    (nc -w 2 "$gateway" {port} </dev/null && echo reached || echo refused) > /via-gateway
""")
    assert read(rootfs, "/links").split() == ["eth0", "lo"]
    assert read(rootfs, "/gateway").strip()
    assert read(rootfs, "/loopback") == "refused\n"
    assert read(rootfs, "/via-gateway") == "refused\n"
    gateway = read(rootfs, "/gateway").strip()
    deadline = time.monotonic() + 10  # the kernel deletes links asynchronously
    while f"inet {gateway}/" in (addresses := subprocess.run(["ip", "-4", "addr"], capture_output=True,
                                                             text=True).stdout) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"inet {gateway}/" not in addresses  # the build's bridge is gone


def test_runs_share_the_builds_bridge_each_in_a_namespace_of_its_own(store: ImageStore, context: Path,
                                                                    local_registry: LocalRegistry) -> None:
    """The RUN steps of a build share one bridge network (made once: its gateway is the same for
    each) but each RUN is a fresh container with a network namespace of its own: what a
    privileged RUN changed in its namespace (loopback's MTU) is not there in the next. BuildKit
    in dockerd does the same: each RUN gets a network sandbox of its own on the engine's bridge,
    so no RUN sees another's network state (their processes cannot meet either: each RUN ends
    before the next starts, and its pid namespace with it)."""
    rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
RUN --security=insecure ip link set lo mtu 1280 && cat /sys/class/net/lo/mtu > /mtu-1; \
    ip route | awk '/default/ {{print $3}}' > /gateway-1
RUN cat /sys/class/net/lo/mtu > /mtu-2; ip route | awk '/default/ {{print $3}}' > /gateway-2
""", privileged=True)
    assert read(rootfs, "/mtu-1") == "1280\n"
    assert read(rootfs, "/mtu-2") == "65536\n"  # a namespace of its own, not the first RUN's
    assert read(rootfs, "/gateway-1").strip()
    assert read(rootfs, "/gateway-2") == read(rootfs, "/gateway-1")  # one bridge for the build


def test_the_build_network_drops_traffic_between_its_runs(tmp_path: Path) -> None:
    """The build's bridge is made with inter-container traffic off (enable_icc: false, Docker's
    ``-i br -o br -j DROP``): RUNs of stages built in parallel cannot reach each other, as when
    each RUN had a bridge of its own. Stricter than BuildKit in dockerd, whose RUNs share docker0
    (where they can). ``close`` removes the bridge and its rules; a second close does nothing."""
    from composer.backends.native.build.run import BuildNetwork
    from composer.backends.native.network import NetworkManager

    run_root = tmp_path / "run"
    network = BuildNetwork()
    try:
        project, name = network.ensure(run_root)
        assert network.ensure(run_root) == (project, name)  # made once
        state = NetworkManager(run_root).network(name)
        assert state is not None
        assert state["project"] == project
        assert state["options"]["icc"] is False
        rules = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True, check=True).stdout
        bridge = state["bridge"]
        assert any(f"-i {bridge} -o {bridge}" in line and line.endswith("-j DROP") for line in rules.splitlines())
    finally:
        network.close()
    network.close()
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert bridge not in rules
    assert [path.name for path in run_root.iterdir()] == ["networks"]  # no project folder, no DNS daemon's


def test_run_has_a_service_containers_isolation(store: ImageStore, context: Path,
                                                local_registry: LocalRegistry) -> None:
    """As Docker's RUN (and a service container here): Docker's default capabilities, a seccomp
    filter, no mount, /proc/kcore masked, /proc/sys read-only."""
    rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
RUN --network=none grep -E "^(CapEff|Seccomp):" /proc/self/status > /status; \\
    (mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo refused) > /mount; \\
    (head -c 16 /proc/kcore 2>/dev/null | wc -c) > /kcore; \\
    (echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo written || echo refused) > /sysctl
""")
    status = dict(line.split(":\t") for line in read(rootfs, "/status").splitlines())
    assert int(status["CapEff"], 16) == 0xA80425FB  # Docker's default set
    assert status["Seccomp"] == "2"  # a filter
    assert read(rootfs, "/mount") == "refused\n"
    assert read(rootfs, "/kcore").strip() == "0"  # nothing readable
    assert read(rootfs, "/sysctl") == "refused\n"
