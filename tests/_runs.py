"""Runs watched for leaks: every secret a run handled, and where it must not be.

:class:`Runs` starts and resumes runs of one engine and keeps every secret
they handled: the secret inputs it was given, the secret outputs and
stored secrets of each run, and, with a :class:`Harvesting` transport,
every secret-looking value that crossed the wire. Its
:meth:`~Runs.assert_no_secret_leaked` checks that none of them reached a
run's history, message, stored document or the logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

import pytest

from mfaflow import Engine, Request, Response, RunResult, Transport

__all__ = [
    "SECRET_KEYS",
    "Harvesting",
    "Runs",
    "assert_no_run_leaked",
    "assert_no_secret_in",
]

#: Keys under which requests, answers and stored secrets hold values worth
#: searching for.
SECRET_KEYS = frozenset(
    {
        "access_token",
        "id_token",
        "refresh_token",
        "mfa_token",
        "token",
        "password",
        "otp",
        "binding_code",
        "recovery_code",
        "recovery_codes",
        "barcode_uri",
        "secret",
        "oob_code",
        "code",
        "verifier",
        "callback_url",
        "client_secret",
        "code_verifier",
    }
)


class Runs:
    """Starts and resumes runs of ``engine``, remembering the secrets they handled.

    ``secrets`` are values known to be secret from the start (a password,
    a client secret), looked for even if no run stored them.
    """

    def __init__(self, engine: Engine, secrets: Iterable[str] = ()) -> None:
        self.engine = engine
        self.secrets: set[str] = set()
        if isinstance(engine.transport, Harvesting):
            # Whatever secret crossed the wire counts, stored or not.
            self.secrets = engine.transport.secrets
        self.secrets |= set(secrets)
        self.run_ids: list[str] = []
        #: The stored document of each run after every start and resume.
        self.documents: list[str] = []

    def start(self, flow: str, **inputs: Any) -> RunResult:
        """Start ``flow`` with ``inputs``."""
        self._remember(inputs)
        result = self.engine.start(flow, inputs)
        self.run_ids.append(result.run_id)
        return self.seen(result)

    def resume(self, result: RunResult, **inputs: Any) -> RunResult:
        """Give a waiting run the inputs it asked for."""
        self._remember(inputs)
        return self.seen(self.engine.resume(result.run_id, inputs))

    def assert_no_secret_leaked(self, caplog: pytest.LogCaptureFixture) -> None:
        """No secret a run handled is in its history, stored document or the logs."""
        values = set(self.secrets)
        places: dict[str, str] = {"logs": caplog.text}
        for index, document in enumerate(self.documents):
            places[f"stored document {index}"] = document
        for run_id in self.run_ids:
            stored = self.engine.store.load(run_id)
            values |= _secret_values(stored.secrets)
            result = self.engine.get(run_id)
            values |= {
                str(result.outputs[name])
                for name in result.secret_outputs
                if result.outputs.get(name)
            }
            places[f"document of {run_id}"] = json.dumps(stored.document)
            places[f"history of {run_id}"] = repr(result.history) + repr(result)
            places[f"message of {run_id}"] = f"{result.message} {result.error}"
        assert_no_secret_in(places, values)

    def _remember(self, inputs: Mapping[str, Any]) -> None:
        for name, value in inputs.items():
            if name in SECRET_KEYS and isinstance(value, str):
                self.secrets.add(value)

    def seen(self, result: RunResult) -> RunResult:
        """Keep the secrets of ``result`` and a copy of the run's stored document."""
        for name in result.secret_outputs:
            value = result.outputs.get(name)
            if isinstance(value, str):
                self.secrets.add(value)
            elif isinstance(value, list):
                self.secrets.update(str(item) for item in value)
        stored = self.engine.store.load(result.run_id)
        self.secrets |= _secret_values(stored.secrets)
        self.documents.append(json.dumps(stored.document))
        return result


def assert_no_run_leaked(
    engine: Engine, caplog: pytest.LogCaptureFixture, secrets: Iterable[str] = ()
) -> Runs:
    """No secret of any run in ``engine``'s store leaked (see :class:`Runs`).

    For runs started without :class:`Runs`: every run the store lists is
    checked, with ``secrets`` and the client's secret known from the start
    (and, with a :class:`Harvesting` transport, what crossed the wire).
    Returns the :class:`Runs` that checked, holding every secret it found.
    """
    known = set(secrets)
    if engine.client.client_secret:
        known.add(engine.client.client_secret)
    runs = Runs(engine, known)
    runs.run_ids = [summary.id for summary in engine.store.list()]
    runs.assert_no_secret_leaked(caplog)
    return runs


def assert_no_secret_in(places: Mapping[str, str], secrets: Iterable[str]) -> None:
    """None of ``secrets`` is in the text of any of ``places`` (named by where).

    Short numeric codes count only as whole numbers, not inside timestamps.
    """
    values = {value for value in secrets if value}
    assert values, "the check found no secret to look for"
    for where, text in places.items():
        for value in values:
            assert not _contains(text, value), f"a secret is in the {where}"


class Harvesting:
    """A transport that notes every secret value it sends or receives.

    Form fields, JSON fields and Bearer tokens under secret-looking names
    (``password``, ``otp``, ``access_token``, ``mfa_token``, ``oob_code``,
    ``barcode_uri``, ``recovery_codes``, ...) go to :attr:`secrets`, so a
    test can check that none of them was stored or logged in the open.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.secrets: set[str] = set()

    def send(self, request: Request) -> Response:
        authorization = request.header("Authorization") or ""
        if authorization.startswith("Bearer "):
            self.secrets.add(authorization.removeprefix("Bearer "))
        self.secrets |= _body_secrets(request.body or b"")
        response = self.inner.send(request)
        self.secrets |= _body_secrets(response.body)
        return response


def _body_secrets(body: bytes) -> set[str]:
    text = body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = {name: values for name, values in parse_qs(text).items()}
    return _secret_values(parsed)


def _secret_values(value: Any, key: str = "") -> set[str]:
    """The strings under secret-looking keys, anywhere in a stored run's secrets."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for name, item in value.items():
            found |= _secret_values(item, str(name))
    elif isinstance(value, list):
        for item in value:
            found |= _secret_values(item, key)
    elif isinstance(value, str) and key in SECRET_KEYS:
        found.add(value)
    return found


def _contains(text: str, value: str) -> bool:
    if len(value) <= 8 and value.isdigit():
        # Short codes only count as whole numbers, not inside timestamps.
        return re.search(rf"(?<!\d){re.escape(value)}(?!\d)", text) is not None
    return value in text
