"""What the native backend does with each Compose key (composer/contract/coverage.py).

The runtime configuration (``runtime/config.py``, from ``container_settings.py``), the network
and namespace settings and the volume mounts apply the keys; a key refused here is refused by
``runtime.config.service_config`` through ``coverage.refuse`` with this table's message, and by
the engine before it creates anything.
"""

from __future__ import annotations

from composer.contract.coverage import (
    SINGLE_HOST,
    Entry,
    Table,
    applied,
    ignored,
    not_applicable,
    refused,
    with_extensions,
)

N = "tests/integration/native/"
CONTRACT = "tests/integration/test_backend_contract.py"
KEYS = N + "test_compose_keys_inside.py::test_service_keys_reach_the_container"


BUILD_REFUSAL = "the native backend cannot build images yet (use --backend docker)"
BUILD_KEYS = (*(f"services.build.{key}" for key in (
    "context", "dockerfile", "dockerfile_inline", "entitlements", "args", "ssh", "labels", "cache_from", "cache_to",
    "no_cache", "additional_contexts", "network", "provenance", "sbom", "pull", "target", "shm_size", "extra_hosts",
    "isolation", "privileged", "tags", "platforms")),
    *(f"services.build.secrets.{key}" for key in ("source", "target", "uid", "gid", "mode")),
    *(f"services.build.ulimits.{key}" for key in ("soft", "hard", "single")))
BLKIO_KEYS = (*(f"{key}.{field}" for key in ("device_read_bps", "device_read_iops", "device_write_bps",
                                             "device_write_iops") for field in ("path", "rate")),
              "weight", "weight_device.path", "weight_device.weight")


def _refused(key: str) -> Entry:
    return refused(f"{key} is not supported by the native backend yet")


