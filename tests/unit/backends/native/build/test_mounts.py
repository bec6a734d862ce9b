"""RUN --mount's parsing: BuildKit's options, defaults and one-line errors."""

from __future__ import annotations

import pytest

from composer.backends.native.build.mounts import MountError, MountSpec, parse_mount, stub_parts


def test_defaults_per_type() -> None:
    assert parse_mount("target=/src") == MountSpec("bind", "/src", readonly=True)  # a bind is read-only
    assert parse_mount("type=bind,src=app,dst=/src,rw") == MountSpec("bind", "/src", source="app", readonly=False)
    assert parse_mount("type=cache,target=/root/.cache") == MountSpec("cache", "/root/.cache", id="/root/.cache")
    assert parse_mount("type=cache,target=/c,id=x,sharing=locked,mode=0700,uid=1,gid=2,ro") == MountSpec(
        "cache", "/c", id="x", sharing="locked", readonly=True, mode=0o700, uid=1, gid=2)
    assert parse_mount("type=tmpfs,target=/t,size=2m") == MountSpec("tmpfs", "/t", size=2 << 20)
    assert parse_mount("type=secret,id=tok") == MountSpec("secret", "/run/secrets/tok", id="tok")
    assert parse_mount("type=secret,target=/a/key") == MountSpec("secret", "/a/key", id="key")
    assert parse_mount("type=secret,id=tok,env=TOKEN,required=true") == MountSpec("secret", "", id="tok",
                                                                                   required=True, env="TOKEN")


@pytest.mark.parametrize(("text", "message"), [
    ("type=ssh", "type=ssh is not supported"),
    ("type=nfs,target=/x", "unsupported mount type 'nfs'"),
    ("type=cache", "mount type=cache needs a target"),
    ("type=cache,target=/c,colour=red", "unexpected key 'colour'"),
    ("type=cache,target=/c,sharing=sometimes", "unsupported sharing value 'sometimes'"),
    ("type=cache,target=/c,mode=9", "invalid value for mode"),
    ("type=cache,target=/c,ro=maybe", "invalid value for ro"),
    ("type=bind,target=/c,size=1m", "option size is not valid for mount type=bind"),
    ("type=secret", "needs an id or a target"),
    ("type=cache,target", "must be a key=value pair"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(MountError, match=message):
        parse_mount(text)


def test_stub_parts_are_targets_and_their_parents() -> None:
    assert stub_parts(["/a/b", "/c"]) == {("a",), ("a", "b"), ("c",)}
