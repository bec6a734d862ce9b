"""The typed model: real projects bound from the loader's tree, immutability, helpers, schema coverage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from composer.errors import SpecError, SpecValidationError
from composer.spec import LoadOptions, Project, ProjectOptions, ServiceConfig, load_config, load_project
from composer.spec.loader import LoadedConfig
from composer.spec.models import Duration, FrozenDict, bind_project

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "composer" / "spec" / "data" / "compose-spec.json"
CASES = REPO.parent / "shared" / "conformance" / "cases"


def load(tmp_path: Path, text: str, *, env: dict[str, str] | None = None, **options: Any) -> Project:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    project = ProjectOptions(files=("compose.yaml",), environment=env or {}, working_directory=str(tmp_path),
                             **options)
    return bind_project(load_config(project))


# --- binding real projects ------------------------------------------------------------------


def test_ports_are_long_syntax(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web:
            image: nginx
            ports: ["8080:80", "127.0.0.1:9000-9001:9000-9001/udp", 443, {target: 53, published: 5353, protocol: udp}]
    """)
    ports = project.service("web").ports
    assert [(p.host_ip, p.published, p.target, p.protocol) for p in ports] == [
        (None, "8080", 80, "tcp"),
        ("127.0.0.1", "9000", 9000, "udp"),
        ("127.0.0.1", "9001", 9001, "udp"),
        (None, None, 443, "tcp"),
        (None, "5353", 53, "udp"),
    ]
    assert all(p.mode == "ingress" for p in ports)
    assert ports[0].published_range == (8080, 8080)
    assert ports[3].published_range is None


def test_volumes_with_options(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web:
            image: nginx
            volumes:
              - ./data:/data:ro
              - cache:/cache:nocopy
              - type: tmpfs
                target: /tmp
                tmpfs: {size: 1m, mode: "1777"}
              - /anonymous
        volumes:
          cache: {driver_opts: {size: 10}}
    """)
    bind, named, tmpfs, anonymous = project.service("web").volumes
    assert (bind.type, bind.source, bind.target, bind.read_only) == ("bind", str(tmp_path / "data"), "/data", True)
    assert bind.bind is not None
    assert bind.bind.create_host_path is True
    assert (named.type, named.source) == ("volume", "cache")
    assert named.volume is not None
    assert named.volume.nocopy is True
    assert tmpfs.tmpfs is not None
    assert (tmpfs.tmpfs.size, tmpfs.tmpfs.mode) == (1024 * 1024, 0o1777)
    assert (anonymous.type, anonymous.source, anonymous.target) == ("volume", None, "/anonymous")
    volume = project.volumes["cache"]
    assert volume.name is not None
    assert volume.name.endswith("_cache")
    assert volume.driver_opts == {"size": "10"}


def test_depends_on_explicit_and_implied(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web:
            image: nginx
            depends_on:
              db: {condition: service_healthy}
              cache: {condition: service_started, required: false}
            links: [logs]
          db: {image: postgres}
          cache: {image: redis}
          logs: {image: busybox}
          job:
            image: busybox
            depends_on: [web]
    """)
    depends_on = project.service("web").depends_on
    assert list(depends_on) == ["db", "cache", "logs"]
    assert depends_on["db"].condition == "service_healthy"
    assert depends_on["cache"].required is False
    assert depends_on["logs"].restart is True
    assert project.service("job").depends_on["web"].condition == "service_started"
    assert project.dependencies("web") == ("db", "cache", "logs")
    assert project.dependencies("job") == ("web",)
    assert project.dependencies("job", recursive=True) == ("web", "db", "cache", "logs")
    assert project.dependents("web") == ("job",)


