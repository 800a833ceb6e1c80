"""What one store operation costs, for the memory and SQLite stores.

Prints, per store and operation, the median time of one ``create``, ``load``
and ``save`` over several batches, with a run of a realistic size (a
document of about 2 KB and three secrets, encrypted by the SQLite store).
SQLite opens a connection per operation and commits each write to disk,
so its figures depend on the file system of the temporary directory.

Run it with ``python benchmarks/store_operations.py``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from mfaflow._crypto import generate_key
from mfaflow._store import MemoryStore, SQLiteStore, Store, StoredRun

BATCHES = 5
PER_BATCH = 200


def sample_run(run_id: str) -> StoredRun:
    """A run shaped like a suspended password-grant run."""
    history = [
        {"flow": "password-grant", "state": f"s{i}", "event": "ok", "at": 1.0 * i}
        for i in range(20)
    ]
    return StoredRun(
        id=run_id,
        flow="password-grant",
        status="waiting",
        version=1,
        document={"frames": [{"state": "step_up", "data": {}}], "history": history},
        secrets={"password": "x" * 20, "mfa_token": "y" * 400, "otp": "123456"},
        expires_at=time.time() + 600,
        updated_at=time.time(),
    )


def per_operation(operation: Callable[[int], object]) -> float:
    """Median seconds per call of ``operation(i)`` over the batches."""
    medians = []
    for batch in range(BATCHES):
        began = time.perf_counter()
        for i in range(PER_BATCH):
            operation(batch * PER_BATCH + i)
        medians.append((time.perf_counter() - began) / PER_BATCH)
    return statistics.median(medians)


def measure(name: str, store: Store) -> None:
    """Print the cost of create, load and save on ``store``."""
    created = per_operation(lambda i: store.create(sample_run(f"run-{i}")))
    loaded = per_operation(lambda i: store.load(f"run-{i}"))
    saved = per_operation(
        lambda i: store.save(attrs.evolve(sample_run(f"run-{i}"), version=2), 1)
    )
    for operation, seconds in (("create", created), ("load", loaded), ("save", saved)):
        print(f"{name:8} {operation:7} {seconds * 1e6:9.1f} µs")


def main() -> None:
    """Measure both stores."""
    measure("memory", MemoryStore())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "runs.sqlite"
        measure("sqlite", SQLiteStore(path, key=generate_key()))


if __name__ == "__main__":
    main()
