"""The last stage of the pipeline: the canonical tree bound into the frozen typed model.

Pydantic never shows through: a tree the models reject becomes a SpecValidationError that
names the model path of the value (``services.web.ports[0].target``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from composer.errors import SpecValidationError
from composer.spec.modelpath import PathKey, format_path
from composer.spec.models.project import Project

if TYPE_CHECKING:
    from composer.spec.loader import LoadedConfig

_TOP_LEVEL = ("services", "networks", "volumes", "secrets", "configs", "models")


def project_input(loaded: LoadedConfig) -> dict[str, Any]:
    """The input of ``Project.model_validate``: the tree plus what the loader knows besides."""
    tree = loaded.tree
    data: dict[str, Any] = {key: value for key, value in tree.items() if key.startswith("x-")}
    for key in _TOP_LEVEL:
        if tree.get(key) is not None:
            data[key] = tree[key]
    data.update(
        name=loaded.project_name,
        working_dir=loaded.working_dir,
        disabled_services=loaded.disabled,
        profiles=loaded.profiles,
        environment=loaded.environment,
        files=loaded.files,
        warnings=loaded.warnings,
    )
    return data


def bind_project(loaded: LoadedConfig) -> Project:
    """The typed project of a loaded configuration.

    :raises SpecValidationError: a value does not fit the model (a bug in an earlier stage,
        or a project loaded without interpolation whose ``${...}`` stand where numbers go).
    """
    data = project_input(loaded)
    try:
        return Project.model_validate(data)
    except ValidationError as exc:
        raise translate_error(exc, data) from None


def translate_error(exc: ValidationError, data: Any) -> SpecValidationError:
    """A SpecValidationError for the first error of ``exc``, with the model path in ``data``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = error_path(first, data)
    message = _message(first)
    hint = f"{len(errors) - 1} more error(s) in the project" if len(errors) > 1 else None
    return SpecValidationError(message, path=format_path(path) or None, hint=hint)


def error_path(error: ErrorDetails, data: Any) -> PathKey:
    """The Compose path of an error: its location, without pydantic's own steps (union members,
    validator names), found by walking ``data`` along the location."""
    path: list[str | int] = []
    current = data
    loc = error["loc"]
    for index, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list | tuple) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif index == len(loc) - 1 and error["type"] == "missing" and isinstance(part, str):
            path.append(part)
    if path and path[0] == "disabled_services":
        path[0] = "services"
    return tuple(path)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "additional property is not allowed"
    if kind == "missing":
        return "required attribute is missing"
    text = error["msg"].removeprefix("Value error, ")
    if "input" in error and not isinstance(error["input"], dict | list):
        text += f" (got {error['input']!r})"
    return text
