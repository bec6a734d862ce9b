"""The credentials file of a use_api_socket service, as the docker CLI saves a config file."""

from __future__ import annotations

import json

from composer.backends.docker.api_socket import saved_config


def test_empty_is_the_go_client_s_text() -> None:
    assert saved_config({}) == b'{\n\t"auths": {}\n}'  # what v2 2.40 wrote into the container


def test_user_and_password_fold_into_auth_and_the_server_goes() -> None:
    saved = json.loads(saved_config({
        "b.example": {"username": "u", "password": "p", "serveraddress": "b.example", "email": None},
        "a.example": {"Username": "<token>", "Password": "", "IdentityToken": "tok"},
        "c.example": {"auth": "dTpw"},
    }))
    assert list(saved["auths"]) == ["a.example", "b.example", "c.example"]
    assert saved["auths"]["b.example"] == {"auth": "dTpw"}
    assert saved["auths"]["a.example"] == {"auth": "PHRva2VuPjo=", "identitytoken": "tok"}
    assert saved["auths"]["c.example"] == {"auth": "dTpw"}
