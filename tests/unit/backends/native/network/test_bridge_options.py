"""Docker's bridge driver options as the native bridge takes them: their exact names (those
``docker network inspect bridge`` lists), strconv.ParseBool's spellings, and a one-line
refusal naming any other option or a bad value."""

from __future__ import annotations

import pytest

from composer.backends.native.network.bridge_options import BridgeOptionError, BridgeOptions, from_state, parse


def test_the_five_options_parse_as_dockerd_parses_them() -> None:
    options = parse("n", {"com.docker.network.bridge.name": "br-mine", "com.docker.network.bridge.enable_icc": "0",
                          "com.docker.network.bridge.enable_ip_masquerade": "False",
                          "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
                          "com.docker.network.driver.mtu": "1400"})
    assert options == BridgeOptions(name="br-mine", icc=False, masquerade=False, host_binding_ipv4="127.0.0.1",
                                    mtu=1400)
    assert from_state({"options": options.to_json()}) == options
    assert parse("n", {}) == BridgeOptions() == from_state({})


@pytest.mark.parametrize(("options", "message"), [
    ({"com.docker.network.bridge.inhibit_ipv4": "true"},
     "network n: driver_opts com.docker.network.bridge.inhibit_ipv4 is not supported by the native backend"),
    ({"com.docker.network.bridge.name": "a-name-far-too-long"}, "is not a valid interface name"),
    ({"com.docker.network.bridge.name": "a/b"}, "is not a valid interface name"),
    ({"com.docker.network.bridge.enable_icc": "yes"}, "'yes' is not true or false"),
    ({"com.docker.network.bridge.host_binding_ipv4": "::1"}, "'::1' is not an IPv4 address"),
    ({"com.docker.network.driver.mtu": "67"}, "'67' is not an MTU between 68 and 65535"),
    ({"com.docker.network.driver.mtu": "1e3"}, "'1e3' is not an MTU"),
])
def test_anything_else_is_one_line_naming_it(options: dict[str, str], message: str) -> None:
    with pytest.raises(BridgeOptionError) as info:
        parse("n", options)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
