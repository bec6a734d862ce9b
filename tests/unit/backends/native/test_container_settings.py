"""Pure parts of the native backend's container settings: secrets and configs as binds, exposed and
published ports for listings, ports without a host port."""

from __future__ import annotations

from composer.backends.native.container_settings import exposed_ports, with_file_mounts
from composer.backends.native.network.manager import PublishedPort, expand_ports
from composer.backends.native.status import listed_ports
from composer.contract.backend import ContainerSpec
from composer.contract.observed import PortMapping
from composer.spec.models import ServiceConfig


def service(**fields: object) -> ServiceConfig:
    return ServiceConfig.model_validate({"name": "web", "image": "busybox", **fields})


def spec(svc: ServiceConfig, secrets: dict[str, str], configs: dict[str, str]) -> ContainerSpec:
    return ContainerSpec(project_name="demo", service=svc, container_name="demo-web-1", number=1, image="busybox",
                         labels={}, secret_files=secrets, config_files=configs)


def test_secrets_and_configs_become_read_only_binds_at_their_targets() -> None:
    svc = service(secrets=[{"source": "db"}, {"source": "api", "target": "api.key"}, {"source": "env_only"}],
                  configs=[{"source": "nginx"}, {"source": "app", "target": "/etc/app.conf"}],
                  volumes=[{"type": "bind", "source": "/srv", "target": "/srv"}])
    bound = with_file_mounts(spec(svc, {"db": "/s/db.txt", "api": "/s/api.txt"},
                                  {"nginx": "/c/nginx.conf", "app": "/c/app.conf"}))
    assert [(v.type, v.source, v.target, v.read_only) for v in bound.volumes] == [
        ("bind", "/srv", "/srv", False),
        ("bind", "/s/db.txt", "/run/secrets/db", True),
        ("bind", "/s/api.txt", "/run/secrets/api.key", True),
        ("bind", "/c/nginx.conf", "/nginx", True),
        ("bind", "/c/app.conf", "/etc/app.conf", True),
    ]
    plain = service()
    assert with_file_mounts(spec(plain, {}, {})) is plain


def test_exposed_ports_from_the_image_and_expose_ranges() -> None:
    image: dict[str, object] = {"config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}}
    assert exposed_ports(service(expose=["9000", "7000-7002/udp", "80"]), image) == [
        "80/tcp", "53/udp", "9000/tcp", "7000/udp", "7001/udp", "7002/udp"]


def test_listings_show_published_ports_then_the_unpublished_exposed_ones() -> None:
    published = [PortMapping(80, "tcp", "0.0.0.0", 8080)]
    config = {"exposed": ["80/tcp", "443/tcp", "53/udp"]}
    assert listed_ports(config, published) == (PortMapping(80, "tcp", "0.0.0.0", 8080), PortMapping(443, "tcp"),
                                               PortMapping(53, "udp"))
    assert listed_ports({}, []) == ()


def test_a_port_without_a_host_port_gets_host_port_zero_chosen_at_start() -> None:
    svc = service(ports=[{"target": 80}, {"target": 81, "host_ip": "127.0.0.1", "protocol": "udp"},
                         {"target": 90, "published": "8080-8081"}])
    assert expand_ports(svc.ports) == [
        PublishedPort("tcp", "0.0.0.0", 0, 80),
        PublishedPort("udp", "127.0.0.1", 0, 81),
        PublishedPort("tcp", "0.0.0.0", 8080, 90),
        PublishedPort("tcp", "0.0.0.0", 8081, 91),
    ]
