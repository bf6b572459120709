"""send_with_retries: the one retry loop of the OCI client and the index fetcher."""

from __future__ import annotations

from collections.abc import Mapping

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
