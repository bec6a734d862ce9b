"""What the docker backend does with each Compose key (composer/contract/coverage.py).

``convert.py`` maps the keys onto the engine's create request; a key refused here is refused by
``convert.convert`` through ``coverage.refuse`` with this table's message, and by the engine
before it creates anything.
"""

from __future__ import annotations

from composer.contract.coverage import (
    NO_BACKEND,
    SINGLE_HOST,
    WATCH_KEYS,
    Entry,
    Table,
    applied,
    not_applicable,
    refused,
    with_extensions,
)

D = "tests/integration/docker/"
CONTRACT = "tests/integration/test_backend_contract.py"
KEYS = D + "test_compose_keys_inside.py::test_service_keys_reach_the_container"
INJECTED = D + "test_compose_keys.py::test_secrets_and_configs_with_content_as_v2_writes_them"
HOOKS = (D + "test_compose_keys.py::test_hooks_run_as_v2_runs_them",
         D + "test_compose_keys.py::test_a_failing_hook_fails_with_v2s_message")
SERVICE_KEYS = D + "test_service_keys.py::"
WATCH = (D + "test_cli_watch.py::test_watch_syncs_restarts_and_execs",
         D + "test_cli_watch.py::test_rebuild_rebuilds_and_recreates",
         D + "test_cli_watch.py::test_up_watch_follows_logs_and_syncs")

BUILDER_LACKS = {  # BuildConfig field -> what the engine's classic builder lacks: refused at build
    "ssh": "SSH agent forwarding",
    "additional_contexts": "additional contexts",
    "cache_to": "cache export (cache_to)",
    "entitlements": "entitlements",
    "privileged": "privileged builds",
    "ulimits": "build ulimits",
}


def _builder_lacks(field: str) -> Entry:
    return refused(f"the engine's classic builder does not support {BUILDER_LACKS[field]}",
                   when="an image must be built")


WRITTEN = ("a secret or config from environment or content is written into the container with them, as v2 "
           "does; a file: one is bound and keeps the file's owner and mode, as in v2")


