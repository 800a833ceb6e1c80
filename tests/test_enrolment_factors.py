"""Enrolment offers only the factors ``mfa_requirements.enroll`` allows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from mfaflow import (
    Client,
    Engine,
    InputError,
    MemoryStore,
    RequestsTransport,
    RunResult,
)
from mfaflow._auth0_actions import enrolment_factors
from mfaflow._registry import ActionContext
from mfaflow.tenant import (
    ClientConfig,
    Clock,
    LoopbackServer,
    Tenant,
    TenantConfig,
    UserConfig,
)

ALL = ["otp", "sms", "voice", "email", "push"]
CLIENT_ID = "enrolling-app"
PASSWORD = "pw-4e7a1c"


def offered(requirements: Any, **args: Any) -> tuple[str, dict[str, Any]]:
    """The event and result of enrolment_factors for ``requirements``."""
    context = ActionContext(run_id="r", flow="f", state="s", client=None, now=0.0)
    found = enrolment_factors(context, {"requirements": requirements, **args})
    return found.event, found.result


@pytest.mark.parametrize(
    "requirements",
    [None, "", {}, {"challenge": [{"type": "otp"}]}, '{"challenge": []}'],
)
def test_requirements_without_enroll_types_offer_every_factor(requirements: Any):
    """No mfa_requirements, or ones without enroll, leave all five factors."""
    assert offered(requirements) == ("ok", {"factors": ALL})


@pytest.mark.parametrize(
    ("types", "factors"),
    [
        (["otp"], ["otp", "email"]),
        (["phone"], ["sms", "voice", "email"]),
        (["push-notification", "otp"], ["otp", "email", "push"]),
        (["email"], ["email"]),
        (["webauthn-roaming"], ["email"]),
    ],
)
def test_enroll_types_choose_the_factors(types: list[str], factors: list[str]):
    """Each listed type gives its factors, in the flow's order; email is kept,
    as the enroll list cannot name it."""
    requirements = {"enroll": [{"type": kind} for kind in types]}

    assert offered(requirements) == ("ok", {"factors": factors})


def test_json_text_is_read():
    """mfa_requirements given as its JSON text are read like the mapping."""
    text = '{"enroll": [{"type": "otp"}, {"type": "phone"}]}'

    assert offered(text) == ("ok", {"factors": ["otp", "sms", "voice", "email"]})


def test_no_factor_of_a_listed_type_is_the_event_none():
    """A flow's factors that no listed type allows give none, with the types."""
    requirements = {"enroll": [{"type": "webauthn-platform"}, {"type": "otp"}]}

    event, result = offered(requirements, factors=["sms", "push"])

    assert event == "none"
    assert result == {"factors": [], "types": ["otp", "webauthn-platform"]}


def test_requirements_that_are_not_json_are_refused():
    """Text that is not the JSON object of the answer stops the action clearly."""
    with pytest.raises(ValueError, match=r"^mfa_requirements must be the JSON object"):
        offered("{not json")


# -- at the embedded tenant, which sends mfa_requirements.enroll -----------------


@pytest.fixture
def engine_at() -> Iterator[Callable[..., Engine]]:
    """Serve a tenant enabling ``factors``; give an engine for a client there."""
    with ExitStack() as stack:

        def make(factors: tuple[str, ...]) -> Engine:
            config = TenantConfig(
                name="enrol",
                clients=(ClientConfig(CLIENT_ID, grant_types=("password", "mfa")),),
                users=(
                    UserConfig.with_password(
                        "new@example.test", PASSWORD, work_factor=10, mfa="always"
                    ),
                ),
                factors=factors,
                password_work_factor=10,
            )
            tenant = Tenant(config, clock=Clock.fixed(1_750_000_000.0), control=True)
            stack.enter_context(tenant)
            server = stack.enter_context(LoopbackServer(tenant))
            transport = stack.enter_context(RequestsTransport())
            return Engine(
                Client(server.url, CLIENT_ID),
                transport=transport,
                store=MemoryStore(),
                clock=server.tenant.clock.now,
            )

        yield make


def sign_in(engine: Engine) -> RunResult:
    """Start password-grant for the user without an authenticator."""
    return engine.start(
        "password-grant", {"username": "new@example.test", "password": PASSWORD}
    )


@pytest.mark.parametrize(
    ("factors", "choices"),
    [
        (("otp", "email"), ("otp", "email")),
        (("push", "sms"), ("sms", "voice", "email", "push")),
        (("otp", "sms", "voice", "email", "push"), tuple(ALL)),
    ],
)
def test_the_person_chooses_among_the_factors_the_tenant_accepts(
    engine_at: Callable[..., Engine], factors: tuple[str, ...], choices: tuple[str]
):
    """A user without an authenticator is offered the factors of the tenant's
    mfa_requirements.enroll, and email."""
    result = sign_in(engine_at(factors))

    (request,) = result.waiting_for
    assert request.name == "factor"
    assert request.choices == choices


def test_a_factor_not_offered_is_refused_and_the_run_waits_on(
    engine_at: Callable[..., Engine],
):
    """Answering with a factor the tenant does not list is refused, and an
    offered one enrols."""
    engine = engine_at(("otp", "email"))
    result = sign_in(engine)

    with pytest.raises(InputError, match="'sms' is not one of the choices"):
        engine.resume(result.run_id, {"factor": "sms"})
    result = engine.resume(result.run_id, {"factor": "otp"})

    assert result.state == "ask_first_code"


def test_mfa_enroll_without_requirements_offers_every_factor(
    engine_at: Callable[..., Engine],
):
    """mfa-enroll started with a token alone (no mfa_requirements) offers all five."""
    engine = engine_at(("otp", "email"))
    stopped = engine.start(
        "password-grant",
        {"username": "new@example.test", "password": PASSWORD, "step_up": "false"},
    )
    assert stopped.state == "mfa_required"

    result = engine.start("mfa-enroll", {"mfa_token": stopped.outputs["mfa_token"]})

    assert result.waiting_for[0].choices == tuple(ALL)
