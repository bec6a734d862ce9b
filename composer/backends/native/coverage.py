"""What the native backend does with each Compose key (composer/contract/coverage.py).

The runtime configuration (``runtime/config.py``, from ``container_settings.py``), the network
and namespace settings and the volume mounts apply the keys; a key refused here is refused by
``runtime.config.service_config`` through ``coverage.refuse`` with this table's message, and by
the engine before it creates anything.
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

N = "tests/integration/native/"
CONTRACT = "tests/integration/test_backend_contract.py"
KEYS = N + "test_compose_keys_inside.py::test_service_keys_reach_the_container"


BUILDER_REFUSAL = "{} is not supported by the native builder yet (use --backend docker)"
"""The native builder's one line (composer.backends.native.build.builder), ``{}`` what it lacks."""
ATTESTATIONS = "{} is not supported by the native builder (it makes no attestations)"
"""The native builder's one line for ``provenance`` and ``sbom`` unless false (``BuildConfig.attestations``)."""
BUILDER_LACKS = ("ssh", "isolation")
"""The ``build:`` keys the native builder refuses when it builds (BuildConfig fields)."""
BUILD = N + "test_build.py::"
BUILD_UP = N + "test_build_up.py::"
BUILD_CACHE = N + "test_build_cache.py::"
BUILD_CACHE_IO = N + "test_build_cache_io.py::"
BUILD_MOUNTS = N + "test_build_mounts.py::"
BUILD_CONTEXTS = N + "test_build_contexts.py::"
RUN_KEYS = BUILD_CONTEXTS + "test_extra_hosts_shm_size_and_ulimits_reach_every_run"
COMPOSE_KEYS = N + "test_compose_keys.py::"
SERVICE_KEYS = N + "test_service_keys.py::"
INTERACTIVE = N + "test_interactive.py::"
INJECTED = (COMPOSE_KEYS + "test_secrets_and_configs_with_content_are_written_with_their_owner_and_mode",
            COMPOSE_KEYS + "test_another_container_does_not_see_the_secret",
            COMPOSE_KEYS + "test_a_missing_variable_is_one_line_and_creates_nothing")
HOOKS = (COMPOSE_KEYS + "test_post_start_runs_after_start_and_pre_stop_before_stop",
         COMPOSE_KEYS + "test_a_failing_post_start_fails_the_start_with_v2s_message")
RES = N + "test_keys_resources.py::test_resource_keys_are_the_containers_cgroup_files_and_process_keys_its_pid_1"
STORE = N + "test_keys_storage.py::test_storage_keys_take_effect_in_the_container_and_the_volume_store"
NO_HOST_PATH = N + "test_keys_storage.py::test_a_missing_bind_source_without_create_host_path_is_one_line"
PULL = N + "test_keys_build.py::test_pull_takes_the_registrys_base_over_the_stores"
BUILT = N + "test_keys_build.py::test_build_keys_shape_what_the_native_builder_makes"
PLATFORM = N + "test_keys_runtime.py::test_pull_policy_never_and_platform"
LIFE = N + "test_keys_runtime.py::test_lifecycle_keys_as_the_supervisor_and_ps_show_them"
NET = N + "test_keys_network.py::test_network_keys_take_effect_inside_the_containers"
RESOURCES = SERVICE_KEYS + "test_deploy_resources_are_the_containers_cgroup_limits"
LOGGING = (SERVICE_KEYS + "test_a_chatty_service_is_rotated_and_logs_reads_the_rotated_files_in_order",
           SERVICE_KEYS + "test_the_none_driver_keeps_nothing_and_logs_says_so_as_docker_does",
           SERVICE_KEYS + "test_without_logging_the_log_is_still_bounded",
           SERVICE_KEYS + "test_another_logging_driver_is_refused_in_one_line")
WRITTEN = ("a secret or config from environment or content is written into the container with them; a file: one "
           "is bound and keeps the file's owner and mode, as in v2")
DEVICES = "deploy.resources.reservations.devices is not supported by the native backend"
GENERIC = "deploy.resources.reservations.generic_resources is not supported by the native backend"
"""Device and generic-resource requests (GPUs): refused by the table (``refuse``), before
runtime.config reads the limits."""


def _builder_lacks(key: str) -> Entry:
    return refused(BUILDER_REFUSAL.format(f"build.{key}"), when="an image must be built")


BLKIO_KEYS = (*(f"{key}.{field}" for key in ("device_read_bps", "device_read_iops", "device_write_bps",
                                             "device_write_iops") for field in ("path", "rate")),
              "weight", "weight_device.path", "weight_device.weight")


