"""mfa-challenge against answers the embedded tenant does not give.

A scripted server stands for an authorization server that refuses the
mfa_token in the middle of a verification, answers a wrong code with
Auth0's legacy ``a0.mfa_invalid_code``, or refuses the listing in other
words than the tenant's. Each ends where the flow says, leaking nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from _flow_helpers import (
    PASSWORD,
    SCRIPTED_APP,
    SCRIPTED_TOKENS,
    Answer,
    Driver,
    Scripted,
    edges,
    scripted_driver,
    scripted_mfa,
)
from _servers import serve_wsgi

from mfaflow import RunResult

#: Authenticators as a scripted server lists them.
PHONE = {
    "id": "sms|dev_scripted",
    "authenticator_type": "oob",
    "oob_channel": "sms",
    "name": "XXXXXXXX4567",
    "active": True,
}
PUSH = {
    "id": "push|dev_scripted",
    "authenticator_type": "oob",
    "oob_channel": "auth0",
    "name": "Scripted phone",
    "active": True,
}
RECOVERY = {
    "id": "recovery-code|dev_scripted",
    "authenticator_type": "recovery-code",
    "active": True,
}
OOB_CODE = "oob-scripted-3f61a0c2"
#: How each kind of authenticator is listed and challenged, which token
#: endpoint route verifies it, and what a person answers.
KINDS: dict[str, dict[str, Any]] = {
    "otp": {"routes": {}, "verify": "mfa_otp", "answer": {"otp": "246810"}},
    "binding-code": {
        "routes": {
            "list": [(200, [PHONE])],
            "challenge": [
                (
                    200,
                    {
                        "challenge_type": "oob",
                        "oob_code": OOB_CODE,
                        "binding_method": "prompt",
                    },
                )
            ],
        },
        "verify": "mfa_oob",
        "answer": {"binding_code": "135790"},
    },
    "push": {
        "routes": {
            "list": [(200, [PUSH])],
            "challenge": [(200, {"challenge_type": "oob", "oob_code": OOB_CODE})],
        },
        "verify": "mfa_oob",
        "answer": None,
    },
    "recovery-code": {
        "routes": {"list": [(200, [SCRIPTED_APP, RECOVERY])]},
        "verify": "mfa_recovery_code",
        "answer": {"recovery_code": "SCRIPTEDRECOVERYCODE0002"},
        "inputs": {"authenticator_id": "recovery-code"},
    },
}


def answered(
    driver: Driver, result: RunResult, answer: dict[str, str] | None
) -> RunResult:
    """Give a waiting run the person's answer, or let a push's poll come."""
    if answer is None:
        return driver.after_wait(result)
    return driver.resume(result, **answer)


def sign_in(url: str, kind: str) -> tuple[Driver, RunResult]:
    """Sign in at ``url`` as a user with an authenticator of ``kind``, answering
    the first prompt (or poll)."""
    driver = scripted_driver(url)
    result = driver.start(
        "password-grant",
        username="someone@example.test",
        password=PASSWORD,
        **KINDS[kind].get("inputs", {}),
    )
    return driver, answered(driver, result, KINDS[kind]["answer"])


def routes(kind: str, verify: list[Answer]) -> dict[str, list[Answer]]:
    """The routes of a user of ``kind``, whose verification answers ``verify``."""
    return scripted_mfa(**KINDS[kind]["routes"], **{KINDS[kind]["verify"]: verify})


@pytest.mark.parametrize("kind", list(KINDS))
def test_mfa_token_refused_while_verifying_ends_as_token_rejected(
    logs: pytest.LogCaptureFixture, kind: str
):
    """A server that refuses the mfa_token (invalid_grant naming it) when the
    code, the push or the recovery code is verified ends the login as
    token_rejected: sign in again. The code is not asked for again."""
    malformed = {"error": "invalid_grant", "error_description": "Malformed mfa_token"}
    app = Scripted(routes(kind, [(401, malformed)]))

    with serve_wsgi(app) as url:
        driver, result = sign_in(url, kind)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == (
        "The tenant did not accept the mfa_token; sign in again to get a new one."
    )
    assert result.outputs["error"] == "invalid_grant"
    assert any(
        edge.startswith("mfa-challenge:") and edge.endswith("--> token_rejected")
        for edge in edges(result)
    ), edges(result)
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("kind", ["otp", "binding-code"])
def test_legacy_invalid_code_is_asked_again(logs: pytest.LogCaptureFixture, kind: str):
    """Auth0's legacy a0.mfa_invalid_code for a wrong code asks for it again,
    like invalid_grant; the next code signs in."""
    legacy = {"error": "a0.mfa_invalid_code", "error_description": "Wrong code."}
    app = Scripted(routes(kind, [(403, legacy), (200, SCRIPTED_TOKENS)]))

    with serve_wsgi(app) as url:
        driver, result = sign_in(url, kind)
        assert result.waiting_for[0].prompt.startswith("That code was not accepted.")
        result = answered(driver, result, KINDS[kind]["answer"])

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert any("--a0.mfa_invalid_code--> count_wrong" in edge for edge in edges(result))
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("answer", "event"),
    [
        (
            (401, {"error": "invalid_token", "error_description": "Bad token."}),
            "invalid_token",
        ),
        ((401, b"<html>Unauthorized</html>"), "http.401"),
    ],
)
def test_listing_refused_ends_as_token_rejected(
    logs: pytest.LogCaptureFixture, answer: Answer, event: str
):
    """A listing refused as invalid_token, or with a bare 401, ends the login as
    token_rejected before anything is challenged."""
    app = Scripted(scripted_mfa(list=[answer]))
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "password-grant", username="someone@example.test", password=PASSWORD
        )

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert f"mfa-challenge:list_authenticators --{event}--> token_rejected" in edges(
        result
    )
    assert "POST /mfa/challenge" not in app.requests
    driver.assert_no_secret_leaked(logs)
