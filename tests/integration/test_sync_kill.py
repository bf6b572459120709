"""A sync killed at any point leaves every file old or new; concurrent syncs serialize.

The kill loop alternates falco.lock between two locks with different content (a file in
both, one only in each) and SIGKILLs `falcopkg sync --frozen` after a random delay, while
a reader thread polls the rules file. After each kill every installed file must be a
complete old or new version; at the end one more sync must reach the locked state.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.kills import survived
from tests.fixtures.project import REPO_ROOT, Project, falcopkg_command
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry

ITERATIONS = 15


def _rules(tag: str, size: int) -> bytes:
    line = f"- list: {tag}\n  items: []\n".encode()
    body = (f"# {tag} " + "x" * 70 + "\n").encode() * (size // 80)
    return line + body


OLD = {
    "falco_rules.yaml": _rules("old-main", 8 * 1024 * 1024),
    "only_old.yaml": _rules("only-old", 2 * 1024 * 1024),
    **{f"part_{n}.yaml": _rules(f"old-part-{n}", 256 * 1024) for n in range(8)},
}
NEW = {
    "falco_rules.yaml": _rules("new-main", 10 * 1024 * 1024),
    "only_new.yaml": _rules("only-new", 2 * 1024 * 1024),
    **{f"part_{n}.yaml": _rules(f"new-part-{n}", 300 * 1024) for n in range(8)},
}


@pytest.fixture(scope="module")
def pushed_world(
    plain_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, str]]:
    """demo-rules 1.0.0 (OLD) and 2.0.0 (NEW), about 24 MB, pushed once for every kill test:
    (repository prefix, what was pushed by name)."""
    prefix = f"tests/kill-{secrets.token_hex(3)}"
    pusher = Project(tmp_path_factory.mktemp("kill-push"), plain_registry.host, prefix)
    pusher.push("demo-rules", "1.0.0", OLD)
    pusher.push("demo-rules", "2.0.0", NEW)
    return prefix, dict(pusher.pushed)


@pytest.fixture
def two_locks(
    tmp_home: TmpHome,
    tmp_path: Path,
    plain_registry: RunningRegistry,
    pushed_world: tuple[str, dict[str, str]],
) -> tuple[Project, str, str]:
    """A project with falco.lock texts for OLD and NEW, caches warm, OLD installed."""
    root = tmp_path / "project"
    root.mkdir()
    prefix, pushed = pushed_world
    project = Project(root, plain_registry.host, prefix, pushed=dict(pushed))
    texts = []
    for constraint in ("=1.0.0", "=2.0.0"):
        project.dependencies = {"demo-rules": constraint}
        project.write_manifest()
        result = project.sync()
        assert result.exit_code == 0, result
        texts.append(project.lock_path.read_text())
    project.lock_path.write_text(texts[0])
    assert project.sync("--frozen").exit_code == 0
    return project, texts[0], texts[1]


def _check_old_or_new(rules_dir: Path) -> None:
    for name in sorted(set(OLD) | set(NEW)):
        path = rules_dir / name
        if not path.exists():
            assert name != "falco_rules.yaml", "the main rules file vanished"
            continue
        data = path.read_bytes()
        assert data in (OLD.get(name), NEW.get(name)), f"{name}: partial or foreign content"
    leftovers = [p.name for p in rules_dir.iterdir() if p.name not in OLD and p.name not in NEW]
    assert leftovers == [".falcopkg"], f"stray files in the rules directory: {leftovers}"


def test_sync_killed_at_random_points_leaves_old_or_new_files(
    two_locks: tuple[Project, str, str],
) -> None:
    project, old_lock, new_lock = two_locks
    rules_dir = project.rules_dir
    main_file = rules_dir / "falco_rules.yaml"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    seen_bad: list[str] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        allowed = (OLD["falco_rules.yaml"], NEW["falco_rules.yaml"])
        while not stop.is_set():
            try:
                data = main_file.read_bytes()
            except FileNotFoundError:
                seen_bad.append("missing")
                continue
            reads += 1
            if data not in allowed:
                seen_bad.append(f"partial read of {len(data)} bytes")

    # How long one sync takes in a subprocess here: the kills land over its second half,
    # where the layer is extracted and the files are renamed into place.
    started = time.monotonic()
    project.lock_path.write_text(new_lock)
    command = falcopkg_command("-q", "-C", project.root, "sync", "--frozen")
    assert subprocess.run(command, env=env, cwd=REPO_ROOT, check=False).returncode == 0
    duration = time.monotonic() - started

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    rng = random.Random(5)
    deadline = time.monotonic() + 25
    try:
        for iteration in range(ITERATIONS):
            if time.monotonic() > deadline:
                break
            project.lock_path.write_text(old_lock if iteration % 2 == 0 else new_lock)
            proc = subprocess.Popen(
                command,
                env=env,
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.4 * duration, 1.1 * duration))
            running = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            _check_old_or_new(rules_dir)
            if running:
                survived("sync")
    finally:
        stop.set()
        thread.join()
    assert not seen_bad, seen_bad[:5]
    assert reads > 0

    project.lock_path.write_text(new_lock)
    final = project.sync("--frozen")
    assert final.exit_code == 0, final
    assert project.installed() == {f"rules/{name}": data for name, data in NEW.items()}
    assert run_cli("-C", project.root, "verify").exit_code == 0
    assert not [p for p in (rules_dir / ".falcopkg").iterdir() if p.name.startswith("staging-")]


def test_two_syncs_started_at_once_both_succeed(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry, unique_repo: str
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, plain_registry.host, unique_repo)
    project.push("demo-rules", "1.0.0", OLD)
    project.dependencies = {"demo-rules": "1"}
    project.write_manifest()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            falcopkg_command("-C", root, "sync"),
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, f"{out}\n{err}"
    assert project.installed() == {f"rules/{name}": data for name, data in OLD.items()}
    assert "Nothing to do" in project.sync().stderr
    shutil.rmtree(tmp_home.cache_dir)  # the lock and state suffice for verify
    assert run_cli("-C", root, "verify").exit_code == 0


@pytest.mark.parametrize("crash_after", ["first-rename", "all-renames"])
def test_a_sync_that_dies_mid_apply_is_finished_by_the_next(
    two_locks: tuple[Project, str, str], monkeypatch: pytest.MonkeyPatch, crash_after: str
) -> None:
    """Deterministic versions of the kill: die after one rename, or before the final state."""
    from falcopkg import archive as extract
    from falcopkg.services import state

    project, _, new_lock = two_locks
    project.lock_path.write_text(new_lock)

    class Crash(BaseException):
        pass

    real_place, real_save = extract.place_file, state.save_state
    calls = {"place": 0, "save": 0}

    def place_then_die(*args: object) -> None:
        real_place(*args)  # type: ignore[arg-type]
        calls["place"] += 1
        if crash_after == "first-rename":
            raise Crash

    def save_journal_only(*args: object) -> None:
        calls["save"] += 1
        if calls["save"] > 1 and crash_after == "all-renames":
            raise Crash  # the final state write never happens
        real_save(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(extract, "place_file", place_then_die)
    monkeypatch.setattr(state, "save_state", save_journal_only)
    with pytest.raises(Crash):
        project.sync("--frozen")
    monkeypatch.undo()

    _check_old_or_new(project.rules_dir)
    journal = json.loads((project.rules_dir / ".falcopkg" / "state.json").read_text())
    assert journal["pending"], "the journal was written before the first rename"
    assert journal["artifacts"]["demo-rules"]["version"] == "1.0.0"

    finished = project.sync("--frozen")
    assert finished.exit_code == 0, finished
    assert "kept" not in finished.stderr  # its own half-done work is not a user's change
    assert project.installed() == {f"rules/{name}": data for name, data in NEW.items()}
    final = json.loads((project.rules_dir / ".falcopkg" / "state.json").read_text())
    assert final["pending"] == {} and final["artifacts"]["demo-rules"]["version"] == "2.0.0"
    assert run_cli("-C", project.root, "verify").exit_code == 0


def test_two_syncs_interrupted_in_opposite_directions_are_finished_by_the_next(
    two_locks: tuple[Project, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kill loop's rare failure, made deterministic: a sync to NEW dies after renaming
    falco_rules.yaml, the next one (back to OLD) dies after its journal but before renaming
    it. NEW content is on disk while OLD is the last journaled: both must stay falcopkg's
    own, or the next sync keeps the file as a user's change and fails."""
    from falcopkg import archive as extract

    project, old_lock, new_lock = two_locks

    class Crash(BaseException):
        pass

    real_place = extract.place_file

    def place_then_die(*args: object) -> None:
        real_place(*args)  # type: ignore[arg-type]
        raise Crash

    def die_before_placing(*args: object) -> None:
        raise Crash

    for lock_text, place in ((new_lock, place_then_die), (old_lock, die_before_placing)):
        project.lock_path.write_text(lock_text)
        monkeypatch.setattr(extract, "place_file", place)
        with pytest.raises(Crash):
            project.sync("--frozen")
    monkeypatch.undo()
    assert (project.rules_dir / "falco_rules.yaml").read_bytes() == NEW["falco_rules.yaml"]

    project.lock_path.write_text(new_lock)
    finished = project.sync("--frozen")
    assert finished.exit_code == 0, finished
    assert "kept" not in finished.stderr
    assert project.installed() == {f"rules/{name}": data for name, data in NEW.items()}
    assert run_cli("-C", project.root, "verify").exit_code == 0
