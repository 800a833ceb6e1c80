"""Token buckets: the tenant's rate limits.

A bucket holds up to ``capacity`` tokens and gains one every
``refill_seconds``; an attempt that finds it empty is refused. Time comes
from the tenant's clock, passed in by the caller.
"""

from __future__ import annotations

import math

from attrs import define

from ._config import Limit

__all__ = ["TokenBucket"]


@define
class TokenBucket:
    """A bucket for one limit and one user; starts full."""

    limit: Limit
    level: float
    updated_at: float

    @classmethod
    def full(cls, limit: Limit, now: float) -> TokenBucket:
        """Return a full bucket for ``limit``."""
        return cls(limit, float(limit.capacity), now)

    def available(self, now: float) -> bool:
        """Whether at least one token is left at ``now``."""
        self._refill(now)
        return self.level >= 1

    def take(self, now: float) -> bool:
        """Take one token; return ``False`` (taking none) when the bucket is empty."""
        if not self.available(now):
            return False
        self.level -= 1
        return True

    def is_full(self, now: float) -> bool:
        """Whether the bucket holds its whole capacity at ``now``."""
        self._refill(now)
        return self.level >= self.limit.capacity

    def seconds_until_available(self, now: float) -> float:
        """Return how long until one token is available (0 when one is)."""
        self._refill(now)
        missing = max(0.0, 1 - self.level)
        return missing * self.limit.refill_seconds

    def headers(self, now: float) -> dict[str, str]:
        """Return the rate-limit headers of an answer: limit, what is left, reset.

        ``X-RateLimit-Reset`` is the Unix time (on the tenant's clock) at
        which the next attempt is allowed, and ``Retry-After`` the seconds
        until then, rounded up.
        """
        wait = math.ceil(self.seconds_until_available(now))
        return {
            "Retry-After": str(wait),
            "X-RateLimit-Limit": str(self.limit.capacity),
            "X-RateLimit-Remaining": str(math.floor(self.level)),
            "X-RateLimit-Reset": str(math.ceil(now) + wait),
        }

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)
        gained = elapsed / self.limit.refill_seconds
        self.level = min(float(self.limit.capacity), self.level + gained)
        self.updated_at = now
