"""Test images made from local material: layer tarballs built entry by entry, OCI configs and
manifests, and pushes through composer's own registry client (no docker needed)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from composer.backends.native.image import oci
from composer.backends.native.image.registry import Endpoint, RegistryClient
from composer.image_reference import Reference, parse

MTIME = 1_700_000_000
BUSYBOX = "/bin/busybox"


class Member(NamedTuple):
    info: tarfile.TarInfo
    data: bytes = b""


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    return info


def file(name: str, data: bytes = b"", *, mode: int = 0o644, uid: int = 0, gid: int = 0,
         xattrs: Mapping[str, bytes] | None = None, mtime: int = MTIME) -> Member:
    info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    info.size = len(data)
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                            for key, value in xattrs.items()}
    return Member(info, data)


def directory(name: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> Member:
    return Member(_info(name, tarfile.DIRTYPE, mode, uid, gid, mtime))


def symlink(name: str, target: str) -> Member:
    info = _info(name, tarfile.SYMTYPE, 0o777)
    info.linkname = target
    return Member(info)


def hardlink(name: str, target: str) -> Member:
    info = _info(name, tarfile.LNKTYPE, 0o644)
    info.linkname = target
    return Member(info)


def chardev(name: str, major: int, minor: int, *, mode: int = 0o666) -> Member:
    info = _info(name, tarfile.CHRTYPE, mode)
    info.devmajor, info.devminor = major, minor
    return Member(info)


def blockdev(name: str, major: int, minor: int, *, mode: int = 0o600) -> Member:
    info = _info(name, tarfile.BLKTYPE, mode)
    info.devmajor, info.devminor = major, minor
    return Member(info)


def fifo(name: str) -> Member:
    return Member(_info(name, tarfile.FIFOTYPE, 0o644))


def whiteout(name: str) -> Member:
    parent, _, base = name.rstrip("/").rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}", mode=0o600)


def opaque(directory_name: str) -> Member:
    return file(f"{directory_name.rstrip('/')}/.wh..wh..opq", mode=0o600)


def tar_bytes(members: Iterable[Member]) -> bytes:
    """An uncompressed PAX tarball of ``members``, in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            archive.addfile(member.info, io.BytesIO(member.data) if member.info.isreg() else None)
    return buffer.getvalue()


def capability_xattr(capability: str = "cap_net_raw+ep") -> bytes:
    """The ``security.capability`` value setcap(8) writes for ``capability``."""
    setcap = shutil.which("setcap") or "/usr/sbin/setcap"
    with tempfile.NamedTemporaryFile() as probe:
        subprocess.run([setcap, capability, probe.name], check=True, capture_output=True)
        return os.getxattr(probe.name, "security.capability")


def busybox_layer() -> bytes:
    """Debian's static busybox as /bin/busybox with sh and true links: a runnable rootfs layer."""
    data = Path(BUSYBOX).read_bytes()
    return tar_bytes([directory("bin"), file("bin/busybox", data, mode=0o755), hardlink("bin/sh", "bin/busybox"),
                      symlink("bin/true", "busybox"), directory("tmp", mode=0o1777)])


class Image(NamedTuple):
    manifest: bytes
    manifest_digest: str
    config: bytes
    config_digest: str
    blobs: dict[str, bytes]  # digest -> content, config and layers
    diff_ids: list[str]
    layer_digests: list[str]
    media_type: str


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    return data


