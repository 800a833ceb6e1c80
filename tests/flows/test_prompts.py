"""Prompts and links that show values of the run: filled in, or masked when stored."""

from __future__ import annotations

import json

import pytest

from mfaflow import Client, DefinitionErrors, Engine, RunResult
from mfaflow._loader import parse_flow

FLOW = """
mfaflow: 1
name: prompts
summary: Shows values in prompts.
inputs:
  where: {description: A place.}
  key: {secret: true, description: A secret.}
initial: ask
states:
  ask:
    input:
      answer:
        prompt: >-
          Go to ${inputs.where} with ${inputs.key}
          as ${client.client_secret} ($${literal}).
    on: {ok: done}
  done: {final: true}
"""


def engine() -> Engine:
    """An engine for a confidential client; the flow sends no request."""
    return Engine(Client("https://tenant.example.test/", "app", "client-secret-9f2"))


def test_prompt_is_filled_in_for_the_caller():
    """The waiting run's prompt shows the values of the run, filled in."""
    run = engine()
    flow = parse_flow(
        FLOW.replace(" with ${inputs.key}\n          as ${client.client_secret}", "")
    )

    result = run.start(flow, {"where": "the lab", "key": "k-4c1e77"})

    (request,) = result.waiting_for
    assert request.prompt == "Go to the lab (${literal})."
    assert run.get(result.run_id).waiting_for[0].prompt == request.prompt
    document = json.dumps(run.store.load(result.run_id).document)
    assert "Go to the lab (${literal})." in document


def test_a_prompt_that_shows_a_secret_is_refused_before_the_run():
    """A prompt is printed and stored as it is: a secret in it is a definition error."""
    run = engine()

    with pytest.raises(DefinitionErrors) as caught:
        run.start(parse_flow(FLOW), {"where": "the lab", "key": "k-4c1e77"})

    (error,) = caught.value.errors
    assert error.msg == (
        "The prompt of the input 'answer' shows ${inputs.key} (the secret input "
        "'key'), which would be stored and shown in clear."
    )


LINK_FLOW = """
mfaflow: 1
name: links
summary: Gives a link to open or scan.
inputs:
  where: {description: A place.}
  key: {secret: true, description: A secret.}
data:
  url: {description: Never saved by this flow.}
initial: ask
states:
  ask:
    input:
      answer: {prompt: Scan the QR code., link: 'LINK'}
    on: {ok: done}
  done: {final: true}
"""

GIVEN = {"where": "lab", "key": "k-4c1e77"}


def start_with_link(link: str) -> tuple[Engine, RunResult]:
    """An engine, and a run of the link flow with ``link`` waiting for its answer."""
    run = engine()
    return run, run.start(parse_flow(LINK_FLOW.replace("LINK", link)), GIVEN)


def test_link_is_filled_in_for_the_caller():
    """start and get give the link with every value in it, the secret too."""
    run, result = start_with_link("otpauth://totp/${inputs.where}?secret=${inputs.key}")

    (request,) = result.waiting_for
    assert request.link == "otpauth://totp/lab?secret=k-4c1e77"
    assert request.prompt == "Scan the QR code."
    assert run.get(result.run_id).waiting_for[0].link == request.link


def test_stored_link_masks_secrets():
    """The stored wait keeps *** for the secret in the link, which is nowhere in it."""
    run, result = start_with_link("otpauth://totp/${inputs.where}?secret=${inputs.key}")

    document = run.store.load(result.run_id).document
    (stored,) = document["wait"]["inputs"]
    assert stored["link"] == "otpauth://totp/lab?secret=***"
    assert "k-4c1e77" not in json.dumps(document)


def test_link_is_not_in_the_repr():
    """A request's repr leaves its link out, since the link may hold a secret."""
    _, result = start_with_link("otpauth://totp/x?secret=${inputs.key}")

    (request,) = result.waiting_for
    assert "k-4c1e77" not in repr(request)
    assert "k-4c1e77" not in repr(result)


@pytest.mark.parametrize(
    ("link", "secret"),
    [
        ("https://${inputs.where}.example.test/", False),
        ("https://help.example.test/", False),
        ("${client.issuer}authorize?client_id=${client.client_id}", False),
        ("otpauth://totp/x?secret=${inputs.key}", True),
        ("https://x.example.test/?s=${client.client_secret}", True),
        ("https://x.example.test/?all=${inputs}", True),
    ],
)
def test_link_is_secret_when_it_shows_a_secret(link: str, secret: bool):
    """link_is_secret is true exactly when the link shows a secret or a whole root."""
    _, result = start_with_link(link)

    (request,) = result.waiting_for
    assert request.link_is_secret is secret


def test_a_literal_link_is_given_as_written():
    """A link without references is the URL as written, in the store too."""
    run, result = start_with_link("https://help.example.test/codes")

    assert result.waiting_for[0].link == "https://help.example.test/codes"
    (stored,) = run.store.load(result.run_id).document["wait"]["inputs"]
    assert stored["link"] == "https://help.example.test/codes"


def test_a_link_that_fills_in_empty_is_none():
    """A link whose reference gives nothing is no link, not an empty string."""
    _, result = start_with_link("${data.url}")

    assert result.waiting_for[0].link is None