# The keys each mapped onto the create request by convert.py; the tests named show them on a
# real container (inspected, or seen from inside).
COVERAGE: Table = with_extensions({
    **SINGLE_HOST,
    **NO_BACKEND,
    **{key: applied(*WATCH) for key in WATCH_KEYS},
    "name": applied(CONTRACT + "::test_observe_sees_only_its_own_project"),
    # --- services ---
    "services.annotations": refused("annotations is not supported by the docker backend yet",
                                    gap="v2 sets HostConfig.Annotations (API 1.43)"),
    "services.build.context": applied(D + "test_images.py::test_build_honours_dockerignore"),
    "services.build.dockerfile": applied(),
    "services.build.dockerfile_inline": applied(
        D + "test_images.py::test_dockerfile_inline_and_up_builds_a_missing_image"),
    "services.build.entitlements": _builder_lacks("entitlements"),
    "services.build.args": applied(D + "test_images.py::test_build_with_args_and_target"),
    "services.build.ssh": _builder_lacks("ssh"),
    "services.build.labels": applied(),
    "services.build.cache_from": applied(),
    "services.build.cache_to": _builder_lacks("cache_to"),
    "services.build.no_cache": applied(),
    "services.build.additional_contexts": _builder_lacks("additional_contexts"),
    "services.build.network": applied(),
    "services.build.provenance": not_applicable("attestations are BuildKit's: the classic builder attaches none",
                                                gap="provenance: true is not refused"),
    "services.build.sbom": not_applicable("attestations are BuildKit's: the classic builder attaches none",
                                          gap="sbom: true is not refused"),
    "services.build.pull": applied(),
    "services.build.target": applied(D + "test_images.py::test_build_with_args_and_target"),
    "services.build.shm_size": applied(),
    "services.build.extra_hosts": applied(),
    "services.build.isolation": applied(),
    "services.build.privileged": _builder_lacks("privileged"),
    # build secrets take the native builder (composer.backends.docker.native_build), which refuses
    # uid/gid/mode (the RUN --mount=type=secret options set them)
    **{f"services.build.secrets.{key}": applied(
        D + "test_build_buildkit_syntax.py::test_heredoc_cache_mount_and_secret_build_on_the_docker_backend",
        note="built by the native builder and loaded into the engine") for key in ("source", "target")},
    **{f"services.build.secrets.{key}": refused(f"build.secrets.{key} is not supported by the native builder (the "
                                                "RUN --mount=type=secret options set the file's owner and mode)",
                                                when="an image must be built") for key in ("uid", "gid", "mode")},
    "services.build.tags": applied(),
    "services.build.ulimits.soft": _builder_lacks("ulimits"),
    "services.build.ulimits.hard": _builder_lacks("ulimits"),
    "services.build.ulimits.single": not_applicable("the form the file used (kept for the configuration hash)"),
    "services.build.platforms": applied(note="one platform; several are refused in one line"),
    **{f"services.blkio_config.{key}.{field}": applied()
       for key in ("device_read_bps", "device_read_iops", "device_write_bps", "device_write_iops")
       for field in ("path", "rate")},
    "services.blkio_config.weight": applied(),
    "services.blkio_config.weight_device.path": applied(),
    "services.blkio_config.weight_device.weight": applied(),
    "services.cap_add": applied(KEYS),
    "services.cap_drop": applied(KEYS),
    "services.cgroup": applied(),
    "services.cgroup_parent": applied(),
    "services.command": applied(KEYS, CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.configs.source": applied(),
    "services.configs.target": applied(),
    **{f"services.{kind}.{key}": applied(INJECTED, note=WRITTEN)
       for kind in ("configs", "secrets") for key in ("uid", "gid", "mode")},
    "services.container_name": applied(
        "tests/integration/docker/test_cli_lifecycle.py::test_a_container_name_the_engine_refuses_is_one_line_before_anything_is_created"),
    "services.cpu_count": applied(note="Windows engines only; the engine refuses it elsewhere"),
    "services.cpu_percent": applied(note="Windows engines only; the engine refuses it elsewhere"),
    "services.cpu_shares": applied(),
    "services.cpu_quota": applied(),
    "services.cpu_period": applied(),
    "services.cpu_rt_period": applied(),
    "services.cpu_rt_runtime": applied(),
    "services.cpus": applied(),
    "services.cpuset": applied(),
    **{f"services.credential_spec.{key}": refused("credential_spec is not supported by the docker backend (Windows "
                                                  "engines' gMSA)") for key in ("config", "file", "registry")},
    "services.depends_on.condition": applied(),
    "services.depends_on.restart": applied(),
    "services.device_cgroup_rules": applied(),
    "services.devices.source": applied(),
    "services.devices.target": applied(),
    "services.devices.permissions": applied(),
    "services.dns": applied(),
    "services.dns_opt": applied(KEYS),
    "services.dns_search": applied(KEYS),
    "services.domainname": applied(KEYS),
    "services.entrypoint": applied(KEYS),
    "services.environment": applied(KEYS),
    "services.expose": applied(),
    "services.external_links": refused("external_links is not supported by the docker backend yet"),
    "services.extra_hosts": applied(KEYS, D + "test_compose_keys.py::test_host_gateway_is_the_default_bridges_gateway",
                                    note="host-gateway is the default bridge's gateway, as v2 asks the engine"),
    **{f"services.gpus.{key}": applied() for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.group_add": applied(KEYS),
    **{f"services.healthcheck.{key}": applied()
       for key in ("test", "interval", "timeout", "start_period", "start_interval", "retries", "disable")},
    "services.hostname": applied(KEYS),
    "services.image": applied(CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.init": applied(),
    "services.ipc": applied(),
    "services.isolation": applied(),
    "services.labels": applied(KEYS),
    "services.links": applied(note="the dependency and the service's DNS name on its networks",
                              gap="a link alias (`db:database`) is not resolvable: v2 sets Links"),
    "services.logging.driver": applied(
        SERVICE_KEYS + "test_logging_reaches_the_log_config_and_the_none_driver_warns_as_v2"),
    "services.logging.options": applied(
        SERVICE_KEYS + "test_logging_reaches_the_log_config_and_the_none_driver_warns_as_v2"),
    "services.mac_address": applied(),
    "services.mem_limit": applied(),
    "services.mem_reservation": applied(),
    "services.mem_swappiness": applied(),
    "services.memswap_limit": applied(),
    "services.network_mode": applied(),
    "services.networks.aliases": applied(),
    "services.networks.interface_name": refused("networks.interface_name is not supported by the docker backend yet"),
    "services.networks.ipv4_address": applied(KEYS),
    "services.networks.ipv6_address": applied(),
    "services.networks.link_local_ips": refused("networks.link_local_ips is not supported by the docker backend "
                                                "yet"),
    "services.networks.mac_address": applied(),
    "services.networks.driver_opts": refused("networks.driver_opts is not supported by the docker backend yet"),
    "services.networks.gw_priority": refused("networks.gw_priority is not supported by the docker backend yet"),
    "services.oom_kill_disable": applied(),
    "services.oom_score_adj": applied(KEYS),
    "services.pid": applied(),
    "services.pids_limit": applied(),
    "services.platform": applied(),
    "services.ports.host_ip": applied(),
    "services.ports.target": applied(
        "tests/integration/docker/test_cli_containers.py::test_port_prints_the_mapping_and_it_answers"),
    "services.ports.published": applied(
        "tests/integration/docker/test_cli_containers.py::test_port_prints_the_mapping_and_it_answers"),
    "services.ports.protocol": applied(),
    **{f"services.{hook}.{key}": applied(*HOOKS)
       for hook in ("post_start", "pre_stop")
       for key in ("command", "user", "privileged", "working_dir", "environment")},
    "services.privileged": applied(),
    "services.pull_policy": applied(),
    "services.read_only": applied(KEYS),
    "services.restart": applied(),
    "services.runtime": applied(),
    "services.scale": applied(),
    "services.security_opt": applied(KEYS, D + "test_security_opt.py"),
    "services.shm_size": applied(KEYS),
    "services.secrets.source": applied(),
    "services.secrets.target": applied(),
    "services.sysctls": applied(KEYS),
    "services.stdin_open": applied(),
    "services.stop_grace_period": applied(),
    "services.stop_signal": applied(),
    "services.storage_opt": applied(),
    "services.tmpfs": applied(KEYS),
    "services.tty": applied(),
    "services.ulimits.soft": applied(KEYS),
    "services.ulimits.hard": applied(KEYS),
    "services.ulimits.single": not_applicable("the form the file used (kept for the configuration hash)"),
    "services.use_api_socket": applied(
        D + "test_compose_keys.py::test_use_api_socket_as_v2_and_v2_sees_the_container_up_to_date",
        note="a unix endpoint only, as v2 (another is refused in v2's words)"),
    "services.user": applied(KEYS),
    "services.uts": applied(),
    "services.userns_mode": applied(),
    "services.volumes.type": applied(KEYS),
    "services.volumes.source": applied(KEYS),
    "services.volumes.target": applied(KEYS),
    "services.volumes.read_only": applied(KEYS),
    "services.volumes.consistency": applied(note="passed to the engine, which ignores it on Linux"),
    "services.volumes.bind.propagation": applied(),
    "services.volumes.bind.create_host_path": applied(),
    "services.volumes.bind.recursive": applied(),
    "services.volumes.bind.selinux": applied(),
    "services.volumes.volume.labels": applied(),
    "services.volumes.volume.nocopy": applied(),
    "services.volumes.volume.subpath": applied(
        SERVICE_KEYS + "test_a_volume_subpath_needs_an_engine_that_knows_it",
        note="refused in one line by an engine below API 1.45, which would mount the whole volume"),
    "services.volumes.tmpfs.size": applied(KEYS),
    "services.volumes.tmpfs.mode": applied(KEYS),
    "services.volumes.image.subpath": applied(),
    "services.volumes_from": applied(),
    "services.working_dir": applied(KEYS),
    "services.deploy.replicas": applied(),
    "services.deploy.resources.limits.cpus": applied(SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    "services.deploy.resources.limits.memory": applied(SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    "services.deploy.resources.limits.pids": applied(SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    **{f"services.deploy.resources.limits.devices.{key}": not_applicable(
        "devices are reserved, not limited: v2 reads only reservations.devices")
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.deploy.resources.reservations.memory": applied(
        SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    **{f"services.deploy.resources.reservations.devices.{key}": applied()
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.deploy.restart_policy.condition": applied(),
    "services.deploy.restart_policy.delay": not_applicable("the engine has no restart delay; v2 ignores it too"),
    "services.deploy.restart_policy.max_attempts": applied(),
    # --- networks, volumes, secrets, configs, models ---
    "networks.name": applied(CONTRACT + "::test_networks_are_created_observed_and_removed"),
    "networks.driver": applied(),
    "networks.driver_opts": applied(SERVICE_KEYS + "test_bridge_driver_opts_reach_the_engine"),
    "networks.ipam.driver": applied(),
    "networks.ipam.config.subnet": applied(KEYS),
    "networks.ipam.config.ip_range": applied(),
    "networks.ipam.config.gateway": applied(),
    "networks.ipam.config.aux_addresses": applied(),
    "networks.ipam.options": applied(),
    "networks.external": applied(CONTRACT + "::test_an_external_network_is_observed_only_when_named"),
    "networks.internal": applied(),
    "networks.enable_ipv4": refused("enable_ipv4 is not supported by the docker backend yet"),
    "networks.enable_ipv6": applied(),
    "networks.labels": applied(),
    "volumes.name": applied(KEYS, CONTRACT + "::test_volumes_are_created_observed_shared_and_removed"),
    "volumes.driver": applied(),
    "volumes.driver_opts": applied(),
    "volumes.external": applied(),
    "volumes.labels": applied(),
    "secrets.name": not_applicable("the Swarm object's name; a bound file has none"),
    "secrets.environment": applied(INJECTED),
    "secrets.file": applied(),
    "secrets.external": refused("external secrets need Swarm, which the docker backend does not use"),
    "configs.name": not_applicable("the Swarm object's name; a bound file has none"),
    "configs.content": applied(INJECTED),
    "configs.environment": applied(INJECTED),
    "configs.file": applied(),
    "configs.external": refused("external configs need Swarm, which the docker backend does not use"),
})
