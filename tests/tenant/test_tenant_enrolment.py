"""The MFA API over HTTP: mfa_required, enrolment, listing, deletion, audience."""

from __future__ import annotations

import re
from typing import Any

import attrs
import jwt
import pytest
from _tenantkit import Api, Serve, error_of

from mfaflow.tenant import DEMO_EMAIL, MFA_OOB, AuthenticatorConfig, TenantConfig

_RECOVERY_CODE = re.compile(r"[A-Z0-9]{24}")
_BASE32 = re.compile(r"[A-Z2-7]{32}")


def _listed(api: Api, token: str) -> list[dict[str, Any]]:
    answer = api.get("mfa/authenticators", token=token)
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()
    return listed


def test_mfa_required_offers_enrolment_to_a_user_without_authenticators(
    api: Api,
) -> None:
    """A user who must use MFA and has no factor gets mfa_required with enroll."""
    answer = api.login()

    body = answer.json()
    assert answer.status_code == 403
    assert body["error"] == "mfa_required"
    assert body["error_description"] == "Multifactor authentication required"
    assert body["mfa_token"].startswith("Fe26.2*")
    assert body["mfa_requirements"] == {
        "enroll": [{"type": "otp"}, {"type": "phone"}, {"type": "push-notification"}]
    }


def test_otp_enrolment_is_confirmed_by_the_otp_grant(api: Api) -> None:
    """Associating OTP returns a real secret and QR URI; the first code confirms it."""
    mfa_token = api.mfa_token()

    enrolment = api.associate(mfa_token, authenticator_types=["otp"])
    before = _listed(api, mfa_token)
    confirmed = api.verify_otp(mfa_token, api.totp(enrolment["secret"]))
    after = _listed(api, mfa_token)

    assert enrolment["authenticator_type"] == "otp"
    assert _BASE32.fullmatch(enrolment["secret"])
    assert enrolment["barcode_uri"] == (
        f"otpauth://totp/mfaflow:{DEMO_EMAIL}?secret={enrolment['secret']}"
        "&issuer=mfaflow&algorithm=SHA1&digits=6&period=30"
    )
    [recovery_code] = enrolment["recovery_codes"]
    assert _RECOVERY_CODE.fullmatch(recovery_code)
    assert [(a["type"], a["active"]) for a in before] == [
        ("otp", False),
        ("recovery-code", False),
    ]
    assert confirmed.status_code == 200
    assert {"access_token", "id_token", "refresh_token"} <= confirmed.json().keys()
    assert [(a["type"], a["active"]) for a in after] == [
        ("otp", True),
        ("recovery-code", True),
    ]
    assert after[0]["id"].startswith("totp|dev_")
    assert api.login().json()["mfa_requirements"] == {
        "challenge": [{"type": "otp"}, {"type": "recovery-code"}]
    }


@pytest.mark.parametrize(
    ("channel", "twin"), [("sms", "voice"), ("voice", "sms")], ids=["sms", "voice"]
)
def test_phone_enrolment_sends_a_code_and_creates_the_twin(
    api: Api, channel: str, twin: str
) -> None:
    """SMS or voice enrolment sends a code and creates the other channel too."""
    mfa_token = api.mfa_token()

    enrolment = api.associate(
        mfa_token,
        authenticator_types=["oob"],
        oob_channels=[channel],
        phone_number="+15551238730",
    )
    code = api.tenant.last_code(DEMO_EMAIL, channel)
    confirmed = api.token(
        grant_type=MFA_OOB,
        mfa_token=mfa_token,
        oob_code=enrolment["oob_code"],
        binding_code=code,
    )
    listed = _listed(api, mfa_token)

    assert enrolment["binding_method"] == "prompt"
    assert enrolment["oob_channel"] == channel
    assert re.fullmatch(r"[0-9]{6}", code)
    assert confirmed.status_code == 200, confirmed.text
    assert [(a["oob_channel"], a["name"], a["active"]) for a in listed[:2]] == [
        (channel, "XXXXXXXX8730", True),
        (twin, "XXXXXXXX8730", True),
    ]
    assert {a["type"] for a in listed[:2]} == {"phone"}


