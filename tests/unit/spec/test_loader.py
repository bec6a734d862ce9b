"""End-to-end tests of composer.spec.loader.load_config, with files written under tmp_path.

The environment is always given explicitly, so the real one never leaks into a test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from composer.errors import (
    EnvFileError,
    ExtendsError,
    IncludeError,
    ProjectNotFoundError,
    SpecError,
    SpecValidationError,
)
from composer.spec.loader import LoadedConfig, LoadOptions, load_config
from composer.spec.options import ProjectOptions


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(
    cwd: Path,
    files: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    *,
    project_name: str | None = None,
    env_files: tuple[str, ...] = (),
    profiles: tuple[str, ...] = (),
    services: tuple[str, ...] = (),
    consistency: bool = True,
) -> LoadedConfig:
    project = ProjectOptions(
        files=files, project_name=project_name, env_files=env_files, profiles=profiles,
        environment=env or {}, working_directory=str(cwd),
    )
    return load_config(project, LoadOptions(services=services, consistency=consistency))


def services(config: LoadedConfig) -> dict[str, Any]:
    result: dict[str, Any] = config.tree["services"]
    return result


# --- files, folders and names ------------------------------------------------------


def test_default_file_and_override_file(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n    environment: [A=1]\n")
    write(tmp_path / "compose.override.yaml", "services:\n  web:\n    environment: [B=2]\n")
    config = load(tmp_path)
    assert config.files == [str(tmp_path / "compose.yaml"), str(tmp_path / "compose.override.yaml")]
    assert services(config)["web"]["environment"] == {"A": "1", "B": "2"}


def test_default_file_found_in_a_parent_folder(tmp_path: Path) -> None:
    project = tmp_path / "My Project.v2"
    write(project / "docker-compose.yml", "services:\n  web:\n    image: nginx\n")
    deeper = project / "src" / "deeper"
    deeper.mkdir(parents=True)
    config = load(deeper)
    assert config.files == [str(project / "docker-compose.yml")]
    assert config.working_dir == str(project)
    # the folder name, normalised: lower case, only [a-z0-9_-]
    assert config.project_name == "myprojectv2"


def test_compose_yaml_preferred_over_docker_compose_yml(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  a:\n    image: a\n")
    write(tmp_path / "docker-compose.yml", "services:\n  b:\n    image: b\n")
    config = load(tmp_path)
    assert list(services(config)) == ["a"]
    assert any("multiple config files" in warning for warning in config.warnings)


def test_no_compose_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match="no configuration file provided"):
        load(tmp_path)


def test_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match="no such file or directory") as info:
        load(tmp_path, ("nope.yaml",))
    assert str(tmp_path / "nope.yaml") in str(info.value)


def test_multiple_files_with_reset_and_override(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", """\
        services:
          web:
            image: nginx
            ports: ["80:80"]
            environment: {A: "1", B: "2"}
            command: ["a"]
          db:
            image: postgres
        """)
    write(tmp_path / "b.yaml", """\
        services:
          web:
            ports: !reset []
            environment: !override {C: "3"}
            command: !reset null
          db: !reset
        """)
    config = load(tmp_path, ("a.yaml", "b.yaml"))
    web = services(config)["web"]
    assert "ports" not in web
    assert web["environment"] == {"C": "3"}
    assert web["command"] is None
    assert list(services(config)) == ["web"]


def test_later_file_merges_over_earlier(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "services:\n  web:\n    image: a\n    ports: ['8080:80']\n")
    write(tmp_path / "b.yaml", "services:\n  web:\n    image: b\n    ports: ['8080:80', '9090:90']\n")
    web = services(load(tmp_path, ("a.yaml", "b.yaml")))["web"]
    assert web["image"] == "b"
    assert [port["published"] for port in web["ports"]] == ["8080", "9090"]


def test_compose_file_variable_with_path_separator(tmp_path: Path) -> None:
    write(tmp_path / "one.yaml", "services:\n  a:\n    image: a\n")
    write(tmp_path / "two.yaml", "services:\n  b:\n    image: b\n")
    config = load(tmp_path, env={"COMPOSE_FILE": "one.yaml|two.yaml", "COMPOSE_PATH_SEPARATOR": "|"})
    assert sorted(services(config)) == ["a", "b"]


def test_compose_file_read_from_dotenv(tmp_path: Path) -> None:
    write(tmp_path / "other.yaml", "services:\n  o:\n    image: o\n")
    write(tmp_path / "compose.yaml", "services:\n  c:\n    image: c\n")
    write(tmp_path / ".env", "COMPOSE_FILE=other.yaml\n")
    assert list(services(load(tmp_path))) == ["o"]


@pytest.mark.parametrize(
    ("cli_name", "env", "expected"),
    [
        ("cli", {"COMPOSE_PROJECT_NAME": "fromenv"}, "cli"),
        (None, {"COMPOSE_PROJECT_NAME": "fromenv"}, "fromenv"),
        (None, {}, "declared"),
    ],
)
def test_project_name_precedence(tmp_path: Path, cli_name: str | None, env: dict[str, str], expected: str) -> None:
    write(tmp_path / "compose.yaml", "name: declared\nservices:\n  web:\n    image: nginx\n")
    config = load(tmp_path, env=env, project_name=cli_name)
    assert config.project_name == expected
    assert config.tree["name"] == expected


def test_project_name_from_folder(tmp_path: Path) -> None:
    project = tmp_path / "_Web-App_1"
    write(project / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    config = load(project)
    assert config.project_name == "web-app_1"
    assert config.tree["networks"]["default"]["name"] == "web-app_1_default"


def test_name_attribute_interpolated_and_normalised(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "name: My${SUFFIX}\nservices:\n  web:\n    image: nginx\n")
    assert load(tmp_path, env={"SUFFIX": "_App"}).project_name == "my_app"


def test_invalid_project_name_from_cli(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    with pytest.raises(SpecValidationError, match='invalid project name "Bad Name"'):
        load(tmp_path, project_name="Bad Name")


def test_project_name_is_available_to_interpolation(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "name: proj\nservices:\n  web:\n    image: ${COMPOSE_PROJECT_NAME}-img\n")
    assert services(load(tmp_path))["web"]["image"] == "proj-img"


# --- environment -------------------------------------------------------------------


def test_dotenv_sets_variables_but_process_env_wins(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: ${IMAGE}:${TAG}\n")
    write(tmp_path / ".env", "IMAGE=fromdotenv\nTAG=1.0\n")
    assert services(load(tmp_path))["web"]["image"] == "fromdotenv:1.0"
    assert services(load(tmp_path, env={"IMAGE": "fromprocess"}))["web"]["image"] == "fromprocess:1.0"


def test_env_file_option_replaces_dotenv(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: ${IMAGE:-unset}\n")
    write(tmp_path / ".env", "IMAGE=fromdotenv\n")
    write(tmp_path / "custom.env", "IMAGE=fromcustom\n")
    assert services(load(tmp_path, env_files=("custom.env",)))["web"]["image"] == "fromcustom"


def test_env_file_option_missing_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    with pytest.raises(EnvFileError, match="couldn't find env file"):
        load(tmp_path, env_files=("missing.env",))


def test_disable_env_file(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: ${IMAGE:-default}\n")
    write(tmp_path / ".env", "IMAGE=fromdotenv\n")
    config = load(tmp_path, env={"COMPOSE_DISABLE_ENV_FILE": "true"})
    assert services(config)["web"]["image"] == "default"


def test_service_env_file_short_and_long_forms(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        services:
          web:
            image: nginx
            env_file:
              - base.env
              - path: optional.env
                required: false
            environment:
              FROM_YAML: yes-yaml
              OVERRIDDEN: yaml
              PASSED:
        """)
    write(tmp_path / "base.env", "FROM_FILE=file\nOVERRIDDEN=file\n")
    web = services(load(tmp_path, env={"PASSED": "process"}))["web"]
    assert web["environment"] == {"FROM_FILE": "file", "OVERRIDDEN": "yaml", "FROM_YAML": "yes-yaml",
                                  "PASSED": "process"}
    assert "env_file" not in web


