"""The docker backend's side of tests/integration/native/test_service_keys.py: the same Compose
keys, read back from dockerd (``docker inspect``'s HostConfig), so the two backends' columns
can be compared value by value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.docker.test_security_opt import composer
from tests.integration.native.test_service_keys import RESOURCES


def test_deploy_resources_reach_the_host_config(tmp_path: Path, project_name: str, busybox_image: str,
                                                docker_api: Any) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n" + "".join(
        f"  {line}\n" for line in RESOURCES.replace("IMAGE", busybox_image).splitlines()))
    result = composer(tmp_path, project_name, "up", "-d")
    assert result.returncode == 0, result.stderr
    host = docker_api.inspect_container(f"{project_name}-app-1")["HostConfig"]
    found = {key: host[key] for key in ("Memory", "MemoryReservation", "NanoCpus", "PidsLimit", "CpuShares")}
    # v2 maps limits.cpus to NanoCpus (runc: a 50000 us quota in a 100000 us period, as native
    # writes) and sends nothing for reservations.cpus.
    assert found == {"Memory": 48 << 20, "MemoryReservation": 12 << 20, "NanoCpus": 500_000_000, "PidsLimit": 33,
                     "CpuShares": 0}


def test_logging_reaches_the_log_config_and_the_none_driver_warns_as_v2(tmp_path: Path, project_name: str,
                                                                        busybox_image: str, docker_api: Any) -> None:
    (tmp_path / "compose.yaml").write_text(f"""\
services:
  chatty:
    image: {busybox_image}
    command: sh -c 'echo kept; sleep 300'
    logging: {{driver: local, options: {{max-size: 64k, max-file: "3"}}}}
  quiet:
    image: {busybox_image}
    command: sh -c 'echo hidden; sleep 300'
    logging: {{driver: none}}
""")
    assert composer(tmp_path, project_name, "up", "-d").returncode == 0
    config = docker_api.inspect_container(f"{project_name}-chatty-1")["HostConfig"]["LogConfig"]
    assert config == {"Type": "local", "Config": {"max-size": "64k", "max-file": "3"}}
    result = composer(tmp_path, project_name, "logs", "quiet")
    # v2 2.40 against this dockerd prints exactly this warning and exits 0
    assert result.returncode == 0, result.stderr
    assert result.stderr == (f'WARN[0000] Can\'t retrieve logs for "{project_name}-quiet-1": Error response from '
                             "daemon: configured logging driver does not support reading\n")
    assert "hidden" not in result.stdout


def test_a_volume_subpath_needs_an_engine_that_knows_it(tmp_path: Path, project_name: str, busybox_image: str,
                                                        docker_api: Any) -> None:
    import docker.utils

    (tmp_path / "compose.yaml").write_text(f"""\
services:
  writer:
    image: {busybox_image}
    command: sh -c 'mkdir -p /data/sub && echo inside > /data/sub/hello'
    volumes: [data:/data]
  reader:
    image: {busybox_image}
    command: cat /mnt/hello
    volumes: [{{type: volume, source: data, target: /mnt, volume: {{subpath: sub}}}}]
volumes:
  data: {{}}
""")
    assert composer(tmp_path, project_name, "run", "--rm", "writer").returncode == 0
    result = composer(tmp_path, project_name, "run", "--rm", "reader")
    if docker.utils.version_gte(docker_api.api_version, "1.45"):
        assert result.returncode == 0, result.stderr
        assert result.stdout == "inside\n"
        return
    # Docker 20.10 (API 1.41) would drop VolumeOptions.Subpath and mount the whole volume.
    version = docker_api.version()["Version"]
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("composer:")]
    assert lines == [f"composer: volume subpath (/mnt) needs Docker Engine API 1.45 (Docker 26.0); this engine is "
                     f"Docker {version} (API {docker_api.api_version})"], result.stderr
    assert not docker_api.containers(all=True, filters={"label": f"com.docker.compose.project={project_name}"})


def test_bridge_driver_opts_reach_the_engine(tmp_path: Path, project_name: str, busybox_image: str,
                                            docker_api: Any) -> None:
    options = {"com.docker.network.bridge.enable_icc": "false", "com.docker.network.bridge.enable_ip_masquerade":
               "false", "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
               "com.docker.network.driver.mtu": "1400"}
    lines = "".join(f'      {key}: "{value}"\n' for key, value in options.items())
    (tmp_path / "compose.yaml").write_text(f"services:\n  t:\n    image: {busybox_image}\n"
                                           f"    command: cat /sys/class/net/eth0/mtu\n"
                                           f"networks:\n  default:\n    driver_opts:\n{lines}")
    result = composer(tmp_path, project_name, "run", "--rm", "t")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1400"  # the same effect native's test reads
    assert docker_api.inspect_network(f"{project_name}_default")["Options"] == options
