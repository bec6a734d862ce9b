"""The ``build:`` keys on dockerd's classic builder, seen in what the build made: the files its RUN
step wrote (hosts, /dev/shm, network links), the image's labels, tags and platform, and which
builds ran their step again (no_cache, cache_from) or used the registry's base (pull)."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

from tests.integration.docker.side_by_side import run
from tests.integration.registry import LocalRegistry

DOCKERFILE = """\
FROM BASE
RUN cat /etc/hosts > /hosts.txt; df -k /dev/shm | tail -1 > /shm.txt; ip -o link | grep -vc ': lo:' > /links.txt; \
    date +%s%N > /stamp.txt; ls / > /root.txt
"""


def _file(api: Any, image: str, path: str) -> str:
    """``path`` of ``image``, read through a container that never starts."""
    import io
    import tarfile

    container = api.create_container(image, "true")
    try:
        stream, _ = api.get_archive(container["Id"], path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile(Path(path).name)
            assert member is not None
            return member.read().decode()
    finally:
        api.remove_container(container["Id"], force=True)


def _build(folder: Path, project: str, image: str, build: str) -> None:
    (folder / "compose.yaml").write_text(f"services:\n  app:\n    image: {image}\n    build:\n"
                                         + textwrap.indent(textwrap.dedent(build), "      "))
    result = run("composer", folder, project, "build")
    assert result.returncode == 0, result.stderr


def test_build_keys_shape_what_the_classic_builder_makes(tmp_path: Path, project_name: str, docker_api: Any,
                                                          busybox_image: str) -> None:
    (tmp_path / "Custom.Dockerfile").write_text(DOCKERFILE.replace("BASE", busybox_image))
    image = f"{project_name}-app"
    extra = f"{project_name}-extra:v1"
    _build(tmp_path, project_name, image, f"""\
        context: .
        dockerfile: Custom.Dockerfile
        labels: {{dev.composer.test: built}}
        tags: ["{extra}"]
        network: none
        shm_size: 48m
        extra_hosts: ["buildhost=10.3.4.5"]
        isolation: default
        platforms: [linux/amd64]
    """)
    try:
        inspected = docker_api.inspect_image(image)
        assert inspected["Config"]["Labels"]["dev.composer.test"] == "built"  # labels
        assert docker_api.inspect_image(extra)["Id"] == inspected["Id"]  # tags
        assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")  # platforms
        assert "10.3.4.5\tbuildhost" in _file(docker_api, image, "/hosts.txt")  # extra_hosts
        assert _file(docker_api, image, "/shm.txt").split()[1] == str(48 * 1024)  # shm_size
        assert _file(docker_api, image, "/links.txt").strip() == "0"  # network: none, only lo
    finally:
        docker_api.remove_image(extra, force=True)


def test_no_cache_and_cache_from_decide_whether_a_step_runs_again(tmp_path: Path, project_name: str,
                                                                   docker_api: Any, busybox_image: str) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.replace("BASE", busybox_image))
    image = f"{project_name}-app"
    _build(tmp_path, project_name, image, "context: .\n")
    first = _file(docker_api, image, "/stamp.txt")
    _build(tmp_path, project_name, image, "context: .\n")
    assert _file(docker_api, image, "/stamp.txt") == first  # the engine's cache, by default
    _build(tmp_path, project_name, image, "context: .\nno_cache: true\n")
    second = _file(docker_api, image, "/stamp.txt")
    assert second != first  # no_cache: the step ran again
    # cache_from: the classic builder takes its cache from those images only; the base alone holds
    # no layer of the step, the image built last holds it
    _build(tmp_path, project_name, image, f"context: .\ncache_from: [{busybox_image}]\n")
    third = _file(docker_api, image, "/stamp.txt")
    assert third != second
    _build(tmp_path, project_name, image, f"context: .\ncache_from: [{image}]\n")
    assert _file(docker_api, image, "/stamp.txt") == third


def test_pull_takes_the_registrys_base_over_a_local_one(tmp_path: Path, project_name: str, docker_api: Any,
                                                        busybox_image: str, local_registry: LocalRegistry) -> None:
    base = local_registry.busybox
    # A local image under the base's name that the registry does not hold: a marker file in it.
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN touch /decoy-{uuid.uuid4().hex[:6]}\n")
    (decoy / "compose.yaml").write_text(f"services:\n  decoy:\n    image: {base}\n    build: .\n")
    assert run("composer", decoy, project_name, "build").returncode == 0
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.replace("BASE", base))
    image = f"{project_name}-app"
    try:
        _build(tmp_path, project_name, image, "context: .\n")
        assert "decoy-" in _file(docker_api, image, "/root.txt")  # without pull: the local base
        _build(tmp_path, project_name, image, "context: .\npull: true\n")
        assert "decoy-" not in _file(docker_api, image, "/root.txt")  # pull: the registry's
    finally:
        docker_api.tag(busybox_image, base.rpartition(":")[0], base.rpartition(":")[2])


def test_build_isolation_reaches_the_engine(tmp_path: Path, project_name: str, busybox_image: str) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\n")
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  app:\n    image: {project_name}-app\n    build: {{context: ., isolation: hyperv}}\n")
    result = run("composer", tmp_path, project_name, "build")
    # a Linux engine has only the default isolation: it names the value it was sent
    assert result.returncode == 1
    assert 'Unsupported isolation: "hyperv"' in result.stderr, result.stderr


def test_attestations_are_refused_in_one_line_unless_false(tmp_path: Path, project_name: str,
                                                           busybox_image: str) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\n")
    for key in ("provenance", "sbom"):
        (tmp_path / "compose.yaml").write_text(
            f"services:\n  app:\n    image: {project_name}-app\n    build: {{context: ., {key}: 'mode=max'}}\n")
        result = run("composer", tmp_path, project_name, "build")
        assert result.returncode == 1
        what = {"provenance": "provenance", "sbom": "SBOM"}[key]
        assert [line for line in result.stderr.splitlines() if line.startswith("composer:")] == [
            f"composer: service \"app\": the engine's classic builder does not support {what} attestations "
            "(BuildKit's)"], result.stderr
    # false turns them off, as BuildKit reads it: nothing to refuse
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  app:\n    image: {project_name}-app\n"
        "    build: {context: ., provenance: false, sbom: 'false'}\n")
    result = run("composer", tmp_path, project_name, "build")
    assert result.returncode == 0, result.stderr
