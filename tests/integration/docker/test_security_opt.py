"""``security_opt: seccomp=<file>`` on the docker backend: the profile file is read by composer and its JSON
sent to the engine, as the docker CLI and Compose v2 do (the engine takes the profile's content, not a
path). The native backend reads the same file with the same reader (composer/backends/seccomp_file.py);
tests/integration/native/test_seccomp.py runs its side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.docker.test_cli_flags import ENV

# Everything allowed but mkdir/mkdirat, which fail with EPERM.
NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def composer(folder: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "composer", "--backend", "docker", "--progress", "quiet", "-p",
                           project, *args], cwd=folder, capture_output=True, text=True, timeout=180, env=ENV)


def test_a_seccomp_profile_file_is_read_and_applied(tmp_path: Path, project_name: str, busybox_image: str) -> None:
    (tmp_path / "no-mkdir.json").write_text(json.dumps(NO_MKDIR, indent=2))
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  t:\n    image: {busybox_image}\n    security_opt: [seccomp=no-mkdir.json]\n")
    result = composer(tmp_path, project_name, "run", "--rm", "t", "sh", "-c", "mkdir /made; echo exit=$?")
    assert result.returncode == 0, result.stderr
    assert "Operation not permitted" in result.stdout + result.stderr
    assert "exit=1" in result.stdout


def test_a_bad_seccomp_profile_file_is_a_one_line_error(tmp_path: Path, project_name: str,
                                                        busybox_image: str) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    for name in ("broken.json", "missing.json"):
        (tmp_path / "compose.yaml").write_text(
            f"services:\n  t:\n    image: {busybox_image}\n    security_opt: [seccomp={name}]\n")
        result = composer(tmp_path, project_name, "run", "--rm", "t", "true")
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"seccomp profile {name}" in lines[0]
        assert "Traceback" not in result.stderr
