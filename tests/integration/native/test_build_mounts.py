"""Real native builds with RUN --mount (cache, bind, tmpfs, secret), RUN --network=host and
--security=insecure behind their entitlements, and Compose's build.secrets: the probes each RUN
writes are read back from the built image, and what must stay out of it (mount points, secrets)
is checked in every layer blob and the config.

Docker's behaviour, checked side by side with ``DOCKER_BUILDKIT=1 docker build`` on the engine
here (its BuildKit builds RUN --mount): a bind is read-only unless ``rw`` and rw writes are
thrown away; a cache folder outlives the build; a secret is 0400 root's at /run/secrets/<id>
unless the mount says otherwise; mount points the stage lacked are not in the layer.
test_mount_probes_equal_buildkits builds the same probes on both and compares them.
"""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading
from pathlib import Path
from secrets import token_hex

import pytest

from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image.store import ImageStore
from composer.contract.backend import BuildSecret
from composer.errors import ImageBuildError, UnsupportedFeatureError
from tests.integration.native.test_build import _the_cgroup_parent_goes, build, config_of, context, layer_members, read
from tests.integration.native.test_build_up import env
from tests.integration.native.test_lifecycle import Env
from tests.integration.registry import LocalRegistry
from tests.integration.timeouts import scaled

__all__ = ["_the_cgroup_parent_goes", "context", "env"]  # test_build's fixtures: the context, the cgroup removed

PROBES = """\
FROM {base} AS gen
RUN --network=none mkdir /out && echo generated > /out/file

FROM {base}
RUN --network=none --mount=type=cache,target=/cache,id=probe-{tag} \\
    echo run >> /cache/count; wc -l < /cache/count | tr -d ' ' > /seen
RUN --network=none --mount=type=bind,source=app,target=/src \\
    cat /src/sub/data.txt > /bound; (touch /src/x 2>/dev/null && echo writable || echo read-only) > /bind-ro; \\
    ls /src > /bind-ls
RUN --network=none --mount=type=bind,source=app,target=/src,rw touch /src/new && ls /src/new > /rw
RUN --network=none --mount=type=bind,source=app/main.sh,target=/main.sh cat /main.sh > /one-file
RUN --network=none --mount=type=tmpfs,target=/scratch,size=1m \\
    df -k /scratch | tail -1 | awk '{{print $2}}' > /tmpfs-size; echo x > /scratch/y
RUN --network=none --mount=type=cache,target=/var/owned,id=owned-{tag},uid=1000,gid=1001,mode=0700 \\
    stat -c '%u %g %a' /var/owned > /cache-owner
RUN --network=none --mount=type=bind,from=gen,source=/out,target=/gen cat /gen/file > /from-stage
"""
HEREDOC_AND_CACHE = """\
FROM {base}
RUN --mount=type=cache,target=/cache,id=heredoc-{tag} <<EOF
echo run >> /cache/count
wc -l < /cache/count | tr -d ' ' > /seen
EOF
RUN --mount=type=secret,id=token <<EOF
wc -c < /run/secrets/token | tr -d ' ' > /token-length
EOF
COPY <<EOF /greeting
hello from a heredoc
EOF
"""
"""Built on both backends (tests/integration/docker/test_build_buildkit_syntax.py)."""
PROBE_FILES = ("/seen", "/bound", "/bind-ro", "/bind-ls", "/rw", "/one-file", "/tmpfs-size", "/cache-owner",
               "/from-stage")