def test_build(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          app:
            build:
              context: ./src
              args: [VERSION=1, FROM_ENV]
              target: prod
              cache_from: [app:cache]
              shm_size: 64m
              secrets: [npmrc]
          plain:
            build: .
        secrets:
          npmrc: {file: ./npmrc}
    """, env={"FROM_ENV": "yes"})
    build = project.service("app").build
    assert build is not None
    assert build.context == str(tmp_path / "src")
    assert build.dockerfile == "Dockerfile"
    assert build.args == {"VERSION": "1", "FROM_ENV": "yes"}
    assert (build.target, build.cache_from, build.shm_size) == ("prod", ("app:cache",), 64 * 1024 * 1024)
    assert [s.source for s in build.secrets] == ["npmrc"]
    plain = project.service("plain")
    assert plain.build is not None
    assert plain.build.context == str(tmp_path)
    assert plain.image is None
    assert project.service("app").command is None


def test_deploy(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web:
            image: nginx
            deploy:
              replicas: 3
              labels: [tier=front]
              resources:
                limits: {cpus: "0.5", memory: 512m, pids: 100}
                reservations:
                  devices: [{capabilities: [gpu], driver: nvidia}]
              restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
              update_config: {parallelism: 2, delay: 10s, order: start-first}
              placement: {constraints: ["node.role == manager"]}
    """)
    web = project.service("web")
    deploy = web.deploy
    assert deploy is not None
    assert deploy.replicas == 3
    assert web.replicas == 3
    assert deploy.labels == {"tier": "front"}
    limits = deploy.resources.limits
    assert limits is not None
    assert (limits.cpus, limits.memory, limits.pids) == (0.5, 512 * 1024 * 1024, 100)
    reservations = deploy.resources.reservations
    assert reservations is not None
    assert reservations.devices[0].capabilities == ("gpu",)
    assert reservations.devices[0].count == -1
    policy = deploy.restart_policy
    assert policy is not None
    assert policy.delay == Duration.parse("5s")
    assert policy.window is not None
    assert policy.window.seconds == 120
    assert deploy.update_config is not None
    assert deploy.update_config.order == "start-first"
    assert deploy.placement.constraints == ("node.role == manager",)


def test_healthcheck_and_durations(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          db:
            image: postgres
            healthcheck:
              test: pg_isready -U postgres
              interval: 1m30s
              timeout: 500ms
              retries: 5
            stop_grace_period: 20s
          nocheck:
            image: busybox
            healthcheck: {disable: true}
    """)
    check = project.service("db").healthcheck
    assert check is not None
    assert check.test == ("CMD-SHELL", "pg_isready -U postgres")
    assert check.interval is not None
    assert check.interval.seconds == 90
    assert str(check.interval) == "1m30s"
    assert check.timeout is not None
    assert str(check.timeout) == "500ms"
    assert (check.retries, check.start_period) == (5, None)
    grace = project.service("db").stop_grace_period
    assert grace is not None
    assert grace.seconds == 20
    nocheck = project.service("nocheck").healthcheck
    assert nocheck is not None
    assert nocheck.disable is True
    assert nocheck.test is None


def test_secrets_and_configs(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web:
            image: nginx
            secrets: [token, {source: cert, target: /etc/cert.pem, mode: 0400}]
            configs: [{source: site, target: /etc/nginx/conf.d/site.conf}]
        secrets:
          token: {file: ./token.txt}
          cert: {environment: CERT}
        configs:
          site: {content: "server {}"}
    """)
    token, cert = project.service("web").secrets
    assert (token.source, token.target, token.mode) == ("token", "/run/secrets/token", None)
    assert (cert.target, cert.mode, cert.mode_bits) == ("/etc/cert.pem", "0400", 0o400)
    assert project.secrets["token"].file == str(tmp_path / "token.txt")
    assert project.secrets["cert"].environment == "CERT"
    assert project.configs["site"].content == "server {}"
    assert project.service("web").configs[0].target == "/etc/nginx/conf.d/site.conf"


