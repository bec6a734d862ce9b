"""Seccomp profiles in Docker's JSON format: the model, the parser, and the per-container
selection of rules (moby's ``setupSeccomp``).

A profile (``security_opt: seccomp=<file.json>``, or Docker's default from ``seccomp_default``)
is ``defaultAction`` (+ ``defaultErrnoRet``), the architectures (``architectures``, or
``archMap``: the host's entry and its sub-architectures), and ``syscalls``: each ``names`` (or
``name``), an ``action`` (+ ``errnoRet``), argument comparisons ``args`` ([{index, value,
valueTwo, op}]: several on one argument are separate rules, OR'ed, as runc does) and
``includes``/``excludes`` ({caps, arches, minKernel}). ``select`` keeps the rules that apply to a
container as Docker does: ``caps`` against its bounding set (``CAP_`` names), ``arches`` against
the host's in Go's names (amd64, arm64...), ``minKernel`` against the running kernel.
Unknown keys are ignored as Go's decoder does; a wrong type, an unknown action, operator or
architecture is a one-line error naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from composer.backends.seccomp_file import ProfileError, read_profile

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
          "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE",
          "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64")
# uname -m -> Go's GOARCH as libseccomp-golang names it (what includes/excludes "arches" match)
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "x86", "i686": "x86", "armv7l": "arm",
           "armv8l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64",
           "mips64": "mips64", "loongarch64": "loong64"}
# ... and the seccomp architecture of each, to pick the host's archMap entry
SECCOMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "x86": "SCMP_ARCH_X86",
                "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "ppc64": "SCMP_ARCH_PPC64",
                "s390x": "SCMP_ARCH_S390X", "riscv64": "SCMP_ARCH_RISCV64", "mips64": "SCMP_ARCH_MIPS64",
                "loong64": "SCMP_ARCH_LOONGARCH64"}


@dataclass(frozen=True)
class Arg:
    """One comparison of a syscall argument: ``args[index] <op> value`` (MASKED_EQ: ``args[index]
    & value == value_two``)."""

    index: int
    value: int
    value_two: int
    op: str


@dataclass(frozen=True)
class Condition:
    """When a rule applies (``includes``: all must hold) or not (``excludes``: any excludes it)."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()
    includes: Condition = Condition()
    excludes: Condition = Condition()


@dataclass(frozen=True)
class Profile:
    """A whole profile; hashable, so compiled programs can be cached by it."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rules: tuple[Rule, ...] = field(default=())

    @property
    def disabled(self) -> bool:
        """No default action and no syscalls: Docker runs the container without a filter."""
        return not self.default_action and not self.rules


@dataclass(frozen=True)
class Selection:
    """What a container's filter is compiled from: its architectures and the rules that apply."""

    default_action: str
    default_errno_ret: int | None
    architectures: tuple[str, ...]
    rules: tuple[Rule, ...]


