"""A stage's image configuration, as BuildKit writes it: the base image's config with the stage's
metadata instructions applied, and a history entry for each (``created_by`` in BuildKit's words).

Pure: the builder hands the base image's config (OCI ``config`` and ``history``) and gets the new
ones; the filesystem steps (RUN, COPY, ADD) only add their history entries here, the builder makes
their layers. Variables are expanded with the stage's scope (its ARGs, then ENV) as BuildKit does
for the instructions that expand them: ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL and
ARG defaults; never CMD, ENTRYPOINT, SHELL, HEALTHCHECK or RUN (the container's shell does).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from composer.dockerfile.expand import ExpansionError, expand_word, expand_words
from composer.dockerfile.instructions import (
    ArgCommand,
    CmdCommand,
    Command,
    CopyCommand,
    EnvCommand,
    HealthcheckCommand,
    LabelCommand,
    RunCommand,
    ShellForm,
    WordsCommand,
)
from composer.dockerfile.parser import DockerfileSyntaxError

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
"""Build arguments usable without an ARG (BuildKit's predefined proxy arguments)."""
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3_600_000_000_000}


@dataclass
class StageState:
    """What a stage has built so far: the image config (OCI ``config``), its history, and the
    variables in scope."""

    config: dict[str, Any]
    history: list[dict[str, Any]]
    args: dict[str, str] = field(default_factory=dict)  # the stage's ARGs with their values
    globals: dict[str, str] = field(default_factory=dict)  # the global ARGs: an ARG without a default takes these
    # The environment of the stage's RUNs, as BuildKit's LLB state keeps it: the base stage's,
    # then the image's Env, then each ENV and each ARG with a value in order (an ARG after an ENV
    # of the same name wins in RUN, not in the image config).
    run_env: dict[str, str] = field(default_factory=dict)
    declared: list[str] = field(default_factory=list)  # the stage's ARG names in order (repeats kept)
    cmd_set: bool = False  # CMD given in this stage (ENTRYPOINT then keeps it)
    path: str = "Dockerfile"
    escape: str = "\\"

    def environment(self) -> dict[str, str]:
        """The scope variables expand in: BuildKit expands with its LLB state's environment, the
        RUN environment (so an ARG declared after an ENV of the same name wins here too)."""
        return dict(self.run_env)

    def expand(self, command: Command, word: str) -> str:
        try:
            return expand_word(word, self.environment(), escape=self.escape)
        except ExpansionError as exc:
            raise DockerfileSyntaxError(str(exc), line=command.line, path=self.path) from None

    def expand_all(self, command: Command, word: str) -> list[str]:
        try:
            return expand_words(word, self.environment(), escape=self.escape)
        except ExpansionError as exc:
            raise DockerfileSyntaxError(str(exc), line=command.line, path=self.path) from None

    def record(self, created_by: str, *, empty_layer: bool, created: str | None = None) -> None:
        entry: dict[str, Any] = {"created_by": created_by, "comment": "buildkit.dockerfile.v0"}
        if created is not None:
            entry["created"] = created
        if empty_layer:
            entry["empty_layer"] = True
        self.history.append(entry)


def start(base_config: Mapping[str, Any] | None, base_history: Sequence[Mapping[str, Any]], *,
          path: str = "Dockerfile", escape: str = "\\", run_env: Mapping[str, str] | None = None) -> StageState:
    """A stage's state after FROM: the base image's config (``scratch``: None), or BuildKit's
    default environment for an empty one; ``run_env``: the RUN environment of the stage it is
    built FROM (its ARGs stay in it, under the image's Env)."""
    config = json.loads(json.dumps(dict(base_config))) if base_config else {}
    if not config.get("Env"):
        config["Env"] = [f"PATH={DEFAULT_PATH}"]
    state = StageState(config, [dict(entry) for entry in base_history], path=path, escape=escape,
                       run_env=dict(run_env or {}))
    for entry in config["Env"]:
        key, _, value = entry.partition("=")
        state.run_env[key] = value
    return state


