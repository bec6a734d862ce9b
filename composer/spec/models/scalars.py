"""Immutable building blocks of the typed model: frozen mappings, byte sizes, durations, extensions.

Every collection in the model is immutable: lists are tuples, mappings are ``FrozenDict``
(typed as ``Mapping``). Values the loader keeps in Go's printed form become values with
behaviour here (``Duration``), and ``ComposeModel`` is the base of every model class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    SerializerFunctionWrapHandler,
    WrapSerializer,
    model_validator,
)
from pydantic_core import core_schema

from composer.spec.units import UnitError, format_duration, parse_bytes, parse_duration, seconds_to_nanos

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(Mapping[K, V]):
    """A read-only mapping that keeps insertion order; hashable when its values are."""

    __slots__ = ("_data", "_hash")
    _data: dict[K, V]
    _hash: int | None

    def __init__(self, data: Mapping[K, V] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))
        object.__setattr__(self, "_hash", None)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __hash__(self) -> int:
        if self._hash is None:
            value = hash(frozenset(self._data.items()))
            object.__setattr__(self, "_hash", value)
            return value
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return bool(self._data == dict(other.items()))
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (self._data,))


EMPTY: FrozenDict[Any, Any] = FrozenDict()


def freeze(value: Any) -> Any:
    """A deep, immutable copy of a YAML-like value: dicts become FrozenDict, lists tuples."""
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of ``freeze``: plain dicts and lists, e.g. for JSON output."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


def _to_frozen_dict(value: Mapping[Any, Any]) -> FrozenDict[Any, Any]:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


def _serialize_mapping(value: Mapping[Any, Any], handler: SerializerFunctionWrapHandler) -> Any:
    return handler(dict(value))


FrozenMapping = Annotated[Mapping[K, V], AfterValidator(_to_frozen_dict), WrapSerializer(_serialize_mapping)]
"""A ``Mapping`` field validated like a dict and stored as a FrozenDict."""


def go_string(value: Any) -> Any:
    """A scalar as Go prints it (``true``, ``1``, ``1.5``); other values are left for validation."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return str(value)
    return value


def _string_values(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: go_string(item) for key, item in value.items()}
    return value


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


StrMapping = Annotated[FrozenMapping[str, str], BeforeValidator(_string_values), BeforeValidator(_none_as_empty)]
"""labels-like mappings: every value a string (numbers and booleans as Go prints them)."""

OptionalStrMapping = Annotated[
    FrozenMapping[str, str | None], BeforeValidator(_string_values), BeforeValidator(_none_as_empty)
]
"""environment-like mappings: ``None`` is a variable declared without a value."""


def _string_items(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [go_string(item) for item in value]
    return value


StrTuple = Annotated[tuple[str, ...], BeforeValidator(_string_items), BeforeValidator(lambda v: () if v is None else v)]
"""A list of strings (numbers as Go prints them); ``null`` reads as empty."""


def _byte_size(value: Any) -> Any:
    if isinstance(value, str | float) and not isinstance(value, bool):
        try:
            return parse_bytes(value)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
    return value


ByteSize = Annotated[int, BeforeValidator(_byte_size)]
"""A size in bytes (``512m`` in the file is 536870912 here); -1 means unlimited where Compose allows it."""


def _file_mode(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        try:
            return int(text, 8)
        except ValueError:
            raise ValueError(f"invalid file mode {value!r}") from None
    return value


FileModeBits = Annotated[int, BeforeValidator(_file_mode)]
"""Permission bits; a string in the file is read as octal (``"1777"``), a number as is."""


class Duration:
    """A Go ``time.Duration``: nanoseconds, printed as Go prints it (``1m30s``, ``500ms``)."""

    __slots__ = ("nanoseconds",)
    nanoseconds: int

    def __init__(self, nanoseconds: int) -> None:
        object.__setattr__(self, "nanoseconds", int(nanoseconds))

    @classmethod
    def parse(cls, value: str | float | Duration) -> Duration:
        """From Go syntax (``1m30s``) or a number of seconds.

        :raises ValueError: not a duration.
        """
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool):
            raise ValueError(f"invalid duration {value!r}")
        try:
            if isinstance(value, int | float):
                return cls(seconds_to_nanos(value))
            if isinstance(value, str):
                return cls(parse_duration(value))
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        raise ValueError(f"invalid duration {value!r}")

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        """:raises UnitError: not a finite duration Go can hold."""
        return cls(seconds_to_nanos(seconds))

    @property
    def seconds(self) -> float:
        return self.nanoseconds / 1_000_000_000

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Duration is immutable")

    def __str__(self) -> str:
        return format_duration(self.nanoseconds)

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Duration):
            return self.nanoseconds == other.nanoseconds
        return NotImplemented

    def __lt__(self, other: Duration) -> bool:
        return self.nanoseconds < other.nanoseconds

    def __le__(self, other: Duration) -> bool:
        return self.nanoseconds <= other.nanoseconds

    def __hash__(self) -> int:
        return hash(self.nanoseconds)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Duration, (self.nanoseconds,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


def _freeze_extensions(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    frozen: FrozenDict[str, Any] = freeze(value)
    return frozen


def _serialize_extensions(value: Mapping[str, Any], handler: SerializerFunctionWrapHandler) -> Any:
    return handler(thaw(value))


Extensions = Annotated[Mapping[str, Any], AfterValidator(_freeze_extensions), WrapSerializer(_serialize_extensions)]
"""``x-`` keys and their values, deeply frozen."""


class ComposeModel(BaseModel):
    """Base of every model: frozen, no unknown attributes, ``x-`` keys gathered in ``extensions``."""

    # defer_build: validators and serializers are built on first use, not at import, so that a project
    # unpickled from the CLI's cache (composer.spec.cache) never pays for them (~60 ms).
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=(), defer_build=True)

    extensions: Extensions = EMPTY
    """The ``x-*`` attributes written at this level, keyed by their full name (``x-foo``)."""

    @model_validator(mode="before")
    @classmethod
    def _collect_extensions(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not any(isinstance(key, str) and key.startswith("x-") for key in data):
            return data
        fields: dict[str, Any] = {}
        extensions: dict[str, Any] = dict(data.get("extensions") or {})
        for key, value in data.items():
            if isinstance(key, str) and key.startswith("x-"):
                extensions[key] = value
            else:
                fields[key] = value
        fields["extensions"] = extensions
        return fields


def none_as(default: Callable[[], Any]) -> BeforeValidator:
    """A validator reading ``null`` as ``default()`` (for sections where null means empty)."""
    return BeforeValidator(lambda value: default() if value is None else value)


def build_validators() -> None:
    """Build every model's validators and serializers now (``defer_build`` leaves them to first
    use): the CLI's command server does it once, before it forks the workers that run commands."""
    pending: list[type[ComposeModel]] = [ComposeModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        with contextlib.suppress(Exception):
            model.model_rebuild(force=True)
