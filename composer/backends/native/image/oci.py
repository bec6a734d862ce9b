"""OCI image-spec pieces shared by the store, the registry client and the layer applier:
media types, descriptors, digests, ChainIDs and platform matching."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

# Layer media types -> compression ("" for a plain tar).
LAYER_COMPRESSION = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
}

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    """The hex part of a ``sha256:<hex>`` digest.

    :raises ValueError: not a sha256 digest (the only algorithm the store keeps).
    """
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise ValueError(f"unsupported digest {digest!r} (only sha256 is supported)")
    return match.group(1)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID of every prefix of ``diff_ids``: ``ChainID(L0)=DiffID(L0)``,
    ``ChainID(L0..n)=sha256(ChainID(L0..n-1) + " " + DiffID(Ln))``."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else sha256_digest(f"{chains[-1]} {diff_id}".encode()))
    return chains


class Descriptor(NamedTuple):
    media_type: str
    digest: str
    size: int
    platform: Mapping[str, Any] | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        digest = str(data.get("digest") or "")
        digest_hex(digest)
        size = data.get("size")
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"descriptor {digest} has no valid size")
        platform = data.get("platform")
        return cls(str(data.get("mediaType") or ""), digest, size,
                   platform if isinstance(platform, Mapping) else None, tuple(data.get("urls") or ()))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = dict(self.platform)
        return out


class Platform(NamedTuple):
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/amd64``, ``linux/arm/v7``, ``linux/arm64``."""
        parts = text.strip().lower().split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return normalize(cls(*parts))

    def __str__(self) -> str:
        return "/".join(part for part in self if part)


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}


def normalize(platform: Platform) -> Platform:
    arch = _ARCH_ALIASES.get(platform.architecture, platform.architecture)
    variant = platform.variant
    if platform.architecture == "armhf":
        variant = variant or "v7"
    elif platform.architecture == "armel":
        variant = variant or "v6"
    if arch == "arm64" and variant == "v8":
        variant = ""
    if arch == "arm" and not variant:
        variant = "v7"
    return Platform(platform.os, arch, variant)


def platform_rank(wanted: Platform, candidate: Mapping[str, Any] | None) -> int | None:
    """How well an index entry's ``platform`` suits ``wanted``: 0 is exact, higher is a worse but
    compatible match (arm/v6 for arm/v7), None is unusable (another OS or architecture, or an
    attestation's ``unknown/unknown``)."""
    if not candidate:
        return None
    have = normalize(Platform(str(candidate.get("os") or ""), str(candidate.get("architecture") or ""),
                              str(candidate.get("variant") or "")))
    wanted = normalize(wanted)
    if have.os != wanted.os or have.architecture != wanted.architecture:
        return None
    if have.variant == wanted.variant:
        return 0
    if wanted.architecture == "arm" and have.variant[:1] == "v" and wanted.variant[:1] == "v":
        try:
            gap = int(wanted.variant[1:]) - int(have.variant[1:])
        except ValueError:
            return None
        return gap if gap > 0 else None  # an older ARM variant runs on a newer CPU, not the reverse
    return None


def load_json(data: bytes, what: str) -> dict[str, Any]:
    """``data`` as a JSON object.

    :raises ValueError: not a JSON object; the message names ``what``.
    """
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value