def test_networks(tmp_path: Path) -> None:
    project = load(tmp_path, """
        name: demo
        services:
          web:
            image: nginx
            networks:
              front: {aliases: [www], ipv4_address: 172.28.0.10, priority: 5}
              back:
          solo:
            image: busybox
          host:
            image: busybox
            network_mode: host
        networks:
          front:
            ipam: {config: [{subnet: 172.28.0.0/16}]}
          back: {internal: true}
          outside: {external: true}
    """)
    web = project.service("web")
    front = web.networks["front"]
    assert front is not None
    assert (front.aliases, front.ipv4_address, front.priority) == (("www",), "172.28.0.10", 5)
    assert web.networks["back"] is None
    assert list(project.service("solo").networks) == ["default"]
    assert project.service("host").networks == {}
    assert project.service("host").network_mode == "host"
    assert project.networks["front"].name == "demo_front"
    assert project.networks["front"].ipam.config[0].subnet == "172.28.0.0/16"
    assert project.networks["back"].internal is True
    assert "outside" not in project.networks  # unused resources are dropped by the loader
    assert project.networks["default"].name == "demo_default"


def test_environment_command_and_scalars(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("FROM_FILE=1\nOVERRIDDEN=file\n", encoding="utf-8")
    project = load(tmp_path, """
        services:
          app:
            image: busybox
            command: sh -c 'echo "$$HOME"'
            entrypoint: []
            env_file: app.env
            environment: {OVERRIDDEN: yaml, SET: "${SET}", UNSET: null, NUMBER: 1}
            mem_limit: 1g
            init: true
            ulimits: {nofile: 1024, nproc: {soft: 10, hard: 20}}
            labels: [a=b]
    """, env={"SET": "value"})
    app = project.service("app")
    assert app.command == ("sh", "-c", 'echo "$HOME"')
    assert app.entrypoint == ()
    assert app.environment == {"FROM_FILE": "1", "OVERRIDDEN": "yaml", "SET": "value", "UNSET": None,
                               "NUMBER": "1"}
    assert app.env_file == ()
    assert app.mem_limit == 1024**3
    assert (app.init, app.attach, app.privileged) == (True, None, False)
    assert (app.ulimits["nofile"].soft, app.ulimits["nofile"].hard) == (1024, 1024)
    assert (app.ulimits["nproc"].soft, app.ulimits["nproc"].hard) == (10, 20)
    assert app.labels == {"a": "b"}


def test_extensions_at_every_level(tmp_path: Path) -> None:
    project = load(tmp_path, """
        x-project: {owner: team, tags: [a, b]}
        services:
          web:
            image: nginx
            x-service: 1
            depends_on:
              db: {condition: service_started, x-why: cache warm-up}
            healthcheck: {test: [CMD, "true"], x-check: true}
          db: {image: postgres}
        networks:
          default: {x-net: true}
    """)
    assert project.extensions == {"x-project": {"owner": "team", "tags": ("a", "b")}}
    assert isinstance(project.extensions["x-project"], FrozenDict)
    web = project.service("web")
    assert web.extensions == {"x-service": 1}
    assert web.depends_on["db"].extensions == {"x-why": "cache warm-up"}
    assert web.healthcheck is not None
    assert web.healthcheck.extensions == {"x-check": True}
    assert project.networks["default"].extensions == {"x-net": True}


def test_project_fields(tmp_path: Path) -> None:
    project = load(tmp_path, """
        name: shop
        services:
          web: {image: nginx}
          debug: {image: busybox, profiles: [debug]}
    """, env={"A": "1"})
    assert project.name == "shop"
    assert project.working_dir == str(tmp_path)
    assert project.files == (str(tmp_path / "compose.yaml"),)
    assert project.service_names == ("web",)
    assert list(project.disabled_services) == ["debug"]
    assert project.disabled_services["debug"].profiles == ("debug",)
    assert project.environment["A"] == "1"
    assert project.profiles == ()
    assert project.service("web").name == "web"
    with_debug = load(tmp_path, "services: {web: {image: nginx}, debug: {image: busybox, profiles: [debug]}}",
                      profiles=("debug",))
    assert with_debug.service_names == ("web", "debug")
    assert with_debug.profiles == ("debug",)


# --- immutability ---------------------------------------------------------------------------


def test_models_are_immutable(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web:
            image: nginx
            ports: ["80:80"]
            environment: {A: b}
            x-ext: {list: [1]}
    """)
    web = project.service("web")
    with pytest.raises(ValueError, match="frozen"):
        web.image = "httpd"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        project.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        web.environment["A"] = "c"  # type: ignore[index]
    with pytest.raises(TypeError):
        project.services["new"] = web  # type: ignore[index]
    with pytest.raises(AttributeError):
        web.ports.append(web.ports[0])  # type: ignore[attr-defined]
    assert isinstance(web.ports, tuple)
    assert isinstance(web.extensions["x-ext"]["list"], tuple)
    assert isinstance(project.services, FrozenDict)
    assert hash(project) == hash(load(tmp_path, (tmp_path / "compose.yaml").read_text(encoding="utf-8")))


def test_round_trip_through_json(tmp_path: Path) -> None:
    project = load(tmp_path, """
        x-top: {a: [1, {b: 2}]}
        services:
          web:
            image: nginx
            healthcheck: {test: [CMD, "true"], interval: 5s}
            ports: ["80:80"]
    """)
    data = json.loads(project.model_dump_json())
    assert data["services"]["web"]["healthcheck"]["interval"] == "5s"
    assert Project.model_validate(data) == project
    assert Project.model_validate_json(project.model_dump_json()) == project


# --- helpers ----------------------------------------------------------------------------------


def test_with_selected_services_keeps_dependencies(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web: {image: nginx, depends_on: [api]}
          api: {image: app, depends_on: [db]}
          db: {image: postgres}
          worker: {image: app}
    """)
    selected = project.with_selected_services(["web"])
    assert selected.service_names == ("web", "api", "db")
    assert list(selected.disabled_services) == ["worker"]
    assert project.service_names == ("web", "api", "db", "worker")  # the original is unchanged
    alone = project.with_selected_services(["web"], include_dependencies=False)
    assert alone.service_names == ("web",)
    assert project.with_selected_services([]) is project
    with pytest.raises(SpecValidationError, match="no such service: nope"):
        project.with_selected_services(["nope"])


def test_service_lookup_errors(tmp_path: Path) -> None:
    project = load(tmp_path, """
        services:
          web: {image: nginx}
          debug: {image: busybox, profiles: [debug]}
    """)
    assert isinstance(project.service("web"), ServiceConfig)
    with pytest.raises(SpecValidationError, match="no such service: nope"):
        project.service("nope")
    with pytest.raises(SpecValidationError, match="disabled") as info:
        project.service("debug")
    assert info.value.hint is not None
    assert "--profile" in info.value.hint
    with pytest.raises(SpecValidationError):
        project.dependencies("nope")


# --- errors ------------------------------------------------------------------------------------


def _loaded(service: dict[str, Any]) -> LoadedConfig:
    return LoadedConfig({"name": "p", "services": {"web": service}}, "p", "/work", [], {}, [], {})


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ({"ports": [{"target": "abc"}]}, "services.web.ports[0].target"),
        ({"ulimits": {"nofile": {"soft": "x", "hard": 1}}}, "services.web.ulimits.nofile.soft"),
        ({"unknown_attribute": 1}, "services.web.unknown_attribute"),
        ({"volumes": [{"source": "a"}]}, "services.web.volumes[0].type"),
        ({"networks": {"front": {"priority": "high"}}}, "services.web.networks.front.priority"),
        ({"stop_grace_period": "soon"}, "services.web.stop_grace_period"),
        ({"mem_limit": "1q"}, "services.web.mem_limit"),
        ({"depends_on": {"db": {"condition": "whenever"}}}, "services.web.depends_on.db.condition"),
    ],
)
def test_validation_errors_name_the_model_path(service: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecValidationError) as info:
        bind_project(_loaded(service))
    assert info.value.path == path
    assert "pydantic" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_disabled_service_errors_point_at_services() -> None:
    loaded = LoadedConfig({"name": "p", "services": {}}, "p", "/work", [], {}, [], {"off": {"cpus": "many"}})
    with pytest.raises(SpecValidationError) as info:
        bind_project(loaded)
    assert info.value.path == "services.off.cpus"


