"""`falcopkg artifact install REF…`: resolve and install without a lockfile, same safety as sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falcopkg.artifact.platforms import host_platform
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import PLUGIN_FOR, RULES_V1, Project, push_plugin
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry


@pytest.fixture
def catalog(
    tmp_home: TmpHome,
    tmp_path: Path,
    plain_registry: RunningRegistry,
    unique_repo: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Project:
    """Artifacts in the registry and an index naming them, configured for the user."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "catalog"
    root.mkdir()
    project = Project(root, plain_registry.host, unique_repo)
    push_plugin(project, "container", "0.4.1")
    project.push(
        "falco-rules",
        "1.0.0",
        {"falco_rules.yaml": RULES_V1},
        requires_plugins=[("container", "0.4.0")],
    )
    project.push("extra-rules", "2.0.0", {"extra.yaml": b"- list: extra\n  items: []\n"})
    index = project.write_index()
    (tmp_home.config_dir / "config.toml").write_text(f'[[index]]\nname = "test"\nurl = "{index}"\n')
    return project


def test_install_by_name_with_dependencies(catalog: Project, tmp_path: Path) -> None:
    rules, plugins = tmp_path / "rules", tmp_path / "plugins"
    args = ("--plain-http", "--rulesfiles-dir", rules, "--plugins-dir", plugins)
    result = run_cli("artifact", "install", "falco-rules", *args)
    assert result.exit_code == 0, result
    assert (rules / "falco_rules.yaml").read_bytes() == RULES_V1
    assert (plugins / "libcontainer.so").read_bytes() == PLUGIN_FOR[host_platform()]
    state = json.loads((plugins / ".falcopkg" / "state.json").read_text())
    assert state["artifacts"]["container"]["version"] == "0.4.1"

    again = run_cli("artifact", "install", "falco-rules", *args)
    assert again.exit_code == 0 and "Nothing to do" in again.stderr

    # Another artifact into the same directory leaves the first one alone.
    more = run_cli("artifact", "install", catalog.ref("extra-rules") + ":2.0.0", *args)
    assert more.exit_code == 0, more
    assert sorted(p.name for p in rules.iterdir()) == [
        ".falcopkg",
        "extra.yaml",
        "falco_rules.yaml",
    ]


def test_no_resolve_deps_and_platform(catalog: Project, tmp_path: Path) -> None:
    rules, plugins = tmp_path / "rules", tmp_path / "plugins"
    result = run_cli(
        "artifact",
        "install",
        "--no-resolve-deps",
        "falco-rules",
        "--rulesfiles-dir",
        rules,
        "--plugins-dir",
        plugins,
        "--plain-http",
    )
    assert result.exit_code == 0, result
    assert (rules / "falco_rules.yaml").exists()
    assert not (plugins / "libcontainer.so").exists()

    arm = run_cli(
        "artifact",
        "install",
        "container",
        "--platform",
        "linux/arm64",
        "--plugins-dir",
        tmp_path / "arm",
        "--plain-http",
    )
    assert arm.exit_code == 0, arm
    assert (tmp_path / "arm" / "libcontainer.so").read_bytes() == PLUGIN_FOR["linux/arm64"]


def test_platform_errors_speak_of_the_request_not_falco_toml(
    catalog: Project, tmp_path: Path
) -> None:
    missing = run_cli(
        "artifact", "install", "container", "--platform", "linux/s390x", "--plain-http"
    )
    assert missing.exit_code == 1, missing
    assert "no set of versions satisfies the requested artifacts" in missing.stderr
    assert "container 0.4.1 has no linux/s390x build" in missing.stderr
    assert "hint: choose a platform container is built for" in missing.stderr
    assert "falco.toml" not in missing.stderr and "Traceback" not in missing.stderr

    invalid = run_cli("artifact", "install", "container", "--platform", "linux", "--plain-http")
    assert invalid.exit_code == 2, invalid
    assert "invalid --platform value 'linux'" in invalid.stderr
    assert not (tmp_path / "plugins").exists()


def test_install_by_digest_and_errors(catalog: Project, tmp_path: Path) -> None:
    pushed = catalog.push("pinned-rules", "1.0.0", {"pinned.yaml": b"- list: p\n  items: []\n"})
    ref = f"{catalog.ref('pinned-rules')}@{pushed.digest}"
    result = run_cli("artifact", "install", ref, "--rulesfiles-dir", tmp_path / "r", "--plain-http")
    assert result.exit_code == 0, result
    assert (tmp_path / "r" / "pinned.yaml").exists()

    unknown = run_cli("artifact", "install", "no-such-rules", "--rulesfiles-dir", tmp_path / "r")
    assert unknown.exit_code == 1 and "no-such-rules" in unknown.stderr
    duplicate = run_cli("artifact", "install", "falco-rules", "falco-rules:1.0.0")
    assert duplicate.exit_code == 2


def test_a_later_sync_and_verify_see_what_artifact_install_did(catalog: Project) -> None:
    catalog.dependencies = {"extra-rules": "2"}
    catalog.write_manifest()
    assert catalog.sync().exit_code == 0
    result = run_cli("-C", catalog.root, "artifact", "install", "--no-resolve-deps", "falco-rules")
    assert result.exit_code == 0, result
    assert (catalog.rules_dir / "falco_rules.yaml").exists()  # the project's [install] dirs

    drift = run_cli("-C", catalog.root, "verify", "--json")
    assert drift.exit_code == 1
    assert [(d["kind"], Path(d["path"]).name) for d in json.loads(drift.stdout)["drift"]] == [
        ("extra", "falco_rules.yaml")
    ]
    synced = catalog.sync()
    assert synced.exit_code == 0, synced
    assert sorted(catalog.installed()) == ["rules/extra.yaml"]


def test_dry_run_installs_nothing(catalog: Project, tmp_path: Path) -> None:
    rules, plugins = tmp_path / "rules", tmp_path / "plugins"
    args = ("--plain-http", "--rulesfiles-dir", rules, "--plugins-dir", plugins)
    result = run_cli("artifact", "install", "falco-rules", "--dry-run", *args)
    assert result.exit_code == 0, result
    assert "falco_rules.yaml" in result.stdout and "libcontainer.so" in result.stdout
    assert "dry run: nothing was changed" in result.stderr
    assert not rules.exists() and not plugins.exists()
