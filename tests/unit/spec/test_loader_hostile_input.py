"""Hostile Compose input through the real command line: deep nesting, devices as env files,
oversized files, numbers out of range (issue 15, finding 14).

Each refusal must be what a user can act on: exit code 1 (not 2, composer's "internal error",
and not a signal), exactly one line on stderr naming the file (and line:column when the YAML
has one), never a traceback. What Docker Compose v2 (2.40.3) does with the same input is noted
per case: composer accepts what v2 accepts, and refuses, with a position, what v2 crashes on,
wraps around or accepts as nonsense.

Every run is capped at 4 GiB of address space, so that a regression (``env_file: /dev/zero``
read to the end) fails here instead of taking the machine's memory.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from composer.spec import load_project
from tests.support.host_state import cli_environment

SERVICE = "services:\n  app:\n    image: busybox\n"
MEMORY_CAP = 4 << 30


def composer(cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
             memory: int = MEMORY_CAP) -> subprocess.CompletedProcess[str]:
    environment = cli_environment({"HOME": str(cwd), "COMPOSER_SERVER": "0", "XDG_CACHE_HOME": str(cwd / "cache"),
                                   **(env or {})})

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-m", "composer", *args], capture_output=True, text=True, cwd=cwd, env=environment,
        input=stdin, timeout=300, check=False, preexec_fn=cap_memory,
    )


def refused(result: subprocess.CompletedProcess[str], where: str, message: str) -> str:
    """The one line of a clean refusal, which starts with ``where`` and contains ``message``."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"composer: {where}"), lines[0]
    assert message in lines[0], lines[0]
    return lines[0]


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- nesting ---------------------------------------------------------------------------


def nested_mapping(levels: int) -> str:
    lines = [f"{'  ' * (index + 1)}k{index}:" for index in range(levels)]
    return "x-deep:\n" + "\n".join(lines) + " v\n"


def test_a_mapping_3000_levels_deep_loads_as_in_v2(tmp_path: Path) -> None:
    # v2 prints it back; composer stopped at ~500 levels with "internal error: RecursionError".
    compose = write(tmp_path / "compose.yaml", SERVICE + nested_mapping(3000))
    result = composer(tmp_path, "-f", compose, "config")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert f"{'  ' * 3000}k2999: v" in lines
    assert f"{'  ' * 1}k0:" in lines


def test_a_deep_extension_binds_into_the_model(tmp_path: Path) -> None:
    # The typed model freezes x- values recursively: binding walks the 3,000 levels too.
    compose = write(tmp_path / "compose.yaml", SERVICE + nested_mapping(3000))
    project = load_project(files=[compose], environment={})
    value = project.extensions["x-deep"]
    depth = 0
    while not isinstance(value, str):
        value = value[f"k{depth}"]
        depth += 1
    assert (depth, value) == (3000, "v")


@pytest.mark.parametrize(("levels", "accepted"), [(10_000, True), (10_001, False), (50_000, False)])
def test_flow_nesting_is_bounded_as_in_v2(tmp_path: Path, levels: int, accepted: bool) -> None:
    # v2: 10,000 levels load, 10,001 give "yaml: line 4: exceeded max depth of 10000". 50,000
    # made ruamel's C composer overflow the C stack: composer died of SIGSEGV.
    compose = write(tmp_path / "compose.yaml", SERVICE + "x-deep: " + "[" * levels + "]" * levels + "\n")
    result = composer(tmp_path, "-f", compose, "config", "--format", "json")
    if accepted:
        assert result.returncode == 0, result.stderr[-2000:]
        # every level is printed; the innermost, an empty sequence, as null (v2's JSON: [[null]] for [[[]]])
        assert result.stdout.count("[") >= levels - 1
        assert result.stdout.rpartition("[")[2].partition("]")[0].strip() == "null"
    else:
        refused(result, f"{compose}:4:", "exceeded max depth of 10000")


def test_without_room_for_the_deep_stack_files_still_load_or_fail_cleanly(tmp_path: Path) -> None:
    # Under ``ulimit -v`` too small for the loader's 256 MiB thread stack the load runs inline:
    # a normal file loads, a deep one is refused in one line instead of crashing.
    small = 224 << 20
    normal = write(tmp_path / "compose.yaml", SERVICE)
    result = composer(tmp_path, "-f", normal, "config", memory=small)
    assert result.returncode == 0, result.stderr
    deep = write(tmp_path / "deep.yaml", SERVICE + nested_mapping(600))
    refused(composer(tmp_path, "-f", deep, "config", memory=small), deep, "nested too deeply to load")