# --- public entry point --------------------------------------------------------------------------


def test_load_project_entry_point(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: nginx, depends_on: [db]}\n  db: {image: pg}\n"
                                           "  other: {image: x}\n", encoding="utf-8")
    project = load_project(files=["compose.yaml"], working_directory=str(tmp_path), environment={})
    assert project.service_names == ("web", "db", "other")
    options = ProjectOptions(working_directory=str(tmp_path), environment={})
    selected = load_project(options, LoadOptions(services=("web",)))
    assert selected.service_names == ("web", "db")
    assert load_project(options, services=["db"]).service_names == ("db",)
    with pytest.raises(TypeError, match="bogus"):
        load_project(options, bogus=1)


def test_config_command_does_not_import_pydantic() -> None:
    code = "import sys, composer.cli.commands, composer.spec; assert 'pydantic' not in sys.modules, 'pydantic'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --- schema coverage -------------------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return data


def test_every_service_attribute_of_the_schema_is_a_field() -> None:
    attributes = set(_schema()["definitions"]["service"]["properties"])
    missing = sorted(attributes - set(ServiceConfig.model_fields))
    assert not missing, f"ServiceConfig lacks {missing}"


@pytest.mark.parametrize(
    ("definition", "model"),
    [
        ("network", "NetworkConfig"),
        ("volume", "VolumeConfig"),
        ("secret", "SecretConfig"),
        ("config", "ConfigObjConfig"),
        ("model", "ModelConfig"),
        ("healthcheck", "Healthcheck"),
        ("service_hook", "ServiceHook"),
    ],
)
def test_every_resource_attribute_of_the_schema_is_a_field(definition: str, model: str) -> None:
    from composer.spec import models

    cls: type[BaseModel] = getattr(models, model)
    attributes = set(_schema()["definitions"][definition]["properties"])
    assert attributes <= set(cls.model_fields), sorted(attributes - set(cls.model_fields))


