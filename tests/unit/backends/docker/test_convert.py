"""ContainerSpec -> docker-py arguments, compared with golden JSON in data/golden/.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest ...``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from composer import labels
from composer.backends.docker import convert
from composer.contract.backend import ContainerSpec, NetworkAttachment
from composer.errors import NotFoundError
from composer.spec import load_project
from composer.spec.models import NetworkConfig, Project, ServiceConfig, VolumeConfig

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
WORKDIR = "/work/golden"


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(
        files=[str(DATA / "everything.compose.yaml")],
        environment={},
        working_directory=WORKDIR,
        project_directory=WORKDIR,
    )


def spec_for(project: Project, service_name: str, **overrides: Any) -> ContainerSpec:
    service = project.services[service_name]
    networks = [NetworkAttachment(project.networks[key].name or key, aliases=(service_name, *(config.aliases if config
                                  else ())), ipv4_address=config.ipv4_address if config else None)
                for key, config in service.networks.items()]
    fields: dict[str, Any] = {
        "project_name": project.name,
        "service": service,
        "container_name": f"{project.name}-{service_name}-1",
        "number": 1,
        "image": service.image or f"{project.name}-{service_name}",
        "labels": {labels.PROJECT: project.name, labels.SERVICE: service_name, labels.CONTAINER_NUMBER: "1"},
        "networks": networks,
        "volume_names": {key: volume.name or key for key, volume in project.volumes.items()},
        "secret_files": {key: secret.file for key, secret in project.secrets.items() if secret.file},
        "config_files": {key: config.file for key, config in project.configs.items() if config.file},
    }
    fields.update(overrides)
    return ContainerSpec(**fields)


def assert_golden(name: str, value: Any) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1"
    assert json.loads(text) == json.loads(path.read_text())


@pytest.mark.parametrize(
    ("service_name", "overrides"),
    [
        ("web", {}),
        ("worker", {"namespace_containers": {"web": "0123abcd"}, "volumes_from": ["golden-web-1"]}),
        ("plain", {}),
    ],
)
def test_golden(project: Project, service_name: str, overrides: dict[str, Any]) -> None:
    args = convert.convert(spec_for(project, service_name, **overrides))
    assert_golden(f"container_{service_name}", args.as_dict())


def test_docker_py_accepts_every_argument(project: Project) -> None:
    """The kwargs go through docker-py's own builders (API 1.41, no engine needed)."""
    import docker

    api = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")
    for service_name, overrides in (("web", {}), ("worker", {"namespace_containers": {"web": "0123abcd"}})):
        args = convert.convert(spec_for(project, service_name, **overrides))
        host = api.create_host_config(**args.host_config)
        networking = None
        if args.endpoint is not None:
            network_name, endpoint = args.endpoint
            networking = api.create_networking_config({network_name: api.create_endpoint_config(**endpoint)})
        config = api.create_container_config(**args.container, host_config=host, networking_config=networking)
        assert config["Image"]
        assert all(key.count("/") == 1 for key in config["ExposedPorts"] or {})
        for _, endpoint in args.connect:
            api.create_endpoint_config(**endpoint)
    api.close()


