"""Tokens and codes that expire in the middle of a login.

The mfa_token of a login can expire while a push is polled or an
enrolment is confirmed, and codes can expire again and again while a
person is slow to type them. Each ends the login in the outcome the flows
give it, with nothing secret left in the run or the logs.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _flow_helpers import PASSWORD, Driver, edges

from mfaflow import RunResult
from mfaflow.tenant import Lifetimes


def sign_in(driver: Driver, user: str, **inputs: str) -> RunResult:
    """Start password-grant for ``user`` of the test tenant."""
    return driver.start(
        "password-grant", username=f"{user}@example.test", password=PASSWORD, **inputs
    )


def test_mfa_token_expiring_while_a_push_is_polled_ends_as_expired(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A push still unanswered when the mfa_token expires ends the login as
    expired at the next poll."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    result = sign_in(driver, "push", authenticator_id="push")
    driver.advance(61)

    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The mfa_token expired before the second factor was verified; sign in again."
    )
    assert "mfa-challenge:poll_push --expired_token--> expired" in edges(result)
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("factor", ["email", "push"])
def test_mfa_token_expiring_while_an_enrolment_is_confirmed_ends_as_expired(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture, factor: str
):
    """An enrolment confirmed (a code entered, a push polled) after the
    mfa_token expired ends the login as expired, and nothing is enrolled."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    result = sign_in(driver, "new", factor=factor)
    driver.advance(61)

    if factor == "email":
        step = "confirm_oob"
        code = driver.last_code("new@example.test", "email")
        result = driver.resume(result, binding_code=code)
    else:
        step = "poll_push"
        result = driver.resume(result)  # scanned
        result = driver.until_input(result)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The token expired before the enrolment was confirmed; sign in again."
    )
    assert f"mfa-enroll:{step} --expired_token--> expired" in edges(result)
    assert "mfa-challenge:enrol --expired--> enrolment_expired" in edges(result)
    assert driver.tenant.authenticators("new@example.test", active_only=True) == []
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("user", "inputs", "flow"),
    [("email", {}, "mfa-challenge"), ("new", {"factor": "email"}, "mfa-enroll")],
)
def test_codes_expiring_again_and_again_end_the_login(
    serve: Callable[..., Driver],
    logs: pytest.LogCaptureFixture,
    user: str,
    inputs: dict[str, str],
    flow: str,
):
    """Each expired email code sends a new one, counted as a wrong code; the
    third expiry ends the login as too_many_wrong_codes."""
    driver = serve(lifetimes=Lifetimes(oob_code=30))
    email = f"{user}@example.test"
    result = sign_in(driver, user, **inputs)

    for _ in range(3):
        assert [request.name for request in result.waiting_for] == ["binding_code"]
        code = driver.last_code(email, "email")
        driver.advance(31)
        result = driver.resume(result, binding_code=code)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert f"{flow}:count_expired_code --exhausted--> too_many_wrong_codes" in edges(
        result
    )
    assert len(driver.tenant.outbox.messages(channel="email")) == 3
    driver.assert_no_secret_leaked(logs)
