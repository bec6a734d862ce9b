"""Typed models of the top-level networks, volumes, secrets, configs and models.

``name`` is the engine-side name: the loader sets ``<project>_<key>`` unless the file names the
resource or it is external (then the key itself).
"""

from __future__ import annotations

from pydantic import Field

from composer.spec.models.scalars import EMPTY, ComposeModel, StrMapping, StrTuple


class IPAMPool(ComposeModel):
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: StrMapping = EMPTY


class IPAMConfig(ComposeModel):
    driver: str | None = None
    """None: the engine's default IPAM driver."""
    config: tuple[IPAMPool, ...] = ()
    options: StrMapping = EMPTY


class NetworkConfig(ComposeModel):
    name: str | None = None
    driver: str | None = None
    """None: ``bridge`` on a single engine."""
    driver_opts: StrMapping = EMPTY
    ipam: IPAMConfig = Field(default_factory=IPAMConfig)
    external: bool = False
    """True: created outside the project; composer neither creates nor removes it."""
    internal: bool = False
    enable_ipv4: bool | None = None
    """None: the engine default (enabled)."""
    enable_ipv6: bool | None = None
    """None: the engine default (disabled unless the daemon enables it)."""
    attachable: bool = False
    labels: StrMapping = EMPTY


class VolumeConfig(ComposeModel):
    name: str | None = None
    driver: str | None = None
    """None: the ``local`` driver."""
    driver_opts: StrMapping = EMPTY
    external: bool = False
    labels: StrMapping = EMPTY


class SecretConfig(ComposeModel):
    """A secret: its content comes from ``file`` (absolute) or the variable ``environment``,
    or it is ``external``."""

    name: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool = False
    labels: StrMapping = EMPTY
    driver: str | None = None
    driver_opts: StrMapping = EMPTY
    template_driver: str | None = None


class ConfigObjConfig(ComposeModel):
    """A config: its content comes from ``file`` (absolute), ``content`` (inline) or the
    variable ``environment``, or it is ``external``."""

    name: str | None = None
    content: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool = False
    labels: StrMapping = EMPTY
    template_driver: str | None = None


class ModelConfig(ComposeModel):
    """An AI model run by the model runner."""

    name: str | None = None
    model: str
    """The model reference (``ai/smollm2``)."""
    context_size: int | None = None
    runtime_flags: StrTuple = ()
