"""composer: a Compose-first multi-container orchestrator.

The library API (composer.api) and the exception tree (composer.errors) are re-exported here,
lazily: ``import composer`` imports nothing else, so the CLI starts as fast as before.
See docs/library.md.
"""

from __future__ import annotations

from composer._lazy import lazy_exports

TYPE_CHECKING = False  # not typing's: the command line's client imports nothing it can avoid

if TYPE_CHECKING:
    from composer.api import (
        AsyncProject,
        Container,
        ExecResult,
        HostPort,
        LogLine,
        PortBinding,
        Project,
        aremove_stale_stacks,
        remove_stale_stacks,
    )
    from composer.errors import (
        AlreadyExistsError,
        BackendError,
        BackendUnavailableError,
        ComposerError,
        DependencyConditionError,
        DependencyCycleError,
        DigestMismatchError,
        EnvFileError,
        ExecutionError,
        ExtendsError,
        ExternalResourceNotFoundError,
        HookError,
        ImageBuildError,
        ImageNotFoundError,
        ImagePullError,
        ImagePushError,
        ImageReferenceError,
        ImageStoreError,
        IncludeError,
        InterpolationError,
        MergeError,
        NotFoundError,
        OperationFailure,
        PlanError,
        PortInUseError,
        ProjectNotFoundError,
        RegistryAuthError,
        SourceLocation,
        SpecError,
        SpecValidationError,
        UnsafeLayerError,
        UnsupportedFeatureError,
        UsageError,
        WaitTimeoutError,
        YamlSyntaxError,
    )
    from composer.owner import Owner

__all__ = [
    "AlreadyExistsError",
    "AsyncProject",
    "BackendError",
    "BackendUnavailableError",
    "ComposerError",
    "Container",
    "DependencyConditionError",
    "DependencyCycleError",
    "DigestMismatchError",
    "EnvFileError",
    "ExecResult",
    "ExecutionError",
    "ExtendsError",
    "ExternalResourceNotFoundError",
    "HookError",
    "HostPort",
    "ImageBuildError",
    "ImageNotFoundError",
    "ImagePullError",
    "ImagePushError",
    "ImageReferenceError",
    "ImageStoreError",
    "IncludeError",
    "InterpolationError",
    "LogLine",
    "MergeError",
    "NotFoundError",
    "OperationFailure",
    "Owner",
    "PlanError",
    "PortBinding",
    "PortInUseError",
    "Project",
    "ProjectNotFoundError",
    "RegistryAuthError",
    "SourceLocation",
    "SpecError",
    "SpecValidationError",
    "UnsafeLayerError",
    "UnsupportedFeatureError",
    "UsageError",
    "WaitTimeoutError",
    "YamlSyntaxError",
    "aremove_stale_stacks",
    "remove_stale_stacks",
]

_LAZY = {
    **dict.fromkeys((
        "AsyncProject", "Container", "ExecResult", "HostPort", "LogLine", "PortBinding", "Project",
        "aremove_stale_stacks", "remove_stale_stacks",
    ), "composer.api"),
    **dict.fromkeys((
        "AlreadyExistsError", "BackendError", "BackendUnavailableError", "ComposerError", "DependencyConditionError",
        "DependencyCycleError", "DigestMismatchError", "EnvFileError", "ExecutionError", "ExtendsError",
        "ExternalResourceNotFoundError", "HookError", "ImageBuildError", "ImageNotFoundError", "ImagePullError",
        "ImagePushError",
        "ImageReferenceError", "ImageStoreError", "IncludeError", "InterpolationError", "MergeError",
        "NotFoundError", "OperationFailure", "PlanError", "PortInUseError", "ProjectNotFoundError",
        "RegistryAuthError", "SourceLocation", "SpecError", "SpecValidationError", "UnsafeLayerError",
        "UnsupportedFeatureError", "UsageError", "WaitTimeoutError", "YamlSyntaxError",
    ), "composer.errors"),
    "Owner": "composer.owner",
}



__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
del TYPE_CHECKING
