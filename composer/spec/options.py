"""Where a project comes from: its files, folder, environment, profiles and name.

This follows Compose v2's order of precedence:
- the process environment always wins over ``.env`` and ``--env-file`` values;
- ``.env`` is read from the project directory (``--project-directory`` or the current
  folder) before the Compose files are known, so it can set COMPOSE_FILE; once the files
  are known, the ``.env`` beside the first file is read too, for keys still unset;
- the project name comes from ``-p``, then COMPOSE_PROJECT_NAME, then ``name:``, then the
  project folder's name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from composer.errors import EnvFileError, ProjectNotFoundError, SourceLocation, SpecValidationError
from composer.spec.dotenv import DotenvError, read_dotenv_file

DEFAULT_FILENAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
DEFAULT_OVERRIDE_FILENAMES = (
    "compose.override.yml", "compose.override.yaml",
    "docker-compose.override.yml", "docker-compose.override.yaml",
)
STDIN = "-"


class ProjectOptions(NamedTuple):
    """What the user asked for, before anything is resolved (the CLI's global flags)."""

    files: Sequence[str] = ()
    project_name: str | None = None
    project_directory: str | None = None
    env_files: Sequence[str] = ()
    profiles: Sequence[str] = ()
    environment: Mapping[str, str] | None = None  # None: the process environment
    working_directory: str | None = None  # None: the process's current folder


class ResolvedOptions(NamedTuple):
    """Files, folder and environment once v2's precedence rules have run."""

    files: list[str]
    working_dir: str
    environment: dict[str, str]
    profiles: list[str]
    project_name: str | None
    warnings: list[str]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "y", "on")


def _load_env_files(paths: Sequence[str], environment: dict[str, str], *, required: bool) -> None:
    """Add the variables of ``paths`` that ``environment`` does not set yet."""
    loaded: dict[str, str] = {}
    for path in paths:
        if not os.path.exists(path):
            if required:
                raise EnvFileError(f"couldn't find env file: {os.path.abspath(path)}",
                                   location=SourceLocation(os.path.abspath(path)))
            continue
        if os.path.isdir(path):
            continue

        def lookup(name: str) -> str | None:
            return environment[name] if name in environment else loaded.get(name)

        try:
            loaded.update(read_dotenv_file(path, lookup))
        except DotenvError as exc:
            raise EnvFileError(_without_prefix(exc.message), location=SourceLocation(path, exc.line)) from None
    for key, value in loaded.items():
        environment.setdefault(key, value)


def _without_prefix(message: str) -> str:
    """Drop ``failed to read <path>:``: the location already names the file."""
    if message.startswith("failed to read ") and ": " in message:
        return message.split(": ", 1)[1]
    return message


def _env_file_paths(options: ProjectOptions, base_dir: str, environment: Mapping[str, str]) -> list[str]:
    if options.env_files:
        return [os.path.join(base_dir, path) for path in options.env_files]
    if "COMPOSE_ENV_FILES" in environment:
        return [os.path.join(base_dir, path) for path in environment["COMPOSE_ENV_FILES"].split(",") if path]
    return [os.path.join(base_dir, ".env")]


def find_default_files(start_dir: str) -> tuple[list[str], list[str]]:
    """Search ``start_dir`` and its parents for compose.yaml & co and their override file."""
    warnings: list[str] = []
    folder = os.path.abspath(start_dir)
    while True:
        found = [name for name in DEFAULT_FILENAMES if os.path.isfile(os.path.join(folder, name))]
        if found:
            if len(found) > 1:
                warnings.append(
                    f"Found multiple config files with supported names: "
                    f"{', '.join(os.path.join(folder, name) for name in found)}\n"
                    f"Using {os.path.join(folder, found[0])}"
                )
            files = [os.path.join(folder, found[0])]
            overrides = [name for name in DEFAULT_OVERRIDE_FILENAMES if os.path.isfile(os.path.join(folder, name))]
            if overrides:
                files.append(os.path.join(folder, overrides[0]))
            return files, warnings
        parent = os.path.dirname(folder)
        if parent == folder:
            raise ProjectNotFoundError(
                "no configuration file provided: not found",
                hint="create a compose.yaml, or name one with -f",
            )
        folder = parent


def resolve_options(options: ProjectOptions) -> ResolvedOptions:
    """Apply v2's precedence rules; read ``.env`` files; find the Compose files.

    :raises ProjectNotFoundError: no Compose file is found, or a named one is missing.
    :raises EnvFileError: an ``--env-file`` is missing or malformed.
    """
    cwd = os.path.abspath(options.working_directory or os.getcwd())
    environment = dict(os.environ if options.environment is None else options.environment)
    environment.setdefault("PWD", cwd)
    project_dir = os.path.join(cwd, options.project_directory) if options.project_directory else None
    disable_dotenv = _truthy(environment.get("COMPOSE_DISABLE_ENV_FILE"))
    explicit_env_files = bool(options.env_files)
    if not disable_dotenv or explicit_env_files:
        paths = _env_file_paths(options, project_dir or cwd, environment)
        _load_env_files(paths, environment, required=explicit_env_files)
    warnings: list[str] = []
    files = _config_files(options, cwd, project_dir, environment, warnings)
    working_dir = project_dir or (
        os.path.dirname(files[0]) if files and files[0] != STDIN else cwd
    )
    if (not disable_dotenv or explicit_env_files) and working_dir != (project_dir or cwd):
        paths = _env_file_paths(options, working_dir, environment)
        _load_env_files(paths, environment, required=False)
    profiles = list(options.profiles)
    if not profiles and environment.get("COMPOSE_PROFILES"):
        profiles = [name.strip() for name in environment["COMPOSE_PROFILES"].split(",") if name.strip()]
    project_name = options.project_name or environment.get("COMPOSE_PROJECT_NAME") or None
    return ResolvedOptions(files, working_dir, environment, profiles, project_name, warnings)


def _config_files(
    options: ProjectOptions, cwd: str, project_dir: str | None, environment: Mapping[str, str],
    warnings: list[str],
) -> list[str]:
    names = list(options.files)
    if not names and environment.get("COMPOSE_FILE"):
        separator = environment.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        names = [name for name in environment["COMPOSE_FILE"].split(separator) if name]
    if not names:
        files, found_warnings = find_default_files(project_dir or cwd)
        warnings.extend(found_warnings)
        return files
    files = []
    for name in names:
        if name == STDIN:
            files.append(STDIN)
            continue
        path = os.path.join(cwd, os.path.expanduser(name))
        if not os.path.exists(path):
            raise ProjectNotFoundError(f"open {path}: no such file or directory", location=SourceLocation(path))
        files.append(os.path.abspath(path))
    return files


_NAME_CHARS = re.compile(r"[a-z0-9_-]")
_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def normalize_project_name(name: str) -> str:
    """v2's normalisation: lower case, only [a-z0-9_-], no leading ``_`` or ``-``."""
    return "".join(_NAME_CHARS.findall(name.lower())).lstrip("_-")


def is_valid_project_name(name: str) -> bool:
    return bool(_VALID_NAME.match(name))


def checked_project_name(name: str) -> str:
    """``name`` as given (``-p``, COMPOSE_PROJECT_NAME), if v2 would accept it.

    :raises SpecValidationError: it would not, in v2's words.
    """
    if not is_valid_project_name(name):
        raise SpecValidationError(
            f'invalid project name "{name}": must consist only of lowercase alphanumeric characters, '
            "hyphens, and underscores as well as start with a letter or number"
        )
    return name
