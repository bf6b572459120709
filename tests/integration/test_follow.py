"""`falcopkg follow` against a real registry (SPEC §11): upgrades within falco.toml's
constraints, held back by [target] or a running Falco's /versions, a 429 waited out, a
round with nothing new costing only tag lists, a clean stop on SIGTERM, one follower."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from falcopkg.core.lockfile import parse_lock
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import (
    HOST,
    REPO_ROOT,
    RULES_V1,
    RULES_V2,
    Project,
    falcopkg_command,
    push_plugin,
    standard_project,
)
from tests.fixtures.proxy import RecordingProxy, ScriptedAnswer
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry

RULES_V3 = b"- list: v3\n  items: []\n"


@pytest.fixture
def proxy(plain_registry: RunningRegistry) -> Iterator[RecordingProxy]:
    running = RecordingProxy(plain_registry.port)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def project(tmp_home: TmpHome, tmp_path: Path, proxy: RecordingProxy, unique_repo: str) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return Project(root, proxy.host, unique_repo)


def follow(project: Project, *args: str) -> CliResult:
    return run_cli("-C", project.root, "follow", "--once", *args)


def locked_versions(project: Project) -> dict[str, str | None]:
    lock = parse_lock(project.lock_path.read_text(), project.lock_path)
    return {a.name: a.version for a in lock.artifacts}


def with_target(project: Project, engine_version: str) -> None:
    path = project.root / "falco.toml"
    text = path.read_text().replace(
        "[target]\n", f'[target]\nengine_version = "{engine_version}"\n', 1
    )
    path.write_text(text)


def requiring(engine: str, body: bytes) -> bytes:
    return f"- required_engine_version: {engine}\n".encode() + body


def test_follow_once_takes_the_newest_allowed_and_applies_it_like_sync(project: Project) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    project.push(
        "falco-rules",
        "1.1.0",
        {"falco_rules.yaml": RULES_V2},
        requires_plugins=[("container", "0.4.0")],
    )
    project.push(
        "falco-rules",
        "2.0.0",
        {"falco_rules.yaml": RULES_V3},
        requires_plugins=[("container", "0.4.0")],
    )

    result = follow(project)
    assert result.exit_code == 0, result
    assert "falco-rules 1.0.0 → 1.1.0" in result.stderr
    assert "2.0.0" not in result.stderr  # outside "1": not a candidate, not held back
    assert locked_versions(project)["falco-rules"] == "1.1.0"
    assert project.installed()["rules/falco_rules.yaml"] == RULES_V2
    assert run_cli("-C", project.root, "verify").exit_code == 0
    assert run_cli("-C", project.root, "sync", "--locked").exit_code == 0  # the lock is fresh

    again = follow(project)
    assert again.exit_code == 0, again
    assert "→" not in again.stderr


def test_a_requirement_target_does_not_meet_is_held_back_and_named(project: Project) -> None:
    standard_project(project)
    with_target(project, "0.43.0")
    assert project.sync().exit_code == 0
    project.push("falco-rules", "1.1.0", {"falco_rules.yaml": requiring("0.50.0", RULES_V2)})

    result = follow(project)
    assert result.exit_code == 0, result
    assert "falco-rules 1.1.0 held back: requires engine_version_semver 0.50.0" in result.stderr
    assert "but [target] engine_version is 0.43.0" in result.stderr
    assert locked_versions(project)["falco-rules"] == "1.0.0"
    assert project.installed()["rules/falco_rules.yaml"] == RULES_V1

    as_json = follow(project, "--log-format", "json")
    assert as_json.exit_code == 0, as_json
    records = [json.loads(line) for line in as_json.stderr.splitlines()]
    held = [r for r in records if r["event"] == "held_back"]
    assert held and held[0]["name"] == "falco-rules" and held[0]["version"] == "1.1.0"
    assert held[0]["locked"] == "1.0.0" and "0.43.0" in held[0]["reasons"][0]


def test_a_version_other_artifacts_rule_out_is_held_back_with_the_conflict(
    project: Project,
) -> None:
    standard_project(project)
    project.dependencies["container"] = "0.4"
    project.write_manifest()
    assert project.sync().exit_code == 0
    push_plugin(project, "container", "0.5.0")
    project.push(
        "falco-rules",
        "1.1.0",
        {"falco_rules.yaml": RULES_V2},
        requires_plugins=[("container", "0.5.0")],
    )
    result = follow(project)
    assert result.exit_code == 0, result
    assert "falco-rules 1.1.0 held back: falco-rules 1.1.0 requires container" in result.stderr
    assert 'falco.toml requires container = "0.4"' in result.stderr
    assert locked_versions(project) == {
        "container": "0.4.1",
        "falco-rules": "1.0.0",
        "other-rules": "1.0.0",
    }
    assert "Nothing new" in result.stderr


class VersionsServer:
    """Falco's webserver, as far as `GET /versions` goes."""

    def __init__(self, payload: dict[str, object]) -> None:
        self.payload = payload
        body = json.dumps(payload).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/versions" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/versions"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


