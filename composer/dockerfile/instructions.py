"""The frontend's second step: parsed instructions -> typed commands grouped in build stages.

As BuildKit's ``instructions`` package: each instruction's flags are checked against the ones it
takes, its arguments against the number it needs, and the whole file is split into the ARGs
before the first FROM (the global ones) and its stages. Words are still unexpanded here: the
expansion needs the build arguments in scope at each step, which the builder has.

Every error names the file and the instruction's line, as BuildKit's do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from composer.dockerfile.parser import DockerfileSyntaxError, Heredoc, Instruction, ParsedDockerfile, heredoc_word

STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")

# Each instruction's flags: name -> whether it may be repeated. A bool flag is written --name or
# --name=true|false.
_BOOL_FLAGS = frozenset({"link", "keep-git-dir", "parents"})
FLAGS: dict[str, dict[str, bool]] = {
    "add": {"chown": False, "chmod": False, "link": False, "keep-git-dir": False, "checksum": False,
            "exclude": True},
    "copy": {"chown": False, "chmod": False, "from": False, "link": False, "parents": False, "exclude": True},
    "from": {"platform": False},
    "run": {"mount": True, "network": False, "security": False},
    "healthcheck": {"interval": False, "timeout": False, "start-period": False, "start-interval": False,
                    "retries": False},
}
INSTRUCTIONS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
                "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")


@dataclass(frozen=True, slots=True)
class Command:
    """What every command has: its name, the line it starts on, and its text (for history)."""

    name: str  # "RUN"
    line: int
    original: str


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class EnvCommand(Command):
    pairs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelCommand(Command):
    pairs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class ArgCommand(Command):
    args: tuple[tuple[str, str | None], ...] = ()  # (name, default or None)


@dataclass(frozen=True, slots=True)
class InlineSource:
    """A heredoc given as a COPY/ADD source: a file of that content named ``path``."""

    path: str
    content: str
    expand: bool


@dataclass(frozen=True, slots=True)
class CopyCommand(Command):
    """COPY or ADD (``name`` says which)."""

    sources: tuple[str, ...] = ()
    inline: tuple[InlineSource, ...] = ()
    destination: str = ""
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    checksum: str = ""
    keep_git_dir: bool = False


@dataclass(frozen=True, slots=True)
class ShellForm:
    """A command line: the exec form (``prepend_shell`` False) or the shell form (one string that
    the stage's SHELL runs), plus the heredoc files RUN gets."""

    args: tuple[str, ...] = ()
    prepend_shell: bool = False
    files: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, slots=True)
class RunCommand(Command):
    command: ShellForm = field(default_factory=ShellForm)
    mounts: tuple[str, ...] = ()  # --mount values, unparsed
    network: str = ""
    security: str = ""


@dataclass(frozen=True, slots=True)
class CmdCommand(Command):
    """CMD or ENTRYPOINT (``name`` says which); an empty ENTRYPOINT clears it."""

    command: ShellForm = field(default_factory=ShellForm)


@dataclass(frozen=True, slots=True)
class HealthcheckCommand(Command):
    test: tuple[str, ...] = ()  # ("NONE",), ("CMD", ...), ("CMD-SHELL", command)
    interval: str = ""  # Go durations, unparsed: "30s"
    timeout: str = ""
    start_period: str = ""
    start_interval: str = ""
    retries: int = 0


@dataclass(frozen=True, slots=True)
class WordsCommand(Command):
    """EXPOSE, VOLUME, SHELL, USER, WORKDIR, STOPSIGNAL, MAINTAINER and ONBUILD: their words."""

    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Stage:
    index: int
    name: str  # "" when the FROM has no AS
    base: str  # the FROM's image (or another stage's name), unexpanded
    platform: str
    line: int
    original: str
    commands: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True)
class Dockerfile:
    global_args: tuple[ArgCommand, ...]
    stages: tuple[Stage, ...]
    escape: str
    path: str

    def stage(self, target: str | None) -> Stage:
        """The stage ``target`` names (by name, case-insensitive, or index), or the last one.

        :raises DockerfileSyntaxError: no stage has that name.
        """
        if not target:
            return self.stages[-1]
        for stage in self.stages:
            if stage.name == target.lower():
                return stage
        raise DockerfileSyntaxError(f"target stage {target!r} could not be found", path=self.path)


def _error(path: str, instruction: Instruction, message: str) -> DockerfileSyntaxError:
    return DockerfileSyntaxError(message, line=instruction.start_line, path=path)


