"""The coverage guarantee: every key of the Compose model is in every backend's table, each applied
key names integration tests that exist, each refused key is refused in the table's words before
anything is created, and docs/compose-support.md is what the tables say."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer.backends.select import coverage_tables
from composer.contract.coverage import Status, model_keys, render
from composer.spec.models import BuildConfig, ServiceConfig

ROOT = Path(__file__).parents[3]
TABLES = coverage_tables()


def test_the_walk_reaches_nested_models() -> None:
    keys = model_keys()
    assert "services.deploy.resources.limits.generic_resources.discrete_resource_spec.kind" in keys
    assert "services.develop.watch.exec.environment" in keys
    assert "networks.ipam.config.aux_addresses" in keys
    assert "services.deploy" not in keys  # a field holding a model is named by its own fields
    assert len(model_keys(ServiceConfig, "services.")) > len(ServiceConfig.model_fields)
    assert {f"services.build.{name}" for name in BuildConfig.model_fields} - {"services.build.secrets",
                                                                              "services.build.ulimits"} \
        <= set(keys)


@pytest.mark.parametrize("backend", sorted(TABLES))
def test_every_key_of_the_model_is_in_the_table(backend: str) -> None:
    table, keys = TABLES[backend], model_keys()
    missing = [key for key in keys if key not in table]
    assert not missing, f"{backend}: keys neither applied, refused nor marked not applicable: {missing}"
    unknown = [key for key in table if key not in keys]
    assert not unknown, f"{backend}: the table names keys the model does not have: {unknown}"


@pytest.mark.parametrize("backend", sorted(TABLES))
def test_each_entry_says_why(backend: str) -> None:
    for key, entry in TABLES[backend].items():
        if entry.status is Status.REFUSED:
            assert entry.note, key
            assert "\n" not in entry.note, key
        elif entry.status is Status.NOT_APPLICABLE:
            assert entry.note or entry.gap, key
        elif entry.status is Status.IGNORED:
            assert entry.gap, f"{key}: an ignored key must name its gap"
        else:
            assert not entry.when, key


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")}


@pytest.mark.parametrize("backend", sorted(TABLES))
def test_the_named_integration_tests_exist(backend: str) -> None:
    named = 0
    for key, entry in TABLES[backend].items():
        for test in entry.tests:
            path, _, name = test.partition("::")
            assert path.startswith(("tests/integration/", "tests/e2e/", "examples/")), f"{key}: {test}"
            assert (ROOT / path).is_file(), f"{key}: no test file {path}"
            if name:
                assert name.partition("[")[0] in _test_names(ROOT / path), f"{key}: no test {test}"
            named += 1
    untested = [key for key, entry in TABLES[backend].items() if entry.status is Status.APPLIED and not entry.tests]
    assert not untested, f"{backend}: applied keys that name no integration test showing their effect: {untested}"


def test_the_document_is_generated_from_the_tables() -> None:
    committed = (ROOT / "docs" / "compose-support.md").read_text()
    assert committed == render(TABLES), "docs/compose-support.md is stale: run scripts/compose-support"
    assert "| key | docker | native |" in committed


# --- refusals, through the CLI -----------------------------------------------------------------

# A service (or top-level) fragment that sets each refused key; one per key family.
SERVICE_FRAGMENTS = {
    "annotations": "annotations: {a: b}",
    "blkio_config": "blkio_config: {weight: 300}",
    "cgroup_parent": "cgroup_parent: somewhere",
    "cpu_count": "cpu_count: 1",
    "cpu_percent": "cpu_percent: 50",
    "cpu_rt_period": "cpu_rt_period: 1000",
    "cpu_rt_runtime": "cpu_rt_runtime: 1000",
    "credential_spec": "credential_spec: {config: spec}",
    "device_cgroup_rules": "device_cgroup_rules: ['c 1:3 mr']",
    "devices": "devices: ['/dev/null:/dev/xnull']",
    "external_links": "external_links: [other]",
    "gpus": "gpus: all",
    "isolation": "isolation: default",
    "mac_address": "mac_address: 02:42:ac:11:00:02",
    "mem_swappiness": "mem_swappiness: 10",
    "networks.interface_name": "networks: {default: {interface_name: eth7}}",
    "networks.link_local_ips": "networks: {default: {link_local_ips: [169.254.8.8]}}",
    "networks.driver_opts": "networks: {default: {driver_opts: {a: b}}}",
    "networks.gw_priority": "networks: {default: {gw_priority: 1}}",
    "oom_kill_disable": "oom_kill_disable: true",
    "runtime": "runtime: runc",
    "stdin_open": "stdin_open: true",
    "storage_opt": "storage_opt: {size: 1G}",
    "tty": "tty: true",
    "userns_mode": "userns_mode: host",
    "uts": "uts: host",
    "use_api_socket": "use_api_socket: true",
    "deploy.resources.reservations.devices": "deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}",
    "deploy.resources.reservations.generic_resources": (
        "deploy: {resources: {reservations: {generic_resources: [{discrete_resource_spec: {kind: gpu, value: 1}}]}}}"),
    "volumes.bind.selinux": "volumes: ['/tmp:/mnt:z']",
    "volumes.volume.labels": "volumes: [{type: volume, target: /data, volume: {labels: {a: b}}}]",
}
TOP_FRAGMENTS = {
    "networks.enable_ipv4": ("network default", "networks: {default: {enable_ipv4: true}}"),
    "networks.ipam.driver": ("network default", "networks: {default: {ipam: {driver: other}}}"),
    "networks.ipam.options": ("network default", "networks: {default: {ipam: {options: {a: b}}}}"),
    "volumes.driver_opts": ("volume data", "volumes: {data: {driver_opts: {type: tmpfs}}}"),
    "secrets.external": ("secret s", "secrets: {s: {external: true}}"),
    "configs.external": ("config c", "configs: {c: {external: true}}"),
}


def _family(key: str) -> str:
    rest = key.removeprefix("services.")
    for family in sorted(SERVICE_FRAGMENTS, key=len, reverse=True):
        if rest == family or rest.startswith(family + "."):
            return family
    return rest


def _cases() -> list[tuple[str, str, str]]:
    cases = set()
    for backend, table in TABLES.items():
        for key, entry in table.items():
            if entry.status is Status.REFUSED and not entry.when:
                cases.add((backend, _family(key) if key.startswith("services.") else key, entry.note))
    return sorted(cases)


def test_every_refused_key_has_a_fragment() -> None:
    families = {family for _backend, family, _note in _cases()}
    assert families <= set(SERVICE_FRAGMENTS) | set(TOP_FRAGMENTS), families - set(SERVICE_FRAGMENTS) - set(
        TOP_FRAGMENTS)


@pytest.mark.parametrize(("backend", "family", "message"), _cases())
def test_a_refused_key_is_refused_in_one_line_before_anything_is_pulled(tmp_path: Path, backend: str, family: str,
                                                                      message: str) -> None:
    project = f"refusal-{backend}-{family.replace('.', '-').replace('_', '-')}"
    service = "services:\n  app:\n    image: registry.invalid/never-pulled:1\n"
    if family in SERVICE_FRAGMENTS:
        service += f"    {SERVICE_FRAGMENTS[family]}\n"
        expected = f"composer: service app: {message}"
    else:
        who, fragment = TOP_FRAGMENTS[family]
        expected = f"composer: {who}: {message}"
        if family.startswith("volumes."):
            service += "    volumes: ['data:/data']\n"
        if family.startswith(("secrets.", "configs.")):
            service += f"    {family.partition('.')[0]}: [{who.split()[1]}]\n"
        service += fragment + "\n"
    (tmp_path / "compose.yaml").write_text(service)
    environment = {**os.environ, "COMPOSER_SERVER": "0", "PYTHONPATH": str(ROOT)}
    environment["COMPOSER_RUN_ROOT"] = str(tmp_path / "run")  # a native state of its own: ps sees only this test's
    result = subprocess.run([sys.executable, "-m", "composer", "--backend", backend, "-p", project, "up", "-d"],
                            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [expected]
    # Nothing was pulled or created: the image's registry cannot resolve, so a pull before the
    # refusal would have failed with another message; the engine is not asked for anything.