FALCO_0_41 = {
    "falco_version": "0.41.0",
    "engine_version": "43",
    "engine_version_semver": "0.43.0",
    "plugin_api_version": "3.10.0",
    "plugin_versions": {"container": "0.4.1"},
    "libs_version": "0.21.0",
}


def test_a_running_falco_older_than_target_holds_back_an_upgrade(project: Project) -> None:
    standard_project(project)
    with_target(project, "0.50.0")
    assert project.sync().exit_code == 0
    project.push("falco-rules", "1.1.0", {"falco_rules.yaml": requiring("0.45.0", RULES_V2)})
    server = VersionsServer(FALCO_0_41)
    try:
        held = follow(project, "--falco-versions", server.url)
    finally:
        server.stop()
    assert held.exit_code == 0, held
    assert "falco-rules 1.1.0 held back" in held.stderr
    assert "but the running Falco's engine_version is 0.43.0" in held.stderr
    assert locked_versions(project)["falco-rules"] == "1.0.0"
    assert 'engine_version = "0.50.0"' in project.lock_path.read_text()  # falco.toml's target

    # Without a running Falco to ask, [target] alone allows it.
    taken = follow(project)
    assert taken.exit_code == 0, taken
    assert "falco-rules 1.0.0 → 1.1.0" in taken.stderr
    assert project.installed()["rules/falco_rules.yaml"].endswith(RULES_V2)

    # A Falco that cannot load what is locked gets what it can load.
    server = VersionsServer(FALCO_0_41)
    try:
        back = follow(project, "--falco-versions", server.url)
    finally:
        server.stop()
    assert back.exit_code == 0, back
    assert "falco-rules 1.1.0 → 1.0.0 (downgrade)" in back.stderr
    assert project.installed()["rules/falco_rules.yaml"] == RULES_V1


def test_a_429_with_retry_after_is_waited_out(project: Project, proxy: RecordingProxy) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    project.push("other-rules", "1.0.1", {"other_rules.yaml": b"- list: y\n  items: []\n"})
    proxy.clear()
    proxy.script.append(
        ScriptedAnswer(lambda m, p: "/tags/list" in p, 429, {"Retry-After": "1"}, times=1)
    )
    started = time.monotonic()
    result = follow(project)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result
    assert "other-rules 1.0.0 → 1.0.1" in result.stderr
    assert [s for _, _, s in proxy.requests].count(429) == 1
    assert elapsed >= 1.0


def test_a_round_with_nothing_new_asks_only_for_tag_lists(
    project: Project, proxy: RecordingProxy
) -> None:
    standard_project(project)
    assert follow(project).exit_code == 0  # locks and installs
    proxy.clear()
    started = time.monotonic()
    result = follow(project)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result
    paths = proxy.paths()
    print(f"nothing-new round: {len(paths)} requests {sorted(paths)} in {elapsed:.3f}s")
    assert paths, "the round asked nothing at all"
    assert not [p for p in paths if "/manifests/" in p or "/blobs/" in p], paths
    tag_lists = sorted(p for p in paths if p.endswith("/tags/list") or "/tags/list?" in p)
    assert len(tag_lists) == 3  # falco-rules, other-rules, container: one each
    assert all(p == "/v2/" or p in tag_lists for p in paths), paths


