"""follow's pure parts: /versions parsing, the stricter target, durations, the loop's
timing (jitter, backoff, Retry-After, stop) with an injected clock, the follower lock."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from falcopkg.core.falco_versions import FalcoVersions, parse_falco_versions, stricter_target
from falcopkg.core.manifest import TargetSettings
from falcopkg.durations import format_duration, parse_duration
from falcopkg.errors import ConfigError, FalcopkgError, UsageError
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.errors import RegistryError
from falcopkg.services.falco_versions import read_falco_versions
from falcopkg.workflows import follow as follow_module
from falcopkg.workflows.follow import (
    MAX_BACKOFF,
    FollowOptions,
    StopSignal,
    error_delay,
    follow,
    follow_lock,
)
from falcopkg.workflows.sync import SyncOptions

SAMPLE = {
    "falco_version": "0.41.3",
    "libs_version": "0.21.0",
    "engine_version": "47",
    "engine_version_semver": "0.47.0",
    "plugin_api_version": "3.10.0",
    "plugin_versions": {"container": "0.3.5", "k8saudit": "0.13.0"},
}


def parsed(payload: Any) -> FalcoVersions:
    return parse_falco_versions(json.dumps(payload).encode(), "test")


def test_versions_are_read_as_falco_reports_them() -> None:
    versions = parsed(SAMPLE)
    assert versions.engine_version == "0.47.0"
    assert versions.plugin_api_version == "3.10.0"
    assert versions.falco_version == "0.41.3"
    assert versions.plugin_versions == {"container": "0.3.5", "k8saudit": "0.13.0"}
    assert versions.as_target() == TargetSettings("0.47.0", "3.10.0")


@pytest.mark.parametrize(("minor", "engine"), [("43", "0.43.0"), (43, "0.43.0")])
def test_a_falco_without_the_semver_engine_version_gives_its_minor(minor: Any, engine: str) -> None:
    assert parsed({"engine_version": minor}).engine_version == engine


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([], "not a JSON object"),
        ({"engine_version_semver": "0.\u0664\u0667.0"}, "not a semantic version"),
        ({"engine_version": "\u0664\u0667"}, "not a number"),
        ({"engine_version": 47.0}, "not a number"),
        ({"engine_version": True}, "not a number"),
        ({"engine_version": "-1"}, "not a number"),
        ({"engine_version": "47", "engine_version_semver": "0.46.0"}, "but engine_version_semver"),
        ({"engine_version_semver": "0.47"}, "not a semantic version"),
        ({"falco_version": "0.41.0"}, "neither engine_version_semver nor plugin_api_version"),
        ({"plugin_api_version": "3.10.0", "plugin_versions": {"a b": "1"}}, "plugin_versions"),
        ({"plugin_api_version": "3.10.0", "plugin_versions": {"k": 1}}, "plugin_versions"),
    ],
)
def test_versions_are_parsed_strictly(payload: Any, problem: str) -> None:
    with pytest.raises(ConfigError, match="Falco versions from test") as caught:
        parsed(payload)
    assert problem in caught.value.message
    assert caught.value.hint and "--falco-versions" in caught.value.hint


def test_versions_refuse_oversized_and_non_json_bodies() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        parse_falco_versions(b" " * (64 * 1024 + 1), "big")
    with pytest.raises(ConfigError, match="not JSON"):
        parse_falco_versions(b'{"engine_version": NaN}', "nan")


@pytest.mark.parametrize(
    ("target", "running", "expected"),
    [
        (TargetSettings("0.50.0"), TargetSettings("0.43.0"), TargetSettings("0.43.0")),
        (TargetSettings("0.43.0"), TargetSettings("0.50.0"), TargetSettings("0.43.0")),
        (TargetSettings(), TargetSettings("0.43.0", "3.10.0"), TargetSettings("0.43.0", "3.10.0")),
        (
            TargetSettings("0.43.0", "3.11.0"),
            TargetSettings(None, "3.10.0"),
            TargetSettings("0.43.0", "3.10.0"),
        ),
    ],
)
def test_the_stricter_target_wins(
    target: TargetSettings, running: TargetSettings, expected: TargetSettings
) -> None:
    assert stricter_target(target, running) == expected


def test_versions_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    path.write_text(json.dumps(SAMPLE))
    assert read_falco_versions(str(path)).engine_version == "0.47.0"
    with pytest.raises(ConfigError, match="cannot read Falco versions"):
        read_falco_versions(str(tmp_path / "missing.json"))


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1.5h", 5400), ("2d", 172800)]
)
def test_follow_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, option="--every") == seconds


@pytest.mark.parametrize("text", ["30", "1y", "-5m", "\u0661h", "5 m s", ""])
def test_follow_durations_need_ascii_and_a_unit(text: str) -> None:
    with pytest.raises(UsageError, match=r"invalid duration .* for --every"):
        parse_duration(text, option="--every")


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 45, 300, 5400, 90061)] == [
        "0s",
        "45s",
        "5m",
        "1h30m",
        "1d1h",
    ]


def test_backoff_doubles_to_a_cap_and_honours_retry_after() -> None:
    plain = FalcopkgError("boom")
    delays = [error_delay(n, plain) for n in range(1, 12)]
    assert delays[:3] == [10.0, 20.0, 40.0] and delays[-1] == MAX_BACKOFF
    limited = RegistryError("429", status=429, retry_after=120.0)
    assert error_delay(1, limited) == 120.0
    assert error_delay(10, limited) == MAX_BACKOFF  # the backoff is already longer


class FakeClock:
    """Records waits instead of sleeping; requests a stop after ``stop_after`` waits."""

    def __init__(self, stop_after: int) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after

    def sleep(self, seconds: float, stop: StopSignal) -> None:
        self.waits.append(seconds)
        if len(self.waits) >= self.stop_after:
            stop.request("SIGTERM")


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, object]]] = []

    def event(self, kind: str, message: str, **fields: object) -> None:
        self.events.append((kind, message, fields))


class FakeProject:
    def __init__(self, directory: Path) -> None:
        self.directory = directory


def test_the_loop_jitters_backs_off_honours_retry_after_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: list[Exception | None] = [
        RegistryError("rate-limited", status=429, retry_after=120.0),
        FalcopkgError("registry down"),
        None,
        None,
    ]
    rounds: list[int] = []

    def fake_round(project: object, options: object, log: object, **_: object) -> object:
        rounds.append(len(rounds))
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return type("R", (), {"changes": (), "held_back": ()})()

    monkeypatch.setattr(follow_module, "run_round", fake_round)
    clock, log = FakeClock(stop_after=5), Events()
    options = FollowOptions(SyncOptions(platform="linux/amd64"), every=600.0, jitter=60.0)
    stop = StopSignal()
    outcome = follow(
        options,
        open_project=lambda: FakeProject(tmp_path),  # type: ignore[arg-type,return-value]
        log=log,
        clock=clock,
        stop=stop,
        rand=lambda: 0.5,
    )
    assert clock.waits == [30.0, 120.0, 20.0, 600.0, 600.0]
    assert len(rounds) == 4 and outcome.stopped_by == "SIGTERM"
    kinds = [kind for kind, _, _ in log.events]
    assert kinds == ["error", "error", "round", "round"]
    assert "next round in 2m" in log.events[0][1]


def test_once_raises_the_rounds_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(project: object, options: object, log: object, **_: object) -> object:
        raise FalcopkgError("no registry")

    monkeypatch.setattr(follow_module, "run_round", failing)
    options = FollowOptions(SyncOptions(platform="linux/amd64"), once=True)
    assert options.start_jitter == 0.0
    with pytest.raises(FalcopkgError, match="no registry"):
        follow(
            options, open_project=lambda: FakeProject(tmp_path), log=Events(), clock=FakeClock(99)
        )  # type: ignore[arg-type,return-value]


def test_a_second_follower_is_refused(tmp_path: Path) -> None:
    with (
        follow_lock(tmp_path),
        pytest.raises(FalcopkgError, match="already running") as caught,
        follow_lock(tmp_path),
    ):
        pass
    assert caught.value.hint
    with follow_lock(tmp_path):  # released: free again
        pass


def test_a_429_carries_its_retry_after() -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(429)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        with (
            RegistryClient(host, RegistryOptions(plain_http=True, retries=0)) as client,
            pytest.raises(RegistryError) as caught,
        ):
            client.list_tags("acme/rules")
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.status == 429 and caught.value.retry_after == 7.0
