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
RESOURCES = D + "test_keys_resources.py::test_resource_cgroup_and_namespace_keys_reach_the_host_config_as_v2_sends_them"
RUNTIME = D + "test_keys_runtime.py::"
LIFECYCLE = RUNTIME + "test_lifecycle_keys_reach_the_container_config_as_v2_sends_them"
NETWORK = D + "test_keys_network.py::test_network_keys_reach_the_engine_as_v2_sends_them"
LINKS = D + "test_keys_network.py::test_a_links_alias_resolves_in_the_linking_container"
STORAGE = D + "test_keys_storage.py::test_storage_keys_reach_the_engine_as_v2_sends_them"
CREATE_HOST_PATH = (D + "test_keys_storage.py::"
                    "test_a_missing_source_with_create_host_path_false_is_refused_and_true_creates_it")
BUILD = D + "test_keys_build.py::"
BUILT = BUILD + "test_build_keys_shape_what_the_classic_builder_makes"
CACHE = BUILD + "test_no_cache_and_cache_from_decide_whether_a_step_runs_again"
WINDOWS_ONLY = D + "test_keys_resources.py::test_windows_only_cpu_keys_are_refused_in_one_line_by_a_linux_engine"
PULL = RUNTIME + "test_pull_policy_never_does_not_pull_and_platform_picks_the_image"
STORAGE_OPT = D + "test_keys_resources.py::test_storage_opt_reaches_the_engine_which_refuses_it_as_it_refuses_v2"
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
ATTESTATIONS = {"provenance": "provenance attestations (BuildKit's)", "sbom": "SBOM attestations (BuildKit's)"}
"""Refused at build when asked for (``BuildConfig.attestations``); v2 with BuildKit's docker
driver refuses them too ("Attestation is not supported for the docker driver")."""


def _builder_lacks(field: str) -> Entry:
    return refused(f"the engine's classic builder does not support {BUILDER_LACKS[field]}",
                   when="an image must be built")


