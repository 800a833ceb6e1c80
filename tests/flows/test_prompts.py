"""Prompts that show values of the run: filled in for the caller, masked when stored."""

from __future__ import annotations

import json

from mfaflow import Client, Engine
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
    """The waiting run's prompt shows the values, secrets included, for the person."""
    run = engine()

    result = run.start(parse_flow(FLOW), {"where": "the lab", "key": "k-4c1e77"})

    (request,) = result.waiting_for
    assert (
        request.prompt
        == "Go to the lab with k-4c1e77 as client-secret-9f2 (${literal})."
    )
    assert run.get(result.run_id).waiting_for[0].prompt == request.prompt


def test_stored_prompt_masks_secrets():
    """The stored run keeps secret values and the client secret out of the prompt."""
    run = engine()

    result = run.start(parse_flow(FLOW), {"where": "the lab", "key": "k-4c1e77"})

    document = json.dumps(run.store.load(result.run_id).document)
    assert "Go to the lab with *** as *** (${literal})." in document
    assert "k-4c1e77" not in document
    assert "client-secret-9f2" not in document