def test_block_nesting_beyond_10000_is_refused_as_in_v2(tmp_path: Path) -> None:
    # v2: "yaml: line 4: exceeded max depth of 10000" for block sequences as for flow ones.
    compose = write(tmp_path / "compose.yaml", SERVICE + "x-deep:\n  " + "- " * 10_001 + "v\n")
    refused(composer(tmp_path, "-f", compose, "config"), f"{compose}:5:", "exceeded max depth of 10000")


def test_aliases_cannot_nest_deeper_than_the_text_may(tmp_path: Path) -> None:
    # Each anchor wraps the previous one: 20 bytes a line, one more level a line. Expanded,
    # the last is 25,000 levels deep, which the text check alone would not see.
    chain = ["x-chain:", "  a0: &a0 [v]"] + [f"  a{index}: &a{index} [*a{index - 1}]" for index in range(1, 25_000)]
    compose = write(tmp_path / "compose.yaml", SERVICE + "\n".join(chain) + "\n")
    refused(composer(tmp_path, "-f", compose, "config"), f"{compose}:", "once aliases are expanded")


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    # "Billion laughs": ten aliases a level, nine levels, 10^9 nodes once expanded. v2 (go-yaml)
    # gives up after a budget of alias-driven decodes; composer refuses before building anything.
    levels = ["x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"x-a{index}: &a{index} [{', '.join([f'*a{index - 1}'] * 10)}]" for index in range(1, 9)]
    compose = write(tmp_path / "compose.yaml", SERVICE + "\n".join(levels) + "\n")
    refused(composer(tmp_path, "-f", compose, "config"), f"{compose}:", "alias bomb")


# --- what the loader reads ----------------------------------------------------------------


@pytest.mark.parametrize("cache", ["0", "1"])
@pytest.mark.parametrize("attribute", [
    "env_file: /dev/zero",
    "env_file: [{path: /dev/zero, format: raw}]",
    "label_file: /dev/zero",
])
def test_a_device_as_env_file_is_refused_unread(tmp_path: Path, attribute: str, cache: str) -> None:
    # v2 reads /dev/zero until memory runs out; composer did the same (and the CLI's cache,
    # which hashes every file the load opens, first). ``ps`` goes through the cache.
    compose = write(tmp_path / "compose.yaml", f"{SERVICE}    {attribute}\n")
    for command in ("config", "ps"):
        result = composer(tmp_path, "-f", compose, command, env={"COMPOSER_CACHE": cache})
        refused(result, "/dev/zero", "not a regular file (a character device)")


def test_a_device_is_refused_as_compose_file_or_env_file(tmp_path: Path) -> None:
    compose = write(tmp_path / "base.yaml", SERVICE)
    refused(composer(tmp_path, "-f", "/dev/zero", "config"), "/dev/zero", "not a regular file")
    refused(composer(tmp_path, "-f", compose, "--env-file", "/dev/zero", "config"), "/dev/zero", "not a regular file")
    included = write(tmp_path / "compose.yaml", f"include:\n  - path: {compose}\n    env_file: /dev/zero\n")
    refused(composer(tmp_path, "-f", included, "config"), f"{included}:", "not a regular file")


def test_a_named_pipe_without_writer_reads_as_empty_instead_of_hanging(tmp_path: Path) -> None:
    # open() of a FIFO waits for a writer: the load hung for good (the test's timeout fails it).
    os.mkfifo(tmp_path / "app.env")
    compose = write(tmp_path / "compose.yaml", f"{SERVICE}    env_file: app.env\n")
    result = composer(tmp_path, "-f", compose, "config")
    assert result.returncode == 0, result.stderr


def test_a_pipe_is_still_a_compose_file(tmp_path: Path) -> None:
    # ``-f <(envsubst < compose.yaml)``: process substitution hands over a pipe.
    result = composer(tmp_path, "-f", "/dev/stdin", "config", stdin=SERVICE)
    assert result.returncode == 0, result.stderr
    assert "image: busybox" in result.stdout


def test_files_larger_than_the_cap_are_refused(tmp_path: Path) -> None:
    cap = {"COMPOSER_MAX_FILE_SIZE": "4k"}
    padding = "# " + "x" * 5000 + "\n"
    big = write(tmp_path / "big.yaml", SERVICE + padding)
    refused(composer(tmp_path, "-f", big, "config", env=cap), big, "larger than 4,096 bytes")
    refused(composer(tmp_path, "-f", "-", "config", env=cap, stdin=SERVICE + padding), "-", "larger than 4,096 bytes")
    write(tmp_path / "big.env", "A=1\n" + padding)
    small = write(tmp_path / "compose.yaml", f"{SERVICE}    env_file: big.env\n")
    refused(composer(tmp_path, "-f", small, "config", env=cap), str(tmp_path / "big.env"), "larger than 4,096 bytes")
    # Under the cap, the same files load; a cap that is not a size is an error of its own.
    assert composer(tmp_path, "-f", big, "config", env={"COMPOSER_MAX_FILE_SIZE": "1m"}).returncode == 0
    refused(composer(tmp_path, "-f", small, "config", env={"COMPOSER_MAX_FILE_SIZE": "lots"}), small,
            "COMPOSER_MAX_FILE_SIZE=lots: not a positive size")


# --- numbers ------------------------------------------------------------------------------

# (the service attribute, what the one-line error says). v2 on each, for the record.
NUMBERS = [
    ("mem_limit: 1e400", "invalid size: '1e400'"),  # v2: ParseFloat "1e400": value out of range
    ("mem_limit: " + "9" * 5000, "value out of range"),  # v2: the same; composer: OverflowError
    ("mem_limit: .inf", "must be a finite number"),  # v2: drops it (0)
    ("mem_limit: .nan", "must be a finite number"),  # v2: drops it (0)
    ("mem_limit: 99999999999999999999g", "value out of range"),  # v2: -9223372036854775808
    ("memswap_limit: .inf", "must be a finite number"),  # v2: drops it
    ("shm_size: 1e400", "invalid size: '1e400'"),  # v2: value out of range
    ("cpus: .inf", "must be a finite number"),  # v2: cpus: .inf
    ("cpus: .nan", "must be a finite number"),  # v2: cpus: .nan
    ("cpus: inf", "not a finite number"),  # v2: cpus: .inf
    ("cpus: 1e400", "value out of range"),  # v2: the same
    ("pids_limit: 99999999999999999999", "value out of range"),  # v2: -9223372036854775808
    ("pids_limit: 18446744073709551615", "value out of range"),  # v2: -1
    ("pids_limit: .inf", "must be a finite number"),  # v2: -9223372036854775808
    ("cpu_shares: 1e300", "value out of range"),  # v2: -9223372036854775808
    ("cpu_shares: '99999999999999999999'", "value out of range"),  # v2: the same
    ("cpu_period: .nan", "must be a finite number"),  # v2: -9223372036854775808
    ("ulimits: {nofile: {soft: 1e300, hard: 1}}", "value out of range"),  # v2: panics
    ("ulimits: {nofile: 18446744073709551615}", "value out of range"),  # v2: invalid type uint64
    ("healthcheck: {interval: 99999999999h}", "invalid duration"),  # v2: the same
    ("healthcheck: {retries: .inf}", "must be a finite number"),  # v2: 9223372036854775808
    ("stop_grace_period: 99999999999h", "invalid duration"),
    ("deploy: {resources: {limits: {cpus: .nan}}}", "must be a finite number"),  # v2: .nan
    ("deploy: {resources: {limits: {cpus: 'inf'}}}", "not a finite number"),  # v2: .inf
    ("deploy: {resources: {limits: {memory: 1e400}}}", "invalid size"),  # v2: value out of range
    ("deploy: {resources: {limits: {pids: 99999999999999999999}}}", "value out of range"),  # v2: wraps
    ("deploy: {update_config: {max_failure_ratio: .inf}}", "must be a finite number"),  # v2: .inf
    ("blkio_config: {weight: 99999999999999999999}", "value out of range"),  # v2: drops it
    ("blkio_config: {device_read_bps: [{path: /dev/sda, rate: 99999999999999999999g}]}", "value out of range"),
    ("oom_score_adj: .inf", "must be a string or integer"),  # v2: the same
    ("volumes: [{type: tmpfs, target: /x, tmpfs: {size: 99999999999999999999}}]", "value out of range"),
]


@pytest.mark.parametrize(("attribute", "message"), NUMBERS, ids=[attribute[:40] for attribute, _ in NUMBERS])
def test_numbers_out_of_range_are_refused_with_their_position(tmp_path: Path, attribute: str, message: str) -> None:
    compose = write(tmp_path / "compose.yaml", f"{SERVICE}    {attribute}\n")
    line = refused(composer(tmp_path, "-f", compose, "config"), f"{compose}:4:", message)
    assert ": services.app." in line


def test_a_reused_anchor_prints_no_python_warning(tmp_path: Path) -> None:
    # Found by test_loader_fuzz: libyaml refuses a reused anchor, the pure parser that takes over
    # printed ruamel's ReusedAnchorWarning (eight lines of it) on stderr. v2 takes the later one.
    compose = write(tmp_path / "compose.yaml", "x-a: &a 1\n" + SERVICE + "    labels: &a {b: c}\nx-b: *a\n")
    result = composer(tmp_path, "-f", compose, "config")
    assert (result.returncode, result.stderr) == (0, "")
    assert "x-b:\n  b: c\n" in result.stdout
