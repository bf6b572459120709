"""`falcopkg verify` (alias `check`): installed files against falco.lock and the install state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import Project
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry

A = b"- list: a\n  items: []\n"
B = b"- list: b\n  items: []\n"


@pytest.fixture
def synced(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry, unique_repo: str
) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, plain_registry.host, unique_repo)
    project.push("a-rules", "1.0.0", {"a.yaml": A, "shared.yaml": A})
    project.push("b-rules", "1.0.0", {"b.yaml": B})
    project.push("b-rules", "2.0.0", {"b2.yaml": B})
    project.dependencies = {"a-rules": "1", "b-rules": "=1.0.0"}
    project.write_manifest()
    assert project.sync().exit_code == 0
    return project


def verify_json(project: Project) -> tuple[int, dict[str, object]]:
    result = run_cli("-C", project.root, "verify", "--json")
    return result.exit_code, json.loads(result.stdout)


def drift_of(payload: dict[str, object]) -> list[tuple[str, str, str]]:
    items = payload["drift"]
    assert isinstance(items, list)
    return [(d["kind"], Path(d["path"]).name, d["artifact"]) for d in items]


def test_clean_install_verifies(synced: Project) -> None:
    result = run_cli("-C", synced.root, "verify")
    assert result.exit_code == 0, result
    assert "Verified 3 files of 2 artifacts" in result.stderr
    assert result.stdout == ""
    code, payload = verify_json(synced)
    assert code == 0 and payload["ok"] is True and payload["drift"] == [] and payload["files"] == 3
    assert run_cli("-C", synced.root, "check").exit_code == 0


def test_missing_and_modified_files_are_drift(synced: Project) -> None:
    (synced.rules_dir / "a.yaml").unlink()
    shared = synced.rules_dir / "shared.yaml"
    stat = shared.stat()
    shared.write_bytes(A.upper()[: len(A)])  # same size …
    os.utime(
        shared, ns=(stat.st_atime_ns, stat.st_mtime_ns)
    )  # … and same mtime: only a hash sees it
    code, payload = verify_json(synced)
    assert code == 1
    assert payload["ok"] is False
    assert drift_of(payload) == [
        ("missing", "a.yaml", "a-rules"),
        ("modified", "shared.yaml", "a-rules"),
    ]
    text = run_cli("-C", synced.root, "verify")
    assert text.exit_code == 1
    assert "missing" in text.stdout and "modified" in text.stdout
    assert "error: 2 differences" in text.stderr and "falcopkg sync" in text.stderr


def test_extra_owned_files_and_not_installed_artifacts_are_drift(synced: Project) -> None:
    synced.dependencies = {"a-rules": "1", "b-rules": "2"}
    synced.write_manifest()
    # Relock without installing: the lock now wants b-rules 2.0.0.
    result = run_cli("-C", synced.root, "lock")
    assert result.exit_code == 0, result
    code, payload = verify_json(synced)
    assert code == 1
    assert drift_of(payload) == [("extra", "b.yaml", "b-rules"), ("outdated", "b2.yaml", "b-rules")]


def test_files_never_installed_are_reported(synced: Project) -> None:
    result = run_cli(
        "-C", synced.root, "verify", "--json", "--rulesfiles-dir", synced.root / "other"
    )
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert sorted(drift_of(payload)) == [
        ("not-installed", "a.yaml", "a-rules"),
        ("not-installed", "b.yaml", "b-rules"),
        ("not-installed", "shared.yaml", "a-rules"),
    ]


def test_verify_without_a_lock_says_what_to_do(synced: Project) -> None:
    synced.lock_path.unlink()
    result = run_cli("-C", synced.root, "verify")
    assert result.exit_code == 1
    assert "falco.lock does not exist" in result.stderr and "falcopkg lock" in result.stderr