def _flags(path: str, instruction: Instruction) -> dict[str, list[str]]:
    """The instruction's flags by name, checked against the ones it takes."""
    allowed = FLAGS.get(instruction.command, {})
    found: dict[str, list[str]] = {}
    for flag in instruction.flags:
        name, equals, value = flag.removeprefix("--").partition("=")
        if name not in allowed:
            raise _error(path, instruction, f"unknown flag: {name}")
        if name in _BOOL_FLAGS:
            if equals and value.lower() not in ("true", "false"):
                raise _error(path, instruction, f"expecting boolean value for flag {name}, not: {value}")
            value = value.lower() if equals else "true"
        elif not equals:
            raise _error(path, instruction, f"missing a value on flag: {name}")
        if name in found and not allowed[name]:
            raise _error(path, instruction, f"duplicate flag specified: {name}")
        found.setdefault(name, []).append(value)
    return found


def _one(flags: Mapping[str, list[str]], name: str) -> str:
    return flags.get(name, [""])[-1]


def _shell_form(instruction: Instruction) -> ShellForm:
    """The exec form as given, or the shell form's words joined into one string."""
    if instruction.json:
        return ShellForm(instruction.args, False, instruction.heredocs)
    args = (" ".join(instruction.args),) if instruction.args else ()
    return ShellForm(args, True, instruction.heredocs)


def _pairs(path: str, instruction: Instruction) -> tuple[KeyValue, ...]:
    args = instruction.args
    name = instruction.command.upper()
    if not args:
        raise _error(path, instruction, f"{name} requires at least one argument")
    pairs = []
    for index in range(0, len(args), 3):
        if not args[index]:
            raise _error(path, instruction, f"{name} names can not be blank")
        pairs.append(KeyValue(args[index], args[index + 1]))
    return tuple(pairs)


def _copy(path: str, instruction: Instruction, flags: Mapping[str, list[str]]) -> CopyCommand:
    name = instruction.command.upper()
    args = instruction.args
    if len(args) < 2:
        raise _error(path, instruction, f"{name} requires at least two arguments, but only one was provided. "
                                        "Destination could not be determined")
    if heredoc_word(args[-1]) is not None:
        raise _error(path, instruction, f"{name} cannot accept a heredoc as a destination")
    documents = {heredoc.name: heredoc for heredoc in instruction.heredocs}
    sources: list[str] = []
    inline: list[InlineSource] = []
    for source in args[:-1]:
        opener = heredoc_word(source)
        if opener is not None and opener[0] in documents:
            document = documents[opener[0]]
            inline.append(InlineSource(document.name, document.content, document.expand))
        else:
            sources.append(source)
    if name == "ADD" and "from" in flags:
        raise _error(path, instruction, "unknown flag: from")
    return CopyCommand(
        name, instruction.start_line, instruction.original, tuple(sources), tuple(inline), args[-1],
        from_=_one(flags, "from"), chown=_one(flags, "chown"), chmod=_one(flags, "chmod"),
        link=_one(flags, "link") == "true", parents=_one(flags, "parents") == "true",
        excludes=tuple(flags.get("exclude", [])), checksum=_one(flags, "checksum"),
        keep_git_dir=_one(flags, "keep-git-dir") == "true",
    )