def test_email_enrolment_defaults_to_the_users_address(api: Api) -> None:
    """Email enrolment without an address sends the code to the user's own email."""
    mfa_token = api.mfa_token()

    enrolment = api.associate(
        mfa_token, authenticator_types=["oob"], oob_channel="email"
    )
    message = api.tenant.outbox.last(channel="email")
    api.token(
        grant_type=MFA_OOB,
        mfa_token=mfa_token,
        oob_code=enrolment["oob_code"],
        binding_code=message.code if message else "",
    )

    assert message is not None
    assert message.recipient == DEMO_EMAIL
    assert message.purpose == "enrolment"
    assert _listed(api, mfa_token)[0] == {
        "id": _listed(api, mfa_token)[0]["id"],
        "authenticator_type": "oob",
        "active": True,
        "type": "email",
        "oob_channel": "email",
        "name": "d***@example.test",
    }


def test_push_enrolment_waits_for_approval_and_creates_an_otp_twin(api: Api) -> None:
    """Push enrolment is pending until approved; then push and its twin are active."""
    mfa_token = api.mfa_token()

    enrolment = api.associate(
        mfa_token, authenticator_types=["oob"], oob_channels=["auth0"]
    )
    poll = {
        "grant_type": MFA_OOB,
        "mfa_token": mfa_token,
        "oob_code": enrolment["oob_code"],
    }
    pending = api.token(**poll)
    [push] = api.tenant.pending_pushes(DEMO_EMAIL)
    api.tenant.approve_push(DEMO_EMAIL)
    api.tenant.clock.advance(5)
    approved = api.token(**poll)
    listed = _listed(api, mfa_token)

    assert "binding_method" not in enrolment
    assert enrolment["oob_channel"] == "auth0"
    assert f"enrollment_tx_id={push.id}" in enrolment["barcode_uri"]
    assert push.enrolment
    assert error_of(pending) == (
        400,
        "authorization_pending",
        "Authorization pending: please repeat the request in a few seconds.",
    )
    assert approved.status_code == 200
    assert [(a["type"], a["active"]) for a in listed] == [
        ("push-notification", True),
        ("otp", True),
        ("recovery-code", True),
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "authenticator_types"),
        ({"authenticator_types": ["sms"]}, "authenticator_types"),
        ({"authenticator_types": ["oob"]}, "oob_channels"),
        ({"authenticator_types": ["oob"], "oob_channels": ["fax"]}, "oob_channels"),
        ({"authenticator_types": ["oob"], "oob_channels": ["sms"]}, "phone_number"),
        (
            {
                "authenticator_types": ["oob"],
                "oob_channels": ["sms"],
                "phone_number": "555-1234",
            },
            "E.164",
        ),
    ],
    ids=["nothing", "bad-type", "no-channel", "bad-channel", "no-phone", "bad-phone"],
)
def test_associate_refuses_incomplete_requests(
    api: Api, body: dict[str, Any], fragment: str
) -> None:
    """/mfa/associate answers 400 invalid_request naming what is wrong."""
    answer = api.post("mfa/associate", body, token=api.mfa_token())

    status, error, description = error_of(answer)
    assert (status, error) == (400, "invalid_request")
    assert fragment in description


def test_associate_refuses_a_disabled_factor(
    base_config: TenantConfig, serve: Serve
) -> None:
    """Enrolling a factor the tenant does not enable answers 400 invalid_request."""
    config = attrs.evolve(base_config, factors=("otp", "sms"))
    with serve(config) as api:
        answer = api.post(
            "mfa/associate",
            {
                "authenticator_types": ["oob"],
                "oob_channels": ["voice"],
                "phone_number": "+15550001111",
            },
            token=api.mfa_token(),
        )
        sms = api.associate_sms(api.mfa_token(), "+15550001111")
        listed = _listed(api, api.mfa_token())

    assert error_of(answer)[:2] == (400, "invalid_request")
    assert sms["oob_channel"] == "sms"
    assert [a["oob_channel"] for a in listed if a["type"] == "phone"] == ["sms"]


def test_associate_needs_a_valid_bearer_token(api: Api) -> None:
    """Without a token, or with a malformed mfa_token, /mfa/associate answers 401."""
    body = {"authenticator_types": ["otp"]}

    assert error_of(api.post("mfa/associate", body))[:2] == (401, "invalid_token")
    assert error_of(api.post("mfa/associate", body, token="Fe26.2**forged")) == (
        401,
        "invalid_grant",
        "Malformed mfa_token",
    )


