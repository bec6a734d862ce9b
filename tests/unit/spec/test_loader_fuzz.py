"""Property-based fuzzing of the loader (issue 15): whatever the Compose text, loading it
returns a project or raises one of composer's own errors, and writes nothing.

Three generators, each on a fixed budget (derandomized: the same examples on every run, no
example database written): YAML documents built from random trees (block and flow styles,
anchors and aliases, merge keys, ``!reset``/``!override``, huge numbers, inf/nan,
interpolation), Compose services whose attributes get such values or Compose-shaped ones
with hostile parts, and token soup that is rarely valid YAML. Each example goes through the
whole pipeline and the typed models (``load_project``), and through ``config``'s renderer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError
from composer.spec import load_project
from composer.spec.canonical import SERVICE_RULES
from composer.spec.config_output import ConfigRequest, render_config
from composer.spec.options import ProjectOptions

BUDGET = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NASTY_SCALARS = [
    ".inf", "-.inf", ".nan", ".NaN", "1e400", "-1e400", "99999999999999999999", "18446744073709551616",
    "-9223372036854775809", "0x" + "F" * 20, "0b" + "1" * 70, "0o" + "7" * 30, "0777", "089", "1_000", "1e3", "-0",
    "~", "null", "yes", "no", "on", "true", "False", "''", '""', "'${X}'", '"${X:-d}"', '"${X:?boom}"', '"$$X"',
    '"${"', '"${X:-${Y:-${Z}}}"', '"${X:+${X}}"', '"$"', "'80:80'", "8080-8090:80/udp", "1.5g", "512m", "-1",
    "1h30m", "10s", "'10x'", "99999999999h", "!!str 1", "!!int 12", "!!float x", "!!binary aGk=", "a b",
    "'a: b'", "'- x'", "'#x'", "\"\\u0000\"", "\"\\x85\"", "'\u00e9'", "'../../../x'", "/dev/zero", ".", "",
]
KEYS = sorted({*SERVICE_RULES, "build", "cpus", "pids_limit", "oom_score_adj", "cpu_shares", "scale",
               "restart", "container_name", "x-a", "x-b", "a", "0", "'1'", "'<<'", "'key with space'"})
TOP_KEYS = ["services", "networks", "volumes", "secrets", "configs", "include", "name", "x-top", "version"]
ENVIRONMENT = {"X": "1e400", "Y": ".inf", "Z": "9" * 300, "HOME": "/nonexistent"}


class Node:
    """A YAML node to print: a scalar's text, or a collection in block or flow style."""

    def __init__(self, kind: str, value: Any, flow: bool = False, anchor: str | None = None) -> None:
        self.kind, self.value, self.flow, self.anchor = kind, value, flow, anchor


scalars = st.one_of(
    st.sampled_from(NASTY_SCALARS),
    st.integers(min_value=300, max_value=5000).map(lambda digits: "9" * digits),
    st.integers(min_value=-(1 << 70), max_value=1 << 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="abc019$-_:{}[]/. ", max_size=8).map(lambda text: repr(text).replace("\\", "\\\\")),
).map(lambda text: Node("scalar", text))

aliases = st.sampled_from(["*a", "*b", "*c"]).map(lambda text: Node("scalar", text))
# Values shaped as Compose wants them, with hostile parts: most examples should get past the
# schema to canonicalisation, merging, normalisation and binding.
PLAUSIBLE = [
    "['80:80', '${X}:80', 8080-8090:80/udp, '127.0.0.1::5000']", "[{target: 80, published: '${Z}'}]",
    "{A: '${X}', B: .inf, C: 1e400, D: ~}", "[A=1, 'B=${Y:-2}', C]", "[/a:/b:ro, 'data:/d', {type: tmpfs, target: /t}]",
    "{test: [CMD, true], interval: 99999999999h, retries: .nan}", "{resources: {limits: {cpus: 'inf', memory: 1e400}}}",
    "{nofile: {soft: 1e300, hard: 1}, nproc: 65535}", "[{path: /dev/zero}, {path: x.env, required: false}]",
    "'echo ${X} $$HOME'", "[sh, -c, 'exit 0']", "{context: ., args: {A: '${Z}'}}", "{db: {condition: service_healthy}}",
    "{front: {aliases: [a]}, back: ~}", "[front]", "'${X:?refused}'", "'${X:-${Y:-${Z}}}'",
]
plausible = st.sampled_from(PLAUSIBLE).map(lambda text: Node("scalar", text))
ANCHORS = "x-anchors:\n  a: &a {x: 1}\n  b: &b [1, 2]\n  c: &c '${X}'\n"


def first_of_each(entries: list[Any]) -> list[Any]:
    """Entries with distinct keys (their first element): a repeated key is refused at once.
    (Not ``unique_by``: its filtering makes Hypothesis print the strategy's 30 kB repr.)"""
    kept: dict[str, Any] = {}
    for entry in entries:
        kept.setdefault(entry[0], entry)
    return list(kept.values())


def collections(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    anchors = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(["a", "b", "c"]))
    sequences = st.builds(lambda items, flow, anchor: Node("seq", items, flow, anchor),
                          st.lists(children, max_size=4), st.booleans(), anchors)
    pairs = st.lists(st.tuples(st.sampled_from([*KEYS, "<<"]), children), max_size=4).map(first_of_each)
    mappings = st.builds(lambda items, flow, anchor: Node("map", items, flow, anchor), pairs, st.booleans(), anchors)
    return st.one_of(sequences, mappings)


