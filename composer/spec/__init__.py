"""The Compose file loader: one pipeline from YAML text to a typed, frozen project model.

    project = load_project(files=["compose.yaml"])      # -> Project (frozen pydantic models)
    loaded = load_config(ProjectOptions(...))           # -> LoadedConfig (the canonical tree)

Re-exports are lazy (module ``__getattr__``), so that ``composer config``, which only needs the
tree, never imports pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from composer._lazy import lazy_exports

if TYPE_CHECKING:
    from composer.spec.loader import LoadedConfig, LoadOptions, load_config
    from composer.spec.models import Project, ServiceConfig
    from composer.spec.options import ProjectOptions

__all__ = ["LoadOptions", "LoadedConfig", "Project", "ProjectOptions", "ServiceConfig", "load_config", "load_project"]

_LAZY = {
    "LoadOptions": "composer.spec.loader",
    "LoadedConfig": "composer.spec.loader",
    "load_config": "composer.spec.loader",
    "Project": "composer.spec.models",
    "ServiceConfig": "composer.spec.models",
    "ProjectOptions": "composer.spec.options",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)


def load_project(options: ProjectOptions | None = None, load: LoadOptions | None = None, **kwargs: Any) -> Project:
    """Load, resolve and bind a Compose project.

    ``kwargs`` are fields of ProjectOptions (``files``, ``project_name``, ``environment``,
    ``working_directory``...) or of LoadOptions (``services``, ``interpolate``...); they override
    ``options`` and ``load``. ``load_project(files=["compose.yaml"], services=["web"])``.

    :raises SpecError: the project is invalid; the error names file, line and model path.
    :raises TypeError: an unknown keyword argument.
    """
    from composer.spec.deepstack import run_deep
    from composer.spec.loader import LoadOptions, load_config
    from composer.spec.models.bind import bind_project
    from composer.spec.options import ProjectOptions

    project_fields = set(ProjectOptions._fields)
    load_fields = set(LoadOptions._fields)
    unknown = sorted(set(kwargs) - project_fields - load_fields)
    if unknown:
        raise TypeError(f"load_project() got an unexpected keyword argument {unknown[0]!r}")
    options = (options or ProjectOptions())._replace(
        **{key: value for key, value in kwargs.items() if key in project_fields}
    )
    load = (load or LoadOptions())._replace(
        **{key: value for key, value in kwargs.items() if key in load_fields}
    )
    final_options, final_load = options, load
    # Binding walks the tree as deep as the loader (x- extensions are frozen recursively).
    return run_deep(lambda: bind_project(load_config(final_options, final_load)), options.files)