def test_mfa_token_cannot_enrol_a_second_factor(api: Api) -> None:
    """Once the user has an active authenticator, an mfa_token cannot enrol another."""
    api.enrol_otp()

    answer = api.post(
        "mfa/associate", {"authenticator_types": ["otp"]}, token=api.mfa_token()
    )

    assert error_of(answer) == (403, "access_denied", "User is already enrolled.")


def test_recovery_codes_are_absent_when_disabled(
    base_config: TenantConfig, serve: Serve
) -> None:
    """With recovery codes off, enrolment returns none and lists no recovery code."""
    with serve(attrs.evolve(base_config, recovery_codes=False)) as api:
        mfa_token = api.mfa_token()
        enrolment = api.associate(mfa_token, authenticator_types=["otp"])
        listed = _listed(api, mfa_token)

    assert "recovery_codes" not in enrolment
    assert [a["type"] for a in listed] == ["otp"]


# --- The MFA audience -----------------------------------------------------------------


def test_mfa_audience_token_has_the_mfa_scopes_and_lasts_600_seconds(api: Api) -> None:
    """After MFA, the MFA audience gets a 600 s token with its three scopes."""
    secret, _ = api.enrol_otp()

    tokens = api.mfa_api_token(secret)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})

    assert tokens["expires_in"] == 600
    assert tokens["scope"] == "enroll read:authenticators remove:authenticators"
    assert claims["aud"] == api.tenant.mfa_audience
    assert claims["aud"] == api.url.replace("http://", "https://") + "mfa/"
    assert claims["exp"] - claims["iat"] == 600


def test_mfa_audience_without_trailing_slash_and_without_factors(api: Api) -> None:
    """The audience works without its slash; with no factor no challenge is asked."""
    answer = api.login(audience=api.tenant.mfa_audience.rstrip("/"), scope="enroll")

    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "enroll"


def test_access_token_enrols_a_second_factor_and_confirms_it(api: Api) -> None:
    """An enroll-scoped MFA token adds a factor and confirms it as mfa_token."""
    secret, _ = api.enrol_otp()
    access_token = api.mfa_api_token(secret, scope="enroll read:authenticators")[
        "access_token"
    ]

    enrolment = api.associate_sms(access_token, "+15550009999")
    confirmed = api.token(
        grant_type=MFA_OOB,
        mfa_token=access_token,
        oob_code=enrolment["oob_code"],
        binding_code=api.tenant.last_code(DEMO_EMAIL, "sms"),
    )
    listed = _listed(api, access_token)

    assert "recovery_codes" not in enrolment
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["scope"] == "enroll read:authenticators"
    assert [
        a.channel for a in api.tenant.authenticators(DEMO_EMAIL, active_only=True)
    ] == [
        "otp",
        "recovery-code",
        "sms",
        "voice",
    ]
    assert len(listed) == 4


def test_listing_with_an_access_token_needs_read_authenticators(api: Api) -> None:
    """Listing with an MFA token lacking read:authenticators answers 403."""
    secret, tokens = api.enrol_otp()
    enrol_only = api.mfa_api_token(secret, scope="enroll")["access_token"]

    narrow = api.get("mfa/authenticators", token=enrol_only)
    foreign = api.get("mfa/authenticators", token=tokens["access_token"])

    assert error_of(narrow)[:2] == (403, "insufficient_scope")
    assert error_of(foreign)[:2] == (401, "invalid_token")


def test_expired_mfa_audience_token_is_refused(api: Api) -> None:
    """An MFA-audience access token stops working after its 600 seconds."""
    secret, _ = api.enrol_otp()
    access_token = api.mfa_api_token(secret)["access_token"]

    api.tenant.clock.advance(600)

    answer = api.get("mfa/authenticators", token=access_token)
    assert error_of(answer) == (401, "invalid_token", "The access token has expired.")


