"""send_with_retries: the one retry loop of the OCI client and the index fetcher."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from falcopkg import retry


class FakeResponse:
    def __init__(self, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = dict(headers or {})
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Transient(Exception):
    pass


class GaveUp(Exception):
    pass


# (outcomes of successive sends: a status or "fail", retries, connect timeout,
#  expected: final status or "gave up after N", number of sends)
CASES = [
    pytest.param([200], 3, 1.0, 200, 1, id="first-ok"),
    pytest.param(["fail", "fail", 200], 3, 1.0, 200, 3, id="connection-retried"),
    pytest.param(["fail"] * 4, 3, 1.0, "gave up after 4", 4, id="connection-exhausted"),
    pytest.param(["fail", 200], 3, 30.0, "gave up after 1", 1, id="budget-too-small"),
    pytest.param([503, 429, 200], 3, 1.0, 200, 3, id="status-retried"),
    pytest.param([503, 503], 1, 1.0, 503, 2, id="status-returned-after-last"),
    pytest.param([404, 200], 3, 1.0, 404, 1, id="client-error-not-retried"),
    pytest.param(["fail", 200], 0, 1.0, "gave up after 1", 1, id="no-retries"),
]


@pytest.mark.parametrize(("outcomes", "retries", "connect_timeout", "expected", "sends"), CASES)
def test_send_with_retries(
    monkeypatch: pytest.MonkeyPatch,
    outcomes: list[int | str],
    retries: int,
    connect_timeout: float,
    expected: int | str,
    sends: int,
) -> None:
    monkeypatch.setattr("time.sleep", lambda _seconds: None)
    pending = list(outcomes)
    responses: list[FakeResponse] = []

    def send() -> FakeResponse:
        outcome = pending.pop(0)
        if outcome == "fail":
            raise Transient("connection refused")
        assert isinstance(outcome, int)
        responses.append(FakeResponse(outcome, {"Retry-After": "0"}))
        return responses[-1]

    def give_up(exc: Exception, attempts: int) -> Exception:
        return GaveUp(f"gave up after {attempts}")

    def run() -> FakeResponse:
        return retry.send_with_retries(
            send,
            retries=retries,
            backoff=0.01,
            max_retry_after=1.0,
            connect_timeout=connect_timeout,
            transient=(Transient,),
            give_up=give_up,
        )

    if isinstance(expected, str):
        with pytest.raises(GaveUp, match=expected):
            run()
    else:
        result = run()
        assert result.status_code == expected
        assert not result.closed
        assert all(response.closed for response in responses[:-1])
    assert len(outcomes) - len(pending) == sends


def test_backoff_with_hostile_retry_after_is_capped() -> None:
    delay = retry.backoff_delay(0, backoff=0.5, max_retry_after=3.0, retry_after="9" * 5000)
    assert delay == 3.0
    delay = retry.backoff_delay(
        0, backoff=0.5, max_retry_after=3.0, retry_after="²", rand=lambda: 0
    )
    assert delay == 0.25


class FakeDeadline:
    def __init__(self, remaining: float) -> None:
        self.left = remaining

    def remaining(self) -> float:
        return self.left


class Refused(Exception):
    pass


# (status and Retry-After of each answer, seconds left before the deadline,
#  expected: final status or "refused N", number of sends, seconds slept in all)
WAIT_CASES = [
    pytest.param([(429, "3600")], 100.0, "refused 3600", 1, 0.0, id="over-the-cap"),
    pytest.param([(503, "20")], 10.0, "refused 20", 1, 0.0, id="over-the-deadline"),
    pytest.param([(429, "2"), (200, None)], 100.0, 200, 2, 2.0, id="under-both"),
    pytest.param([(503, None), (200, None)], 0.001, 503, 1, 0.0, id="backoff-past-deadline"),
    pytest.param([(404, "3600")], 100.0, 404, 1, 0.0, id="4xx-never-waits"),
]


@pytest.mark.parametrize(("answers", "left", "expected", "sends", "slept"), WAIT_CASES)
def test_retry_after_cap_and_deadline(
    answers: list[tuple[int, str | None]],
    left: float,
    expected: int | str,
    sends: int,
    slept: float,
) -> None:
    pending = list(answers)
    sleeps: list[float] = []

    def send() -> FakeResponse:
        status, retry_after = pending.pop(0)
        return FakeResponse(status, {"Retry-After": retry_after} if retry_after else {})

    def run() -> FakeResponse:
        return retry.send_with_retries(
            send,
            retries=3,
            backoff=0.5,
            max_retry_after=60.0,
            connect_timeout=1.0,
            transient=(Transient,),
            give_up=lambda exc, attempts: GaveUp(str(attempts)),
            deadline=FakeDeadline(left),
            sleep=sleeps.append,
            refuse_wait=lambda response, asked: Refused(f"refused {asked:g}"),
        )

    if isinstance(expected, str):
        with pytest.raises(Refused, match=expected):
            run()
    else:
        assert run().status_code == expected
    assert len(answers) - len(pending) == sends
    assert sum(sleeps) == pytest.approx(slept)


def _always_failing(**options: Any) -> tuple[int, list[float]]:
    """(sends, sleeps) of a loop whose every send fails with a transient error."""
    sends: list[int] = []
    sleeps: list[float] = []

    def send() -> FakeResponse:
        sends.append(1)
        raise Transient("refused")

    with pytest.raises(GaveUp, match=str(options.pop("gives_up_after"))):
        retry.send_with_retries(
            send,
            retries=3,
            backoff=0.5,
            max_retry_after=60.0,
            transient=(Transient,),
            give_up=lambda exc, attempts: GaveUp(str(attempts)),
            sleep=sleeps.append,
            **options,
        )
    return len(sends), sleeps


def test_connection_failures_stop_at_the_deadline() -> None:
    # No room for a delay plus another connect before the deadline.
    sends, sleeps = _always_failing(
        connect_timeout=1.0, deadline=FakeDeadline(1.0), gives_up_after=1
    )
    assert sends == 1 and sleeps == []


def test_without_a_retry_budget_only_the_count_limits() -> None:
    # A connect timeout this long would exceed CONNECT_RETRY_BUDGET at once.
    sends, sleeps = _always_failing(connect_timeout=100.0, retry_budget=None, gives_up_after=4)
    assert sends == 4 and len(sleeps) == 3