def _refused(key: str) -> Entry:
    return refused(f"{key} is not supported by the native backend yet")


COVERAGE: Table = with_extensions({
    **SINGLE_HOST,
    **NO_BACKEND,
    **{key: applied(N + "test_watch.py::test_watch_syncs_restarts_and_execs",
                    N + "test_watch.py::test_a_missing_path_is_watched_from_its_parent_in_the_project")
       for key in WATCH_KEYS},
    "services.develop.watch.action": applied(
        N + "test_watch.py::test_watch_syncs_restarts_and_execs",
        N + "test_watch.py::test_rebuild_rebuilds_with_the_native_builder_and_recreates",
        note="sync, sync+restart, sync+exec, restart and rebuild (with the native builder)"),
    "name": applied(CONTRACT + "::test_observe_sees_only_its_own_project"),
    # --- services ---
    "services.annotations": _refused("annotations"),
    # The native builder (composer.backends.native.build): what it lacks is refused when it builds.
    "services.build.context": applied(BUILD_UP + "test_up_build_runs_the_image_the_native_builder_made",
                                      BUILD + "test_from_an_image_copy_rules_dockerignore_and_metadata",
                                      note="a local folder; a URL or git context is refused in one line"),
    "services.build.dockerfile": applied(BUILD_UP + "test_the_built_config_equals_buildkits"),
    "services.build.dockerfile_inline": applied(BUILT),
    "services.build.args": applied(BUILD_UP + "test_the_built_config_equals_buildkits"),
    "services.build.labels": applied(BUILT),
    "services.build.no_cache": applied(BUILT, BUILD_CACHE + "test_an_edit_rebuilds_exactly_the_steps_that_depend_on_it",
                                       note="every step is built again (and recorded in the step cache)"),
    "services.build.network": applied(BUILD + "test_run_network_none_reaches_no_host_service",
                                      BUILD + "test_run_default_network_is_a_bridge_of_the_builds_own",
                                      BUILD + "test_build_network_host_is_every_runs_default",
                                      note="default (a bridge of the build's own), none or host; another is "
                                           "refused in one line"),
    **{f"services.build.{key}": refused(ATTESTATIONS.format(f"build.{key}"),
                                        when="an image must be built (and the key is not false)")
       for key in ("provenance", "sbom")},
    "services.build.cache_from": applied(
        BUILD_CACHE_IO + "test_cache_to_and_cache_from_local_give_a_fresh_store_the_same_image",
        BUILD_CACHE_IO + "test_a_tampered_cache_folder_is_refused_in_one_line",
        BUILD_CACHE_IO + "test_other_cache_types_are_refused_in_one_line",
        note="type=local (src=, tag=, digest=): a folder cache_to wrote, every blob checked; other types refused "
             "in one line"),
    "services.build.cache_to": applied(
        BUILD_CACHE_IO + "test_cache_to_and_cache_from_local_give_a_fresh_store_the_same_image",
        BUILD_CACHE_IO + "test_other_cache_types_are_refused_in_one_line",
        note="type=local (dest=, mode=min|max, tag=): an OCI layout holding the native builder's step records "
             "(not BuildKit's cache config); other types refused in one line"),
    "services.build.pull": applied(PULL, note="pull: true pulls the base images even when the store has them"),
    "services.build.target": applied(BUILD + "test_multi_stage_copy_from_scratch_and_target"),
    "services.build.tags": applied(BUILT),
    "services.build.platforms": applied(BUILT, note="linux/amd64 only; another platform is refused in one line"),
    **{f"services.build.{key}": _builder_lacks(key) for key in BUILDER_LACKS},
    "services.build.extra_hosts": applied(RUN_KEYS, BUILD_CONTEXTS + "test_extra_hosts_equal_buildkits",
                                          BUILD_CONTEXTS + "test_extra_hosts_cache_on_names_not_addresses",
                                          note="every RUN's /etc/hosts; host-gateway as a service's (a RUN "
                                               "--network=none with it is refused in one line)"),
    "services.build.shm_size": applied(RUN_KEYS, note="every RUN's /dev/shm"),
    "services.build.additional_contexts": applied(
        BUILD_CONTEXTS + "test_named_contexts_in_from_copy_and_mounts",
        BUILD_CONTEXTS + "test_named_folder_content_is_in_the_cache_key",
        BUILD_CONTEXTS + "test_a_service_context_is_built_first_and_read_through_the_cli",
        BUILD_CONTEXTS + "test_bad_named_contexts_are_one_line",
        note="a folder, docker-image:// or service: (built first), by name in FROM, COPY --from and RUN --mount "
             "from=; oci-layout:// and URLs are refused in one line"),
    "services.build.secrets.source": applied(BUILD_MOUNTS + "test_build_secrets_from_a_file_and_a_variable_never_land"
                                                            "_in_the_image"),
    "services.build.secrets.target": applied(BUILD_MOUNTS + "test_build_secrets_from_a_file_and_a_variable_never_"
                                                            "land_in_the_image", note="the secret's id, as in v2"),
    **{f"services.build.secrets.{key}": refused(f"build.secrets.{key} is not supported by the native builder (the "
                                                "RUN --mount=type=secret options set the file's owner and mode)",
                                                when="an image must be built")
       for key in ("uid", "gid", "mode")},
    "services.build.privileged": applied(BUILD_MOUNTS + "test_host_network_and_insecure_need_their_entitlement",
                                         note="allows RUN --security=insecure (a privileged step)"),
    "services.build.entitlements": applied(BUILD_MOUNTS + "test_host_network_and_insecure_need_their_entitlement",
                                           note="network.host and security.insecure; others refused in one line"),
    "services.build.ulimits.soft": applied(RUN_KEYS, note="every RUN's limits"),
    "services.build.ulimits.hard": applied(RUN_KEYS, note="every RUN's limits"),
    "services.build.ulimits.single": not_applicable("the form the file used (kept for the configuration hash)"),
    **{f"services.blkio_config.{key}": _refused("blkio_config") for key in BLKIO_KEYS},
    "services.cap_add": applied(KEYS),
    "services.cap_drop": applied(KEYS),
    "services.cgroup": applied(RES, note="private only; host is refused in one line"),
    "services.cgroup_parent": _refused("cgroup_parent"),
    "services.command": applied(KEYS, CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.configs.source": applied(STORE),
    "services.configs.target": applied(STORE),
    **{f"services.{kind}.{key}": applied(INJECTED[0], note=WRITTEN)
       for kind in ("configs", "secrets") for key in ("uid", "gid", "mode")},
    "services.container_name": applied(RES),
    "services.cpu_count": _refused("cpu_count"),
    "services.cpu_percent": _refused("cpu_percent"),
    "services.cpu_shares": applied(RES),
    "services.cpu_quota": applied(RES),
    "services.cpu_period": applied(RES),
    "services.cpu_rt_period": _refused("cpu_rt_period"),
    "services.cpu_rt_runtime": _refused("cpu_rt_runtime"),
    "services.cpus": applied(RES),
    "services.cpuset": applied(RES),
    **{f"services.credential_spec.{key}": _refused("credential_spec") for key in ("config", "file", "registry")},
    "services.depends_on.condition": applied(
        "tests/integration/native/test_lifecycle.py::test_service_healthy_ordering_and_wait_fails_when_unhealthy"),
    "services.depends_on.restart": applied(LIFE),
    "services.device_cgroup_rules": _refused("device_cgroup_rules"),
    **{f"services.devices.{key}": _refused("devices") for key in ("source", "target", "permissions")},
    "services.dns": applied(NET),
    "services.dns_opt": applied(KEYS),
    "services.dns_search": applied(KEYS),
    "services.domainname": applied(KEYS),
    "services.entrypoint": applied(KEYS),
    "services.environment": applied(KEYS),
    "services.expose": applied(LIFE),
    "services.external_links": _refused("external_links"),
    "services.extra_hosts": applied(
        KEYS, COMPOSE_KEYS + "test_host_gateway_resolves_to_the_gateway_of_the_first_network",
        COMPOSE_KEYS + "test_host_gateway_without_a_network_is_refused_in_one_line",
        note="host-gateway is the gateway of the first network; with network_mode host or none it is refused in one "
             "line"),
    **{f"services.gpus.{key}": _refused("gpus")
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.group_add": applied(KEYS),
    **{f"services.healthcheck.{key}": applied(LIFE)
       for key in ("test", "interval", "timeout", "start_period", "start_interval", "retries")},
    "services.healthcheck.disable": applied(
        N + "test_keys_runtime.py::test_healthcheck_disable_turns_off_the_images_healthcheck"),
    "services.hostname": applied(KEYS),
    "services.image": applied(CONTRACT + "::test_each_step_of_a_container_is_observed"),
    "services.init": applied(RES),
    "services.ipc": applied(
        "tests/integration/native/test_lifecycle.py::test_ipc_service_shares_the_namespace_and_dev_shm"),
    "services.isolation": _refused("isolation"),
    "services.labels": applied(KEYS),
    "services.links": applied(NET, note="the dependency, and the link's alias answered by the network's DNS to the "
                                        "linking container only (Docker's embedded DNS does the same)"),
    "services.logging.driver": applied(*LOGGING, note="json-file, local and none; another driver is refused in one "
                                                      "line"),
    "services.logging.options": applied(*LOGGING, note="max-size, max-file and compress; another option is refused "
                                                       "in one line"),
    "services.mac_address": _refused("mac_address"),
    "services.mem_limit": applied(RES),
    "services.mem_reservation": applied(RES),
    "services.mem_swappiness": _refused("mem_swappiness"),
    "services.memswap_limit": applied(RES),
    "services.network_mode": applied(
        "tests/integration/native/test_lifecycle.py::test_network_mode_service_shares_the_namespace_and_the_hostname"),
    "services.networks.aliases": applied(
        "tests/integration/native/test_network.py::test_names_resolve_inside_the_right_network_only"),
    "services.networks.interface_name": _refused("networks.interface_name"),
    "services.networks.ipv4_address": applied(KEYS),
    "services.networks.ipv6_address": applied(NET),
    "services.networks.link_local_ips": _refused("networks.link_local_ips"),
    "services.networks.mac_address": applied(NET),
    "services.networks.driver_opts": _refused("networks.driver_opts"),
    "services.networks.gw_priority": _refused("networks.gw_priority"),
    "services.oom_kill_disable": _refused("oom_kill_disable"),
    "services.oom_score_adj": applied(KEYS),
    "services.pid": applied(
        "tests/integration/native/test_lifecycle.py::test_pid_service_sees_the_servers_processes_and_stops_alone"),
    "services.pids_limit": applied(RES),
    "services.platform": applied(PLATFORM, note="chooses the image of that platform at pull; a stored image of "
                                                 "another platform is refused at create, as Docker refuses it"),
    "services.ports.host_ip": applied(NET),
    "services.ports.target": applied(
        "tests/integration/native/test_network.py::test_published_tcp_udp_and_a_range_answer_on_loopback"),
    "services.ports.published": applied(
        "tests/integration/native/test_network.py::test_published_tcp_udp_and_a_range_answer_on_loopback"),
    "services.ports.protocol": applied(
        "tests/integration/native/test_network.py::test_published_tcp_udp_and_a_range_answer_on_loopback"),
    **{f"services.{hook}.{key}": applied(*HOOKS)
       for hook in ("post_start", "pre_stop")
       for key in ("command", "user", "privileged", "working_dir", "environment")},
    "services.privileged": applied(RES),
    "services.pull_policy": applied(PLATFORM),
    "services.read_only": applied(KEYS),
    "services.restart": applied(
        "tests/integration/native/test_lifecycle.py::test_a_crashing_service_restarts_under_on_failure_and_down_ends_the_loop"),
    "services.runtime": _refused("runtime"),
    "services.scale": applied("tests/integration/native/test_network.py::test_replicas_round_robin_and_links"),
    "services.security_opt": applied("tests/integration/native/test_seccomp.py", KEYS),
    "services.shm_size": applied(KEYS),
    "services.secrets.source": applied(STORE),
    "services.secrets.target": applied(STORE),
    "services.sysctls": applied(KEYS),
    "services.stdin_open": applied(INTERACTIVE + "test_attach_to_a_tty_service_detach_then_attach_again_and_exit",
                                   INTERACTIVE + "test_run_without_a_terminal_takes_piped_stdin"),
    "services.stop_grace_period": applied(
        "tests/integration/native/test_lifecycle.py::test_stop_honours_stop_signal_then_grace_then_kill"),
    "services.stop_signal": applied(
        "tests/integration/native/test_lifecycle.py::test_stop_honours_stop_signal_then_grace_then_kill"),
    "services.storage_opt": _refused("storage_opt"),
    "services.tmpfs": applied(KEYS),
    "services.tty": applied(INTERACTIVE + "test_the_terminal_is_the_containers_own",
                            INTERACTIVE + "test_a_tty_service_keeps_its_terminal_output_in_the_log"),
    "services.ulimits.soft": applied(KEYS, note="an exec'd process (exec, healthchecks, hooks) gets them too, as "
                                                "Docker's does"),
    "services.ulimits.hard": applied(KEYS, note="an exec'd process (exec, healthchecks, hooks) gets them too, as "
                                                "Docker's does"),
    "services.ulimits.single": not_applicable("the form the file used (kept for the configuration hash)"),
    "services.use_api_socket": refused("use_api_socket is not supported by the native backend (it has no engine API "
                                       "socket to share; use --backend docker)"),
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
    "services.volumes.bind.create_host_path": applied(STORE, NO_HOST_PATH),
    "services.volumes.bind.recursive": applied(
        "tests/integration/native/test_mounts.py::test_bind_recursive_writable_and_disabled_as_compose_asks"),
    "services.volumes.bind.selinux": _refused("volumes.bind.selinux"),
    "services.volumes.volume.labels": _refused("volumes.volume.labels"),
    "services.volumes.volume.nocopy": applied(STORE),
    "services.volumes.volume.subpath": applied(
        SERVICE_KEYS + "test_a_volume_subpath_mounts_only_that_folder",
        SERVICE_KEYS + "test_a_subpath_through_a_symlink_or_missing_is_refused_in_one_line",
        SERVICE_KEYS + "test_a_subpath_out_of_the_volume_is_refused_at_create",
        note="a subpath through a symlink, missing or out of the volume is refused in one line"),
    "services.volumes.tmpfs.size": applied(KEYS),
    "services.volumes.tmpfs.mode": applied(KEYS),
    "services.volumes.image.subpath": not_applicable("image mounts are refused (volumes.type)"),
    "services.volumes_from": applied(
        "tests/integration/native/test_lifecycle.py::test_volumes_from_shares_volumes_and_binds_with_their_mode"),
    "services.working_dir": applied(KEYS),
    "services.deploy.replicas": applied(LIFE),
    "services.deploy.resources.limits.cpus": applied(RESOURCES),
    "services.deploy.resources.limits.memory": applied(RESOURCES),
    "services.deploy.resources.limits.pids": applied(RESOURCES),
    **{f"services.deploy.resources.limits.devices.{key}": not_applicable(
        "devices are reserved, not limited: the loader refuses them under limits, as v2's schema does")
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    **{f"services.deploy.resources.reservations.devices.{key}": refused(DEVICES)
       for key in ("capabilities", "count", "device_ids", "driver", "options")},
    "services.deploy.resources.reservations.memory": applied(RESOURCES, note="the soft limit (memory.low)"),
    **{f"services.deploy.resources.reservations.generic_resources.discrete_resource_spec.{key}": refused(GENERIC)
       for key in ("kind", "value")},
    "services.deploy.restart_policy.condition": applied(LIFE),
    "services.deploy.restart_policy.delay": applied(LIFE, note="the supervisor waits that long before a restart"),
    "services.deploy.restart_policy.max_attempts": applied(LIFE),
    # --- networks, volumes, secrets, configs, models ---
    "networks.name": applied(CONTRACT + "::test_networks_are_created_observed_and_removed"),
    "networks.driver": applied(NET, note="bridge; any other driver is refused in one line"),
    "networks.driver_opts": applied(
        SERVICE_KEYS + "test_bridge_driver_opts_take_effect_on_the_bridge_and_its_rules",
        SERVICE_KEYS + "test_other_or_bad_driver_opts_are_refused_in_one_line",
        note="com.docker.network.bridge.name, .enable_icc, .enable_ip_masquerade, .host_binding_ipv4 and "
             "com.docker.network.driver.mtu; another option is refused in one line"),
    "networks.ipam.driver": _refused("networks.ipam.driver"),
    "networks.ipam.config.subnet": applied(KEYS),
    "networks.ipam.config.ip_range": applied(NET),
    "networks.ipam.config.gateway": applied(NET),
    "networks.ipam.config.aux_addresses": applied(NET),
    "networks.ipam.options": _refused("networks.ipam.options"),
    "networks.external": applied(CONTRACT + "::test_an_external_network_is_observed_only_when_named"),
    "networks.internal": applied("tests/integration/native/test_network.py::test_internal_network_has_no_route_out"),
    "networks.enable_ipv4": applied(NET),
    "networks.enable_ipv6": applied(NET),
    "networks.labels": applied(NET),
    "volumes.name": applied(KEYS, CONTRACT + "::test_volumes_are_created_observed_shared_and_removed"),
    "volumes.driver": applied(STORE, note="local; another driver is refused in one line"),
    "volumes.driver_opts": _refused("volumes.driver_opts"),
    "volumes.external": applied(STORE),
    "volumes.labels": applied(STORE),
    "secrets.name": not_applicable("the Swarm object's name; a bound file has none"),
    "secrets.environment": applied(*INJECTED),
    "secrets.file": applied(STORE),
    "secrets.external": refused("external secrets need Swarm, which the native backend does not use"),
    "configs.name": not_applicable("the Swarm object's name; a bound file has none"),
    "configs.content": applied(*INJECTED),
    "configs.environment": applied(*INJECTED),
    "configs.file": applied(STORE),
    "configs.external": refused("external configs need Swarm, which the native backend does not use"),
})


