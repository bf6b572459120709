"""Retry policy shared by the OCI client and the index fetcher: which statuses are worth a
retry and how long to wait before it (``Retry-After`` honoured, capped; else jittered
exponential backoff). Small and stdlib-only so callers can import it lazily."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable

#: The longest computed backoff between two attempts (a ``Retry-After`` has its own cap).
MAX_BACKOFF = 8.0


def is_retryable_status(status: int) -> bool:
    """429 and 5xx (but not 501 Not Implemented or 505, which will not change) are retried."""
    return status == 429 or (500 <= status <= 599 and status not in (501, 505))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(
    attempt: int,
    *,
    backoff: float,
    max_retry_after: float,
    retry_after: str | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (0-based): ``Retry-After`` (capped at
    ``max_retry_after``) if given, else ``backoff * 2**attempt`` with ±50 % jitter, capped at
    ``MAX_BACKOFF``."""
    requested = parse_retry_after(retry_after)
    if requested is not None:
        return min(requested, max_retry_after)
    base = min(backoff * float(2**attempt), MAX_BACKOFF)
    return base * (0.5 + float(rand()))
