"""Secrets from environment and configs from content/environment: what is written, where, how."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest

from composer.contract.backend import InjectedFile, injection_archive
from composer.errors import PlanError
from composer.planner.container_specs import container_spec
from composer.planner.injected_files import injected_files
from composer.spec import load_project
from composer.spec.models import Project

COMPOSE = """
services:
  app:
    image: busybox
    secrets:
      - token
      - source: token
        target: other
        uid: "1000"
        gid: "1001"
        mode: 0400
      - fromfile
    configs:
      - inline
      - source: fromenv
        target: /etc/app/conf.txt
        mode: 0600
      - source: inline
        target: relative.txt
secrets:
  token:
    environment: TOKEN
  fromfile:
    file: ./secret.txt
configs:
  inline:
    content: "inline ${WORD}"
  fromenv:
    environment: CONF
"""


def load(tmp_path: Path, environment: dict[str, str], text: str = COMPOSE) -> Project:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    (tmp_path / "secret.txt").write_text("from a file")
    return load_project(files=[str(tmp_path / "compose.yaml")], environment=environment,
                        working_directory=str(tmp_path), project_name="demo")


def test_each_file_with_its_target_owner_and_mode(tmp_path: Path) -> None:
    project = load(tmp_path, {"TOKEN": "s3cr3t", "CONF": "c", "WORD": "w"})
    assert injected_files(project, project.service("app")) == (
        InjectedFile("/run/secrets/token", b"s3cr3t"),
        InjectedFile("/run/secrets/other", b"s3cr3t", uid=1000, gid=1001, mode=0o400),
        InjectedFile("/inline", b"inline w"),
        InjectedFile("/etc/app/conf.txt", b"c", mode=0o600),
        InjectedFile("/relative.txt", b"inline w"),
    )
    spec = container_spec(project, project.service("app"), 1)
    assert len(spec.injected_files) == 5
    assert [target for _, target in spec.file_mounts()] == ["/run/secrets/fromfile"]  # a file is still bound


def test_a_missing_variable_is_v2s_message(tmp_path: Path) -> None:
    project = load(tmp_path, {"CONF": "c", "WORD": "w"})
    with pytest.raises(PlanError, match=r'^environment variable "TOKEN" required by secret "demo_token" is not set$'):
        injected_files(project, project.service("app"))


def test_a_uid_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    project = load(tmp_path, {"TOKEN": "t"}, """
        services:
          app:
            image: busybox
            secrets: [{source: token, uid: root}]
        secrets:
          token:
            environment: TOKEN
    """)
    with pytest.raises(PlanError, match="uid 'root' must be a number"):
        injected_files(project, project.service("app"))


def test_the_archive_holds_relative_names_modes_and_owners() -> None:
    data = injection_archive([InjectedFile("/run/secrets/a", b"xy", uid=5, gid=6, mode=0o400)])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mode, member.uid, member.gid, member.size) == ("run/secrets/a", 0o400, 5, 6, 2)
        extracted = tar.extractfile(member)
        assert extracted is not None
        assert extracted.read() == b"xy"


def test_a_read_only_service_is_refused_as_v2_refuses_it(tmp_path: Path) -> None:
    project = load(tmp_path, {"TOKEN": "t"}, """
        services:
          app:
            image: busybox
            read_only: true
            secrets: [token]
        secrets:
          token:
            environment: TOKEN
    """)
    with pytest.raises(PlanError, match=r'^cannot create secret "demo_token" in read-only service app: `file` is the '
                                        "sole supported option$"):
        injected_files(project, project.service("app"))