def _start_follower(project: Project, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    return subprocess.Popen(
        falcopkg_command("-C", project.root, "follow", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> list[str]:
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"no {needle!r} in follower output: {''.join(lines)}")


def test_sigterm_between_rounds_exits_cleanly_and_followers_do_not_overlap(
    project: Project,
) -> None:
    standard_project(project)
    first = _start_follower(project, "--every", "1h", "--jitter", "0s")
    try:
        _wait_for_line(first, "next round in 1h")
        second = run_cli("-C", project.root, "follow", "--once")
        assert second.exit_code == 1, second
        assert "another `falcopkg follow` is already running" in second.stderr
        first.send_signal(signal.SIGTERM)
        _, rest = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, rest
    assert "Stopped on SIGTERM" in rest
    assert project.installed()["rules/falco_rules.yaml"] == RULES_V1
    assert follow(project).exit_code == 0  # the lock was released


def test_bad_durations_are_usage_errors_and_json_errors_stay_json(
    tmp_home: TmpHome, tmp_path: Path
) -> None:
    (tmp_path / "falco.toml").write_text("[dependencies]\n")
    bad = run_cli("-C", tmp_path, "follow", "--every", "5")
    assert bad.exit_code == 2 and "invalid duration '5' for --every" in bad.stderr
    zero = run_cli("-C", tmp_path, "follow", "--every", "0s")
    assert zero.exit_code == 2
    failed = run_cli(
        "-C",
        tmp_path,
        "follow",
        "--once",
        "--log-format",
        "json",
        "--falco-versions",
        str(tmp_path / "missing.json"),
    )
    assert failed.exit_code == 1
    (record,) = [json.loads(line) for line in failed.stderr.splitlines()]
    assert record["level"] == "error" and "cannot read Falco versions" in record["message"]
    assert not (tmp_path / "falco.lock").exists()


def test_a_held_back_candidate_costs_nothing_more_in_later_rounds(
    project: Project, proxy: RecordingProxy, tmp_home: TmpHome
) -> None:
    from falcopkg.workflows.follow import FollowOptions, StopSignal
    from falcopkg.workflows.follow import follow as follow_workflow
    from falcopkg.workflows.project import Project as Session
    from falcopkg.workflows.reporter import SilentReporter
    from falcopkg.workflows.sync import SyncOptions

    standard_project(project)
    with_target(project, "0.43.0")
    project.push("falco-rules", "1.1.0", {"falco_rules.yaml": requiring("0.50.0", RULES_V2)})

    class ClearingClock:
        """No sleeping: the first wait forgets round 1's requests, the second stops."""

        waits = 0

        def sleep(self, seconds: float, stop: StopSignal) -> None:
            self.waits += 1
            if self.waits == 1:
                proxy.clear()
            else:
                stop.request("test")

    events: list[tuple[str, str]] = []

    class Log:
        def event(self, kind: str, message: str, **fields: object) -> None:
            events.append((kind, message))

    outcome = follow_workflow(
        FollowOptions(SyncOptions(platform=HOST), every=60.0, jitter=0.0),
        open_project=lambda: Session.open(
            project.root / "falco.toml", cache_dir=tmp_home.cache_dir, reporter=SilentReporter()
        ),
        log=Log(),
        clock=ClearingClock(),
    )
    assert outcome.rounds == 2 and outcome.stopped_by == "test"
    assert [kind for kind, _ in events].count("held_back") == 2
    second_round = proxy.paths()
    assert len(second_round) == 3 and all(p.endswith("/tags/list") for p in second_round), (
        second_round
    )
    assert locked_versions(project)["falco-rules"] == "1.0.0"


def test_when_nothing_suits_the_running_falco_the_error_says_what_was_checked(
    project: Project, tmp_path: Path
) -> None:
    project.push("strict-rules", "1.0.0", {"strict.yaml": requiring("0.50.0", RULES_V1)})
    project.dependencies = {"strict-rules": "1"}
    project.write_manifest()
    versions = tmp_path / "versions.json"
    versions.write_text(json.dumps(FALCO_0_41))
    result = follow(project, "--falco-versions", str(versions))
    assert result.exit_code == 1, result
    assert "no set of versions satisfies falco.toml" in result.stderr
    assert "older of [target] and the running Falco: engine_version 0.43.0" in result.stderr
    assert not project.lock_path.exists()
