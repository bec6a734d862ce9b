"""The native builder's cache keys, as BuildKit's: a chain. A stage starts from the key of its
base (the base image's config digest, ``scratch``, or the key an earlier stage ended on); each
filesystem step (RUN, COPY, ADD, WORKDIR) is keyed by its parent's key and what decides its
result:

- RUN: the process (after the stage's SHELL), the environment (the image's Env and the stage's
  ARGs, as the container gets them), user, working folder, network, mounts and security: each
  ``--mount`` as parsed and, for a bind, the content of what it binds (``source_digest``); a
  secret's id and target, never its value (BuildKit does not key on secret content either);
- COPY/ADD: the expanded words and flags, and the digest of what the copy writes (``plan_digest``):
  each entry's path, type, mode, owner, link target, size and the *content* of its file, never
  its mtime; the sources are read after ``.dockerignore`` (context) or from the other stage's
  files, so a file that is excluded, or only touched, changes nothing, and a stage rebuilt to
  the same files keeps the steps that copy from it cached; ADD of a URL with ``--checksum`` is
  keyed by the checksum (nothing fetched), without one by the fetched content (its plan);
  ``--link``, ``--parents`` and ``--exclude`` are in the key; a ``--link`` step's key has no
  parent (its layer is made in an empty folder, so a change below keeps it cached, as BuildKit's),
  and the steps after it are keyed by both the stage's key and its;
- WORKDIR: the folder and the user.

Metadata instructions (ENV, LABEL, USER, CMD...) are no steps: their effect on a later step is
in that step's own key (its Env, User...), so a LABEL edit rebuilds nothing, as in BuildKit.
``SOURCE_DATE_EPOCH`` is in every key when it is given (it changes the layers' timestamps).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from composer.backends.native.build.hashes import file_digest

if TYPE_CHECKING:
    from composer.backends.native.build.copy import CopyPlan, Source
    from composer.backends.native.build.hashes import ContentHashes

SCRATCH = "scratch"
# json.dumps(..., ensure_ascii=False) makes an encoder per call; a digest encodes one per file
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
LINKED = "linked"  # the parent of a COPY/ADD --link step's key: not the stage below (BuildKit's --link)


def image_key(config_digest: str) -> str:
    """The key a stage built FROM an image starts from (the image's config names its layers)."""
    return f"image:{config_digest}"


def step_key(parent: str, op: Mapping[str, Any]) -> str:
    """The key of a step ``op`` (a JSON-able description) on top of ``parent``."""
    text = json.dumps([parent, op], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _file_digest(path: Any, hashes: ContentHashes | None) -> str:
    return hashes.digest(path) if hashes is not None else file_digest(path)


def plan_digest(plan: CopyPlan, hashes: ContentHashes | None = None) -> str:
    """The digest of what a COPY/ADD writes: per entry its path and metadata without times, and
    its content's sha256 (read from the context or the other stage, or known to ``hashes`` by
    the file's stat)."""
    digest = hashlib.sha256()
    for info, host, data in plan.entries.values():
        if info.isreg() and info.type != tarfile.LNKTYPE:
            content = hashlib.sha256(data).hexdigest() if data is not None else (
                _file_digest(host, hashes) if host is not None else "")
        else:
            content = ""
        fields = [info.name, info.type.decode(), oct(info.mode), info.uid, info.gid, info.linkname,
                  info.size if data is None else len(data), info.devmajor, info.devminor, content]
        digest.update(_ENCODE(fields).encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def source_digest(source: Source, word: str, hashes: ContentHashes | None = None) -> str:
    """The digest of what a bind mount's ``source`` names in ``source`` (the context after
    .dockerignore, or a stage): per file its path, type, mode, owner, link target and content's
    sha256, never its times. What the mount binds is the first match, as mounts.py binds it; a
    missing source is keyed as such (the RUN then fails, and a failure is not recorded)."""
    digest = hashlib.sha256()
    matched = source.match(word)
    if not matched:
        return "missing"
    for item in source.walk(matched[0]):
        info = item.info
        if stat.S_ISREG(info.st_mode):
            content = hashlib.sha256(item.data).hexdigest() if item.data is not None else (
                _file_digest(item.host, hashes) if item.host is not None else "")
        elif stat.S_ISLNK(info.st_mode):
            content = item.link or (os.readlink(item.host) if item.host is not None else "")
        else:
            content = ""
        fields = ["/".join(item.parts), stat.S_IFMT(info.st_mode), oct(stat.S_IMODE(info.st_mode)), info.st_uid,
                  info.st_gid, content]
        digest.update(_ENCODE(fields).encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()
