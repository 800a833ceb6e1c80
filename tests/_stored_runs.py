"""A stored run for tests of the stores: a document, and secrets to look for.

Every store keeps the same :class:`~mfaflow._store.StoredRun`, so the
tests of the file stores and of the service stores build it alike; its
secrets are known strings, so that tests can look for them where they
must not be.
"""

from __future__ import annotations

from typing import Any

import attrs

from mfaflow._store import StoredRun

__all__ = ["PASSWORD", "TOKEN", "USERNAME", "make_run", "next_version"]

PASSWORD = "Correct-Horse-Battery-9137"
TOKEN = "rt_7f3c9a0e5d1b4e2a8c6f"
#: Kept in the run's document, which is not secret.
USERNAME = "alice@example.com"


def make_run(run_id: str = "run-1", **changes: Any) -> StoredRun:
    """A waiting run with one secret-free document and two secrets."""
    run = StoredRun(
        id=run_id,
        flow="password-grant",
        status="waiting",
        version=1,
        document={"state": "step_up", "data": {"username": USERNAME}},
        secrets={"password": PASSWORD, "tokens": {"refresh_token": TOKEN}},
        expires_at=1000.0,
        updated_at=100.0,
    )
    return attrs.evolve(run, **changes)


def next_version(run: StoredRun, **changes: Any) -> StoredRun:
    """The run one save later."""
    return attrs.evolve(run, version=run.version + 1, **changes)
