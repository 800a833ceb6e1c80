"""Calls whose answer was lost are repeated only where repeating is harmless.

A request that reached the server may have changed something there: a
one-time code spent, a refresh token rotated, an authorization code
redeemed. Sent again, it would fail as a reuse, or revoke the tokens it
had just given. The shipped flows repeat such a call only when nothing
was sent (``transport.connect``) or the server answered with an error;
reading the authenticators is repeated also when its answer was lost.

The scripted server holds an answer back for longer than the driver
waits, so the driver's read times out after the request was received.
"""

from __future__ import annotations

import pytest
from _flow_helpers import (
    LOST,
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

from mfaflow import RequestsTransport

#: Seconds the driver waits for an answer: well under Scripted.hold.
PATIENCE = 0.3


def lost_answer_driver(url: str) -> Driver:
    return scripted_driver(url, transport=RequestsTransport(read_timeout=PATIENCE))


@pytest.mark.parametrize(
    ("routes", "route", "edge"),
    [
        pytest.param(
            {"POST /oauth/token password": [LOST]},
            "POST /oauth/token password",
            "password-grant:request_token --transport.timeout--> unreachable",
            id="password",
        ),
        pytest.param(
            scripted_mfa(mfa_otp=[LOST]),
            "POST /oauth/token mfa-otp",
            "mfa-challenge:verify_otp --transport.timeout--> unreachable",
            id="otp-verification",
        ),
    ],
)
def test_a_lost_answer_to_a_call_that_changes_something_is_not_sent_again(
    logs: pytest.LogCaptureFixture,
    routes: dict[str, list[Answer]],
    route: str,
    edge: str,
) -> None:
    """The password grant and a code's verification are sent once, then the run
    ends as unreachable, saying the answer timed out."""
    app = Scripted(routes)
    with serve_wsgi(app) as url:
        driver = lost_answer_driver(url)
        result = driver.start(
            "password-grant", username="someone@example.test", password=PASSWORD
        )
        if result.waiting_for:
            result = driver.until_input(driver.resume(result, otp="246810"))

    assert result.ended
    assert result.outcome == "failure"
    assert edge in edges(result)
    assert app.requests.count(route) == 1
    driver.assert_no_secret_leaked(logs)


def test_a_lost_answer_to_a_refresh_is_not_sent_again(
    logs: pytest.LogCaptureFixture,
) -> None:
    """A refresh token presented again after its rotation would revoke the
    family the lost answer belonged to, so the refresh is sent once."""
    app = Scripted({"POST /oauth/token refresh_token": [LOST]})
    with serve_wsgi(app) as url:
        driver = lost_answer_driver(url)
        result = driver.until_input(
            driver.start("refresh", refresh_token=SCRIPTED_TOKENS["refresh_token"])
        )

    assert (result.outcome, result.state) == ("failure", "unreachable")
    assert result.outputs["error"] == "transport.timeout"
    assert app.requests.count("POST /oauth/token refresh_token") == 1
    driver.assert_no_secret_leaked(logs)


def test_a_lost_answer_to_the_listing_is_asked_for_again(
    logs: pytest.LogCaptureFixture,
) -> None:
    """Reading the authenticators changes nothing, so a lost answer is
    retried and the sign-in goes on to the code."""
    app = Scripted(scripted_mfa(list=[LOST, (200, [SCRIPTED_APP])]))
    with serve_wsgi(app) as url:
        driver = lost_answer_driver(url)
        result = driver.until_input(
            driver.start(
                "password-grant", username="someone@example.test", password=PASSWORD
            )
        )
        assert [request.name for request in result.waiting_for] == ["otp"]
        result = driver.resume(result, otp="246810")

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert app.requests.count("GET /mfa/authenticators") == 2
    driver.assert_no_secret_leaked(logs)