def test_service_env_file_required_and_missing(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n    env_file: gone.env\n")
    with pytest.raises(EnvFileError, match="not found") as info:
        load(tmp_path)
    assert "gone.env" in str(info.value)


# --- profiles and selection ----------------------------------------------------------

PROFILED = """\
    services:
      web:
        image: nginx
      debug:
        image: busybox
        profiles: [debug]
      tools:
        image: alpine
        profiles: [tools, debug]
    """


@pytest.mark.parametrize(
    ("profiles", "env", "expected"),
    [
        ((), {}, ["web"]),
        (("debug",), {}, ["web", "debug", "tools"]),
        (("tools",), {}, ["web", "tools"]),
        ((), {"COMPOSE_PROFILES": "tools"}, ["web", "tools"]),
        ((), {"COMPOSE_PROFILES": "tools, debug"}, ["web", "debug", "tools"]),
        (("tools",), {"COMPOSE_PROFILES": "debug"}, ["web", "tools"]),
        (("*",), {}, ["web", "debug", "tools"]),
    ],
)
def test_profiles(tmp_path: Path, profiles: tuple[str, ...], env: dict[str, str], expected: list[str]) -> None:
    write(tmp_path / "compose.yaml", PROFILED)
    config = load(tmp_path, env=env, profiles=profiles)
    assert list(services(config)) == expected
    assert sorted(config.disabled) == sorted({"web", "debug", "tools"} - set(expected))


def test_named_service_enables_its_profile(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", PROFILED)
    assert list(services(load(tmp_path, services=("debug",)))) == ["debug"]


def test_service_selection_keeps_dependencies(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        services:
          web:
            image: nginx
            depends_on: [api]
          api:
            image: api
            depends_on: [db]
            networks: [back]
          db:
            image: postgres
            networks: [back]
          other:
            image: other
            networks: [side]
        networks:
          back: {}
          side: {}
        """)
    config = load(tmp_path, services=("web",))
    assert list(services(config)) == ["web", "api", "db"]
    assert sorted(config.tree["networks"]) == ["back", "default"]


def test_unknown_selected_service(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    with pytest.raises(SpecValidationError, match="no such service: nope"):
        load(tmp_path, services=("nope",))


def test_depends_on_a_disabled_service(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        services:
          web:
            image: nginx
            depends_on:
              opt: {condition: service_started, required: false}
          opt:
            image: x
            profiles: [extra]
        """)
    assert list(services(load(tmp_path))) == ["web"]
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx\n    depends_on: [opt]\n  opt:\n    image: x\n    profiles: [extra]\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecValidationError, match='depends on undefined service "opt"'):
        load(tmp_path)


# --- defaults and unused resources ---------------------------------------------------


def test_default_network_added_and_unused_resources_dropped(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        name: proj
        services:
          web:
            image: nginx
            volumes: [data:/data, ./html:/html]
        networks:
          unused: {}
        volumes:
          data: {}
          spare: {}
        secrets:
          never:
            file: ./s.txt
        """)
    config = load(tmp_path)
    tree = config.tree
    assert tree["networks"] == {"default": {"name": "proj_default"}}
    assert tree["volumes"] == {"data": {"name": "proj_data"}}
    assert "secrets" not in tree
    web = tree["services"]["web"]
    assert web["networks"] == {"default": None}
    assert web["volumes"][1]["source"] == str(tmp_path / "html")


def test_no_default_network_with_network_mode(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n    network_mode: host\n")
    tree = load(tmp_path).tree
    assert "networks" not in tree
    assert "networks" not in tree["services"]["web"]


def test_external_resource_keeps_its_name(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        name: proj
        services:
          web:
            image: nginx
            networks: [outside]
        networks:
          outside:
            external: true
        """)
    assert load(tmp_path).tree["networks"] == {"outside": {"name": "outside", "external": True}}


# --- include -------------------------------------------------------------------------


def test_include_with_project_directory_and_env_file(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        include:
          - path: lib/compose.yaml
            project_directory: lib
            env_file: lib/inc.env
        services:
          web:
            image: nginx
            depends_on: [helper]
        """)
    write(tmp_path / "lib" / "compose.yaml", """\
        services:
          helper:
            image: ${HELPER_IMAGE}
            build: .
            volumes: [./data:/data]
        """)
    write(tmp_path / "lib" / "inc.env", "HELPER_IMAGE=helper:1\n")
    helper = services(load(tmp_path))["helper"]
    assert helper["image"] == "helper:1"
    assert helper["build"]["context"] == str(tmp_path / "lib")
    assert helper["volumes"][0]["source"] == str(tmp_path / "lib" / "data")


def test_include_reads_the_included_folder_dotenv(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "include: [sub/compose.yaml]\nservices:\n  web:\n    image: nginx\n")
    write(tmp_path / "sub" / "compose.yaml", "services:\n  sub:\n    image: ${SUB_IMAGE}\n")
    write(tmp_path / "sub" / ".env", "SUB_IMAGE=from-sub-env\n")
    assert services(load(tmp_path))["sub"]["image"] == "from-sub-env"


def test_include_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "include: [a/compose.yaml]\nservices:\n  web:\n    image: nginx\n")
    write(tmp_path / "a" / "compose.yaml", "include: [../b/compose.yaml]\nservices:\n  a:\n    image: a\n")
    write(tmp_path / "b" / "compose.yaml", "include: [../a/compose.yaml]\nservices:\n  b:\n    image: b\n")
    with pytest.raises(IncludeError, match="include cycle detected") as info:
        load(tmp_path)
    message = str(info.value)
    chain = [str(tmp_path / "compose.yaml"), str(tmp_path / "a" / "compose.yaml"),
             str(tmp_path / "b" / "compose.yaml"), str(tmp_path / "a" / "compose.yaml")]
    assert " -> include ".join(chain) in message
    assert info.value.path == "include[0]"


def test_include_conflicting_resource(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "include: [other.yaml]\nservices:\n  web:\n    image: mine\n")
    write(tmp_path / "other.yaml", "services:\n  web:\n    image: theirs\n")
    with pytest.raises(IncludeError, match=r"services\.web conflicts with imported resource") as info:
        load(tmp_path)
    assert info.value.path == "services.web"


def test_include_missing_file(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "include: [missing.yaml]\nservices:\n  web:\n    image: nginx\n")
    with pytest.raises(IncludeError, match="no such file or directory") as info:
        load(tmp_path)
    assert info.value.location is not None
    assert info.value.location.line == 1


# --- extends -------------------------------------------------------------------------


def test_extends_in_the_same_file(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        services:
          base:
            image: base
            environment: {A: "1"}
            command: ["base"]
          web:
            extends: base
            environment: {B: "2"}
            command: ["web"]
        """)
    web = services(load(tmp_path))["web"]
    assert web["image"] == "base"
    assert web["environment"] == {"A": "1", "B": "2"}
    assert web["command"] == ["web"]
    assert "extends" not in web


def test_extends_another_file_makes_paths_absolute(tmp_path: Path) -> None:
    write(tmp_path / "common" / "base.yaml", """\
        services:
          app:
            build: ./app
            volumes: [./conf:/conf]
            env_file: app.env
        """)
    write(tmp_path / "common" / "app.env", "FROM_BASE_ENV=1\n")
    write(tmp_path / "compose.yaml", """\
        services:
          web:
            extends:
              file: common/base.yaml
              service: app
            image: web
        """)
    web = services(load(tmp_path))["web"]
    assert web["build"]["context"] == str(tmp_path / "common" / "app")
    assert web["volumes"][0]["source"] == str(tmp_path / "common" / "conf")
    assert web["environment"] == {"FROM_BASE_ENV": "1"}


def test_extends_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", """\
        services:
          a: {extends: b, image: x}
          b: {extends: c}
          c: {extends: a}
        """)
    with pytest.raises(ExtendsError) as info:
        load(tmp_path)
    assert "circular reference with extends: a (compose.yaml) -> b (compose.yaml) -> c (compose.yaml) -> " \
           "a (compose.yaml)" in str(info.value)
    assert info.value.path == "services.a.extends"


def test_extends_unknown_service(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: x\n    extends: ghost\n")
    with pytest.raises(ExtendsError, match="service 'ghost' not found"):
        load(tmp_path)


# --- consistency ---------------------------------------------------------------------

CONSISTENCY_ERRORS: list[tuple[str, str, str]] = [
    ("services:\n  web:\n    image: x\n    networks: [ghost]\n",
     "refers to undefined network ghost", "services.web.networks.ghost"),
    ("services:\n  web:\n    image: x\n    volumes: [ghost:/data]\n",
     "refers to undefined volume ghost", "services.web.volumes[0]"),
    ("services:\n  web:\n    image: x\n    secrets: [ghost]\n",
     "refers to undefined secret ghost", "services.web.secrets[0]"),
    ("services:\n  web:\n    image: x\n    configs: [ghost]\n",
     "refers to undefined config ghost", "services.web.configs[0]"),
    ("services:\n  web:\n    image: x\n    depends_on: [ghost]\n",
     'depends on undefined service "ghost"', "services.web.depends_on.ghost"),
    ("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n"
     "  c:\n    image: x\n    depends_on: [a]\n",
     "dependency cycle detected: a -> b -> c -> a", "services.c.depends_on.a"),
    ("services:\n  web:\n    image: x\n    network_mode: host\n    networks: [n]\nnetworks:\n  n: {}\n",
     "mutually exclusive `network_mode` and `networks`", "services.web.network_mode"),
    ("services:\n  a:\n    image: x\n    container_name: same\n  b:\n    image: x\n    container_name: same\n",
     'container name "same" is already in use by service a', "services.b.container_name"),
    ("services:\n  web:\n    image: x\n    scale: 2\n    container_name: one\n",
     "can't set container_name and scale as container name must be unique", "services.web.container_name"),
    ("services:\n  web:\n    image: x\n    deploy: {replicas: 3}\n    container_name: one\n",
     "can't set container_name and deploy.replicas", "services.web.container_name"),
    ("services:\n  web:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n",
     "can't set distinct values on 'scale' and 'deploy.replicas'", "services.web.scale"),
    # compose-go's checkConsistency: a service key and its deploy.resources twin must agree (an
    # absent twin counts as 0 once its limits/reservations section exists), as v2 2.40 refuses.
    ("services:\n  web:\n    image: x\n    mem_limit: 100m\n    deploy: {resources: {limits: {memory: 200m}}}\n",
     "can't set distinct values on 'mem_limit' and 'deploy.resources.limits.memory'", "services.web.mem_limit"),
    ("services:\n  web:\n    image: x\n    mem_limit: 100m\n    deploy: {resources: {limits: {cpus: '1'}}}\n",
     "can't set distinct values on 'mem_limit' and 'deploy.resources.limits.memory'", "services.web.mem_limit"),
    ("services:\n  web:\n    image: x\n    cpus: 0.5\n    deploy: {resources: {limits: {cpus: '0.25'}}}\n",
     "can't set distinct values on 'cpus' and 'deploy.resources.limits.cpus'", "services.web.cpus"),
    ("services:\n  web:\n    image: x\n    pids_limit: 5\n    deploy: {resources: {limits: {pids: 6}}}\n",
     "can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids'", "services.web.pids_limit"),
    ("services:\n  web:\n    image: x\n    mem_reservation: 1m\n"
     "    deploy: {resources: {reservations: {memory: 2m}}}\n",
     "can't set distinct values on 'mem_reservation' and 'deploy.resources.reservations.memory'",
     "services.web.mem_reservation"),
    ("services:\n  web:\n    environment: [A=1]\n",
     "has neither an image nor a build context specified", "services.web"),
    ("services:\n  web:\n    image: x\n    network_mode: service:ghost\n",
     # network_mode: service:x implies a dependency on x
     'depends on undefined service "ghost"', "services.web.depends_on.ghost"),
    ("services:\n  web:\n    image: x\n    tmpfs: [/t]\n    volumes: [/t]\n",
     "target /t already mounted as services.web.tmpfs[0]", "services.web.volumes[0]"),
    ("services:\n  web:\n    image: x\n    healthcheck:\n      test: [WHAT, x]\n",
     'healthcheck.test must start either by "CMD"', "services.web.healthcheck.test"),
]


@pytest.mark.parametrize(("text", "message", "path"), CONSISTENCY_ERRORS)
def test_consistency_errors(tmp_path: Path, text: str, message: str, path: str) -> None:
    write(tmp_path / "compose.yaml", text)
    with pytest.raises(SpecValidationError) as info:
        load(tmp_path)
    assert message in info.value.message
    assert info.value.path == path
    assert info.value.location is not None
    assert info.value.location.file == str(tmp_path / "compose.yaml")
    assert info.value.location.line is not None


def test_no_consistency_accepts_undefined_references(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: x\n    networks: [ghost]\n")
    config = load(tmp_path, consistency=False)
    assert services(config)["web"]["networks"] == {"ghost": None}


OBJECT_ERRORS: list[tuple[str, str]] = [
    ("volumes:\n  v:\n    external: true\n    driver: local\n", 'conflicting parameters "external" and "driver"'),
    ("networks:\n  n:\n    external: true\n    internal: true\n", 'conflicting parameters "external" and "internal"'),
    ("secrets:\n  s:\n    file: ./a\n    environment: A\n", "file|environment attributes are mutually exclusive"),
    ("configs:\n  c:\n    labels: {a: b}\n", "one of file|environment|content must be set"),
]


@pytest.mark.parametrize(("resources", "message"), OBJECT_ERRORS)
def test_object_rules_apply_even_without_consistency(tmp_path: Path, resources: str, message: str) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: x\n" + resources)
    with pytest.raises(SpecValidationError, match=message.replace("|", r"\|")):
        load(tmp_path, consistency=False)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "- just\n- a list\n")
    with pytest.raises(SpecError, match="Top-level object must be a mapping"):
        load(tmp_path)


def test_version_is_dropped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "version: '3.8'\nservices:\n  web:\n    image: x\n")
    config = load(tmp_path)
    assert "version" not in config.tree
    assert any("`version` is obsolete" in warning for warning in config.warnings)
