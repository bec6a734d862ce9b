"""The storage keys on the native backend (file secrets and configs, bind and volume options,
top-level volumes), seen from inside the container and in the volume store. One project for the
family (and a second for an external volume); tests/integration/docker/test_keys_storage.py shows
the same keys reach dockerd as v2 sends them."""

from __future__ import annotations

import json
import uuid

from tests.integration.native.test_lifecycle import Project, env, one_line, project

__all__ = ["env", "project"]  # the fixtures, imported for pytest

STORAGE = """\
app:
  image: IMAGE
  command: sleep 300
  volumes:
    - {type: bind, source: ./made, target: /made, bind: {create_host_path: true}}
    - {type: volume, source: outside, target: /outside}
  secrets:
    - source: token
      target: tok
  configs:
    - source: settings
      target: /etc/settings.conf
filled:
  image: IMAGE
  command: sleep 300
  volumes: ["copied:/bin"]
empty:
  image: IMAGE
  entrypoint: [/opt/busybox]
  command: [sleep, "300"]
  volumes:
    - {type: volume, source: kept-empty, target: /bin, volume: {nocopy: true}}
    - /bin/busybox:/opt/busybox:ro
"""
VOLUMES = """\
volumes:
  copied:
    driver: local
    labels: {dev.composer.test: copied}
  kept-empty: {}
  outside:
    external: true
    name: OUTSIDE
secrets:
  token: {file: ./secret.txt}
configs:
  settings: {file: ./conf.txt}
"""


def test_storage_keys_take_effect_in_the_container_and_the_volume_store(project: Project) -> None:
    (project.folder / "secret.txt").write_text("s3cret\n")
    (project.folder / "conf.txt").write_text("setting=1\n")
    outside = f"composer-outside-{uuid.uuid4().hex[:8]}"
    # The external volume: made by another project, with a file in it.
    maker = Project(project.env, project.folder / "maker")
    maker.folder.mkdir()
    maker.write("writer:\n  image: IMAGE\n  command: sh -c 'echo from-elsewhere > /v/file'\n  volumes: ['vol:/v']\n",
                f"volumes:\n  vol: {{name: {outside}}}\n")
    maker.run("up")
    try:
        project.write(STORAGE, VOLUMES.replace("OUTSIDE", outside))
        project.run("up", "-d")
        store = project.env.root / "store" / "volumes"
        # nocopy: the volume stays empty; without it, the image's /bin fills it
        assert (store / f"{project.name}_copied" / "_data" / "busybox").exists()
        assert not list((store / f"{project.name}_kept-empty" / "_data").iterdir())
        labels = json.loads((store / f"{project.name}_copied" / "volume.json").read_text())["labels"]
        assert labels["dev.composer.test"] == "copied"  # volumes.labels
        assert not (store / f"{project.name}_outside").exists()  # external: not the project's to make

        def inside(script: str) -> str:
            return project.run("exec", "-T", "app", "sh", "-c", script).stdout

        assert inside("cat /run/secrets/tok") == "s3cret\n"  # secrets.file, source, target
        assert inside("cat /etc/settings.conf") == "setting=1\n"  # configs.file, source, target
        assert inside("cat /outside/file") == "from-elsewhere\n"  # volumes.external
        assert (project.folder / "made").is_dir()  # create_host_path
        # the host's static busybox, as the image's: the empty /bin is what `empty` sees
        assert project.run("exec", "-T", "empty", "/opt/busybox", "ls", "/bin").stdout == ""
        project.down()
    finally:
        maker.down()


def test_a_missing_bind_source_without_create_host_path_is_one_line(project: Project) -> None:
    project.write("app:\n  image: IMAGE\n  command: sleep 300\n"
                  "  volumes: [{type: bind, source: ./missing, target: /m, bind: {create_host_path: false}}]\n")
    result = project.run("up", "-d", check=False)
    assert result.returncode == 1
    assert "missing" in one_line(result)
    assert not (project.folder / "missing").exists()