def test_run_mounts_cache_bind_tmpfs(store: ImageStore, context: Path, local_registry: LocalRegistry) -> None:
    dockerfile = PROBES.format(base=local_registry.busybox, tag="native")
    rootfs = build(store, context, dockerfile)
    assert read(rootfs, "/seen") == "1\n"
    assert read(rootfs, "/bound") == "data\n"
    assert read(rootfs, "/bind-ro") == "read-only\n"  # a bind is read-only unless rw
    assert read(rootfs, "/bind-ls").split() == ["keep.key", "main.sh", "sub"]  # .dockerignore applies
    assert read(rootfs, "/rw") == "/src/new\n"
    assert not (context / "app" / "new").exists()  # rw writes are thrown away, the context is untouched
    assert read(rootfs, "/one-file") == "echo main\n"
    assert read(rootfs, "/tmpfs-size") == "1024\n"
    assert read(rootfs, "/cache-owner") == "1000 1001 700\n"
    assert read(rootfs, "/from-stage") == "generated\n"
    for gone in ("/cache", "/src", "/main.sh", "/scratch", "/var/owned", "/gen"):
        assert rootfs.resolve(gone)[1] is None, gone  # mount points the stage lacked: not in a layer
    # the cache persists in the store across builds (a different step text: no step cache involved)
    rootfs = build(store, context, dockerfile.replace("tr -d ' ' > /seen", "tr -d ' '  > /seen"), image="again")
    assert read(rootfs, "/seen") == "2\n"
    assert list((store.root / "tmp").iterdir()) == []  # no temporary copy or secret left


def test_heredoc_cache_mount_and_secret(store: ImageStore, context: Path, local_registry: LocalRegistry) -> None:
    dockerfile = HEREDOC_AND_CACHE.format(base=local_registry.busybox, tag=token_hex(4))
    rootfs = build(store, context, dockerfile, build_secrets={"token": BuildSecret(value=b"s3cr3t-value")})
    assert read(rootfs, "/greeting") == "hello from a heredoc\n"
    assert read(rootfs, "/seen") == "1\n"
    assert read(rootfs, "/token-length") == "12\n"
    assert rootfs.resolve("/cache")[1] is None
    rootfs = build(store, context, dockerfile.replace("echo run", "echo again"), image="again",
                   build_secrets={"token": BuildSecret(value=b"s3cr3t-value")})
    assert read(rootfs, "/seen") == "2\n"


def test_compose_build_secrets_reach_the_step_through_the_cli(env: Env, tmp_path: Path) -> None:
    """``composer build`` of a service with build.secrets from a file and from a variable."""
    web = tmp_path / "web"
    web.mkdir()
    (web / "Dockerfile").write_text(f"""\
FROM {env.image}
RUN --network=none --mount=type=secret,id=token --mount=type=secret,id=cfg \\
    cat /run/secrets/token /run/secrets/cfg | md5sum > /sums
""")
    (tmp_path / "secret.txt").write_text("from-a-file-91c")
    (tmp_path / "compose.yaml").write_text("""
services:
  web:
    build:
      context: ./web
      secrets: [token, {source: filesecret, target: cfg}]
secrets:
  token: {environment: BUILD_TOKEN}
  filesecret: {file: ./secret.txt}
""")
    name = f"bs{token_hex(4)}"
    result = subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "-p", name, "build"],
                            cwd=tmp_path, env={**env.environ, "BUILD_TOKEN": "from-a-variable-5e0"},
                            capture_output=True, text=True, timeout=scaled(300))
    assert result.returncode == 0, result.stderr
    store = ImageStore(env.root / "store")
    record = store.get(f"docker.io/library/{name}-web:latest")
    assert record is not None
    import hashlib

    rootfs = RootFS([layer.path for layer in store.layers(record)])
    assert read(rootfs, "/sums").split()[0] == hashlib.md5(b"from-a-variable-5e0from-a-file-91c").hexdigest()
    for layer in store.manifest(record)["layers"]:
        data = gzip.decompress(store.blob_path(layer["digest"]).read_bytes())
        assert b"from-a-variable-5e0" not in data
        assert b"from-a-file-91c" not in data


