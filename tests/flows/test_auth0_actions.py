"""The actions of the shipped flows, on the answer shapes the sources disagree about."""

from __future__ import annotations

from typing import Any

import pytest

from mfaflow._engine import Client
from mfaflow._registry import ActionContext, ActionResult, Registry


def call(action: str, **args: Any) -> ActionResult:
    """Call a registered action the way the engine does; always as an ActionResult."""
    context = ActionContext(
        run_id="run",
        flow="flow",
        state="state",
        client=Client("https://tenant.example.test", "app"),
        now=0.0,
    )
    produced = Registry(plugins=False).get_action(action)(context, args)
    if isinstance(produced, ActionResult):
        return produced
    return ActionResult("ok", produced)


SMS = {"id": "sms|dev_1", "authenticator_type": "oob", "oob_channel": "sms",
       "name": "XXXXXXXX4567", "active": True}  # fmt: skip
OTP = {"id": "totp|dev_2", "authenticator_type": "otp", "active": True}
CODE = {
    "id": "recovery-code|dev_3",
    "authenticator_type": "recovery-code",
    "active": True,
}


def test_plural_oob_channels_and_missing_type_are_read():
    """An authenticator listed with oob_channels (plural) and no type is understood."""
    listed = [{"id": "push|dev_9", "authenticator_type": "oob",
               "oob_channels": ["auth0"], "active": True}]  # fmt: skip

    chosen = call("choose_authenticator", authenticators=listed).result["chosen"]

    assert (chosen["kind"], chosen["type"], chosen["challenge_type"]) == (
        "push",
        "push-notification",
        "oob",
    )


def test_inactive_authenticators_lead_to_enrolment():
    """Unconfirmed authenticators do not count: the user must enrol."""
    listed = [{**OTP, "active": False}, CODE]

    assert call("choose_authenticator", authenticators=listed).event == "enrol"


def test_requirements_as_json_text_filter_the_choice():
    """mfa_requirements given as JSON text limit the usable factor types."""
    result = call(
        "choose_authenticator",
        authenticators=[SMS, OTP],
        requirements='{"challenge": [{"type": "phone"}]}',
    )

    assert (result.event, result.result["chosen"]["id"]) == ("ok", "sms|dev_1")


def test_requirements_excluding_every_factor_are_unsupported():
    """Active factors none of which the requirements accept are unsupported."""
    result = call(
        "choose_authenticator",
        authenticators=[OTP],
        requirements={"challenge": [{"type": "email"}]},
    )

    assert result.event == "unsupported"


def test_same_labels_get_the_id():
    """Two authenticators that would show alike are told apart by their ids."""
    other = {**SMS, "id": "sms|dev_4"}

    result = call("choose_authenticator", authenticators=[SMS, other, CODE])

    assert result.event == "ask"
    assert result.result["choices"] == [
        "Text message to XXXXXXXX4567 (sms|dev_1)",
        "Text message to XXXXXXXX4567 (sms|dev_4)",
        "Recovery code",
    ]


def test_malformed_requirements_are_an_error():
    """mfa_requirements that are not JSON are refused with a clear message."""
    with pytest.raises(ValueError, match=r"^mfa_requirements must be the JSON object"):
        call("choose_authenticator", authenticators=[OTP], requirements="{challenge")


@pytest.mark.parametrize(
    ("url", "event", "code", "error"),
    [
        ("http://127.0.0.1/callback?code=abc&state=s1", "ok", "abc", None),
        ("http://127.0.0.1/callback#code=abc&state=s1", "ok", "abc", None),
        (
            "http://127.0.0.1/callback?error=access_denied&state=s1",
            "ok",
            None,
            "access_denied",
        ),
        ("  http://127.0.0.1/callback?state=s1  ", "invalid", None, None),
        ("not a url at all", "invalid", None, None),
    ],
)
def test_callback_urls_are_read(
    url: str, event: str, code: str | None, error: str | None
):
    """The code or error of a callback is read from its query or fragment."""
    result = call("parse_callback", url=url)

    assert result.event == event
    assert (result.result["code"], result.result["error"]) == (code, error)


def test_authorize_url_adds_offline_access_once():
    """offline_access is added to the scope once, and null parameters are left out."""
    url = call(
        "authorize_url",
        offline_access="true",
        params={"scope": "openid offline_access", "audience": None, "state": "s"},
    ).result["url"]

    assert url == (
        "https://tenant.example.test/authorize?scope=openid+offline_access&state=s"
    )


def test_attempts_are_counted_to_the_limit():
    """next_attempt counts up and says exhausted when the limit is reached."""
    assert call("next_attempt", attempt=None, limit=3).event == "ok"
    assert call("next_attempt", attempt=1, limit="3").result == {"attempt": 2}
    assert call("next_attempt", attempt=2, limit=3).event == "exhausted"


def test_polling_interval_grows_to_its_cap():
    """increase adds to the interval, without passing max."""
    assert call("increase", value=5, by=5, max=60).result == {"value": 10.0}
    assert call("increase", value=58, by=5, max=60).result == {"value": 60.0}


def test_authenticator_ids_are_escaped_for_urls():
    """find_authenticator escapes the id's '|' for the DELETE URL."""
    found = call("find_authenticator", authenticators=[SMS], id="sms|dev_1")
    missing = call("find_authenticator", authenticators=[SMS], id="sms|dev_0")

    assert (found.event, found.result["quoted_id"]) == ("ok", "sms%7Cdev_1")
    assert missing.event == "not_found"
