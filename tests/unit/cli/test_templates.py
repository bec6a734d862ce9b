"""``--format`` as the docker CLI reads it: table, json, table TEMPLATE, TEMPLATE."""

from __future__ import annotations

import pytest

from composer.cli.templates import parse, render
from composer.errors import UsageError

ROWS = [{"Name": "p-web-1", "State": "running", "Ports": ""}, {"Name": "p-db-1", "State": "exited", "Ports": "80"}]
HEADERS = {"Name": "NAME", "State": "STATE", "Ports": "PORTS"}


def test_formats() -> None:
    assert render("json", ROWS, default_table="", headers=HEADERS)[0] == \
        '{"Name":"p-web-1","State":"running","Ports":""}'
    assert render("{{.Name}}: {{upper .State}} {{json .Ports}}", ROWS, default_table="", headers=HEADERS) == [
        'p-web-1: RUNNING ""', 'p-db-1: EXITED "80"']
    assert render("table {{.Name}}\\t{{.State}}", ROWS, default_table="", headers=HEADERS) == [
        "NAME      STATE", "p-web-1   running", "p-db-1    exited"]
    assert render("table", ROWS, default_table="table {{.State}}", headers=HEADERS) == [
        "STATE", "running", "exited"]
    assert render("{{json .}}", ROWS[:1], default_table="", headers=HEADERS) == [
        '{"Name":"p-web-1","State":"running","Ports":""}']


@pytest.mark.parametrize("template", ["{{if .Name}}x{{end}}", "{{.Name | printf}}", "{{range .}}{{end}}"])
def test_what_composer_cannot_print_is_refused(template: str) -> None:
    with pytest.raises(UsageError, match="unsupported template action"):
        parse(template)


def test_an_unknown_field_is_one_line() -> None:
    with pytest.raises(UsageError, match="can't evaluate field Nope"):
        render("{{.Nope}}", ROWS, default_table="", headers=HEADERS)
