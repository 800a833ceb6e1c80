"""The shipped flow files: documented, valid, and honest about their secrets."""

from __future__ import annotations

import pytest

from mfaflow import Client, Engine
from mfaflow._catalog import Catalog

ENGINE = Engine(Client("https://tenant.example.test/", "app"))
SHIPPED = sorted(Catalog().names())
#: Names that always hold a secret value, wherever a flow declares them.
SECRET_NAMES = {
    "password",
    "access_token",
    "id_token",
    "refresh_token",
    "mfa_token",
    "mfa_access_token",
    "token",
    "tokens",
    "mfa_tokens",
    "otp",
    "binding_code",
    "recovery_code",
    "recovery_codes",
    "barcode_uri",
    "enrolment",
    "challenge",
    "verifier",
    "callback",
    "callback_url",
}


def test_every_flow_is_shipped():
    """The seven flows for Auth0's APIs are shipped."""
    assert SHIPPED == [
        "authorize",
        "manage-authenticators",
        "mfa-api-token",
        "mfa-challenge",
        "mfa-enroll",
        "password-grant",
        "refresh",
    ]


@pytest.mark.parametrize("name", SHIPPED)
def test_flow_is_documented(name: str):
    """A shipped flow has a one-line summary, a description, and describes every
    input, data and output."""
    flow = ENGINE.flow(name)

    assert flow.summary
    assert "\n" not in flow.summary
    assert flow.description
    for kind in ("inputs", "data", "outputs"):
        for spec in getattr(flow, kind).values():
            assert spec.description, f"{name}: {kind} {spec.name!r} is undescribed"
    for state in flow.states.values():
        for spec in state.inputs:
            assert spec.prompt, f"{name}: input {spec.name!r} of {state.name!r}"


@pytest.mark.parametrize("name", SHIPPED)
def test_secret_values_are_declared_secret(name: str):
    """Every input, data and output that holds a token, code or password is secret."""
    flow = ENGINE.flow(name)
    declared = [
        *flow.inputs.values(),
        *flow.data.values(),
        *flow.outputs.values(),
        *(spec for state in flow.states.values() for spec in state.inputs),
    ]

    public = [
        spec.name for spec in declared if spec.name in SECRET_NAMES and not spec.secret
    ]

    assert public == []