def _healthcheck(path: str, instruction: Instruction, flags: Mapping[str, list[str]]) -> HealthcheckCommand:
    args = instruction.args
    if not args:
        raise _error(path, instruction, "HEALTHCHECK requires at least one argument")
    kind = args[0].upper()
    base = ("HEALTHCHECK", instruction.start_line, instruction.original)
    if kind == "NONE":
        if len(args) > 1:
            raise _error(path, instruction, "HEALTHCHECK NONE takes no arguments")
        return HealthcheckCommand(*base, test=("NONE",))
    if kind != "CMD":
        raise _error(path, instruction, f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = args[1:] if instruction.json else ((" ".join(args[1:]),) if len(args) > 1 else ())
    if not command:
        raise _error(path, instruction, "Missing command after HEALTHCHECK CMD")
    retries = _one(flags, "retries")
    if retries and (not retries.lstrip("-").isdigit() or int(retries) < 0):
        raise _error(path, instruction, f"--retries cannot be negative ({retries})" if retries.lstrip("-").isdigit()
                     else f'strconv.ParseInt: parsing "{retries}": invalid syntax')
    return HealthcheckCommand(
        *base, test=("CMD" if instruction.json else "CMD-SHELL", *command), interval=_one(flags, "interval"),
        timeout=_one(flags, "timeout"), start_period=_one(flags, "start-period"),
        start_interval=_one(flags, "start-interval"), retries=int(retries) if retries else 0)


def _command(path: str, instruction: Instruction) -> Command | Stage:  # noqa: C901 - one branch per instruction
    name = instruction.command
    if name not in INSTRUCTIONS:
        raise _error(path, instruction, f"unknown instruction: {name.upper()}")
    flags = _flags(path, instruction)
    base = (name.upper(), instruction.start_line, instruction.original)
    args = instruction.args
    if name == "from":
        return _stage(path, instruction, flags)
    if name in ("env", "label"):
        pairs = _pairs(path, instruction)
        return EnvCommand(*base, pairs=pairs) if name == "env" else LabelCommand(*base, pairs=pairs)
    if name == "arg":
        return _arg(path, instruction)
    if name in ("copy", "add"):
        return _copy(path, instruction, flags)
    if name == "run":
        return RunCommand(*base, command=_shell_form(instruction), mounts=tuple(flags.get("mount", [])),
                          network=_one(flags, "network"), security=_one(flags, "security"))
    if name in ("cmd", "entrypoint"):
        return CmdCommand(*base, command=_shell_form(instruction))
    if name == "healthcheck":
        return _healthcheck(path, instruction, flags)
    if name == "shell":
        if not args:
            raise _error(path, instruction, "SHELL requires at least one argument")
        if not instruction.json:
            raise _error(path, instruction, f"SHELL requires the arguments to be in JSON form: {instruction.original}")
        return WordsCommand(*base, words=args)
    if name == "onbuild":
        if instruction.child is None:
            raise _error(path, instruction, "ONBUILD requires at least one argument")
        trigger = instruction.child.command.upper()
        if trigger == "ONBUILD":
            raise _error(path, instruction, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise _error(path, instruction, f"{trigger} isn't allowed as an ONBUILD trigger")
        expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", instruction.original)
        expression += "".join(f"\n{heredoc.content}{heredoc.name}" for heredoc in instruction.heredocs)
        return WordsCommand(*base, words=(expression,))
    if name in ("expose", "volume"):
        if not args:
            raise _error(path, instruction, f"{name.upper()} requires at least one argument")
        if name == "volume" and any(not word.strip() for word in args):
            raise _error(path, instruction, "VOLUME specified can not be an empty string")
        words = tuple(sorted(args)) if name == "expose" else tuple(word.strip() for word in args)
        return WordsCommand(*base, words=words)
    if len(args) != 1:  # user, workdir, stopsignal, maintainer
        raise _error(path, instruction, f"{name.upper()} requires exactly one argument")
    return WordsCommand(*base, words=args)


def _arg(path: str, instruction: Instruction) -> ArgCommand:
    if not instruction.args:
        raise _error(path, instruction, "ARG requires at least one argument")
    pairs: list[tuple[str, str | None]] = []
    for word in instruction.args:
        key, equals, value = word.partition("=")
        if equals and not key:
            raise _error(path, instruction, "ARG names can not be blank")
        pairs.append((key, value if equals else None))
    return ArgCommand("ARG", instruction.start_line, instruction.original, tuple(pairs))


def _stage(path: str, instruction: Instruction, flags: Mapping[str, list[str]]) -> Stage:
    args = instruction.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not STAGE_NAME.match(name):
            raise _error(path, instruction, f'invalid name for build stage: "{args[2]}", name can\'t start with a '
                                            "number or contain symbols")
    elif len(args) != 1:
        raise _error(path, instruction, "FROM requires either one or three arguments")
    return Stage(0, name, args[0], _one(flags, "platform"), instruction.start_line, instruction.original.strip())


def build_stages(parsed: ParsedDockerfile, path: str = "Dockerfile") -> Dockerfile:
    """The global ARGs and the stages of a parsed Dockerfile.

    :raises DockerfileSyntaxError: an unknown instruction or flag, wrong arguments, an instruction
        before the first FROM other than ARG, or two stages of one name.
    """
    global_args: list[ArgCommand] = []
    stages: list[Stage] = []
    commands: list[Command] = []
    for instruction in parsed.instructions:
        command = _command(path, instruction)
        if isinstance(command, Stage):
            if stages:
                stages[-1] = _with_commands(stages[-1], commands)
            if command.name and any(stage.name == command.name for stage in stages):
                raise _error(path, instruction, f"duplicate stage name {command.name!r}")
            stages.append(Stage(len(stages), command.name, command.base, command.platform, command.line,
                                command.original))
            commands = []
        elif not stages:
            if not isinstance(command, ArgCommand):
                raise _error(path, instruction, "no build stage in current context")
            global_args.append(command)
        else:
            commands.append(command)
    if not stages:
        raise DockerfileSyntaxError("no build stage in current context", path=path)
    stages[-1] = _with_commands(stages[-1], commands)
    return Dockerfile(tuple(global_args), tuple(stages), parsed.escape, path)


def _with_commands(stage: Stage, commands: Sequence[Command]) -> Stage:
    return Stage(stage.index, stage.name, stage.base, stage.platform, stage.line, stage.original, tuple(commands))