def host_arch() -> str:
    """The host's architecture in Go's names (amd64, arm64...)."""
    machine = os.uname().machine
    return GO_ARCH.get(machine, machine)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of the running kernel ("6.18.44-fc" -> (6, 18))."""
    text = release or os.uname().release
    parts = [*text.split("-", 1)[0].split("."), "0"][:2]
    digits = ["".join(ch for ch in part if ch.isdigit()) or "0" for part in parts]
    return int(digits[0]), int(digits[1])


def select(profile: Profile, capabilities: Sequence[str], *, arch: str | None = None,
           kernel: tuple[int, int] | None = None) -> Selection:
    """The rules of ``profile`` that apply to a container with ``capabilities`` (its bounding
    set, names with or without ``CAP_``) on this host (or ``arch``/``kernel``)."""
    arch = arch or host_arch()
    kernel = kernel or kernel_version()
    caps = {name if name.startswith("CAP_") else f"CAP_{name}" for name in capabilities}
    architectures = profile.architectures
    if not architectures:
        native = SECCOMP_ARCH.get(arch)
        for main, subs in profile.arch_map:
            if main == native:
                architectures = (main, *subs)
                break
    rules = []
    for rule in profile.rules:
        excludes, includes = rule.excludes, rule.includes
        if arch in excludes.arches or any(cap in caps for cap in excludes.caps):
            continue
        if excludes.min_kernel is not None and kernel >= excludes.min_kernel:
            continue
        if includes.arches and arch not in includes.arches:
            continue
        if any(cap not in caps for cap in includes.caps):
            continue
        if includes.min_kernel is not None and kernel < includes.min_kernel:
            continue
        rules.append(rule)
    return Selection(profile.default_action, profile.default_errno_ret, architectures, tuple(rules))


# --- the JSON format ---------------------------------------------------------------------------


def load(path: str) -> Profile:
    """Read and parse the profile file at ``path``.

    :raises ProfileError: unreadable, too large, not JSON, or not a valid profile.
    """
    return parse(read_profile(path), path)


def parse(data: bytes | str, source: str) -> Profile:
    """A profile from its JSON text; ``source`` names it in errors.

    :raises ProfileError: not JSON, or not a valid profile.
    """
    try:
        document = json.loads(data)
    except RecursionError:
        raise ProfileError(f"seccomp profile {source}: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        where = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ProfileError(f"seccomp profile {source}: not valid JSON: {where}") from None
    return _Parser(source).profile(document)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, message: str) -> ProfileError:
        return ProfileError(f"seccomp profile {self.source}: {where}: {message}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.error(where, "must be an object")
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(where, "must be a list of strings")
        return tuple(value)

    def number(self, value: Any, where: str, limit: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise self.error(where, f"must be an integer from 0 to {limit}")
        return value

    def choice(self, value: Any, where: str, allowed: Sequence[str], what: str) -> str:
        if value == "SCMP_ACT_NOTIFY":  # needs a seccomp agent listening (listenerPath)
            raise self.error(where, "SCMP_ACT_NOTIFY is not supported by the native backend")
        if value not in allowed:
            raise self.error(where, f"unknown {what} {value!r}")
        return str(value)

    def profile(self, document: Any) -> Profile:
        top = self.mapping(document, "the profile")
        if top.get("listenerPath") or top.get("listenerMetadata"):
            raise self.error("listenerPath", "seccomp notify listeners are not supported by the native backend")
        if self.strings(top.get("flags"), "flags"):
            raise self.error("flags", "seccomp filter flags are not supported by the native backend")
        default = top.get("defaultAction") or ""
        if default:
            default = self.choice(default, "defaultAction", ACTIONS, "action")
        errno_ret = top.get("defaultErrnoRet")
        architectures = tuple(self.choice(a, "architectures", ARCHES, "architecture")
                              for a in self.strings(top.get("architectures"), "architectures"))
        arch_map = []
        raw_map = top.get("archMap") or []
        if not isinstance(raw_map, list):
            raise self.error("archMap", "must be a list")
        for i, entry in enumerate(raw_map):
            entry = self.mapping(entry, f"archMap[{i}]")
            main = self.choice(entry.get("architecture"), f"archMap[{i}].architecture", ARCHES, "architecture")
            subs = tuple(self.choice(a, f"archMap[{i}].subArchitectures", ARCHES, "architecture")
                         for a in self.strings(entry.get("subArchitectures"), f"archMap[{i}].subArchitectures"))
            arch_map.append((main, subs))
        if architectures and arch_map:
            raise self.error("architectures", "both 'architectures' and 'archMap' are given; use one of them")
        raw_rules = top.get("syscalls") or []
        if not isinstance(raw_rules, list):
            raise self.error("syscalls", "must be a list")
        rules = tuple(self.rule(item, f"syscalls[{i}]") for i, item in enumerate(raw_rules))
        if rules and not default:
            raise self.error("defaultAction", "missing (it is needed when syscalls are listed)")
        return Profile(default_action=default,
                       default_errno_ret=None if errno_ret is None else self.number(errno_ret, "defaultErrnoRet",
                                                                                    4095),
                       architectures=architectures, arch_map=tuple(arch_map), rules=rules)

    def rule(self, value: Any, where: str) -> Rule:
        item = self.mapping(value, where)
        names = self.strings(item.get("names"), f"{where}.names")
        if item.get("name"):
            if names:
                raise self.error(where, "both 'name' and 'names' are given; use one of them")
            if not isinstance(item["name"], str):
                raise self.error(f"{where}.name", "must be a string")
            names = (item["name"],)
        action = self.choice(item.get("action"), f"{where}.action", ACTIONS, "action")
        errno_ret = item.get("errnoRet")
        if errno_ret is not None and action not in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
            raise self.error(f"{where}.errnoRet", f"only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}")
        raw_args = item.get("args") or []
        if not isinstance(raw_args, list):
            raise self.error(f"{where}.args", "must be a list")
        args = tuple(self.arg(a, f"{where}.args[{i}]") for i, a in enumerate(raw_args))
        return Rule(names=names, action=action,
                    errno_ret=None if errno_ret is None else self.number(errno_ret, f"{where}.errnoRet", 4095),
                    args=args, includes=self.condition(item.get("includes"), f"{where}.includes"),
                    excludes=self.condition(item.get("excludes"), f"{where}.excludes"))

    def arg(self, value: Any, where: str) -> Arg:
        item = self.mapping(value, where)
        return Arg(index=self.number(item.get("index", 0), f"{where}.index", 5),
                   value=self.number(item.get("value", 0), f"{where}.value", (1 << 64) - 1),
                   value_two=self.number(item.get("valueTwo", 0), f"{where}.valueTwo", (1 << 64) - 1),
                   op=self.choice(item.get("op"), f"{where}.op", OPERATORS, "operator"))

    def condition(self, value: Any, where: str) -> Condition:
        if value is None:
            return Condition()
        item = self.mapping(value, where)
        minimum = item.get("minKernel")
        min_kernel = None
        if minimum not in (None, ""):
            parts = minimum.split(".") if isinstance(minimum, str) else []
            if len(parts) != 2 or not all(part.isdigit() for part in parts):
                raise self.error(f"{where}.minKernel", f"{minimum!r} is not a kernel version like \"4.8\"")
            min_kernel = (int(parts[0]), int(parts[1]))
        return Condition(caps=self.strings(item.get("caps"), f"{where}.caps"),
                         arches=self.strings(item.get("arches"), f"{where}.arches"), min_kernel=min_kernel)
