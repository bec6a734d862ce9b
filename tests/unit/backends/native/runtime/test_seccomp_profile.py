"""Docker-format seccomp profiles: the parser's one-line errors, moby's rule selection, and
``security_opt`` (the filters themselves run in tests/integration/native/test_seccomp.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.runtime.config import security
from composer.backends.native.runtime.seccomp_default import default_profile
from composer.backends.native.runtime.seccomp_profile import kernel_version, load, parse, select
from composer.backends.seccomp_file import ProfileError
from composer.errors import SpecValidationError, UnsupportedFeatureError


def refusal(document: Any, tmp_path: Path) -> str:
    path = tmp_path / "profile.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ProfileError) as caught:
        load(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    return message


RULE = {"names": ["read"], "action": "SCMP_ACT_ALLOW"}


@pytest.mark.parametrize(("document", "expected"), [
    ('{"defaultAction": "SCMP_ACT_ERRNO",\n "syscalls": [}', "not valid JSON: line 2"),
    ("[1, 2]", "the profile: must be an object"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction: unknown action 'SCMP_ACT_NOPE'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]},
     "syscalls[0].action: unknown action 'ALLOW'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [RULE, {**RULE, "args": [{"index": 0, "value": 1, "op": "EQ"}]}]},
     "syscalls[1].args[0].op: unknown operator 'EQ'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{**RULE, "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].index: must be an integer from 0 to 5"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{**RULE, "args": [{"value": -1, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].value: must be an integer"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}, "unknown architecture 'SCMP_ARCH_Z80'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, "both 'architectures' and 'archMap'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{**RULE, "name": "write"}]}, "both 'name' and 'names'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{**RULE, "errnoRet": 1}]},
     "errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}, "defaultErrnoRet: must be an integer"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{**RULE, "includes": {"minKernel": "four"}}]},
     "syscalls[0].includes.minKernel: 'four' is not a kernel version"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{**RULE, "excludes": {"caps": "CAP_SYS_ADMIN"}}]},
     "syscalls[0].excludes.caps: must be a list of strings"),
    ({"syscalls": [RULE]}, "defaultAction: missing"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}, "flags: seccomp filter flags are not"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/x.sock"}, "notify listeners are not supported"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{**RULE, "action": "SCMP_ACT_NOTIFY"}]},
     "syscalls[0].action: SCMP_ACT_NOTIFY is not supported"),
    ("[" * 100_000, "nested too deeply"),
])
def test_bad_profiles_are_one_line_errors_naming_the_file(document: Any, expected: str, tmp_path: Path) -> None:
    assert expected in refusal(document, tmp_path)


def test_unreadable_profiles_are_one_line_errors(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(ProfileError, match=f"seccomp profile {path}: "):
            load(str(path))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # must not block the caller: only a regular file is read
    with pytest.raises(ProfileError, match="not a regular file"):
        load(str(fifo))
    assert issubclass(ProfileError, SpecValidationError)


def test_a_docker_profile_parses_with_its_unknown_keys_ignored() -> None:
    profile = parse(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "comment": "ignored, as Go's decoder does",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "comment": "",
                      "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                      "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                     {"name": "ptrace", "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}],
    }), "inline")
    assert profile.default_errno_ret == 1
    assert profile.rules[0].args[0].value == 0x7E020000
    assert profile.rules[1].names == ("ptrace",)
    assert profile.rules[1].includes.min_kernel == (4, 8)
    assert not profile.disabled
    assert parse("{}", "empty").disabled  # Docker runs such a container without a filter


def test_selection_follows_caps_arches_and_kernel_as_moby_does() -> None:
    profile = default_profile()

    def allowed(caps: tuple[str, ...], arch: str = "amd64", kernel: tuple[int, int] = (6, 1)) -> set[str]:
        selection = select(profile, caps, arch=arch, kernel=kernel)
        return {name for rule in selection.rules if rule.action == "SCMP_ACT_ALLOW" for name in rule.names}

    default = allowed(("CHOWN", "NET_RAW"))
    assert "unshare" not in default
    assert "ptrace" in default  # kernel >= 4.8
    assert "ptrace" not in allowed(("CHOWN",), kernel=(4, 4))
    assert {"io_uring_setup", "io_uring_enter", "migrate_pages", "keyctl"}.isdisjoint(default)
    assert {"unshare", "mount", "setns", "clone3"} <= allowed(("CAP_SYS_ADMIN",))
    assert "arch_prctl" in default
    assert "arch_prctl" not in allowed((), arch="arm64")
    assert "set_tls" in allowed((), arch="arm64")
    selection = select(profile, ("CHOWN",), arch="amd64")
    assert selection.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert select(profile, (), arch="arm64").architectures == ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")
    clone3 = [rule for rule in selection.rules if rule.names == ("clone3",)]
    assert [(rule.action, rule.errno_ret) for rule in clone3] == [("SCMP_ACT_ERRNO", 38)]  # ENOSYS
    assert not [rule for rule in select(profile, ("SYS_ADMIN",)).rules if rule.action == "SCMP_ACT_ERRNO"]
    assert kernel_version("6.18.44-fc-v1300") == (6, 18)
    assert kernel_version("5.4") == (5, 4)


def test_security_opt_seccomp_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert security(()) == (False, "default")
    assert security(("seccomp=unconfined",)) == (False, "unconfined")
    assert security(("seccomp:builtin", "no-new-privileges")) == (True, "default")
    assert security(("seccomp=profiles/p.json",)) == (False, str(tmp_path / "profiles" / "p.json"))
    with pytest.raises(UnsupportedFeatureError):
        security(("apparmor=unconfined",))
