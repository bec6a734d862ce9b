"""docker-py's plain requests to a local engine, over HTTP/1.1 on the unix socket without requests.

docker-py sends every call through requests and urllib3: ~1.5 ms of CPU per request here, three
times what Compose v2 spends, and it adds up (``up -d`` of 50 services makes ~200 calls on a
machine whose CPUs the engine needs too). ``fast_client`` makes a docker-py ``APIClient`` whose
``request`` (every method of requests' Session goes through it) speaks HTTP/1.1 itself, on one
kept-alive connection per thread (http.client), for the requests that neither stream nor send
anything but a body of text; it hands docker-py a ``requests.Response``, so results and errors
come out exactly as before. Streams (pull, build, logs, attach, events, archives) still go
through requests.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

LOCAL_PREFIX = "http+docker://localhost"
_RETRIED = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected, http.client.BadStatusLine)
# requests' own options a plain request may carry (their defaults): anything else goes to requests
_IGNORED_OPTIONS: dict[str, tuple[Any, ...]] = {
    "allow_redirects": (True, False), "cookies": (None,), "files": (None,), "auth": (None,), "proxies": (None, {}),
    "hooks": (None,), "verify": (None, True), "cert": (None,), "json": (None,),
}


class UnixConnection(http.client.HTTPConnection):
    """An HTTP connection to a unix socket."""

    def __init__(self, socket_path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def query(params: Any) -> str:
    """``params`` as requests encodes them: a list value repeats its key, None values are left out."""
    items: Iterable[tuple[Any, Any]] = params.items() if isinstance(params, Mapping) else params
    pairs = []
    for key, values in items:
        for value in values if isinstance(values, list | tuple) else [values]:
            if value is not None:
                pairs.append((key, value))
    return urlencode(pairs, doseq=True)


def fast_client(socket_path: str, **arguments: Any) -> Any:
    """A docker-py ``APIClient`` (same arguments) whose plain requests take the fast path."""
    import docker

    class FastAPIClient(docker.APIClient):  # type: ignore[misc]
        def request(self, method: str, url: str, params: Any = None, data: Any = None,
                    headers: Mapping[str, str] | None = None, timeout: Any = None, stream: bool | None = False,
                    **options: Any) -> Any:
            if not _plain(url, data, stream, options):
                return super().request(method, url, params=params, data=data, headers=headers, timeout=timeout,
                                       stream=stream, **options)
            return _send(self, socket_path, method, url, params, data, headers, timeout)

        def close(self) -> None:
            super().close()
            forget_connection()

    return FastAPIClient(**arguments)


def forget_connection() -> None:
    """Close this thread's kept-alive connection (a client closed, or a forked child's copy)."""
    connection = getattr(_local, "connection", None)
    _local.connection = None
    if connection is not None:
        connection.close()


def _plain(url: str, data: Any, stream: bool | None, options: Mapping[str, Any]) -> bool:
    if stream or not url.startswith(LOCAL_PREFIX + "/") or "?" in url:
        return False
    if data is not None and not isinstance(data, str | bytes):
        return False
    return all(name in _IGNORED_OPTIONS and value in _IGNORED_OPTIONS[name] for name, value in options.items())


_local = threading.local()
# A forked child (the command server's workers) must not share its parent's connection: answers
# would go to whichever process reads first.
os.register_at_fork(after_in_child=forget_connection)


def _send(session: Any, socket_path: str, method: str, url: str, params: Any, data: Any,
          headers: Mapping[str, str] | None, timeout: Any) -> Any:
    import requests
    from requests.structures import CaseInsensitiveDict

    path = url[len(LOCAL_PREFIX):]
    if params:
        encoded = query(params)
        if encoded:
            path = f"{path}?{encoded}"
    merged = {**session.headers, **(headers or {})}
    merged.pop("Accept-Encoding", None)  # http.client asks for identity: no gzip to undo
    merged.pop("Connection", None)
    body = data.encode() if isinstance(data, str) else data
    seconds = timeout[1] if isinstance(timeout, tuple) else timeout
    try:
        response, content = _exchange(socket_path, method, path, body, merged, seconds)
    except TimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    result = requests.Response()
    result.status_code = response.status
    result.reason = response.reason
    result.headers = CaseInsensitiveDict(response.getheaders())
    result._content = content
    result.url = url
    result.encoding = requests.utils.get_encoding_from_headers(result.headers)
    return result


def _exchange(socket_path: str, method: str, path: str, body: bytes | None, headers: Mapping[str, str],
              timeout: float | None) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on this thread's kept-alive connection; a connection the engine closed while
    idle is replaced once (the request never reached it)."""
    for attempt in range(2):
        connection: UnixConnection | None = getattr(_local, "connection", None)
        reused = connection is not None and connection.socket_path == socket_path
        if connection is None or not reused:
            if connection is not None:
                connection.close()
            connection = _local.connection = UnixConnection(socket_path, timeout)
        assert connection is not None
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        try:
            connection.request(method, path, body=body, headers=dict(headers))
            response = connection.getresponse()
            content = response.read()
        except _RETRIED:
            connection.close()
            _local.connection = None
            if reused and attempt == 0:
                continue
            raise
        except BaseException:
            connection.close()
            _local.connection = None
            raise
        if response.will_close:
            connection.close()
            _local.connection = None
        return response, content
    raise AssertionError("unreachable")
