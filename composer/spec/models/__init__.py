"""The typed, frozen model of a Compose project (pydantic v2), bound from the loader's tree.

Import from here: ``Project``, ``ServiceConfig`` and the nested models, ``bind_project``.
"""

from __future__ import annotations

from composer.spec.models.bind import bind_project
from composer.spec.models.project import Project
from composer.spec.models.resources import (
    ConfigObjConfig,
    IPAMConfig,
    IPAMPool,
    ModelConfig,
    NetworkConfig,
    SecretConfig,
    VolumeConfig,
)
from composer.spec.models.scalars import ByteSize, ComposeModel, Duration, FrozenDict, freeze, thaw
from composer.spec.models.service import (
    BindOptions,
    BlkioConfig,
    BlkioLimit,
    BlkioWeight,
    BuildConfig,
    CredentialSpec,
    DependsOnCondition,
    DeployConfig,
    DevelopConfig,
    DeviceMapping,
    DeviceRequest,
    DiscreteResourceSpec,
    EnvFile,
    ExtendsConfig,
    FileMount,
    GenericResource,
    Healthcheck,
    ImageOptions,
    LoggingConfig,
    Placement,
    PlacementPreference,
    PortConfig,
    ProviderConfig,
    Resource,
    Resources,
    RestartPolicy,
    ServiceConfig,
    ServiceHook,
    ServiceModelConfig,
    ServiceNetworkConfig,
    ServiceVolume,
    TmpfsOptions,
    Ulimit,
    UpdateConfig,
    VolumeOptions,
    WatchRule,
)

__all__ = [
    "BindOptions", "BlkioConfig", "BlkioLimit", "BlkioWeight", "BuildConfig", "ByteSize", "ComposeModel",
    "ConfigObjConfig", "CredentialSpec", "DependsOnCondition", "DeployConfig", "DevelopConfig", "DeviceMapping",
    "DeviceRequest", "DiscreteResourceSpec", "Duration", "EnvFile", "ExtendsConfig", "FileMount", "FrozenDict",
    "GenericResource", "Healthcheck", "IPAMConfig", "IPAMPool", "ImageOptions", "LoggingConfig", "ModelConfig",
    "NetworkConfig", "Placement", "PlacementPreference", "PortConfig", "Project", "ProviderConfig", "Resource",
    "Resources", "RestartPolicy", "SecretConfig", "ServiceConfig", "ServiceHook", "ServiceModelConfig",
    "ServiceNetworkConfig", "ServiceVolume", "TmpfsOptions", "Ulimit", "UpdateConfig", "VolumeConfig",
    "VolumeOptions", "WatchRule", "bind_project", "freeze", "thaw",
]