def make_image(layers: list[bytes], *, compression: str = "gzip", docker: bool = False,
               architecture: str = "amd64", variant: str = "", cmd: list[str] | None = None) -> Image:
    """An image of the uncompressed ``layers`` (bottom first): OCI media types, or Docker's."""
    suffix = {"gzip": "+gzip", "zstd": "+zstd", "": ""}[compression]
    layer_type = ("application/vnd.docker.image.rootfs.diff.tar" + (".gzip" if compression == "gzip" else "")) \
        if docker else f"application/vnd.oci.image.layer.v1.tar{suffix}"
    blobs: dict[str, bytes] = {}
    descriptors: list[dict[str, object]] = []
    layer_digests: list[str] = []
    diff_ids: list[str] = []
    for layer in layers:
        packed = compress(layer, compression)
        digest = oci.sha256_digest(packed)
        blobs[digest] = packed
        diff_ids.append(oci.sha256_digest(layer))
        descriptors.append({"mediaType": layer_type, "digest": digest, "size": len(packed)})
        layer_digests.append(digest)
    platform = {"architecture": architecture, "os": "linux", **({"variant": variant} if variant else {})}
    config = json.dumps({**platform, "config": {"Cmd": cmd or ["/bin/sh"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
    config_digest = oci.sha256_digest(config)
    blobs[config_digest] = config
    media_type = oci.DOCKER_MANIFEST if docker else oci.OCI_MANIFEST
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG, "digest": config_digest,
                   "size": len(config)},
        "layers": descriptors}).encode()
    return Image(manifest, oci.sha256_digest(manifest), config, config_digest, blobs, diff_ids,
                 layer_digests, media_type)


def _endpoint(client: RegistryClient, ref: Reference) -> Endpoint:
    return client.endpoints(ref)[-1]


def push_image(client: RegistryClient, reference: str, image: Image, *, tag: bool = True) -> Reference:
    """Upload every blob and the manifest (under the reference's tag, or only by digest)."""
    ref = parse(reference)
    endpoint = _endpoint(client, ref)
    for digest, data in image.blobs.items():
        client.upload_blob(endpoint, ref, digest, data)
    client.put_manifest(endpoint, ref, image.manifest, image.media_type,
                        target=ref.target if tag else image.manifest_digest)
    return ref


def push_index(client: RegistryClient, reference: str, images: Mapping[str, Image], *, docker: bool = False,
               extra: Iterable[dict[str, object]] = ()) -> str:
    """Push each image by digest, then an index (or manifest list) of them under the tag; ``images``
    is keyed by ``os/arch[/variant]``. Returns the index digest."""
    ref = parse(reference)
    entries: list[dict[str, object]] = []
    for platform, image in images.items():
        push_image(client, reference, image, tag=False)
        parts = platform.split("/")
        described: dict[str, object] = {"os": parts[0], "architecture": parts[1]}
        if len(parts) > 2:
            described["variant"] = parts[2]
        entries.append({"mediaType": image.media_type, "digest": image.manifest_digest,
                        "size": len(image.manifest), "platform": described})
    entries.extend(extra)
    media_type = oci.DOCKER_LIST if docker else oci.OCI_INDEX
    index = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
    return client.put_manifest(_endpoint(client, ref), ref, index, media_type)


def pax_file(name: str, data: bytes = b"", headers: Mapping[str, str] | None = None) -> Member:
    """A regular file whose PAX headers are exactly ``headers`` (mtime, uid... as a hostile tar
    writes them: tarfile takes them over the ustar fields when it reads)."""
    info = _info(name, tarfile.REGTYPE, 0o644)
    info.size = len(data)
    info.pax_headers = dict(headers or {})
    return Member(info, data)


def sparse_tar(name: str, size: int, data_at: Mapping[int, bytes] | None = None) -> bytes:
    """A PAX tar (GNU sparse 1.0, made by GNU tar) of one file of ``size`` bytes that are holes
    but for ``data_at`` (offset -> bytes): a few hundred bytes that unpack to ``size``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        with path.open("wb") as handle:
            handle.truncate(size)
            for offset, chunk in (data_at or {}).items():
                handle.seek(offset)
                handle.write(chunk)
        return subprocess.run(["tar", "--sparse", "--format=pax", "--numeric-owner", "-C", folder, "-cf", "-", name],
                              capture_output=True, check=True).stdout


def deep_tree_layer(depth: int, leaf: bytes = b"deep") -> bytes:
    """A layer of ``depth`` nested directories ``d/d/d/...`` with a file at the bottom: deeper
    than Python's recursion limit when ``depth`` > 1000."""
    members = []
    for level in range(1, depth + 1):
        members.append(directory("/".join(["d"] * level)))
    members.append(file("/".join(["d"] * depth + ["leaf"]), leaf))
    return tar_bytes(members)