BLKIO_WEIGHT = ("an engine whose kernel has no blkio weight discards it with a warning, which composer does not print "
                "(v2 prints the engine's warnings)")
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
    "services.annotations": applied(
        RUNTIME + "test_a_key_this_engine_would_drop_reaches_it_or_is_refused_in_one_line",
        note="HostConfig.Annotations; refused in one line by an engine below API 1.43, which would drop them (v2 "
             "drops them)"),
    "services.build.context": applied(D + "test_images.py::test_build_honours_dockerignore"),
    "services.build.dockerfile": applied(BUILT),
    "services.build.dockerfile_inline": applied(
        D + "test_images.py::test_dockerfile_inline_and_up_builds_a_missing_image"),
    "services.build.entitlements": _builder_lacks("entitlements"),
    "services.build.args": applied(D + "test_images.py::test_build_with_args_and_target"),
    "services.build.ssh": _builder_lacks("ssh"),
    "services.build.labels": applied(BUILT),
    "services.build.cache_from": applied(CACHE),
    "services.build.cache_to": _builder_lacks("cache_to"),
    "services.build.no_cache": applied(CACHE),
    "services.build.additional_contexts": _builder_lacks("additional_contexts"),
    "services.build.network": applied(BUILT),
    **{f"services.build.{key}": refused(f"the engine's classic builder does not support {what}",
                                        when="an image must be built (and the key is not false)")
       for key, what in ATTESTATIONS.items()},
    "services.build.pull": applied(BUILD + "test_pull_takes_the_registrys_base_over_a_local_one"),
    "services.build.target": applied(D + "test_images.py::test_build_with_args_and_target"),
    "services.build.shm_size": applied(BUILT),
    "services.build.extra_hosts": applied(BUILT),
    "services.build.isolation": applied(BUILD + "test_build_isolation_reaches_the_engine"),
    "services.build.privileged": _builder_lacks("privileged"),
    # build secrets take the native builder (composer.backends.docker.native_build), which refuses
    # uid/gid/mode (the RUN --mount=type=secret options set them)
    **{f"services.build.secrets.{key}": applied(
        D + "test_build_buildkit_syntax.py::test_heredoc_cache_mount_and_secret_build_on_the_docker_backend",
        note="built by the native builder and loaded into the engine") for key in ("source", "target")},
    **{f"services.build.secrets.{key}": refused(f"build.secrets.{key} is not supported by the native builder (the "
                                                "RUN --mount=type=secret options set the file's owner and mode)",
                                                when="an image must be built") for key in ("uid", "gid", "mode")},
    "services.build.tags": applied(BUILT),
    "services.build.ulimits.soft": _builder_lacks("ulimits"),
    "services.build.ulimits.hard": _builder_lacks("ulimits"),
    "services.build.ulimits.single": not_applicable("the form the file used (kept for the configuration hash)"),
    "services.build.platforms": applied(BUILT, D + "test_images.py::test_multiple_platforms_are_refused",
                                        note="one platform; several are refused in one line"),
    **{f"services.blkio_config.{key}.{field}": applied(RESOURCES)
       for key in ("device_read_bps", "device_read_iops", "device_write_bps", "device_write_iops")
       for field in ("path", "rate")},
    **{f"services.blkio_config.{key}": applied(RESOURCES, note=BLKIO_WEIGHT)
       for key in ("weight", "weight_device.path", "weight_device.weight")},
    "services.cap_add": applied(KEYS),
    "services.cap_drop": applied(KEYS),
    "services.cgroup": applied(RESOURCES),
    "services.cgroup_parent": applied(RESOURCES),
    "services.command": applied(KEYS, CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.configs.source": applied(STORAGE),
    "services.configs.target": applied(STORAGE),
    **{f"services.{kind}.{key}": applied(INJECTED, note=WRITTEN)
       for kind in ("configs", "secrets") for key in ("uid", "gid", "mode")},
    "services.container_name": applied(
        "tests/integration/docker/test_cli_lifecycle.py::test_a_container_name_the_engine_refuses_is_one_line_before_anything_is_created"),
    "services.cpu_count": applied(WINDOWS_ONLY, note="Windows engines only: refused in one line by a Linux engine, "
                                                   "which would ignore it"),
    "services.cpu_percent": applied(WINDOWS_ONLY, note="Windows engines only: refused in one line by a Linux "
                                                     "engine, which would discard it"),
    "services.cpu_shares": applied(RESOURCES),
    "services.cpu_quota": applied(RESOURCES),
    "services.cpu_period": applied(RESOURCES),
    "services.cpu_rt_period": applied(RESOURCES),
    "services.cpu_rt_runtime": applied(RESOURCES),
    "services.cpus": applied(RESOURCES),
    "services.cpuset": applied(RESOURCES),
    **{f"services.credential_spec.{key}": refused("credential_spec is not supported by the docker backend (Windows "
                                                  "engines' gMSA)") for key in ("config", "file", "registry")},
    "services.depends_on.condition": applied(LIFECYCLE),
    "services.depends_on.restart": applied(LIFECYCLE),
    "services.device_cgroup_rules": applied(RESOURCES),
    **{f"services.devices.{key}": applied(RESOURCES) for key in ("source", "target", "permissions")},
    "services.dns": applied(NETWORK),
    "services.dns_opt": applied(KEYS),
    "services.dns_search": applied(KEYS),
    "services.domainname": applied(KEYS),
    "services.entrypoint": applied(KEYS),
    "services.environment": applied(KEYS),
    "services.expose": applied(LIFECYCLE),
    "services.external_links": refused("external_links is not supported by the docker backend yet"),
    "services.extra_hosts": applied(KEYS, D + "test_compose_keys.py::test_host_gateway_is_the_default_bridges_gateway",
                                    note="host-gateway is the default bridge's gateway, as v2 asks the engine"),
    **{f"services.gpus.{key}": applied(RESOURCES)
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.group_add": applied(KEYS),
    **{f"services.healthcheck.{key}": applied(LIFECYCLE)
       for key in ("test", "interval", "timeout", "start_period", "retries", "disable")},
    "services.healthcheck.start_interval": applied(
        RUNTIME + "test_a_key_this_engine_would_drop_reaches_it_or_is_refused_in_one_line",
        note="refused in one line by an engine below API 1.44, which would drop it (as v2 refuses it)"),
    "services.hostname": applied(KEYS),
    "services.image": applied(CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.init": applied(RESOURCES),
    "services.ipc": applied(RESOURCES),
    "services.isolation": applied(RESOURCES),
    "services.labels": applied(KEYS),
    "services.links": applied(NETWORK, LINKS,
                              note="the dependency, and the endpoint's Links on the first network as v2 sets them"),
    "services.logging.driver": applied(
        SERVICE_KEYS + "test_logging_reaches_the_log_config_and_the_none_driver_warns_as_v2"),
    "services.logging.options": applied(
        SERVICE_KEYS + "test_logging_reaches_the_log_config_and_the_none_driver_warns_as_v2"),
    "services.mac_address": applied(NETWORK),
    "services.mem_limit": applied(RESOURCES),
    "services.mem_reservation": applied(RESOURCES),
    "services.mem_swappiness": applied(RESOURCES),
    "services.memswap_limit": applied(RESOURCES),
    "services.network_mode": applied(NETWORK),
    "services.networks.aliases": applied(NETWORK),
    "services.networks.interface_name": refused("networks.interface_name is not supported by the docker backend yet"),
    "services.networks.ipv4_address": applied(KEYS),
    "services.networks.ipv6_address": applied(NETWORK),
    "services.networks.link_local_ips": refused("networks.link_local_ips is not supported by the docker backend "
                                                "yet"),
    "services.networks.mac_address": applied(
        RUNTIME + "test_a_key_this_engine_would_drop_reaches_it_or_is_refused_in_one_line",
        note="refused in one line by an engine below API 1.44, which would drop it (as v2 refuses it)"),
    "services.networks.driver_opts": refused("networks.driver_opts is not supported by the docker backend yet"),
    "services.networks.gw_priority": refused("networks.gw_priority is not supported by the docker backend yet"),
    "services.oom_kill_disable": applied(RESOURCES),
    "services.oom_score_adj": applied(KEYS),
    "services.pid": applied(RESOURCES),
    "services.pids_limit": applied(RESOURCES),
    "services.platform": applied(LIFECYCLE, PULL),
    "services.ports.host_ip": applied(NETWORK),
    "services.ports.target": applied(
        "tests/integration/docker/test_cli_containers.py::test_port_prints_the_mapping_and_it_answers"),
    "services.ports.published": applied(
        "tests/integration/docker/test_cli_containers.py::test_port_prints_the_mapping_and_it_answers"),
    "services.ports.protocol": applied(NETWORK),
    **{f"services.{hook}.{key}": applied(*HOOKS)
       for hook in ("post_start", "pre_stop")
       for key in ("command", "user", "privileged", "working_dir", "environment")},
    "services.privileged": applied(RESOURCES),
    "services.pull_policy": applied(PULL),
    "services.read_only": applied(KEYS),
    "services.restart": applied(LIFECYCLE),
    "services.runtime": applied(RESOURCES),
    "services.scale": applied(LIFECYCLE),
    "services.security_opt": applied(KEYS, D + "test_security_opt.py"),
    "services.shm_size": applied(KEYS),
    "services.secrets.source": applied(STORAGE),
    "services.secrets.target": applied(STORAGE),
    "services.sysctls": applied(KEYS),
    "services.stdin_open": applied(LIFECYCLE),
    "services.stop_grace_period": applied(LIFECYCLE),
    "services.stop_signal": applied(LIFECYCLE),
    "services.storage_opt": applied(STORAGE_OPT),
    "services.tmpfs": applied(KEYS),
    "services.tty": applied(LIFECYCLE),
    "services.ulimits.soft": applied(KEYS),
    "services.ulimits.hard": applied(KEYS),
    "services.ulimits.single": not_applicable("the form the file used (kept for the configuration hash)"),
    "services.use_api_socket": applied(
        D + "test_compose_keys.py::test_use_api_socket_as_v2_and_v2_sees_the_container_up_to_date",
        note="a unix endpoint only, as v2 (another is refused in v2's words)"),
    "services.user": applied(KEYS),
    "services.uts": applied(RESOURCES),
    "services.userns_mode": applied(RESOURCES),
    "services.volumes.type": applied(KEYS),
    "services.volumes.source": applied(KEYS),
    "services.volumes.target": applied(KEYS),
    "services.volumes.read_only": applied(KEYS),
    "services.volumes.consistency": applied(STORAGE, note="passed to the engine, which ignores it on Linux"),
    "services.volumes.bind.propagation": applied(STORAGE),
    "services.volumes.bind.create_host_path": applied(STORAGE, CREATE_HOST_PATH),
    "services.volumes.bind.recursive": applied(STORAGE),
    "services.volumes.bind.selinux": applied(STORAGE),
    "services.volumes.volume.labels": applied(STORAGE),
    "services.volumes.volume.nocopy": applied(STORAGE),
    "services.volumes.volume.subpath": applied(
        SERVICE_KEYS + "test_a_volume_subpath_needs_an_engine_that_knows_it",
        note="refused in one line by an engine below API 1.45, which would mount the whole volume"),
    "services.volumes.tmpfs.size": applied(KEYS),
    "services.volumes.tmpfs.mode": applied(KEYS),
    "services.volumes.image.subpath": applied(
        RUNTIME + "test_a_key_this_engine_would_drop_reaches_it_or_is_refused_in_one_line",
        note="image mounts are refused in one line by an engine below API 1.48 (v2 refuses them too)"),
    "services.volumes_from": applied(STORAGE),
    "services.working_dir": applied(KEYS),
    "services.deploy.replicas": applied(LIFECYCLE),
    "services.deploy.resources.limits.cpus": applied(SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    "services.deploy.resources.limits.memory": applied(SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    "services.deploy.resources.limits.pids": applied(SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    **{f"services.deploy.resources.limits.devices.{key}": not_applicable(
        "devices are reserved, not limited: v2 reads only reservations.devices")
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.deploy.resources.reservations.memory": applied(
        SERVICE_KEYS + "test_deploy_resources_reach_the_host_config"),
    **{f"services.deploy.resources.reservations.devices.{key}": applied(RESOURCES)
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.deploy.restart_policy.condition": applied(LIFECYCLE),
    "services.deploy.restart_policy.delay": not_applicable("the engine has no restart delay; v2 ignores it too"),
    "services.deploy.restart_policy.max_attempts": applied(LIFECYCLE),
    # --- networks, volumes, secrets, configs, models ---
    "networks.name": applied(CONTRACT + "::test_networks_are_created_observed_and_removed"),
    "networks.driver": applied(NETWORK),
    "networks.driver_opts": applied(SERVICE_KEYS + "test_bridge_driver_opts_reach_the_engine"),
    "networks.ipam.driver": applied(NETWORK),
    "networks.ipam.config.subnet": applied(KEYS),
    "networks.ipam.config.ip_range": applied(NETWORK),
    "networks.ipam.config.gateway": applied(NETWORK),
    "networks.ipam.config.aux_addresses": applied(NETWORK),
    "networks.ipam.options": applied(NETWORK),
    "networks.external": applied(CONTRACT + "::test_an_external_network_is_observed_only_when_named"),
    "networks.internal": applied(NETWORK),
    "networks.enable_ipv4": refused("enable_ipv4 is not supported by the docker backend yet"),
    "networks.enable_ipv6": applied(NETWORK),
    "networks.labels": applied(NETWORK),
    "volumes.name": applied(KEYS, CONTRACT + "::test_volumes_are_created_observed_shared_and_removed"),
    "volumes.driver": applied(STORAGE),
    "volumes.driver_opts": applied(STORAGE),
    "volumes.external": applied(STORAGE),
    "volumes.labels": applied(STORAGE),
    "secrets.name": not_applicable("the Swarm object's name; a bound file has none"),
    "secrets.environment": applied(INJECTED),
    "secrets.file": applied(STORAGE),
    "secrets.external": refused("external secrets need Swarm, which the docker backend does not use"),
    "configs.name": not_applicable("the Swarm object's name; a bound file has none"),
    "configs.content": applied(INJECTED),
    "configs.environment": applied(INJECTED),
    "configs.file": applied(STORAGE),
    "configs.external": refused("external configs need Swarm, which the docker backend does not use"),
})
