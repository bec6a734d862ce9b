"""composer's exception hierarchy: every error the library raises is a ComposerError.

    ComposerError                  base; ``hint`` may suggest a fix
    ├── SpecError                  invalid Compose input; carries a SourceLocation and a model path
    │   ├── ProjectNotFoundError   no Compose file found, or a named file is missing
    │   ├── YamlSyntaxError        the YAML does not parse, or is an alias bomb
    │   ├── InterpolationError     ``${VAR:?msg}`` unset, or a malformed ``${...}``
    │   ├── EnvFileError           a ``.env`` / ``env_file`` file is missing or malformed
    │   ├── IncludeError           ``include:`` cannot be resolved (cycle, conflict, missing file)
    │   ├── ExtendsError           ``extends:`` cannot be resolved (cycle, unknown service)
    │   ├── MergeError             an override cannot be merged into its base
    │   └── SpecValidationError    the schema or a consistency rule rejects the project
    ├── UsageError                 a command was called with arguments that cannot work
    ├── ImageReferenceError        an image reference is malformed
    ├── BackendError               an engine operation failed; ``backend_name`` and ``operation`` say where
    │   ├── BackendUnavailableError    the engine does not answer (daemon down, socket missing)
    │   ├── NotFoundError          a container, network, volume or image does not exist
    │   │   └── ImageNotFoundError the image is neither local nor pullable
    │   ├── AlreadyExistsError     a resource with that name exists already
    │   ├── PortInUseError         a published host port is already allocated
    │   ├── ImagePullError         pulling an image failed (registry unreachable, bad manifest...)
    │   │   ├── DigestMismatchError    a blob or layer does not match its digest / diff_id
    │   │   ├── RegistryAuthError      the registry refused the credentials
    │   │   └── UnsafeLayerError       a layer entry would write outside its directory
    │   ├── ImageStoreError        the native image store cannot be read or written
    │   ├── ImageBuildError        building a service's image failed; names the service and the failing step
    │   ├── ImagePushError         pushing an image failed
    │   └── UnsupportedFeatureError    the engine cannot do what the project asks (multi-platform build...)
    ├── PlanError                  the project cannot be reconciled with what exists
    │   ├── DependencyCycleError   services depend on each other in a cycle; ``cycle`` lists the path
    │   └── ExternalResourceNotFoundError   an ``external: true`` network or volume does not exist
    └── ExecutionError             operations of a plan failed; ``failures`` lists every one
        ├── DependencyConditionError   a ``depends_on`` condition failed (unhealthy, exited non-zero)
        └── WaitTimeoutError       a condition was not met in time (``up --wait --wait-timeout``)

The library never prints and never exits: the CLI turns these into one-line messages
and exit codes in one place (composer.cli).
"""

from __future__ import annotations

from typing import NamedTuple

# NamedTuples rather than dataclasses here and in the loader: importing dataclasses (and
# the inspect module it needs) costs 8 ms on every ``composer config``.