def test_web_details(project: Project) -> None:
    args = convert.convert(spec_for(project, "web"))
    assert args.container["environment"] == ["A=1", "EMPTY="]  # UNSET (None) is not passed
    assert args.container["stop_timeout"] == 90
    assert args.container["healthcheck"]["interval"] == 30_000_000_000
    assert args.host_config["binds"] == [f"{WORKDIR}/html:/usr/share/nginx/html:ro"]
    assert args.container["ports"][:3] == [(80, "tcp"), (443, "tcp"), (53, "udp")]
    assert args.host_config["port_bindings"]["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert args.host_config["port_bindings"]["9000/tcp"] == [{"HostIp": "", "HostPort": "9000-9010"}]
    # the first attachment joins at create and names the network mode; the rest join after create
    assert args.host_config["network_mode"] == "golden_front"
    assert args.endpoint == ("golden_front", {"aliases": ["web", "www"], "ipv4_address": "172.30.0.10"})
    assert args.connect == (("golden_back", {"aliases": ["web"]}),)
    targets = {mount["Target"]: mount for mount in args.host_config["mounts"]}
    assert targets["/run/secrets/token"] == {"Type": "bind", "Source": f"{WORKDIR}/token.txt",
                                             "Target": "/run/secrets/token", "ReadOnly": True}
    assert "/run/secrets/other" in targets
    assert "/nginx_conf" in targets
    assert "/etc/nginx/nginx.conf" in targets
    assert targets["/data"]["Source"] == "golden_data"
    assert targets["/anon"]["Source"] == ""
    # the mode is the model's number, passed through as v2 passes compose-go's
    assert targets["/cache"]["TmpfsOptions"] == {"SizeBytes": 64 * 1024 * 1024, "Mode": 1777}
    assert args.host_config["extra_hosts"] == ["db.local:10.0.0.2", "v6.local:::1"]
    assert args.host_config["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert convert.start_interval(project.services["web"]) == 1_000_000_000


def test_worker_details(project: Project) -> None:
    args = convert.convert(spec_for(project, "worker", namespace_containers={"service:web": "0123abcd"}))
    assert args.container["entrypoint"] == []  # explicitly cleared, not left out
    assert args.container["command"] is None  # the engine then drops the image's CMD too, as v2 relies on
    assert args.container["healthcheck"] == {"test": ["NONE"]}
    assert args.host_config["network_mode"] == "container:0123abcd"
    assert args.host_config["ipc_mode"] == "container:0123abcd"
    assert args.host_config["pid_mode"] == "host"
    assert args.endpoint is None
    assert args.connect == ()
    assert args.host_config["nano_cpus"] == 500_000_000
    assert args.host_config["mem_limit"] == 256 * 1024 * 1024
    assert args.host_config["mem_reservation"] == 64 * 1024 * 1024
    assert args.host_config["pids_limit"] == 50
    assert args.host_config["restart_policy"] == {"Name": "always", "MaximumRetryCount": 5}
    assert args.host_config["device_requests"] == [
        {"driver": "nvidia", "count": -1, "device_ids": [], "capabilities": [["gpu"]], "options": {}}
    ]


def test_unresolved_service_namespace(project: Project) -> None:
    with pytest.raises(NotFoundError, match="has no running container"):
        convert.convert(spec_for(project, "worker"))


def test_inherited_anonymous_volume(project: Project) -> None:
    args = convert.convert(spec_for(project, "web"), inherited_volumes={"/anon": "f00d"})
    assert {m["Target"]: m["Source"] for m in args.host_config["mounts"]}["/anon"] == "f00d"


def test_command_without_entrypoint() -> None:
    service = ServiceConfig(name="s", command=())
    args = convert.convert(ContainerSpec("p", service, "p-s-1", 1, "img", {}))
    assert args.container["command"] == []
    assert "entrypoint" not in args.container
    assert "network_mode" not in args.host_config


def test_restart_names() -> None:
    for restart, expected in (("no", "no"), ("always", "always"), ("unless-stopped", "unless-stopped")):
        args = convert.convert(ContainerSpec("p", ServiceConfig(name="s", restart=restart), "p-s-1", 1, "img", {}))
        assert args.host_config["restart_policy"] == {"Name": expected, "MaximumRetryCount": 0}


def test_network_and_volume_kwargs() -> None:
    network = NetworkConfig.model_validate({
        "driver": "bridge", "driver_opts": {"com.docker.network.bridge.name": "br-x"}, "internal": True,
        "attachable": True, "enable_ipv6": True, "labels": {"a": "b"},
        "ipam": {"driver": "default", "config": [{"subnet": "10.5.0.0/16", "gateway": "10.5.0.1"}]},
    })
    volume = VolumeConfig.model_validate({"driver": "local", "driver_opts": {"type": "tmpfs"}, "labels": {"c": "d"}})
    assert_golden("network", convert.network_kwargs("p", "back", "p_back", network))
    assert_golden("volume", convert.volume_kwargs("p", "data", "p_data", volume))
    plain = convert.network_kwargs("p", "default", "p_default", NetworkConfig())
    assert plain == {"name": "p_default", "check_duplicate": True, "labels": {
        labels.NETWORK: "default", labels.PROJECT: "p", labels.VERSION: labels.COMPATIBLE_VERSION}}
