"""The control endpoints under /__control: there only when enabled, and working."""

from __future__ import annotations

import jwt
import pyotp
import pytest
from _tenantkit import Api, Serve, error_of

from mfaflow.tenant import DEMO_EMAIL, DEMO_PASSWORD, MFA_OOB, PASSWORD, TenantConfig


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "__control/outbox"),
        ("GET", "__control/pushes"),
        ("POST", "__control/pushes/approve"),
        ("POST", "__control/clock/advance"),
        ("POST", "__control/users"),
        ("GET", "__control/authenticators/totp%7Cdev_x/totp"),
    ],
)
def test_control_endpoints_do_not_exist_without_control(
    base_config: TenantConfig, serve: Serve, method: str, path: str
) -> None:
    """A tenant built without control answers 404 on every control path."""
    with serve(base_config, control=False) as api:
        answer = api.session.request(method, api.url + path, json={})

    assert error_of(answer)[:2] == (404, "not_found")


def _sms_enrolment(api: Api) -> tuple[str, str]:
    mfa_token = api.mfa_token()
    enrolment = api.associate_sms(mfa_token, "+15550004321")
    return mfa_token, enrolment["oob_code"]


def test_outbox_shows_sent_codes(api: Api) -> None:
    """The outbox lists messages with their codes; last gives the newest code."""
    mfa_token, oob_code = _sms_enrolment(api)

    listed = api.get(f"__control/outbox?user={DEMO_EMAIL}&channel=sms").json()
    last = api.get(f"__control/outbox/last?user={DEMO_EMAIL}").json()
    confirmed = api.token(
        grant_type=MFA_OOB,
        mfa_token=mfa_token,
        oob_code=oob_code,
        binding_code=last["code"],
    )

    [message] = listed["messages"]
    assert message["channel"] == "sms"
    assert message["recipient"] == "+15550004321"
    assert message["purpose"] == "enrolment"
    assert message["code"] == last["code"]
    assert confirmed.status_code == 200


def test_outbox_errors(api: Api) -> None:
    """Asking for the last code without a user, or when none was sent, is an error."""
    assert error_of(api.get("__control/outbox/last"))[:2] == (400, "invalid_request")
    assert error_of(api.get(f"__control/outbox/last?user={DEMO_EMAIL}"))[:2] == (
        404,
        "not_found",
    )
    assert error_of(api.get("__control/outbox?user=ghost@example.test"))[:2] == (
        404,
        "not_found",
    )


@pytest.mark.parametrize(("decision", "expected"), [("approve", 200), ("reject", 400)])
def test_pushes_are_listed_and_decided(api: Api, decision: str, expected: int) -> None:
    """Pending pushes are listed, and approving or rejecting one settles the poll."""
    mfa_token = api.mfa_token()
    enrolment = api.associate(
        mfa_token, authenticator_types=["oob"], oob_channels=["auth0"]
    )

    [push] = api.get(f"__control/pushes?user={DEMO_EMAIL}").json()["pushes"]
    decided = api.post(f"__control/pushes/{decision}", {"id": push["id"]})
    after = api.get("__control/pushes").json()["pushes"]
    poll = api.token(
        grant_type=MFA_OOB, mfa_token=mfa_token, oob_code=enrolment["oob_code"]
    )

    assert push["enrolment"] is True
    assert decided.json()["id"] == push["id"]
    assert after == []
    assert poll.status_code == expected


def test_push_decisions_need_a_pending_push(api: Api) -> None:
    """Deciding when nothing is pending, or an unknown decision, answers 404."""
    nothing = api.post("__control/pushes/approve", {"user": DEMO_EMAIL})
    unknown = api.post("__control/pushes/maybe", {"user": DEMO_EMAIL})

    assert error_of(nothing)[:2] == (404, "not_found")
    assert error_of(unknown)[:2] == (404, "not_found")


def test_clock_reads_and_advances(api: Api) -> None:
    """The clock endpoint reads the tenant's time and moves it forward."""
    before = api.get("__control/clock").json()["now"]

    advanced = api.post("__control/clock/advance", {"seconds": 601}).json()["now"]
    refused = api.post("__control/clock/advance", {"seconds": -5})

    assert advanced == before + 601
    assert api.tenant.clock.now() == advanced
    assert error_of(refused) == (
        400,
        "invalid_request",
        "The clock only moves forward; got seconds=-5.0.",
    )


@pytest.mark.parametrize(
    ("seconds", "described"),
    [
        (
            1e308,
            "The clock moves at most 315360000 seconds (ten years) at a time; "
            "got seconds=1e+308.",
        ),
        ("nan", "seconds must be a number; got 'nan'."),
        ("soon", "seconds must be a number; got 'soon'."),
        (True, "seconds must be a number; got True."),
        (None, "seconds must be a number; got None."),
    ],
    ids=["huge", "nan", "text", "boolean", "missing"],
)
def test_clock_refuses_to_move_by_what_is_not_a_sensible_number(
    api: Api, seconds: object, described: str
) -> None:
    """Moving the clock by a huge amount or a non-number answers 400; time stays."""
    before = api.tenant.clock.now()

    first = api.post("__control/clock/advance", {"seconds": seconds})
    second = api.post("__control/clock/advance", {"seconds": seconds})
    token = api.login()

    assert error_of(first) == error_of(second) == (400, "invalid_request", described)
    assert api.tenant.clock.now() == before
    assert token.status_code == 403  # mfa_required, as before: grants still work


def test_totp_endpoint_computes_the_current_code(api: Api) -> None:
    """The TOTP endpoint gives what an authenticator app shows for the secret."""
    mfa_token = api.mfa_token()
    secret = api.associate(mfa_token, authenticator_types=["otp"])["secret"]
    otp_id = api.tenant.authenticators(DEMO_EMAIL)[0].id

    answer = api.get(f"__control/authenticators/{otp_id.replace('|', '%7C')}/totp")
    missing = api.get("__control/authenticators/totp%7Cdev_none/totp")

    assert answer.json() == {"code": pyotp.TOTP(secret).at(api.tenant.clock.now())}
    assert error_of(missing)[:2] == (404, "not_found")


def test_users_can_be_added(api: Api) -> None:
    """A user added through the control surface can log in."""
    added = api.post(
        "__control/users",
        {"email": "new@example.test", "password": "new-user-pass-1", "mfa": "never"},
    )
    duplicate = api.post(
        "__control/users", {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    login = api.token(
        grant_type=PASSWORD, username="new@example.test", password="new-user-pass-1"
    )

    assert added.status_code == 201
    assert added.json()["email"] == "new@example.test"
    assert error_of(duplicate)[:2] == (409, "invalid_request")
    assert login.status_code == 200


def test_tokens_after_a_clock_move_need_a_leeway(api: Api) -> None:
    """After advancing 601 s, PyJWT refuses a new token's iat unless given a leeway."""
    api.tenant.add_user("clocked@example.test", DEMO_PASSWORD)
    api.post("__control/clock/advance", {"seconds": 601})
    token = api.token(
        grant_type=PASSWORD, username="clocked@example.test", password=DEMO_PASSWORD
    ).json()["access_token"]
    key = jwt.PyJWKClient(api.url + ".well-known/jwks.json").get_signing_key_from_jwt(
        token
    )
    audience = api.tenant.userinfo_audience

    with pytest.raises(jwt.ImmatureSignatureError):
        jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, leeway=700
    )
    assert claims["sub"].startswith("auth0|")
