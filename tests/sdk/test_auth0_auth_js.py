"""@auth0/auth0-auth-js (``AuthClient`` and its ``mfa``) against ``mfaflow serve``.

One node script (``node/auth_js_mfa.mjs``) drives every MFA API call an
application makes, with the confidential demo client (auth-js refuses
token calls without a client secret); each test checks what it reported
for some of the steps.
"""

from __future__ import annotations

from typing import Any

import pytest
from _node import installed, run_script
from _sdkkit import NODE_PROJECT, Steps
from _serve import Served

from mfaflow.tenant import DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def steps(tenant: Served) -> Steps:
    """What the auth-js script reported for each of its steps."""
    assert tenant.certificate is not None
    report = run_script(
        installed(NODE_PROJECT),
        "auth_js_mfa.mjs",
        env={
            "TENANT_URL": tenant.url,
            "CLIENT_ID": DEMO_SERVER_CLIENT_ID,
            "CLIENT_SECRET": DEMO_SERVER_CLIENT_SECRET,
            "NODE_EXTRA_CA_CERTS": str(tenant.certificate),
        },
    )
    return Steps(report["steps"])


def _by_id_prefix(listed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"].split("|")[0]: item for item in listed}


def test_password_grant_raises_mfa_required_with_requirements(steps: Steps) -> None:
    """getTokenByPassword fails with mfa_required (403) and the factors to enrol."""
    answer = steps.ok("otp: password grant")

    assert (answer["error"], answer["status"]) == ("mfa_required", 403)
    enrol = [item["type"] for item in answer["requirements"]["enroll"]]
    assert enrol == ["otp", "phone", "push-notification"]
    again = steps.ok("otp: password grant again")
    assert [item["type"] for item in again["requirements"]["challenge"]] == [
        "otp",
        "recovery-code",
    ]


def test_otp_enrolment_parses_and_is_confirmed(steps: Steps) -> None:
    """enrollAuthenticator(otp) gives a secret, a barcode URI and a recovery code."""
    enrolment = steps.ok("otp: enrol")
    confirmed = steps.ok("otp: confirm enrolment")

    assert enrolment["authenticatorType"] == "otp"
    assert len(enrolment["secret"]) == 32
    assert enrolment["barcodeUri"].startswith("otpauth://totp/")
    assert len(enrolment["recoveryCodes"]) == 1
    assert confirmed == {
        "accessToken": True,
        "refreshToken": True,
        "idToken": True,
        "recoveryCode": None,
    }


def test_otp_challenge_and_verification(steps: Steps) -> None:
    """An otp challenge parses; the right code verifies and a wrong one is refused."""
    assert steps.ok("otp: challenge") == {"challengeType": "otp"}
    assert steps.ok("otp: keep the tokens")["refreshToken"]
    wrong = steps.refused("otp: wrong code")
    assert (wrong["name"], wrong["error"]) == ("MfaVerifyError", "invalid_grant")
    assert wrong["description"] == "Invalid otp_code."


def test_an_mfa_token_lists_the_confirmed_app_and_recovery_code(
    steps: Steps,
) -> None:
    """listAuthenticators takes an mfa_token and lists the OTP app, both active."""
    listed = _by_id_prefix(steps.ok("otp: list with the mfa_token"))

    assert set(listed) == {"totp", "recovery-code"}
    assert (listed["totp"]["authenticatorType"], listed["totp"]["type"]) == (
        "otp",
        "otp",
    )
    assert listed["totp"]["active"] is True
    assert listed["recovery-code"]["authenticatorType"] == "recovery-code"
    assert listed["recovery-code"]["active"] is True


def test_list_model_misses_the_observed_singular_oob_channel(steps: Steps) -> None:
    """listAuthenticators parses; it reads oob_channels, so oobChannels is unset."""
    listed = _by_id_prefix(steps.ok("manage: list with the access token"))

    assert set(listed) == {"totp", "recovery-code", "sms", "voice"}
    assert listed["sms"]["authenticatorType"] == "oob"
    assert listed["sms"]["type"] == "phone"
    assert listed["sms"]["active"] is True
    # auth-js maps the plural oob_channels of the reference pages; the tenant
    # answers the singular oob_channel of real payloads (docs/testing.md).
    assert "oobChannels" not in listed["sms"]


def test_recovery_code_verifies_once_and_is_replaced(steps: Steps) -> None:
    """verify(recovery-code) returns a new recovery code; the used one is refused."""
    recovered = steps.ok("recovery code: verify")
    reused = steps.refused("recovery code: reuse")

    assert recovered["accessToken"]
    assert len(recovered["recoveryCode"]) == 24
    assert (reused["error"], reused["description"]) == (
        "invalid_grant",
        "Invalid recovery_code.",
    )


def test_refresh_rotates_and_a_reused_token_revokes_the_family(steps: Steps) -> None:
    """getTokenByRefreshToken rotates; reusing the old token revokes the new one too."""
    rotated = steps.ok("refresh: rotate")
    reused = steps.refused("refresh: reuse the old token")
    after = steps.refused("refresh: the rotated token after the reuse")

    assert rotated["rotated"] is True
    assert rotated["accessToken"]
    assert reused["error"] == "invalid_grant"
    assert after["error"] == "invalid_grant"


def test_mfa_audience_token_enrols_a_second_factor(steps: Steps) -> None:
    """An MFA-audience token (after a recovery code) enrols and confirms SMS."""
    manager = steps.ok("mfa audience: verify a recovery code")
    sms = steps.ok("manage: enrol sms with the access token")

    assert manager["scope"] == "enroll read:authenticators remove:authenticators"
    assert (sms["authenticatorType"], sms["oobChannel"]) == ("oob", "sms")
    assert sms["bindingMethod"] == "prompt"
    assert steps.ok("manage: confirm sms")["accessToken"]


def test_delete_needs_the_access_token_and_takes_the_twin(steps: Steps) -> None:
    """deleteAuthenticator refuses an mfa_token; with the token, SMS and voice go."""
    refused = steps.refused("manage: delete with an mfa_token")
    deleted = steps.ok("manage: delete sms")
    remaining = _by_id_prefix(steps.ok("manage: list after the delete"))

    assert (refused["name"], refused["error"], refused["status"]) == (
        "MfaDeleteAuthenticatorError",
        "invalid_token",
        401,
    )
    assert deleted.startswith("sms|")
    assert set(remaining) == {"totp", "recovery-code"}


@pytest.mark.parametrize("channel", ["sms", "voice", "email"])
def test_codes_sent_by_each_channel(steps: Steps, channel: str) -> None:
    """Enrolment and challenge by sms, voice and email verify with the code sent."""
    enrolment = steps.ok(f"{channel}: enrol")
    challenge = steps.ok(f"{channel}: challenge")
    wrong = steps.refused(f"{channel}: wrong code")

    assert (enrolment["authenticatorType"], enrolment["oobChannel"]) == (
        "oob",
        channel,
    )
    assert enrolment["bindingMethod"] == "prompt"
    assert steps.ok(f"{channel}: confirm with the code sent")["accessToken"]
    assert {item["id"].split("|")[0] for item in steps.ok(f"{channel}: list")} >= {
        channel,
        "recovery-code",
    }
    assert challenge["challengeType"] == "oob"
    assert challenge["bindingMethod"] == "prompt"
    assert (wrong["error"], wrong["description"]) == (
        "invalid_grant",
        "Invalid binding_code.",
    )
    assert steps.ok(f"{channel}: verify")["refreshToken"]


def test_push_is_polled_until_approved(steps: Steps) -> None:
    """Push enrolment polls authorization_pending, then gives tokens once approved."""
    enrolment = steps.ok("push: enrol")
    pending = steps.refused("push: poll before approval")
    approved = steps.ok("push: poll after approval")
    listed = _by_id_prefix(steps.ok("push: list"))

    assert (enrolment["authenticatorType"], enrolment["oobChannel"]) == (
        "oob",
        "auth0",
    )
    assert "bindingMethod" not in enrolment
    assert enrolment["barcodeUri"].startswith("otpauth://totp/")
    assert (pending["error"], pending["description"]) == (
        "authorization_pending",
        "Authorization pending: please repeat the request in a few seconds.",
    )
    assert approved["accessToken"]
    assert {"push", "totp", "recovery-code"} <= set(listed)


def test_a_rejected_push_is_access_denied(steps: Steps) -> None:
    """A push rejected on the device fails verification with access_denied."""
    challenge = steps.ok("push: challenge")
    rejected = steps.refused("push: poll after rejection")

    assert challenge["challengeType"] == "oob"
    assert (rejected["error"], rejected["description"]) == (
        "access_denied",
        "MFA Authorization rejected.",
    )