def test_cache_sharing_private_gets_its_own_folder_while_another_holds_it(store: ImageStore, context: Path,
                                                                           local_registry: LocalRegistry) -> None:
    import fcntl

    from composer.backends.native.build.mounts import cache_folder

    folder = cache_folder(store.root, "held")
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir()
    (folder / "mark").write_text("shared\n")
    with open(folder.with_suffix(".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # another build uses it
        rootfs = build(store, context, f"FROM {local_registry.busybox}\n"
                                       "RUN --network=none --mount=type=cache,target=/c,id=held,sharing=private "
                                       "ls /c > /private-ls\n"
                                       "RUN --network=none --mount=type=cache,target=/c,id=held,sharing=shared "
                                       "ls /c > /shared-ls\n")
    assert read(rootfs, "/private-ls") == ""
    assert read(rootfs, "/shared-ls") == "mark\n"


def test_build_secrets_from_a_file_and_a_variable_never_land_in_the_image(
        store: ImageStore, context: Path, local_registry: LocalRegistry, tmp_path: Path) -> None:
    file_value, env_value = b"file-secret-3b1f9e", b"env-secret-77c2d0"
    (tmp_path / "secret.txt").write_bytes(file_value)
    secrets = {"filesecret": BuildSecret(file=str(tmp_path / "secret.txt")), "envsecret": BuildSecret(value=env_value)}
    rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
RUN --network=none --mount=type=secret,id=filesecret \\
    cat /run/secrets/filesecret > /dev/null && md5sum < /run/secrets/filesecret > /file-sum; \\
    stat -c '%a %u %g' /run/secrets/filesecret > /file-mode
RUN --network=none --mount=type=secret,id=envsecret,env=TOKEN,target=/tok,uid=5,gid=6,mode=0440 \\
    printf %s "$TOKEN" | md5sum > /env-sum; stat -c '%a %u %g' /tok > /tok-mode
RUN --network=none --mount=type=secret,id=envsecret,env=ONLY_ENV (test -e /run/secrets/envsecret && echo file \\
    || echo no-file) > /env-only
RUN --network=none --mount=type=secret,id=absent (test -e /run/secrets/absent && echo there || echo absent) > /absent
""", build_secrets=secrets)
    import hashlib

    assert read(rootfs, "/file-sum").split()[0] == hashlib.md5(file_value).hexdigest()
    assert read(rootfs, "/file-mode") == "400 0 0\n"  # BuildKit's default
    assert read(rootfs, "/env-sum").split()[0] == hashlib.md5(env_value).hexdigest()
    assert read(rootfs, "/tok-mode") == "440 5 6\n"
    assert read(rootfs, "/env-only") == "no-file\n"  # env without target: no file
    assert read(rootfs, "/absent") == "absent\n"  # not required: no mount
    assert rootfs.resolve("/run/secrets")[1] is None
    assert rootfs.resolve("/tok")[1] is None
    record = store.get("docker.io/library/demo-web:latest")
    assert record is not None
    blobs = [store.blob_path(layer["digest"]) for layer in store.manifest(record)["layers"]]
    blobs.append(store.blob_path(record.config))
    for blob in blobs:
        data = blob.read_bytes()
        import gzip

        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert file_value not in data, blob
        assert env_value not in data, blob
    inner = config_of(store)["config"]
    assert isinstance(inner, dict)
    assert not any(entry.startswith(("TOKEN=", "ONLY_ENV=")) for entry in inner.get("Env") or [])
    assert len(layer_members(store)) >= 4
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: .*secret absent not found \(it is required"):
        build(store, context, f"FROM {local_registry.busybox}\n"
                              "RUN --network=none --mount=type=secret,id=absent,required true\n", image="req")


def test_mount_refusals_and_errors_are_one_line(store: ImageStore, context: Path,
                                                 local_registry: LocalRegistry) -> None:
    base = local_registry.busybox
    with pytest.raises(UnsupportedFeatureError, match=r"Dockerfile:2: RUN --mount=type=ssh is not supported"):
        build(store, context, f"FROM {base}\nRUN --mount=type=ssh true\n")
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: .*unexpected key 'colour'"):
        build(store, context, f"FROM {base}\nRUN --mount=type=cache,target=/c,colour=red true\n")
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: .*mount type=tmpfs needs a target"):
        build(store, context, f"FROM {base}\nRUN --mount=type=tmpfs true\n")
    with pytest.raises(ImageBuildError, match=r"bind source \"/logs\": not found \(excluded by the .dockerignore "
                                              r"pattern 'logs'\)"):
        build(store, context, f"FROM {base}\nRUN --network=none --mount=source=logs,target=/l true\n")
    with pytest.raises(UnsupportedFeatureError, match=r"service web: build.secrets.mode \(the RUN"):
        build(store, context, f"FROM {base}\n", secrets=[{"source": "s", "mode": "0400"}])
    with pytest.raises(UnsupportedFeatureError, match=r"build.entitlements: device is not supported"):
        build(store, context, f"FROM {base}\n", entitlements=["device"])
    assert list((store.root / "tmp").iterdir()) == []


def test_host_network_and_insecure_need_their_entitlement(store: ImageStore, context: Path,
                                                          local_registry: LocalRegistry) -> None:
    """BuildKit refuses --network=host without the network.host entitlement and
    --security=insecure without security.insecure (Compose: build.privileged); with them, the
    step is in the host's network namespace (the host's 127.0.0.1 is reached) or privileged."""
    base = local_registry.busybox
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: RUN --network=host true: network.host is not "
                                              r"allowed \(add it to build.entitlements\)$"):
        build(store, context, f"FROM {base}\nRUN --network=host true\n")
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: RUN --security=insecure true: security.insecure "
                                              r"is not allowed \(set build.privileged\)$"):
        build(store, context, f"FROM {base}\nRUN --security=insecure true\n")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()  # nc ends when closed
        rootfs = build(store, context, f"""\
FROM {base}
RUN --network=host (nc -w 2 127.0.0.1 {port} </dev/null && echo reached || echo refused) > /result
RUN --network=none --security=insecure grep ^CapEff: /proc/self/status > /caps
""", entitlements=["network.host"], privileged=True)
    assert read(rootfs, "/result") == "reached\n"
    assert int(read(rootfs, "/caps").split()[1], 16) > 0xA80425FB  # more than Docker's default set


DOCKER = "/usr/bin/docker"  # Debian's CLI: DOCKER_BUILDKIT=1 drives the engine's BuildKit without buildx


def test_mount_probes_equal_buildkits(store: ImageStore, context: Path, local_registry: LocalRegistry,
                                      tmp_path: Path) -> None:
    """The same probes built by the engine's BuildKit give the same files."""
    tag = f"composer-test-mounts-{token_hex(4)}"  # a cache id of its own: the engine's cache mounts outlive builds
    dockerfile = PROBES.format(base=local_registry.busybox, tag=tag)
    native = build(store, context, dockerfile)
    # the engine's frontend (dockerfile 1.2) has no RUN --network (the probes reach nothing
    # anyway) and no tmpfs size (that probe is left out of the comparison)
    (context / "Dockerfile").write_text(dockerfile.replace("--network=none ", "").replace(",size=1m", ""))
    compared = [path for path in PROBE_FILES if path != "/tmpfs-size"]
    image = f"{tag}:latest"
    try:
        subprocess.run([DOCKER, "build", "-q", "-t", image, str(context)], check=True, capture_output=True,
                       env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
        script = "; ".join(f"echo ==={path}; cat {path}" for path in compared)
        script += "; for p in /cache /src /main.sh /scratch /var/owned /gen; do test -e $p && echo leaked $p; done"
        theirs = subprocess.run([DOCKER, "run", "--rm", "--network=none", image, "sh", "-c", script], check=True,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True)
    ours = "".join(f"==={path}\n{read(native, path)}" for path in compared)
    # the listed difference: the engine's BuildKit (0.8) leaves the empty folders it made for
    # folder mounts in the layer; later BuildKit removes its mount stubs, as this builder does
    # (the file mount's stub, /main.sh, is gone on both)
    leaked = [line for line in theirs.splitlines() if line.startswith("leaked ")]
    assert leaked == ["leaked /cache", "leaked /src", "leaked /scratch", "leaked /var/owned", "leaked /gen"]
    assert ours == "".join(line + "\n" for line in theirs.splitlines() if not line.startswith("leaked "))
