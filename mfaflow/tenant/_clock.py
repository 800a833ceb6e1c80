"""The tenant's clock.

Every expiry (``mfa_token``, ``oob_code``, authorization codes, tokens), every
rate limit and every TOTP window reads time from one :class:`Clock`, so a
test moves time forward with :meth:`Clock.advance` instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ._otp import PERIOD

__all__ = ["MAX_ADVANCE", "Clock"]

#: The most one :meth:`Clock.advance` may move a clock, in seconds: ten years,
#: past every lifetime and lockout a test meets, far below overflow.
MAX_ADVANCE = 10 * 365 * 24 * 3600


class Clock:
    """Seconds since the Unix epoch, as the tenant sees them.

    A clock made with ``Clock()`` follows the system clock; one made with
    :meth:`Clock.fixed` stands still until advanced. Both only move forward
    through :meth:`advance`, which adds to every later reading. Safe to use
    from several threads.

    Args:
        start: The reading of a fixed clock; ``None`` follows the system
            clock.
        offset: How far the clock starts ahead, as if already advanced by
            that many seconds.

    Raises:
        ValueError: ``offset`` is negative or not finite.
    """

    def __init__(self, start: float | None = None, *, offset: float = 0.0) -> None:
        if not 0 <= offset < math.inf:
            msg = f"offset must be a finite number of at least 0; got {offset!r}."
            raise ValueError(msg)
        self._lock = threading.Lock()
        self._start = start
        self._offset = float(offset)
        self._watchers: list[Callable[[], None]] = []

    @classmethod
    def fixed(cls, at: float | None = None) -> Clock:
        """Return a clock that stands still at ``at`` (default: now) until advanced."""
        return cls(time.time() if at is None else at)

    @classmethod
    def fixed_for_tests(cls) -> Clock:
        """Return a fixed clock one second into a TOTP step, never ahead of now.

        A code computed from it stays valid until the clock is advanced past
        the step, and tokens it stamps are not from the future, so JWT
        libraries accept their ``iat``. Within the first second of a step the
        clock starts in the step before.
        """
        now = time.time()
        return cls.fixed(math.floor((now - 1.0) / PERIOD) * PERIOD + 1.0)

    @property
    def is_fixed(self) -> bool:
        """Whether the clock stands still between calls to :meth:`advance`."""
        return self._start is not None

    @property
    def offset(self) -> float:
        """How far :meth:`advance` has moved the clock in all, in seconds."""
        with self._lock:
            return self._offset

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every later :meth:`advance`.

        A tenant keeping durable state uses it to keep :attr:`offset` with
        that state.
        """
        with self._lock:
            self._watchers.append(callback)

    def now(self) -> float:
        """Return the current reading, in seconds since the epoch."""
        with self._lock:
            base = time.time() if self._start is None else self._start
            return base + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``.

        Raises:
            ValueError: ``seconds`` is negative (the clock never goes back),
                more than :data:`MAX_ADVANCE`, or not a number.
        """
        if seconds < 0:
            msg = f"The clock only moves forward; got seconds={seconds!r}."
            raise ValueError(msg)
        if not seconds <= MAX_ADVANCE:  # also refuses NaN
            msg = (
                f"The clock moves at most {MAX_ADVANCE} seconds (ten years) at a "
                f"time; got seconds={seconds!r}."
            )
            raise ValueError(msg)
        with self._lock:
            self._offset += seconds
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher()

    def __repr__(self) -> str:
        kind = "fixed" if self.is_fixed else "system"
        return f"<Clock {kind} now={self.now():.3f}>"
