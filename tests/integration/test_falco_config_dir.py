"""`[install] falco_config_dir`: sync keeps one Falco config snippet loading what it installed
(SPEC §11): written, updated and removed atomically, never a temporary file inside the
directory Falco reads, tracked like an installed file (verify reports drift)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import RULES_V2, Project, standard_project
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry


@pytest.fixture
def project(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry, unique_repo: str
) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    found = standard_project(Project(root, plain_registry.host, unique_repo))
    found.extra = (
        "\n[falco.plugins.container]\ninit_config = { engines = { docker = { enabled = true } } }\n"
    )
    text = found.write_manifest().read_text()
    (root / "falco.toml").write_text(
        text.replace(
            'assets_dir = "assets"\n',
            'assets_dir = "assets"\nfalco_config_dir = "etc/falcopkg.d"\n',
        )
    )
    return found


def test_sync_writes_updates_and_removes_the_snippet_atomically(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = project.root / "etc" / "falcopkg.d"
    seen: list[list[str]] = []
    real_replace = os.replace

    def watching_replace(source: str | Path, target: str | Path) -> None:
        if config_dir.is_dir():
            seen.append(sorted(p.name for p in config_dir.iterdir()))  # just before a rename
        real_replace(source, target)

    monkeypatch.setattr("falcopkg.fsutil.os.replace", watching_replace)
    first = project.sync()
    assert first.exit_code == 0, first
    snippet = config_dir / "falcopkg.yaml"
    config = yaml.safe_load(snippet.read_text())
    rules = str(project.rules_dir / "falco_rules.yaml")
    assert config["rules_files"][0] == rules
    assert str(project.rules_dir / "other_rules.yaml") in config["rules_files"]
    assert config["load_plugins"] == ["container"]
    (plugin,) = config["plugins"]
    assert plugin["library_path"] == str(project.plugins_dir / "libcontainer.so")
    assert plugin["init_config"] == {"engines": {"docker": {"enabled": True}}}
    assert "Wrote the Falco config snippet" in first.stderr
    # A no-op sync leaves it alone; verify passes, and reports a changed snippet.
    assert project.sync().stderr.startswith("Nothing to do")
    assert run_cli("-C", project.root, "verify").exit_code == 0
    snippet.write_text(snippet.read_text() + "# edited\n")
    drift = run_cli("-C", project.root, "verify")
    assert drift.exit_code == 1 and "falcopkg.yaml" in drift.stdout and "modified" in drift.stdout
    kept = project.sync()
    assert kept.exit_code == 1 and "--force" in kept.stderr
    assert project.sync("--force").exit_code == 0
    # A new lock (other content) updates it; an empty project removes it.
    project.push("other-rules", "1.1.0", {"other_rules.yaml": RULES_V2})
    assert run_cli("-C", project.root, "lock", "--upgrade").exit_code == 0
    updated = project.sync()
    assert updated.exit_code == 0 and "Updated the Falco config snippet" in updated.stderr
    text = (project.root / "falco.toml").read_text()
    (project.root / "falco.toml").write_text(text.split("[dependencies]")[0] + "[dependencies]\n")
    removed = project.sync()
    assert removed.exit_code == 0, removed
    assert not snippet.exists()
    # Never a temporary file in the directory Falco reads, at any rename.
    assert seen and all(names in ([], ["falcopkg.yaml"]) for names in seen), seen
    assert sorted(p.name for p in config_dir.parent.iterdir()) == ["falcopkg.d"]


def test_a_deleted_snippet_is_no_no_op_and_an_unowned_file_is_kept(project: Project) -> None:
    assert project.sync().exit_code == 0
    snippet = project.root / "etc" / "falcopkg.d" / "falcopkg.yaml"
    snippet.unlink()
    again = project.sync()
    assert again.exit_code == 0 and snippet.is_file(), again
    other = project.root / "mine.d"
    other.mkdir()
    (other / "falcopkg.yaml").write_text("# mine\n")
    kept = project.sync("--falco-config-dir", other)
    assert kept.exit_code == 1 and "not written by falcopkg" in kept.stderr
    assert (other / "falcopkg.yaml").read_text() == "# mine\n"
    assert not snippet.exists()  # the old one, owned, moved away with the setting


def _fast_sync(project: Project) -> bool:
    """Whether `falcopkg sync` in a fresh interpreter answered without the full CLI."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "falcopkg", "-C", project.root, "sync"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return not any(
        line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == "click"
        for line in proc.stderr.splitlines()
    )


def test_the_no_op_fast_path_checks_the_snippet(project: Project) -> None:
    assert project.sync().exit_code == 0
    snippet = project.root / "etc" / "falcopkg.d" / "falcopkg.yaml"
    record = project.rules_dir / ".falcopkg" / "falco-config.json"
    assert _fast_sync(project)
    info = snippet.stat()
    os.utime(snippet, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))
    assert not _fast_sync(project)  # same bytes: the record is refreshed
    assert _fast_sync(project)
    snippet.unlink()
    assert not _fast_sync(project) and snippet.is_file()  # written again
    assert _fast_sync(project)
    record.unlink()
    assert not _fast_sync(project) and record.is_file()  # a snippet is wanted: its record too
    assert _fast_sync(project)
