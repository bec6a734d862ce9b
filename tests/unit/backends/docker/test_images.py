"""BuildSpec -> docker-py build arguments, build-stream events and errors, push messages (no engine)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from composer.backends.docker import images
from composer.errors import ImageBuildError, ImagePushError, UnsupportedFeatureError
from composer.events import Event, EventStatus
from composer.planner.container_specs import build_spec
from composer.spec import load_project


def spec_for(tmp_path: Path, build: str, *, extra: str = "") -> Any:
    (tmp_path / "compose.yaml").write_text(f"services:\n  app:\n{extra}    build:\n{build}")
    project = load_project(files=[str(tmp_path / "compose.yaml")], environment={},
                           working_directory=str(tmp_path), project_name="demo")
    return build_spec("demo", project.services["app"], args={"X": "cli"})


def test_build_kwargs_carry_the_build_section(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, """      context: .
      target: prod
      args: {X: file, Y: "2"}
      cache_from: [cache:1]
      network: host
      extra_hosts: ["db=10.0.0.2", "ip6=::1"]
      shm_size: 64m
      pull: true
      no_cache: true
      platforms: [linux/amd64]
""")
    kwargs = images.build_kwargs(spec)
    assert kwargs["tag"] == "demo-app"
    assert kwargs["buildargs"] == {"X": "cli", "Y": "2"}
    assert kwargs["target"] == "prod"
    assert kwargs["cache_from"] == ["cache:1"]
    assert kwargs["network_mode"] == "host"
    assert kwargs["extra_hosts"] == ["db:10.0.0.2", "ip6:::1"]
    assert kwargs["shmsize"] == 64 * 1024 * 1024
    assert kwargs["pull"] is True
    assert kwargs["nocache"] is True
    assert kwargs["platform"] == "linux/amd64"
    assert kwargs["labels"]["com.docker.compose.service"] == "app"


def test_several_platforms_and_buildkit_only_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFeatureError, match="multi-platform"):
        images.build_kwargs(spec_for(tmp_path, "      context: .\n      platforms: [linux/amd64, linux/arm64]\n"))
    with pytest.raises(UnsupportedFeatureError, match="SSH"):
        images.build_kwargs(spec_for(tmp_path, "      context: .\n      ssh: [default]\n"))


def test_context_honours_dockerignore_and_adds_an_inline_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "kept").write_text("k")
    (tmp_path / "ignored").write_text("i")
    (tmp_path / ".dockerignore").write_text("# comment\nignored\n")
    spec = spec_for(tmp_path, "      context: .\n      dockerfile_inline: FROM scratch\n")
    archive, dockerfile, remote = images.build_context(spec)
    assert archive is not None
    assert dockerfile is not None
    assert remote is None
    with archive, tarfile.open(fileobj=archive) as tar:
        names = tar.getnames()
        member = tar.extractfile(dockerfile)
        assert member is not None
        assert member.read() == b"FROM scratch"
    assert "kept" in names
    assert "ignored" not in names


def test_a_missing_dockerfile_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match='service "app"'):
        images.build_context(spec_for(tmp_path, "      context: .\n"))


class FakeApi:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.tags: list[tuple[str, str, str]] = []
        self.kwargs: dict[str, Any] = {}

    def build(self, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        return iter(self.messages)

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.tags.append((image, repository, tag))

    def push(self, repository: str, **kwargs: Any) -> Any:
        return iter(self.messages)


def test_build_streams_steps_as_events_and_tags_extra_tags(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    spec = spec_for(tmp_path, "      context: .\n      tags: [reg:5000/app:2]\n")
    api = FakeApi([{"stream": "Step 1/2 : FROM scratch\n"}, {"stream": " ---> \n"},
                   {"stream": "Step 2/2 : LABEL a=b\n ---> Running in 1\n"}, {"aux": {"ID": "sha256:abc"}},
                   {"stream": "Successfully built abc\n"}])
    events: list[Event] = []
    assert images.build(api, spec, events.append) == "sha256:abc"
    assert api.tags == [("demo-app", "reg:5000/app", "2")]
    steps = [(e.text, e.current, e.total) for e in events if e.total]
    assert steps == [("Step 1/2 : FROM scratch", 1, 2), ("Step 2/2 : LABEL a=b", 2, 2)]
    assert {e.parent_id for e in events} == {"image:demo-app"}
    assert events[-1].status is EventStatus.DONE


def test_a_build_error_is_one_line_naming_the_service_and_step(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    api = FakeApi([{"stream": "Step 2/3 : RUN exit 3\n"},
                   {"error": "The command '/bin/sh -c exit 3'\nreturned a non-zero code: 3"}])
    with pytest.raises(ImageBuildError) as caught:
        images.build(api, spec_for(tmp_path, "      context: .\n"), lambda event: None)
    assert str(caught.value) == ('service "app" failed to build at Step 2/3 : RUN exit 3: '
                                 "The command '/bin/sh -c exit 3' returned a non-zero code: 3")


def test_push_messages_become_layer_events_and_errors_raise() -> None:
    events: list[Event] = []
    api = FakeApi([{"status": "The push refers to repository [reg/app]"},
                   {"status": "Preparing", "id": "l1", "progressDetail": {}},
                   {"status": "Pushing", "id": "l1", "progressDetail": {"current": 5, "total": 10}},
                   {"status": "Pushed", "id": "l1", "progressDetail": {}},
                   {"status": "latest: digest: sha256:0 size: 1"}])
    images.push(api, "reg/app", events.append)
    assert [(e.resource_id, e.status, e.text) for e in events] == [
        ("layer:l1", EventStatus.WORKING, "Preparing"), ("layer:l1", EventStatus.WORKING, "Pushing"),
        ("layer:l1", EventStatus.DONE, "Pushed")]
    with pytest.raises(ImagePushError, match="denied"):
        images.push(FakeApi([{"error": "denied: requested access"}]), "reg/app", events.append)


@pytest.mark.parametrize(("field", "fragment"), [
    ("ssh", "ssh: [default]"),
    ("additional_contexts", "additional_contexts: {other: /tmp}"),
    ("cache_to", "cache_to: [type=local,dest=/tmp/c]"),
    ("entitlements", "entitlements: [network.host]"),
    ("privileged", "privileged: true"),
    ("ulimits", "ulimits: {nofile: 1024}"),
])
def test_build_keys_the_classic_builder_lacks_are_refused_in_the_tables_words(tmp_path: Path, field: str,
                                                                               fragment: str) -> None:
    from composer.backends.docker.coverage import BUILDER_LACKS, COVERAGE

    assert set(BUILDER_LACKS) == {"ssh", "additional_contexts", "cache_to", "entitlements", "privileged", "ulimits"}
    extra = ""
    (tmp_path / "s").write_text("x")
    spec = spec_for(tmp_path, f"      context: .\n      {fragment}\n{extra}")
    key = next(key for key in COVERAGE if key.startswith(f"services.build.{field}") and COVERAGE[key].when)
    with pytest.raises(UnsupportedFeatureError) as refused:
        images.build_kwargs(spec)
    assert str(refused.value) == f'service "app": {COVERAGE[key].note}'
