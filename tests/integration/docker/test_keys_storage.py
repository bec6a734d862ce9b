"""The storage keys on dockerd (bind and volume options, volumes_from, top-level volumes, file
secrets and configs), side by side with Compose v2: one project created by both tools, the
mounts the engine made compared target by target (tests/integration/docker/side_by_side.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.integration.docker.side_by_side import run, side_by_side

STORAGE = """\
services:
  src:
    image: IMAGE
    command: sleep 300
    volumes: [/data]
  app:
    image: IMAGE
    command: sleep 300
    volumes_from: ["src:ro"]
    volumes:
      - {type: bind, source: ./shared, target: /cached, consistency: cached}
      - {type: bind, source: ./shared, target: /prop, bind: {propagation: rslave}}
      - {type: bind, source: ./shared, target: /flat, bind: {recursive: disabled}}
      - {type: bind, source: ./shared, target: /nocreate, bind: {create_host_path: false}}
      - ./shared:/labelled:z
      - {type: volume, source: data, target: /data2, volume: {nocopy: true, labels: {dev.composer.test: mount}}}
      - {type: volume, source: tmp, target: /tmp2}
      - {type: volume, source: outside, target: /outside}
    secrets:
      - source: token
        target: tok
    configs:
      - source: settings
        target: /etc/settings.conf
volumes:
  data:
    driver: local
    labels: {dev.composer.test: data}
  tmp:
    driver_opts: {type: tmpfs, device: tmpfs, o: size=1m}
  outside:
    external: true
    name: OUTSIDE
secrets:
  token: {file: ./secret.txt}
configs:
  settings: {file: ./conf.txt}
"""


def _mounts(inspected: dict[str, Any], project: str) -> dict[str, tuple[Any, ...]]:
    """Target -> what the engine mounted there (type, source or volume name, writable, propagation)."""
    return {mount["Destination"]: (mount["Type"], (mount.get("Name") or mount["Source"]).replace(project, "P"),
                                   mount["RW"], mount["Propagation"])
            for mount in inspected["Mounts"] if mount["Destination"] != "/data"}


def _asked(inspected: dict[str, Any], target: str) -> dict[str, Any]:
    """What the create request asked for ``target``: its HostConfig.Mounts entry, or its Binds line."""
    for mount in inspected["HostConfig"]["Mounts"] or ():
        if mount["Target"] == target:
            return {key: value for key, value in mount.items() if value}
    for line in inspected["HostConfig"]["Binds"] or ():
        if line.split(":")[1] == target:
            return {"Bind": line}
    raise AssertionError(f"nothing asked for {target}")


def test_storage_keys_reach_the_engine_as_v2_sends_them(tmp_path: Path, project_name: str, docker_api: Any,
                                                        busybox_image: str) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "secret.txt").write_text("s3cret\n")
    (tmp_path / "conf.txt").write_text("setting=1\n")
    outside = f"composer-outside-{uuid.uuid4().hex[:10]}"
    docker_api.create_volume(outside)
    try:
        pair = side_by_side(tmp_path, project_name, docker_api,
                            STORAGE.replace("IMAGE", busybox_image).replace("OUTSIDE", outside))
    finally:
        docker_api.remove_volume(outside, force=True)
    folder, shared = str(tmp_path), str(tmp_path / "shared")
    for side in (pair.composer, pair.v2):
        app = side.containers["app-1"]
        assert _mounts(app, side.project) == {
            "/cached": ("bind", shared, True, "rprivate"),
            "/prop": ("bind", shared, True, "rslave"),  # bind.propagation
            "/flat": ("bind", shared, True, "rprivate"),
            "/nocreate": ("bind", shared, True, "rprivate"),
            "/labelled": ("bind", shared, True, "rprivate"),
            "/data2": ("volume", "P_data", True, ""),
            "/tmp2": ("volume", "P_tmp", True, ""),
            "/outside": ("volume", outside, True, ""),  # volumes.external: the volume of that name
            "/run/secrets/tok": ("bind", f"{folder}/secret.txt", False, "rprivate"),  # secrets.file, target
            "/etc/settings.conf": ("bind", f"{folder}/conf.txt", False, "rprivate"),  # configs.file, target
        }, side.project
        assert _asked(app, "/flat")["BindOptions"] == {"NonRecursive": True}  # bind.recursive: disabled
        assert _asked(app, "/nocreate") == {"Type": "bind", "Source": shared, "Target": "/nocreate"}  # no Binds line
        assert _asked(app, "/labelled") == {"Bind": f"{shared}:/labelled:rw,z"}  # bind.selinux
        assert _asked(app, "/data2")["VolumeOptions"] == {"NoCopy": True, "Labels": {"dev.composer.test": "mount"}}
        # volumes_from: the source container's volume (v2 2.40 drops the ":ro" mode; composer keeps it)
        data = next(mount for mount in app["Mounts"] if mount["Destination"] == "/data")
        source = next(mount for mount in side.containers["src-1"]["Mounts"] if mount["Destination"] == "/data")
        assert data["Name"] == source["Name"]
    assert next(mount for mount in pair.composer.containers["app-1"]["Mounts"]
                if mount["Destination"] == "/data")["RW"] is False
    # consistency: passed as v2 passes it (the engine ignores it on Linux, as v2's Binds line shows)
    assert _asked(pair.composer.containers["app-1"], "/cached") in (
        {"Bind": f"{shared}:/cached:rw"}, {"Type": "bind", "Source": shared, "Target": "/cached",
                                           "Consistency": "cached"})
    pair.check("volumes", "data", {"Driver": "local", "Labels/dev.composer.test": "data"})
    pair.check("volumes", "tmp", {"Driver": "local", "Options": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}})
    assert "outside" not in pair.composer.volumes  # an external volume is not the project's


def test_a_missing_source_with_create_host_path_false_is_refused_and_true_creates_it(
        tmp_path: Path, project_name: str, busybox_image: str) -> None:
    (tmp_path / "compose.yaml").write_text(f"""\
services:
  app:
    image: {busybox_image}
    command: sleep 300
    volumes: [{{type: bind, source: ./missing, target: /m, bind: {{create_host_path: false}}}}]
""")
    result = run("composer", tmp_path, project_name, "up", "-d")
    assert result.returncode == 1
    assert "bind source path does not exist" in result.stderr, result.stderr
    assert not (tmp_path / "missing").exists()
    (tmp_path / "compose.yaml").write_text(f"""\
services:
  app:
    image: {busybox_image}
    command: sleep 300
    volumes: [{{type: bind, source: ./made, target: /m, bind: {{create_host_path: true}}}}]
""")
    result = run("composer", tmp_path, project_name, "up", "-d")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "made").is_dir()