class SourceLocation(NamedTuple):
    """Where a YAML node came from; line and column are 1-based."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class ComposerError(Exception):
    """Base of every error composer raises."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SpecError(ComposerError):
    """The Compose project is invalid.

    ``location`` points at the YAML node when one is known; ``path`` is the model path
    (``services.web.ports[0]``) of the offending value.
    """

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location
        self.path = path

    def __str__(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


class ProjectNotFoundError(SpecError):
    """No Compose file could be found, or a file given with -f does not exist."""


class YamlSyntaxError(SpecError):
    """The YAML text is malformed, or expands beyond the alias limit."""


class InterpolationError(SpecError):
    """A ``${...}`` expression is malformed or a required variable is unset."""


class EnvFileError(SpecError):
    """A dotenv file is missing (and required) or cannot be parsed."""


class IncludeError(SpecError):
    """``include:`` cannot be resolved."""


class ExtendsError(SpecError):
    """``extends:`` cannot be resolved."""


class MergeError(SpecError):
    """An override file cannot be merged into its base."""


class SpecValidationError(SpecError):
    """The project breaks the Compose schema or a consistency rule."""


class UsageError(ComposerError):
    """A command was called with arguments that cannot work together."""


class PlanError(ComposerError):
    """The reconciler cannot build a plan from the project and what exists."""


class DependencyCycleError(PlanError):
    """Services depend on each other in a cycle; ``cycle`` is the path, first key repeated last."""

    def __init__(self, cycle: list[str], *, hint: str | None = None) -> None:
        super().__init__(f"cycle found: {' -> '.join(cycle)}", hint=hint)
        self.cycle = cycle


class ExternalResourceNotFoundError(PlanError):
    """An ``external: true`` network or volume does not exist; composer never creates one."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name} declared as external, but could not be found",
                         hint=f"create it first: docker {kind} create {name}")
        self.kind = kind
        self.name = name


class OperationFailure(NamedTuple):
    """One failed operation of a plan: its id, what it acted on, and why it failed."""

    op_id: int
    resource_id: str
    action: str  # the OpKind name, e.g. "StartContainer"
    error: BaseException

    def __str__(self) -> str:
        return str(self.error)


class HookError(ComposerError):
    """A ``post_start`` or ``pre_stop`` hook failed: v2's ``<service> hook exited with status N``."""


class ExecutionError(ComposerError):
    """Operations of a plan failed. ``failures`` holds every failure, in operation order; the
    operations that depended on them were not run."""

    def __init__(self, message: str, *, failures: tuple[OperationFailure, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failures = failures

    @classmethod
    def from_failures(cls, failures: tuple[OperationFailure, ...]) -> ExecutionError:
        """One error for all ``failures``; its message is theirs, joined (one line each)."""
        message = "\n".join(str(failure) for failure in failures) or "execution failed"
        return cls(message, failures=failures)


class DependencyConditionError(ExecutionError):
    """A ``depends_on`` condition failed: the dependency turned unhealthy or exited (non-zero)."""


class WaitTimeoutError(ExecutionError):
    """A condition was not met before its deadline."""


class BackendError(ComposerError):
    """An engine operation failed. Raised only by the backends' own error translators, so engine
    exception types never escape ``composer.backends``; ``operation`` names what was attempted."""

    def __init__(self, message: str, *, backend_name: str, operation: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.backend_name = backend_name
        self.operation = operation


class BackendUnavailableError(BackendError):
    """The engine does not answer: the daemon is down, or its socket or host is wrong."""


class NotFoundError(BackendError):
    """A container, network, volume or image does not exist."""


class ImageNotFoundError(NotFoundError):
    """The image is not present locally and cannot be pulled."""


class AlreadyExistsError(BackendError):
    """A resource with that name exists already (the executor decides whether that is success)."""


class PortInUseError(BackendError):
    """A published host port is already allocated by another container or process."""


class ImagePullError(BackendError):
    """Pulling an image failed for a reason other than a missing image."""


class ImageBuildError(BackendError):
    """Building a service's image failed; the message names the service and the failing step."""


class ImagePushError(BackendError):
    """Pushing an image failed (registry unreachable, access denied...)."""


class UnsupportedFeatureError(BackendError):
    """The engine cannot do what the project asks (several build platforms on the classic builder...)."""


class ImageReferenceError(ComposerError):
    """An image reference is malformed (``Busybox``, ``a:b:c``, a bad digest...)."""


class ImageStoreError(BackendError):
    """The native image store cannot be read or written (permissions, disk full, a damaged index)."""


class DigestMismatchError(ImagePullError):
    """Content does not match its digest: a blob against its descriptor, a layer against its diff_id."""


class RegistryAuthError(ImagePullError):
    """The registry refused the credentials (wrong password, no token, access denied)."""


class UnsafeLayerError(ImagePullError):
    """A layer tries to write outside its directory (absolute path, ``..``, a symlink used as a prefix)."""