def test_every_top_level_section_is_a_project_field() -> None:
    sections = set(_schema()["properties"]) - {"version", "include"}
    assert sections <= set(Project.model_fields)


# --- the conformance corpus --------------------------------------------------------------------------


def _accepted_cases() -> list[Path]:
    cases = []
    for case_file in sorted(CASES.glob("*/*/case.json")):
        meta = json.loads(case_file.read_text(encoding="utf-8"))
        if meta["expected"]["rc"] == 0 and not meta["expected"]["timed_out"]:
            cases.append(case_file.parent)
    return cases


def _case_options(case_dir: Path, home: str) -> tuple[ProjectOptions, LoadOptions]:
    """The options run-conformance gives ``composer config``, parsed by the CLI's own parser."""
    from composer.cli.context import project_options
    from composer.cli.parser import build_parser

    meta = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home}
    for key, value in meta.get("env", {}).items():
        environment[key] = value.replace("@CASE_DIR@", str(case_dir)).replace("@HOME@", home)
    argv = [arg for name in meta["files"] for arg in ("-f", name)]
    args = build_parser().parse_args([*argv, *meta.get("global_args", []), "config"])
    options = project_options(args)._replace(environment=environment,
                                             working_directory=str(case_dir / meta["workdir"]))
    return options, LoadOptions(services=tuple(args.services))


def test_every_accepted_conformance_case_binds() -> None:
    # The corpus lies beside the repository wherever the tests run (../shared/conformance).
    assert CASES.is_dir(), f"conformance corpus not found at {CASES}"
    cases = _accepted_cases()
    assert len(cases) > 600
    failures = []
    start = time.monotonic()
    for case_dir in cases:
        with tempfile.TemporaryDirectory(prefix="conf-home-") as home:
            options, load_options = _case_options(case_dir, home)
            try:
                project = bind_project(load_config(options, load_options))
            except SpecError as exc:
                failures.append(f"{case_dir.relative_to(CASES)}: {exc}")
                continue
            assert isinstance(project, Project)
    assert not failures, "\n".join(failures[:20])
    sys.stdout.write(f"\n{len(cases)} cases bound in {time.monotonic() - start:.1f} s\n")  # a figure, never a limit
