"""Time bounds for network work (SPEC §9): deadlines, the per-command memory of failed hosts,
and the "waiting for HOST…" notice.

Stdlib only and import-light: the CLI sets the notice callback on every run, and a no-op
``sync`` must not import requests. The HTTP transport (falcopkg.http) applies all of it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from falcopkg.errors import NetworkError


class Clock:
    """The time source of every deadline and retry wait. Tests replace ``CLOCK.sleep`` (or the
    whole object's methods) so that no test sleeps on real backoff."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


CLOCK = Clock()


class Deadline:
    """A point in time after which a request or a command must give up."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """``seconds`` from now (None: never)."""
        if seconds is None:
            return cls.never()
        return cls(CLOCK.monotonic() + max(0.0, seconds))

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    def remaining(self) -> float:
        return self.at - CLOCK.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    @property
    def bounded(self) -> bool:
        return self.at != math.inf

    def sooner(self, other: Deadline | None) -> Deadline:
        """The earlier of this deadline and ``other``."""
        if other is None or other.at >= self.at:
            return self
        return other

    def __repr__(self) -> str:
        return f"Deadline(in {self.remaining():.1f}s)" if self.bounded else "Deadline(never)"


class HostTimeoutError(NetworkError):
    """A host did not answer in time: deadline exceeded, body stalled, or a Retry-After
    longer than we wait. Never retried; remembered for the rest of the command."""

    def __init__(self, message: str, *, hint: str | None = None, host: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host


_notifier: Callable[[str], None] | None = None


def set_wait_notifier(callback: Callable[[str], None] | None) -> None:
    """Called with a host name when a request to it has been waiting a few seconds (the CLI
    prints "waiting for HOST…" on a terminal). None (the default) says nothing."""
    global _notifier
    _notifier = callback


class CommandBudget:
    """What the requests of one command share: an overall deadline (none by default; each
    request has its own), the hosts that already failed (so that the next request to one
    fails at once with the same error instead of waiting again), and the wait notice."""

    def __init__(
        self,
        deadline: Deadline | None = None,
        *,
        notify_waiting: Callable[[str], None] | None = None,
        notice_after: float = 3.0,
    ) -> None:
        self.deadline = deadline or Deadline.never()
        self.notice_after = notice_after
        self._notify = notify_waiting
        self._failed: dict[str, NetworkError] = {}
        self._noticed: set[str] = set()
        self._lock = threading.Lock()

    def failure(self, host: str) -> NetworkError | None:
        """The error a host already failed with in this command, if any."""
        with self._lock:
            return self._failed.get(host.lower())

    def remember(self, host: str, error: NetworkError) -> None:
        with self._lock:
            self._failed.setdefault(host.lower(), error)

    def waiting(self, host: str) -> None:
        """Tell the user, once per host, that ``host`` keeps us waiting."""
        notify = self._notify or _notifier
        if notify is None:
            return
        with self._lock:
            if host in self._noticed:
                return
            self._noticed.add(host)
        notify(host)


__all__ = [
    "CLOCK",
    "Clock",
    "CommandBudget",
    "Deadline",
    "HostTimeoutError",
    "set_wait_notifier",
]
