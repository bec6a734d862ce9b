"""The contract's ``composer system`` values."""

from __future__ import annotations

from composer.contract.system import KINDS, Finding, SystemCommands


def test_a_finding_in_json_has_docker_style_keys() -> None:
    finding = Finding("bridge", "cmp-1", "no network state lists it", removed=True)
    assert finding.to_json() == {"Kind": "bridge", "Name": "cmp-1", "Reason": "no network state lists it",
                                 "Project": "", "Removed": True, "Error": ""}


def test_every_kind_is_named_once() -> None:
    assert len(set(KINDS)) == len(KINDS)


def test_the_backends_offer_the_protocol() -> None:
    from composer.backends.docker.system import DockerSystem
    from composer.backends.native.system import NativeSystem

    assert isinstance(NativeSystem(), SystemCommands)
    assert isinstance(DockerSystem(), SystemCommands)
