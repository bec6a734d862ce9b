"""An OCI distribution client on the standard library (http.client), for pulls and pushes.

- Auth: anonymous, Basic, and Bearer tokens (a 401's ``WWW-Authenticate`` challenge sends us to
  the token endpoint, anonymously or with Basic credentials, or with an identity token as an
  OAuth2 refresh token); tokens are cached per (host, scope). Credentials come from
  ``$DOCKER_CONFIG/config.json`` (``~/.docker``): ``credHelpers``, ``credsStore`` and ``auths``,
  helpers being run as ``docker-credential-<name> get``.
- Transport: https, except for loopback hosts and registries listed as insecure, which get plain
  http when they do not speak TLS (probed once per host). Redirects are followed up to 10 times;
  the Authorization header never goes to another host than the one it was issued for.
- docker.io pulls try COMPOSER_REGISTRY_MIRRORS first, in order, then Docker Hub.
- Manifests: OCI index / Docker manifest list resolved to one platform, then OCI or Docker
  schema-2 manifests; every manifest and blob is checked against its digest.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from composer.backends.native.image import oci
from composer.backends.native.image.store import BlobWriter, out_of_space
from composer.errors import (
    BackendError,
    DigestMismatchError,
    ImageNotFoundError,
    ImagePullError,
    ImagePushError,
    RegistryAuthError,
    UnsupportedFeatureError,
)
from composer.image_reference import (
    DOCKER_HUB_AUTH_KEY,
    Reference,
    is_loopback_host,
)

BACKEND = "native"
USER_AGENT = "composer/0.1 (native backend)"
MAX_REDIRECTS = 10
MAX_MANIFEST_BYTES = 4 << 20
CHUNK = 1 << 20
RETRIES = 3


# --- configuration ------------------------------------------------------------------------------


class RegistryConfig(NamedTuple):
    """Mirrors for docker.io (URLs, tried in order) and registries allowed over plain http."""

    mirrors: tuple[str, ...] = ()
    insecure: tuple[str, ...] = ()  # host[:port] or CIDR

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RegistryConfig:
        """COMPOSER_REGISTRY_MIRRORS and COMPOSER_INSECURE_REGISTRIES (comma-separated), added to the
        ``registry-mirrors`` and ``insecure-registries`` of the JSON file COMPOSER_REGISTRY_CONFIG
        (default ``/etc/composer/registries.json``, daemon.json's keys).

        :raises UsageError: the file is not valid JSON, or a plain-http mirror is not allowed.
        """
        from composer.errors import UsageError

        env = os.environ if environ is None else environ
        mirrors: list[str] = []
        insecure: list[str] = []
        path = Path(env.get("COMPOSER_REGISTRY_CONFIG") or "/etc/composer/registries.json")
        if path.is_file():
            try:
                data = json.loads(path.read_bytes())
            except ValueError as exc:
                raise UsageError(f"{path}: not valid JSON: {exc}") from None
            if isinstance(data, dict):
                mirrors += [str(m) for m in data.get("registry-mirrors") or []]
                insecure += [str(m) for m in data.get("insecure-registries") or []]
        mirrors += _split_list(env.get("COMPOSER_REGISTRY_MIRRORS", ""))
        insecure += _split_list(env.get("COMPOSER_INSECURE_REGISTRIES", ""))
        config = cls(tuple(m.rstrip("/") for m in mirrors), tuple(insecure))
        for mirror in config.mirrors:
            parsed = urllib.parse.urlsplit(mirror if "://" in mirror else f"https://{mirror}")
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise UsageError(f"invalid registry mirror {mirror!r}: expected https://host[:port]")
            if parsed.scheme == "http" and not config.is_insecure(parsed.netloc):
                raise UsageError(f"registry mirror {mirror!r} uses plain http",
                                 hint="list its host in COMPOSER_INSECURE_REGISTRIES, or use https")
        return config

    def is_insecure(self, host: str) -> bool:
        """Whether plain http is allowed for ``host``: loopback, or listed (by host or CIDR)."""
        if is_loopback_host(host):
            return True
        name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
        for entry in self.insecure:
            if entry in (host, name):
                return True
            if "/" in entry:
                with contextlib.suppress(ValueError):
                    if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                        return True
        return False


def _split_list(text: str) -> list[str]:
    return [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]


class Credentials(NamedTuple):
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token (``docker login`` to some registries)


class CredentialStore:
    """Credentials from ``$DOCKER_CONFIG/config.json`` (``~/.docker/config.json``)."""

    def __init__(self, config_dir: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        if config_dir is None:
            config_dir = env.get("DOCKER_CONFIG") or Path(env.get("HOME") or Path.home()) / ".docker"
        self.path = Path(config_dir) / "config.json"
        self.environ = env
        self._data: dict[str, Any] | None = None

    def _config(self) -> dict[str, Any]:
        if self._data is None:
            try:
                data = json.loads(self.path.read_bytes())
            except (OSError, ValueError):
                data = {}
            self._data = data if isinstance(data, dict) else {}
        return self._data

    def get(self, registry: str) -> Credentials | None:
        """The credentials for ``registry`` (``docker.io``, ``host:port``), or None.

        :raises RegistryAuthError: the credential helper failed (other than "not found").
        """
        config = self._config()
        server = DOCKER_HUB_AUTH_KEY if registry == "docker.io" else registry
        helpers = config.get("credHelpers") or {}
        helper = helpers.get(registry) or helpers.get(server) or config.get("credsStore")
        if helper:
            found = self._from_helper(str(helper), server)
            if found is not None:
                return found
        auths = config.get("auths") or {}
        for key, entry in auths.items():
            if isinstance(entry, dict) and _auth_key_matches(str(key), registry):
                return _decode_auth(entry)
        return None

    def _from_helper(self, helper: str, server: str) -> Credentials | None:
        program = f"docker-credential-{helper}"
        try:
            done = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=60,
                                  check=False)
        except FileNotFoundError:
            raise RegistryAuthError(f"credential helper {program} is not installed", backend_name=BACKEND,
                                    operation="pull") from None
        except subprocess.TimeoutExpired:
            raise RegistryAuthError(f"credential helper {program} timed out", backend_name=BACKEND,
                                    operation="pull") from None
        out = done.stdout.decode(errors="replace").strip()
        if done.returncode != 0:
            if "credentials not found" in out.lower() or "credentials not found" in done.stderr.decode().lower():
                return None
            message = (out or done.stderr.decode(errors="replace")).strip().splitlines()
            raise RegistryAuthError(f"credential helper {program} failed: {message[0] if message else done.returncode}",
                                    backend_name=BACKEND, operation="pull")
        try:
            data = json.loads(out)
        except ValueError:
            raise RegistryAuthError(f"credential helper {program} printed no JSON", backend_name=BACKEND,
                                    operation="pull") from None
        username, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
        if username == "<token>":
            return Credentials(identity_token=secret)
        return Credentials(username, secret) if username or secret else None


def _auth_key_matches(key: str, registry: str) -> bool:
    if registry == "docker.io":
        return key in (DOCKER_HUB_AUTH_KEY, "index.docker.io", "docker.io", "registry-1.docker.io",
                       "https://index.docker.io/v1", "https://registry-1.docker.io")
    host = urllib.parse.urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    return host == registry


def _decode_auth(entry: Mapping[str, Any]) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials(identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return Credentials(user, password)
    if entry.get("username") or entry.get("password"):
        return Credentials(str(entry.get("username") or ""), str(entry.get("password") or ""))
    return None


# --- challenges ---------------------------------------------------------------------------------

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {realm, service, ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value or "")
    return scheme.lower(), params


# --- the client ---------------------------------------------------------------------------------


class Endpoint(NamedTuple):
    scheme: str
    host: str  # host[:port]
    mirror: bool = False

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}"


class Resolved(NamedTuple):
    """A reference resolved to one platform's manifest."""

    reference: Reference
    manifest: bytes
    manifest_digest: str
    media_type: str
    index_bytes: bytes | None
    index_digest: str | None
    platform: str
    endpoint: Endpoint

    def manifest_json(self) -> dict[str, Any]:
        return oci.load_json(self.manifest, f"manifest {self.manifest_digest}")


class _Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection


class RegistryClient:
    """Talks to registries for one process; thread-safe (one connection per request)."""

    def __init__(self, config: RegistryConfig | None = None, credentials: CredentialStore | None = None, *,
                 timeout: float = 60.0, operation: str = "pull") -> None:
        self.config = config if config is not None else RegistryConfig()
        self.credentials = credentials if credentials is not None else CredentialStore()
        self.timeout = timeout
        self.operation = operation
        self._lock = threading.Lock()
        self._schemes: dict[str, str] = {}
        self._challenges: dict[str, tuple[str, dict[str, str]]] = {}
        self._tokens: dict[tuple[str, str], str] = {}

    # --- errors ------------------------------------------------------------------------------

    def _error(self, message: str, cls: type[BackendError] | None = None, hint: str | None = None) -> BackendError:
        if cls is None:
            cls = ImagePushError if self.operation == "push" else ImagePullError
        return cls(message, backend_name=BACKEND, operation=self.operation, hint=hint)

    # --- endpoints ---------------------------------------------------------------------------

    def endpoints(self, ref: Reference) -> list[Endpoint]:
        """Where to pull ``ref`` from, in order: docker.io's mirrors first, then the registry."""
        found: list[Endpoint] = []
        if ref.is_docker_hub and self.operation == "pull":
            for mirror in self.config.mirrors:
                parsed = urllib.parse.urlsplit(mirror if "://" in mirror else f"https://{mirror}")
                found.append(Endpoint(parsed.scheme, parsed.netloc, mirror=True))
        found.append(Endpoint(self._scheme(ref.api_host), ref.api_host))
        return found

    def _scheme(self, host: str) -> str:
        """https; plain http for loopback or insecure registries that do not answer TLS."""
        if not self.config.is_insecure(host):
            return "https"
        with self._lock:
            known = self._schemes.get(host)
        if known:
            return known
        scheme = "http"
        context = ssl._create_unverified_context()  # insecure registries: TLS without verification
        connection = http.client.HTTPSConnection(host, timeout=min(self.timeout, 5.0), context=context)
        try:
            connection.request("GET", "/v2/", headers={"User-Agent": USER_AGENT})
            connection.getresponse().read()
            scheme = "https"
        except (OSError, http.client.HTTPException):
            scheme = "http"
        finally:
            connection.close()
        with self._lock:
            self._schemes[host] = scheme
        return scheme

    def _connection(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "https":
            context = ssl._create_unverified_context() if self.config.is_insecure(host) \
                else ssl.create_default_context()
            return http.client.HTTPSConnection(host, timeout=self.timeout, context=context)
        if not self.config.is_insecure(host):
            raise self._error(f"refusing plain http to {host}: not a loopback or insecure registry",
                              hint="list it in COMPOSER_INSECURE_REGISTRIES")
        return http.client.HTTPConnection(host, timeout=self.timeout)

    # --- requests ----------------------------------------------------------------------------

    def _request(self, endpoint: Endpoint, method: str, path: str, *, scope: str,
                 headers: Mapping[str, str] | None = None, body: bytes | None = None) -> _Response:
        """One request with auth (retried once after a 401 challenge) and redirects. The caller
        reads and closes ``response``."""
        for attempt in range(2):
            auth = self._authorization(endpoint.host, scope)
            result = self._send(endpoint, method, path, headers or {}, body, auth)
            if result.status != 401:
                return result
            challenge = result.headers.get("WWW-Authenticate") or ""
            detail = _registry_message(result.response.read(64 << 10))
            result.connection.close()
            if attempt == 1 or not challenge:
                raise self._unauthorized(endpoint.host, detail)
            with self._lock:
                self._challenges[endpoint.host] = parse_challenge(challenge)
                self._tokens.pop((endpoint.host, scope), None)
        raise AssertionError("unreachable")

    def _unauthorized(self, host: str, detail: str) -> BackendError:
        creds = self.credentials.get(_registry_of(host))
        if creds is None:
            return self._error(f"{host}: authentication required ({detail or 'unauthorized'})", RegistryAuthError,
                               hint=f"docker login {host}")
        return self._error(f"{host}: unauthorized: {detail or 'incorrect username or password'}", RegistryAuthError)

    def _send(self, endpoint: Endpoint, method: str, path: str, headers: Mapping[str, str], body: bytes | None,
              auth: str | None) -> _Response:
        scheme, host, target = endpoint.scheme, endpoint.host, path
        for _ in range(MAX_REDIRECTS + 1):
            connection = self._connection(scheme, host)
            sent = {"User-Agent": USER_AGENT, **headers}
            if auth is not None and host == endpoint.host:
                sent["Authorization"] = auth  # never to a redirect's other host
            try:
                connection.request(method, target, body=body, headers=sent)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise self._error(f"{host}: cannot connect: {_os_message(exc)}") from None
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                location = urllib.parse.urljoin(f"{scheme}://{host}{target}", response.getheader("Location", ""))
                response.read()
                connection.close()
                parsed = urllib.parse.urlsplit(location)
                if parsed.scheme == "http" and not self.config.is_insecure(parsed.netloc):
                    raise self._error(f"{host}: refusing a redirect to plain http {parsed.netloc}")
                scheme, host = parsed.scheme, parsed.netloc
                target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
                if response.status == 303:
                    method, body = "GET", None
                continue
            return _Response(response.status, response.headers, response, connection)
        raise self._error(f"{endpoint.host}: too many redirects")

    def _authorization(self, host: str, scope: str) -> str | None:
        with self._lock:
            challenge = self._challenges.get(host)
            token = self._tokens.get((host, scope))
        if challenge is None:
            return None
        scheme, params = challenge
        if scheme == "basic":
            creds = self.credentials.get(_registry_of(host))
            if creds is None or not (creds.username or creds.password):
                return None
            return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        if scheme != "bearer":
            raise self._error(f"{host}: unsupported authentication scheme {scheme!r}", UnsupportedFeatureError)
        if token is None:
            token = self._fetch_token(host, params, scope)
            with self._lock:
                self._tokens[(host, scope)] = token
        return f"Bearer {token}"

    def _fetch_token(self, host: str, params: Mapping[str, str], scope: str) -> str:
        realm = params.get("realm") or ""
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise self._error(f"{host}: the registry's token realm {realm!r} is not a URL", RegistryAuthError)
        query = {"scope": scope} if scope else {}
        if params.get("service"):
            query["service"] = params["service"]
        creds = self.credentials.get(_registry_of(host))
        realm_endpoint = Endpoint(parsed.scheme, parsed.netloc)
        headers: dict[str, str] = {}
        auth: str | None = None
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "composer",
                    **query}
            body: bytes | None = urllib.parse.urlencode(form).encode()
            method, path = "POST", parsed.path or "/"
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            body, method = None, "GET"
            existing = f"{parsed.query}&" if parsed.query else ""
            path = f"{parsed.path or '/'}?{existing}{urllib.parse.urlencode(query)}"
            if creds is not None and (creds.username or creds.password):
                auth = "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        result = self._send(realm_endpoint, method, path, headers, body, auth)
        try:
            data = result.response.read(1 << 20)
        finally:
            result.connection.close()
        if result.status in (401, 403):
            detail = _registry_message(data) or "incorrect username or password"
            raise self._error(f"{host}: unauthorized: {detail}", RegistryAuthError)
        if result.status != 200:
            raise self._error(f"{host}: token endpoint {parsed.netloc} answered {result.status}", RegistryAuthError)
        try:
            token = json.loads(data).get("token") or json.loads(data).get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise self._error(f"{host}: the token endpoint returned no token", RegistryAuthError)
        return str(token)

    # --- manifests ---------------------------------------------------------------------------

    def resolve(self, ref: Reference, platform: oci.Platform | None = None) -> Resolved:
        """The manifest of ``ref`` for ``platform`` (linux/amd64 by default), through an index or a
        manifest list when the registry has one; docker.io mirrors are tried first.

        :raises ImageNotFoundError: the registry does not know the reference.
        :raises DigestMismatchError: a manifest does not match its digest.
        :raises ImagePullError: anything else (unreachable, no such platform, bad manifest).
        """
        wanted = platform or oci.Platform()
        endpoints = self.endpoints(ref)
        for position, endpoint in enumerate(endpoints):
            try:
                return self._resolve_at(endpoint, ref, wanted)
            except (ImagePullError, ImageNotFoundError):
                if position == len(endpoints) - 1 or not endpoint.mirror:
                    raise
        raise AssertionError("unreachable")

    def _resolve_at(self, endpoint: Endpoint, ref: Reference, wanted: oci.Platform) -> Resolved:
        data, media_type, digest = self.get_manifest(endpoint, ref, ref.target)
        index = index_digest = None
        chosen = str(wanted)
        if media_type in oci.INDEX_TYPES:
            index, index_digest = data, digest
            entry = choose_platform(oci.load_json(data, f"index {digest}"), wanted)
            if entry is None:
                raise self._error(f"no matching manifest for {wanted} in the manifest list of {ref.familiar()}",
                                  ImageNotFoundError)
            chosen = _platform_text(entry.platform) or chosen
            data, media_type, digest = self.get_manifest(endpoint, ref, entry.digest)
            if media_type in oci.INDEX_TYPES:
                raise self._error(f"{ref.familiar()}: nested indexes are not supported", UnsupportedFeatureError)
        if media_type in oci.DOCKER_SCHEMA1:
            raise self._error(f"{ref.familiar()}: Docker schema-1 manifests are not supported", UnsupportedFeatureError,
                              hint="push the image again with a current Docker")
        if media_type not in oci.MANIFEST_TYPES:
            raise self._error(f"{ref.familiar()}: unsupported manifest type {media_type!r}")
        return Resolved(ref, data, digest, media_type, index, index_digest, chosen, endpoint)

    def get_manifest(self, endpoint: Endpoint, ref: Reference, target: str) -> tuple[bytes, str, str]:
        """Raw manifest bytes, media type and digest (verified when ``target`` is a digest)."""
        path = f"/v2/{ref.repository}/manifests/{target}"
        result = self._request(endpoint, "GET", path, scope=_scope(ref, "pull"), headers={"Accept": oci.ACCEPT})
        try:
            data = result.response.read(MAX_MANIFEST_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise self._error(f"{endpoint.host}: reading the manifest failed: {_os_message(exc)}") from None
        finally:
            result.connection.close()
        if result.status == 404:
            detail = _registry_message(data) or "manifest unknown"
            raise self._error(f"manifest for {ref.familiar()} not found: {detail}", ImageNotFoundError)
        if result.status == 403:
            raise self._error(f"{endpoint.host}: denied: {_registry_message(data) or 'access denied'}",
                              RegistryAuthError)
        if result.status != 200:
            raise self._error(f"{endpoint.host}: manifest {target}: HTTP {result.status} "
                              f"{_registry_message(data)}".rstrip())
        if len(data) > MAX_MANIFEST_BYTES:
            raise self._error(f"{endpoint.host}: manifest {target} is larger than {MAX_MANIFEST_BYTES} bytes")
        body = oci.load_json(data, f"the manifest of {ref.familiar()}")
        header_type = (result.headers.get("Content-Type") or "").split(";")[0].strip()
        body_type = str(body.get("mediaType") or "")
        media_type = header_type if header_type and header_type != "application/json" else body_type
        if not media_type and body.get("schemaVersion") == 2:
            media_type = oci.OCI_INDEX if "manifests" in body else oci.OCI_MANIFEST
        if body_type and media_type and body_type != media_type and media_type not in oci.DOCKER_SCHEMA1:
            raise self._error(f"{ref.familiar()}: manifest says {body_type} but was served as {media_type}")
        digest = oci.sha256_digest(data)
        expected = target if target.startswith("sha256:") else result.headers.get("Docker-Content-Digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise self._error(f"manifest {expected} of {ref.familiar()} failed verification: got {digest}",
                              DigestMismatchError)
        return data, media_type, digest

    # --- blobs -------------------------------------------------------------------------------

    def fetch_blob(self, endpoint: Endpoint, ref: Reference, descriptor: oci.Descriptor, writer: BlobWriter,
                   progress: Callable[[int], None] | None = None) -> None:
        """Stream a blob into ``writer`` (resuming at ``writer.offset``), then commit it; a dropped
        connection is resumed with a Range request, up to 3 times.

        :raises DigestMismatchError: the content does not match the descriptor.
        """
        path = f"/v2/{ref.repository}/blobs/{descriptor.digest}"
        for attempt in range(RETRIES + 1):
            headers = {"Range": f"bytes={writer.offset}-"} if writer.offset else {}
            result = self._request(endpoint, "GET", path, scope=_scope(ref, "pull"), headers=headers)
            try:
                if result.status == 200 and writer.offset:
                    writer.restart()
                elif result.status == 416 and writer.offset:
                    writer.restart()
                    continue
                elif result.status == 404:
                    raise self._error(f"blob {descriptor.digest} of {ref.familiar()} not found", ImageNotFoundError)
                elif result.status not in (200, 206):
                    detail = _registry_message(result.response.read(64 << 10))
                    raise self._error(
                        f"{endpoint.host}: blob {descriptor.digest}: HTTP {result.status} {detail}".rstrip())
                if progress is not None:
                    progress(writer.offset)
                try:
                    while chunk := result.response.read(CHUNK):
                        writer.write(chunk)
                        if progress is not None:
                            progress(writer.offset)
                except (OSError, http.client.HTTPException) as exc:
                    if out_of_space(exc):
                        raise  # the store is full, not the registry at fault: pull() says so, no retry
                    if attempt == RETRIES:
                        raise self._error(f"{endpoint.host}: blob {descriptor.digest}: {_os_message(exc)}") from None
                    continue
            finally:
                result.connection.close()
            writer.commit()
            return
        raise self._error(f"{endpoint.host}: blob {descriptor.digest}: giving up after {RETRIES} retries")

    # --- push --------------------------------------------------------------------------------

    def blob_exists(self, endpoint: Endpoint, ref: Reference, digest: str) -> bool:
        result = self._request(endpoint, "HEAD", f"/v2/{ref.repository}/blobs/{digest}", scope=_scope(ref, "push"))
        result.response.read()
        result.connection.close()
        return result.status == 200

    def upload_blob(self, endpoint: Endpoint, ref: Reference, digest: str, data: bytes) -> None:
        """A monolithic upload (POST, then PUT with the digest)."""
        scope = _scope(ref, "push")
        if self.blob_exists(endpoint, ref, digest):
            return
        result = self._request(endpoint, "POST", f"/v2/{ref.repository}/blobs/uploads/", scope=scope,
                               headers={"Content-Length": "0"}, body=b"")
        detail = _registry_message(result.response.read(64 << 10))
        result.connection.close()
        location = result.headers.get("Location")
        if result.status != 202 or not location:
            raise self._error(f"{endpoint.host}: starting an upload failed: HTTP {result.status} {detail}".rstrip())
        url = urllib.parse.urlsplit(urllib.parse.urljoin(f"{endpoint.origin}/", location))
        query = [*urllib.parse.parse_qsl(url.query), ("digest", digest)]
        target = f"{url.path}?{urllib.parse.urlencode(query)}"
        result = self._request(endpoint, "PUT", target, scope=scope, body=data,
                               headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        detail = _registry_message(result.response.read(64 << 10))
        result.connection.close()
        if result.status != 201:
            raise self._error(f"{endpoint.host}: uploading {digest} failed: HTTP {result.status} {detail}".rstrip())

    def put_manifest(self, endpoint: Endpoint, ref: Reference, data: bytes, media_type: str,
                     target: str | None = None) -> str:
        """Upload a manifest or index under ``target`` (default: the reference's tag); its digest."""
        result = self._request(endpoint, "PUT", f"/v2/{ref.repository}/manifests/{target or ref.target}",
                               scope=_scope(ref, "push"), body=data,
                               headers={"Content-Type": media_type, "Content-Length": str(len(data))})
        detail = _registry_message(result.response.read(64 << 10))
        result.connection.close()
        if result.status != 201:
            raise self._error(f"{endpoint.host}: putting the manifest of {ref.familiar()} failed: "
                              f"HTTP {result.status} {detail}".rstrip())
        return oci.sha256_digest(data)


def choose_platform(index: Mapping[str, Any], wanted: oci.Platform) -> oci.Descriptor | None:
    """The index entry that best suits ``wanted``; unknown media types and attestations are skipped."""
    best: tuple[int, int, oci.Descriptor] | None = None
    for position, raw in enumerate(index.get("manifests") or []):
        if not isinstance(raw, Mapping):
            continue
        try:
            entry = oci.Descriptor.from_json(raw)
        except ValueError:
            continue
        if entry.media_type and entry.media_type not in oci.MANIFEST_TYPES and entry.media_type not in oci.INDEX_TYPES:
            continue
        rank = oci.platform_rank(wanted, entry.platform)
        if rank is not None and (best is None or (rank, position) < best[:2]):
            best = (rank, position, entry)
    return best[2] if best else None


def _platform_text(platform: Mapping[str, Any] | None) -> str:
    if not platform:
        return ""
    parts = [str(platform.get("os") or ""), str(platform.get("architecture") or "")]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def _scope(ref: Reference, action: str) -> str:
    return f"repository:{ref.repository}:{'pull,push' if action == 'push' else 'pull'}"


def _registry_of(host: str) -> str:
    return "docker.io" if host in ("registry-1.docker.io", "index.docker.io") else host


def _registry_message(data: bytes) -> str:
    """The first error message of a registry's JSON error body, on one line."""
    try:
        errors = json.loads(data).get("errors") or []
        first = errors[0]
        text = f"{str(first.get('code') or '').lower().replace('_', ' ')}: {first.get('message') or ''}".strip(": ")
    except (ValueError, AttributeError, IndexError, TypeError):
        text = data[:200].decode(errors="replace") if data and not data.lstrip().startswith(b"<") else ""
    return " ".join(text.split())


def _os_message(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