leaves = st.one_of(scalars, scalars, scalars, aliases)  # three scalars for one alias
trees = st.one_of(plausible, st.recursive(leaves, collections, max_leaves=24))
tags = st.sampled_from(["", "", "", "!reset ", "!override ", "!custom "])


def flow_text(node: Node) -> str:
    if node.kind == "scalar":
        return str(node.value)
    prefix = f"&{node.anchor} " if node.anchor else ""
    if node.kind == "seq":
        return prefix + "[" + ", ".join(flow_text(item) for item in node.value) + "]"
    return prefix + "{" + ", ".join(f"{key}: {flow_text(item)}" for key, item in node.value) + "}"


def block_lines(node: Node, indent: int) -> list[str]:
    """The lines of a collection's body; scalars and flow collections are written inline."""
    pad = " " * indent
    lines: list[str] = []
    entries = node.value if node.kind == "map" else [("-", item) for item in node.value]
    for key, item in entries:
        lead = f"{pad}- " if node.kind == "seq" else f"{pad}{key}:"
        if item.kind == "scalar" or item.flow or not item.value:
            lines.append(f"{lead} {flow_text(item)}")
            continue
        anchor = f" &{item.anchor}" if item.anchor else ""
        lines.append(f"{lead.rstrip()}{anchor}")
        lines.extend(block_lines(item, indent + 2))
    return lines


def document(top: list[tuple[str, str, Node]]) -> str:
    lines: list[str] = []
    for key, tag, node in top:
        if node.kind == "scalar" or node.flow or not node.value:
            lines.append(f"{key}: {tag}{flow_text(node)}")
        else:
            anchor = f" &{node.anchor}" if node.anchor else ""
            lines.append(f"{key}:{' ' + tag.strip() if tag else ''}{anchor}")
            lines.extend(block_lines(node, 2))
    return "\n".join(lines) + "\n"


yaml_documents = st.lists(st.tuples(st.sampled_from(TOP_KEYS), tags, trees), min_size=1, max_size=4).map(
    lambda top: ANCHORS + document(first_of_each(top)))


def service_document(attributes: list[tuple[str, str, Node]], name: str) -> str:
    body = document(attributes)
    indented = "".join(f"    {line}\n" for line in body.splitlines())
    return f"{ANCHORS}services:\n  {name}:\n    image: busybox\n{indented}"


services = st.builds(service_document, st.lists(st.tuples(st.sampled_from(KEYS), tags, trees), max_size=5).map(
    first_of_each),
                     st.sampled_from(["web", "a", "x-y", "'1'"]))

TOKENS = ["[", "]", "{", "}", ", ", ": ", "- ", "? ", "&a ", "*a", "<<: ", "!reset ", "!!map ", "\n", "\n  ", "  ",
          "services", "image", "x", "'", '"', "#", "|\n  ", ">-\n ", "${X}", "${", "$$", "---\n", "...\n",
          "%YAML 1.2\n", "\t", ".inf", "1e400", "9" * 40, "\\", "\x00", "\ufeff", "\u2028"]
soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def snapshot(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


def check_load(folder: Path, text: str) -> None:
    """The invariant: a project or a ComposerError, and the folder exactly as it was."""
    compose = folder / "compose.yaml"
    compose.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = snapshot(folder)
    options = ProjectOptions(files=(str(compose),), environment=ENVIRONMENT, working_directory=str(folder))
    try:
        load_project(options)
    except ComposerError:
        pass
    try:
        render_config(options, ConfigRequest(format="json"))
    except ComposerError:
        pass
    assert snapshot(folder) == before
    compose.unlink()


@BUDGET
@given(text=yaml_documents)
def test_random_yaml_documents_load_or_fail_cleanly(tmp_path: Path, text: str) -> None:
    check_load(tmp_path, text)


@BUDGET
@given(text=services)
def test_random_service_attributes_load_or_fail_cleanly(tmp_path: Path, text: str) -> None:
    check_load(tmp_path, text)


@BUDGET
@given(text=soup)
def test_token_soup_loads_or_fails_cleanly(tmp_path: Path, text: str) -> None:
    check_load(tmp_path, text)


def test_the_printer_writes_yaml_that_loads(tmp_path: Path) -> None:
    # A fuzzer whose every input dies in the parser tests nothing else: documents printed from
    # valid trees (block and flow, anchors, aliases) must load all the way to a project.
    texts = [
        service_document([("cpus", "", Node("scalar", "1.5")),
                          ("labels", "", Node("map", [("a", Node("scalar", "1")), ("b", Node("scalar", "x"))]))],
                         "web"),
        service_document([("environment", "", Node("seq", [Node("scalar", "'A=1'")], flow=True, anchor="a")),
                          ("x-a", "", Node("scalar", "*a"))], "a"),
        service_document([("x-a", "", Node("map", [("k", Node("seq", [Node("scalar", "1")], anchor="b"))], anchor="a")),
                          ("x-b", "", Node("map", [("<<", Node("scalar", "*a")), ("j", Node("scalar", "*b"))]))], "a"),
    ]
    for text in texts:
        (tmp_path / "compose.yaml").write_text(text, encoding="utf-8")
        project = load_project(files=[str(tmp_path / "compose.yaml")], environment=ENVIRONMENT)
        assert project.services, text
