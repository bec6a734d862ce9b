"""composer/backends/docker/transport.py's pure parts: query strings as requests makes them, and
which requests take the fast path (the exchange itself is tested against dockerd in
tests/integration/docker/test_backend.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import requests.models

from composer.backends.docker.transport import LOCAL_PREFIX, _plain, query


@pytest.mark.parametrize("params", [
    {"all": 1, "limit": -1, "size": 0, "trunc_cmd": 0, "filters": json.dumps({"label": ["a=b"]})},
    {"t": 10, "signal": None},
    {"v": False, "link": False, "force": True},
    {"fromImage": "busybox", "tag": "latest"},
    {"names": ["a", "b"], "empty": []},
    [("k", "v"), ("k", "w")],
    {"unicode": "é ü", "space": "a b&c=d"},
])
def test_query_is_encoded_as_requests_encodes_it(params: Any) -> None:
    expected = requests.models.RequestEncodingMixin._encode_params(params)
    assert query(params) == expected


def test_only_plain_requests_take_the_fast_path() -> None:
    url = f"{LOCAL_PREFIX}/v1.41/containers/json"
    assert _plain(url, None, False, {"allow_redirects": True})
    assert _plain(url, '{"Image": "x"}', None, {})
    assert _plain(url, b"bytes", False, {"verify": True, "proxies": {}})
    assert not _plain(url, None, True, {})  # a stream: requests
    assert not _plain(url + "?all=1", None, False, {})  # a query in the URL: requests merges it
    assert not _plain(url, io.BytesIO(b"tar"), False, {})  # an upload: requests
    assert not _plain(url, None, False, {"json": {"a": 1}})
    assert not _plain("https://engine.example:2376/v1.41/containers/json", None, False, {})  # TLS, TCP
