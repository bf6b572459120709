"""Retry policy shared by the OCI client and the index fetcher: which statuses are worth a
retry, how long to wait before it (``Retry-After`` honoured, capped; else jittered
exponential backoff), and the loop that applies both (:func:`send_with_retries`).
Small and stdlib-only so callers can import it lazily."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from falcopkg.numbers import NotANumberError, is_ascii_digits, parse_ascii_int

#: The longest computed backoff between two attempts (a ``Retry-After`` has its own cap).
MAX_BACKOFF = 8.0
#: Connection failures are retried only while another attempt (delay plus connect timeout)
#: still fits in this many seconds: an unreachable host fails in bounded time.
CONNECT_RETRY_BUDGET = 25.0
#: What a ``Retry-After`` of more digits than fit means (RFC 9111's rule for delta-seconds).
RETRY_AFTER_OVERFLOW = 2**31


class RetryableResponse(Protocol):
    """What the retry loop reads from a response (``requests.Response`` has it)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def close(self) -> None: ...


ResponseT = TypeVar("ResponseT", bound=RetryableResponse)


def is_retryable_status(status: int) -> bool:
    """429 and 5xx (but not 501 Not Implemented or 505, which will not change) are retried."""
    return status == 429 or (500 <= status <= 599 and status not in (501, 505))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if is_ascii_digits(value):
        # RFC 9111 §1.2.2: a delta too large to represent counts as 2**31 seconds.
        try:
            return float(parse_ascii_int(value, "Retry-After", max_digits=10))
        except NotANumberError:
            return float(RETRY_AFTER_OVERFLOW)
    try:
        when = email.utils.parsedate_to_datetime(value)
        stamp = when.timestamp() if when is not None else None
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None  # OverflowError: a day or hour of 25 digits
    if stamp is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, stamp - current)


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


def send_with_retries(
    send: Callable[[], ResponseT],
    *,
    retries: int,
    backoff: float,
    max_retry_after: float,
    connect_timeout: float,
    transient: tuple[type[Exception], ...],
    give_up: Callable[[Exception, int], Exception],
) -> ResponseT:
    """The response of ``send()``, retried up to ``retries`` more times.

    A ``transient`` exception is retried within :data:`CONNECT_RETRY_BUDGET`; after the last
    attempt ``give_up(exception, attempts)`` is raised. A retryable status is retried, and
    returned as it is after the last attempt (the caller turns it into its own error).
    """
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            response = send()
        except transient as exc:
            delay = backoff_delay(attempt, backoff=backoff, max_retry_after=max_retry_after)
            elapsed = time.monotonic() - started
            if attempt >= retries or elapsed + delay + connect_timeout > CONNECT_RETRY_BUDGET:
                raise give_up(exc, attempt + 1) from None
        else:
            if attempt >= retries or not is_retryable_status(response.status_code):
                return response
            delay = backoff_delay(
                attempt,
                backoff=backoff,
                max_retry_after=max_retry_after,
                retry_after=response.headers.get("Retry-After"),
            )
            response.close()
        time.sleep(delay)
        attempt += 1