def _go_list(items: Sequence[str]) -> str:
    """Go's %v of a string slice: ``[a b]``."""
    return "[" + " ".join(items) + "]"


def _go_quoted_list(items: Sequence[str]) -> str:
    """Go's %q of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(item, ensure_ascii=False) for item in items) + "]"


def nanoseconds(duration: str) -> int:
    """A Go duration (``1m30s``, ``500ms``) in nanoseconds; "" is 0.

    :raises ValueError: not a Go duration.
    """
    if duration in ("", "0"):
        return 0
    total = 0.0
    rest = duration
    while rest:
        number = ""
        while rest and (rest[0].isdigit() or rest[0] == "."):
            number, rest = number + rest[0], rest[1:]
        unit = next((name for name in sorted(_UNITS, key=len, reverse=True) if rest.startswith(name)), None)
        if not number or unit is None:
            raise ValueError(f"time: invalid duration {duration!r}")
        total += float(number) * _UNITS[unit]
        rest = rest[len(unit):]
    return int(total)


def _set_env(config: dict[str, Any], key: str, value: str) -> None:
    entries = [entry for entry in config.get("Env") or [] if entry.partition("=")[0] != key]
    existing = [entry.partition("=")[0] for entry in config.get("Env") or []]
    if key in existing:  # replaced in place, as BuildKit keeps the order
        index = existing.index(key)
        entries = list(config["Env"])
        entries[index] = f"{key}={value}"
    else:
        entries.append(f"{key}={value}")
    config["Env"] = entries


def _with_shell(state: StageState, form: ShellForm) -> list[str]:
    if not form.prepend_shell:
        return list(form.args)
    shell = state.config.get("Shell") or list(DEFAULT_SHELL)
    return [*shell, *form.args]


def apply(state: StageState, command: Command, build_args: Mapping[str, str]) -> None:
    """Apply one metadata instruction to the stage (RUN, COPY and ADD: their history only).

    :raises DockerfileSyntaxError: a variable cannot be expanded, or a duration is invalid.
    """
    config = state.config
    if isinstance(command, EnvCommand):
        pairs = [(pair.key, state.expand(command, pair.value)) for pair in command.pairs]
        for key, value in pairs:
            name = state.expand(command, key)
            _set_env(config, name, value)
            state.run_env[name] = value
        state.record("ENV " + " ".join(f"{key}={value}" for key, value in pairs), empty_layer=True)
    elif isinstance(command, LabelCommand):
        labels = dict(config.get("Labels") or {})
        shown = []
        for pair in command.pairs:
            key, value = state.expand(command, pair.key), state.expand(command, pair.value)
            labels[key] = value
            shown.append(f"{key}={value}")
        config["Labels"] = labels
        state.record("LABEL " + " ".join(shown), empty_layer=True)
    elif isinstance(command, ArgCommand):
        shown = []
        for name, default in command.args:
            expanded = state.expand(command, default) if default is not None else None
            given = build_args.get(name, expanded if expanded is not None else state.globals.get(name))
            if given is not None:
                state.args[name] = given
                state.run_env[name] = given
            state.declared.append(name)
            # BuildKit's history shows the ARG as written (its default), never a given value
            shown.append(f"{name}={expanded}" if expanded is not None else name)
        state.record("ARG " + " ".join(shown), empty_layer=True)
    elif isinstance(command, CmdCommand):
        args = _with_shell(state, command.command)
        if command.name == "CMD":
            config["Cmd"] = args
            state.cmd_set = True
        else:
            config["Entrypoint"] = args or None
            if not state.cmd_set:
                config.pop("Cmd", None)
        state.record(f"{command.name} {_go_quoted_list(args)}", empty_layer=True)
    elif isinstance(command, HealthcheckCommand):
        _healthcheck(state, command)
    elif isinstance(command, RunCommand):
        args = _with_shell(state, command.command)
        # BuildKit's runCommandString: the stage's ARGs (each declaration) with their values first
        declared = [f"{name}={state.run_env.get(name, '')}" for name in state.declared]
        shown = [f"|{len(declared)}", *declared] if declared else []
        state.record("RUN " + " ".join([*shown, *args]) + " # buildkit", empty_layer=False)
    elif isinstance(command, CopyCommand):
        # the words as expanded (BuildKit expands them before it words the history)
        sources = [*(state.expand(command, word) for word in command.sources), *(item.path for item in command.inline)]
        destination = state.expand(command, command.destination)
        state.record(f"{command.name} {' '.join(sources)} {destination} # buildkit", empty_layer=False)
    elif isinstance(command, WordsCommand):
        _words(state, command)


def _healthcheck(state: StageState, command: HealthcheckCommand) -> None:
    try:
        durations = [nanoseconds(value) for value in (command.interval, command.timeout, command.start_period,
                                                      command.start_interval)]
    except ValueError as exc:
        raise DockerfileSyntaxError(str(exc), line=command.line, path=state.path) from None
    check: dict[str, Any] = {"Test": list(command.test)}
    for key, value in zip(("Interval", "Timeout", "StartPeriod", "StartInterval"), durations, strict=True):
        if value:
            check[key] = value
    if command.retries:
        check["Retries"] = command.retries
    state.config["Healthcheck"] = check
    shown = " ".join(json.dumps(value) for value in (command.interval or "0s", command.timeout or "0s",
                                                      command.start_period or "0s"))
    state.record(f"HEALTHCHECK &{{{_go_quoted_list(command.test)} {shown} '\\x{command.retries:02x}'}}",
                 empty_layer=True)


def _words(state: StageState, command: WordsCommand) -> None:
    config = state.config
    name = command.name
    if name == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for word in command.words:
            for port in state.expand_all(command, word):
                ports[port if "/" in port else f"{port}/tcp"] = {}
        config["ExposedPorts"] = ports
        shown = " ".join(f"{port}:{{}}" for port in sorted(ports))
        state.record(f"EXPOSE map[{shown}]", empty_layer=True)
    elif name == "USER":
        config["User"] = state.expand(command, command.words[0])
        state.record(f"USER {config['User']}", empty_layer=True)
    elif name == "WORKDIR":
        path = state.expand(command, command.words[0])
        config["WorkingDir"] = posixpath.normpath(posixpath.join(config.get("WorkingDir") or "/", path))
        state.record(f"WORKDIR {config['WorkingDir']}", empty_layer=True)
    elif name == "VOLUME":
        volumes = dict(config.get("Volumes") or {})
        added = [state.expand(command, word) for word in command.words]
        for volume in added:
            volumes[volume] = {}
        config["Volumes"] = volumes
        state.record(f"VOLUME {_go_list(added)}", empty_layer=True)
    elif name == "STOPSIGNAL":
        config["StopSignal"] = state.expand(command, command.words[0])
        state.record(f"STOPSIGNAL {config['StopSignal']}", empty_layer=True)
    elif name == "SHELL":
        config["Shell"] = list(command.words)
        state.record(f"SHELL {_go_list(command.words)}", empty_layer=True)
    elif name == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), command.words[0]]
    elif name == "MAINTAINER":
        state.record(f"MAINTAINER {command.words[0]}", empty_layer=True)


def stage_config(commands: Sequence[Command], base_config: Mapping[str, Any] | None,
                 base_history: Sequence[Mapping[str, Any]], build_args: Mapping[str, str], *,
                 global_args: Mapping[str, str] | None = None, path: str = "Dockerfile",
                 escape: str = "\\") -> StageState:
    """The config and history of a stage built on ``base_config`` (None: scratch), all its
    instructions applied in order.

    :raises DockerfileSyntaxError: as ``apply``.
    """
    state = start(base_config, base_history, path=path, escape=escape)
    state.globals = dict(global_args or {})
    for command in commands:
        apply(state, command, build_args)
    return state