def test_delete_removes_an_authenticator_and_its_twin(api: Api) -> None:
    """DELETE with remove:authenticators answers 204, removes the twin, then 404."""
    secret, _ = api.enrol_otp()
    access_token = api.mfa_api_token(secret)["access_token"]
    sms = api.associate_sms(access_token, "+15550009999")
    api.token(
        grant_type=MFA_OOB,
        mfa_token=access_token,
        oob_code=sms["oob_code"],
        binding_code=api.tenant.last_code(DEMO_EMAIL, "sms"),
    )
    sms_id = next(
        a["id"] for a in _listed(api, access_token) if a.get("oob_channel") == "sms"
    )

    deleted = api.delete(f"mfa/authenticators/{sms_id}", token=access_token)
    again = api.delete(f"mfa/authenticators/{sms_id}", token=access_token)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert [a["type"] for a in _listed(api, access_token)] == ["otp", "recovery-code"]
    assert error_of(again)[:2] == (404, "not_found")


def test_delete_refuses_an_mfa_token_and_a_token_without_the_scope(api: Api) -> None:
    """DELETE answers 401 for an mfa_token and 403 without remove:authenticators."""
    secret, _ = api.enrol_otp()
    otp_id = api.tenant.authenticators(DEMO_EMAIL)[0].id
    read_only = api.mfa_api_token(secret, scope="read:authenticators")["access_token"]

    with_mfa_token = api.delete(f"mfa/authenticators/{otp_id}", token=api.mfa_token())
    without_scope = api.delete(f"mfa/authenticators/{otp_id}", token=read_only)
    without_token = api.delete(f"mfa/authenticators/{otp_id}")

    assert error_of(with_mfa_token)[:2] == (401, "invalid_token")
    assert error_of(without_scope)[:2] == (403, "insufficient_scope")
    assert error_of(without_token)[:2] == (401, "invalid_token")
    assert api.tenant.authenticators(DEMO_EMAIL)[0].active


def test_deleting_the_otp_twin_removes_the_push(api: Api) -> None:
    """Deleting the OTP twin of a push authenticator deletes the push too."""
    mfa_token = api.mfa_token()
    enrolment = api.associate(
        mfa_token, authenticator_types=["oob"], oob_channels=["auth0"]
    )
    api.tenant.approve_push(DEMO_EMAIL)
    api.token(grant_type=MFA_OOB, mfa_token=mfa_token, oob_code=enrolment["oob_code"])
    twin = next(a for a in api.tenant.authenticators(DEMO_EMAIL) if a.channel == "otp")
    access_token = api.mfa_api_token(twin.secret or "")["access_token"]

    answer = api.delete(f"mfa/authenticators/{twin.id}", token=access_token)

    assert answer.status_code == 204
    assert [a.channel for a in api.tenant.authenticators(DEMO_EMAIL)] == [
        "recovery-code"
    ]


def test_config_pre_enrolled_authenticators_are_active(
    base_config: TenantConfig, serve: Serve
) -> None:
    """Authenticators declared in the configuration start active, twins included."""
    user = attrs.evolve(
        base_config.users[0],
        authenticators=(
            AuthenticatorConfig("otp", secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
            AuthenticatorConfig("sms", phone_number="+15557654321"),
        ),
    )
    with serve(attrs.evolve(base_config, users=(user,))) as api:
        body = api.login().json()
        code = api.totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        answer = api.verify_otp(body["mfa_token"], code)
        channels = [
            (a.channel, a.active) for a in api.tenant.authenticators(DEMO_EMAIL)
        ]

    assert body["mfa_requirements"] == {
        "challenge": [{"type": "otp"}, {"type": "phone"}]
    }
    assert answer.status_code == 200
    assert channels == [("otp", True), ("sms", True), ("voice", True)]


def test_mfa_token_expires_after_600_seconds(api: Api) -> None:
    """An mfa_token older than 600 s answers 401 expired_token everywhere."""
    mfa_token = api.mfa_token()
    api.tenant.clock.advance(600)

    listed = api.get("mfa/authenticators", token=mfa_token)
    associated = api.post(
        "mfa/associate", {"authenticator_types": ["otp"]}, token=mfa_token
    )

    assert error_of(listed) == (401, "expired_token", "mfa_token is expired")
    assert error_of(associated) == (401, "expired_token", "mfa_token is expired")