COVERAGE: Table = with_extensions({
    **SINGLE_HOST,
    "name": applied(CONTRACT + "::test_observe_sees_only_its_own_project"),
    # --- services ---
    "services.annotations": _refused("annotations"),
    # No builder yet: the backend refuses to build (NativeBackend.build_image), whatever the keys.
    **{key: refused(BUILD_REFUSAL, when="an image must be built") for key in BUILD_KEYS},
    **{f"services.blkio_config.{key}": _refused("blkio_config") for key in BLKIO_KEYS},
    "services.cap_add": applied(KEYS),
    "services.cap_drop": applied(KEYS),
    "services.cgroup": applied(note="private only; host is refused in one line"),
    "services.cgroup_parent": _refused("cgroup_parent"),
    "services.command": applied(KEYS, CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.configs.source": applied(),
    "services.configs.target": applied(),
    "services.configs.uid": not_applicable("v2 binds the file without Swarm: a bind mount has the file's owner"),
    "services.configs.gid": not_applicable("v2 binds the file without Swarm: a bind mount has the file's owner"),
    "services.configs.mode": not_applicable("v2 binds the file without Swarm: a bind mount has the file's mode"),
    "services.container_name": applied(),
    "services.cpu_count": _refused("cpu_count"),
    "services.cpu_percent": _refused("cpu_percent"),
    "services.cpu_shares": applied(),
    "services.cpu_quota": applied(),
    "services.cpu_period": applied(),
    "services.cpu_rt_period": _refused("cpu_rt_period"),
    "services.cpu_rt_runtime": _refused("cpu_rt_runtime"),
    "services.cpus": applied(),
    "services.cpuset": applied(),
    **{f"services.credential_spec.{key}": _refused("credential_spec") for key in ("config", "file", "registry")},
    "services.depends_on.condition": applied(
        "tests/integration/native/test_lifecycle.py::test_service_healthy_ordering_and_wait_fails_when_unhealthy"),
    "services.depends_on.restart": applied(),
    "services.device_cgroup_rules": _refused("device_cgroup_rules"),
    **{f"services.devices.{key}": _refused("devices") for key in ("source", "target", "permissions")},
    "services.dns": applied(),
    "services.dns_opt": applied(KEYS),
    "services.dns_search": applied(KEYS),
    "services.domainname": applied(KEYS),
    "services.entrypoint": applied(KEYS),
    "services.environment": applied(KEYS),
    "services.expose": applied(),
    # Owned by issue 19 section 2 (provider services and models): attempted as an image pull today.
    "services.provider.type": ignored("issue 19 section 2: attempted as an image pull, not refused"),
    "services.provider.options": ignored("issue 19 section 2: attempted as an image pull, not refused"),
    "services.external_links": _refused("external_links"),
    "services.extra_hosts": applied(KEYS,
                                    gap="issue 19 section 2: host-gateway is written as it is, not resolved"),
    **{f"services.gpus.{key}": _refused("gpus")
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.group_add": applied(KEYS),
    **{f"services.healthcheck.{key}": applied()
       for key in ("test", "interval", "timeout", "start_period", "start_interval", "retries", "disable")},
    "services.hostname": applied(KEYS),
    "services.image": applied(CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.init": applied(),
    "services.ipc": applied(
        "tests/integration/native/test_lifecycle.py::test_ipc_service_shares_the_namespace_and_dev_shm"),
    "services.isolation": _refused("isolation"),
    "services.labels": applied(KEYS),
    "services.links": applied(note="the dependency and the service's DNS name on its networks",
                              gap="a link alias (`db:database`) is not resolvable: v2 sets Links"),
    # Owned by issue 19 section 2 (logging on native): every container logs to its json-file.
    "services.logging.driver": ignored("issue 19 section 2: the json-file log is kept whatever the driver"),
    "services.logging.options": ignored("issue 19 section 2: no rotation options are read"),
    "services.mac_address": _refused("mac_address"),
    "services.mem_limit": applied(),
    "services.mem_reservation": applied(),
    "services.mem_swappiness": _refused("mem_swappiness"),
    "services.memswap_limit": applied(),
    "services.network_mode": applied(
        "tests/integration/native/test_lifecycle.py::test_network_mode_service_shares_the_namespace_and_the_hostname"),
    "services.models.endpoint_var": ignored("issue 19 section 2: models are neither run nor refused"),
    "services.models.model_var": ignored("issue 19 section 2: models are neither run nor refused"),
    "services.networks.aliases": applied(
        "tests/integration/native/test_network.py::test_names_resolve_inside_the_right_network_only"),
    "services.networks.interface_name": _refused("networks.interface_name"),
    "services.networks.ipv4_address": applied(KEYS),
    "services.networks.ipv6_address": applied(),
    "services.networks.link_local_ips": _refused("networks.link_local_ips"),
    "services.networks.mac_address": applied(),
    "services.networks.driver_opts": _refused("networks.driver_opts"),
    "services.networks.gw_priority": _refused("networks.gw_priority"),
    "services.oom_kill_disable": _refused("oom_kill_disable"),
    "services.oom_score_adj": applied(KEYS),
    "services.pid": applied(
        "tests/integration/native/test_lifecycle.py::test_pid_service_sees_the_servers_processes_and_stops_alone"),
    "services.pids_limit": applied(),
    "services.platform": applied(note="chooses the image of that platform at pull"),
    "services.ports.host_ip": applied(),
    "services.ports.target": applied(
        "tests/integration/native/test_network.py::test_published_tcp_udp_and_a_range_answer_on_loopback"),
    "services.ports.published": applied(
        "tests/integration/native/test_network.py::test_published_tcp_udp_and_a_range_answer_on_loopback"),
    "services.ports.protocol": applied(
        "tests/integration/native/test_network.py::test_published_tcp_udp_and_a_range_answer_on_loopback"),
    # Owned by issue 19 section 2 (lifecycle hooks).
    **{f"services.{hook}.{key}": ignored("issue 19 section 2: lifecycle hooks are not run yet")
       for hook in ("post_start", "pre_stop")
       for key in ("command", "user", "privileged", "working_dir", "environment")},
    "services.privileged": applied(),
    "services.pull_policy": applied(),
    "services.read_only": applied(KEYS),
    "services.restart": applied(
        "tests/integration/native/test_lifecycle.py::test_a_crashing_service_restarts_under_on_failure_and_down_ends_the_loop"),
    "services.runtime": _refused("runtime"),
    "services.scale": applied("tests/integration/native/test_network.py::test_replicas_round_robin_and_links"),
    "services.security_opt": applied("tests/integration/native/test_seccomp.py", KEYS),
    "services.shm_size": applied(KEYS),
    "services.secrets.source": applied(),
    "services.secrets.target": applied(),
    "services.secrets.uid": not_applicable("v2 binds the file without Swarm: a bind mount has the file's owner"),
    "services.secrets.gid": not_applicable("v2 binds the file without Swarm: a bind mount has the file's owner"),
    "services.secrets.mode": not_applicable("v2 binds the file without Swarm: a bind mount has the file's mode"),
    "services.sysctls": applied(KEYS),
    "services.stdin_open": _refused("stdin_open"),
    "services.stop_grace_period": applied(
        "tests/integration/native/test_lifecycle.py::test_stop_honours_stop_signal_then_grace_then_kill"),
    "services.stop_signal": applied(
        "tests/integration/native/test_lifecycle.py::test_stop_honours_stop_signal_then_grace_then_kill"),
    "services.storage_opt": _refused("storage_opt"),
    "services.tmpfs": applied(KEYS),
    "services.tty": _refused("tty"),
    "services.ulimits.soft": applied(KEYS, gap="an exec'd process does not get them (Docker's does)"),
    "services.ulimits.hard": applied(KEYS, gap="an exec'd process does not get them (Docker's does)"),
    "services.ulimits.single": not_applicable("the form the file used (kept for the configuration hash)"),
    "services.use_api_socket": ignored("issue 19 section 2: the engine's socket is not mounted yet"),
    "services.user": applied(KEYS),
    "services.uts": _refused("uts"),
    "services.userns_mode": _refused("userns_mode"),
    "services.volumes.type": applied(KEYS, note="bind, volume and tmpfs; image, npipe and cluster are refused in one "
                                           "line"),
    "services.volumes.source": applied(KEYS),
    "services.volumes.target": applied(KEYS),
    "services.volumes.read_only": applied(KEYS),
    "services.volumes.consistency": not_applicable("a macOS file-sharing hint; the engine ignores it on Linux"),
    "services.volumes.bind.propagation": applied(
        "tests/integration/native/test_mounts.py::test_bind_propagation_applies_to_the_attached_bind"),
    "services.volumes.bind.create_host_path": applied(),
    "services.volumes.bind.recursive": applied(
        "tests/integration/native/test_mounts.py::test_bind_recursive_writable_and_disabled_as_compose_asks"),
    "services.volumes.bind.selinux": _refused("volumes.bind.selinux"),
    "services.volumes.volume.labels": _refused("volumes.volume.labels"),
    "services.volumes.volume.nocopy": applied(),
    "services.volumes.volume.subpath": ignored("issue 19 section 2: the whole volume is mounted"),
    "services.volumes.tmpfs.size": applied(KEYS),
    "services.volumes.tmpfs.mode": applied(KEYS),
    "services.volumes.image.subpath": not_applicable("image mounts are refused (volumes.type)"),
    "services.volumes_from": applied(
        "tests/integration/native/test_lifecycle.py::test_volumes_from_shares_volumes_and_binds_with_their_mode"),
    "services.working_dir": applied(KEYS),
    "services.deploy.replicas": applied(),
    # Owned by issue 19 section 2 (deploy.resources on native): only mem_limit, cpus, pids_limit are read.
    "services.deploy.resources.limits.cpus": ignored("issue 19 section 2: deploy.resources is not read on native"),
    "services.deploy.resources.limits.memory": ignored("issue 19 section 2: deploy.resources is not read on native"),
    "services.deploy.resources.limits.pids": ignored("issue 19 section 2: deploy.resources is not read on native"),
    **{f"services.deploy.resources.limits.devices.{key}": not_applicable(
        "devices are reserved, not limited: v2 reads only reservations.devices")
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.deploy.resources.reservations.memory": ignored(
        "issue 19 section 2: deploy.resources is not read on native"),
    **{f"services.deploy.resources.reservations.devices.{key}": ignored(
        "issue 19 section 2: devices and GPUs are to be refused on native")
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.deploy.restart_policy.condition": applied(),
    "services.deploy.restart_policy.delay": applied(note="the supervisor waits that long before a restart"),
    "services.deploy.restart_policy.max_attempts": applied(),
    # --- networks, volumes, secrets, configs, models ---
    "networks.name": applied(CONTRACT + "::test_networks_are_created_observed_and_removed"),
    "networks.driver": applied(note="bridge; any other driver is refused in one line"),
    "networks.driver_opts": ignored("issue 19 section 2: bridge options are not read yet"),
    "networks.ipam.driver": _refused("networks.ipam.driver"),
    "networks.ipam.config.subnet": applied(KEYS),
    "networks.ipam.config.ip_range": applied(),
    "networks.ipam.config.gateway": applied(),
    "networks.ipam.config.aux_addresses": applied(),
    "networks.ipam.options": _refused("networks.ipam.options"),
    "networks.external": applied(CONTRACT + "::test_an_external_network_is_observed_only_when_named"),
    "networks.internal": applied("tests/integration/native/test_network.py::test_internal_network_has_no_route_out"),
    "networks.enable_ipv4": applied(),
    "networks.enable_ipv6": applied(),
    "networks.labels": applied(),
    "volumes.name": applied(KEYS, CONTRACT + "::test_volumes_are_created_observed_shared_and_removed"),
    "volumes.driver": applied(note="local; another driver is refused in one line"),
    "volumes.driver_opts": _refused("volumes.driver_opts"),
    "volumes.external": applied(),
    "volumes.labels": applied(),
    "secrets.name": not_applicable("the Swarm object's name; a bound file has none"),
    "secrets.environment": ignored("issue 19 section 2: only file: secrets and configs are mounted"),
    "secrets.file": applied(),
    "secrets.external": refused("external secrets need Swarm, which the native backend does not use"),
    "configs.name": not_applicable("the Swarm object's name; a bound file has none"),
    "configs.content": ignored("issue 19 section 2: only file: secrets and configs are mounted"),
    "configs.environment": ignored("issue 19 section 2: only file: secrets and configs are mounted"),
    "configs.file": applied(),
    "configs.external": refused("external configs need Swarm, which the native backend does not use"),
    "models.name": ignored("issue 19 section 2: models are neither run nor refused"),
    "models.model": ignored("issue 19 section 2: models are neither run nor refused"),
    "models.context_size": ignored("issue 19 section 2: models are neither run nor refused"),
    "models.runtime_flags": ignored("issue 19 section 2: models are neither run nor refused"),
})


