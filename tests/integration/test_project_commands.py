"""`init`, `add`, `remove`, `tree`, `outdated` against the real registry (SPEC §5, §10).

Uses the shared catalog (tests/fixtures/catalog.py), pushed once per module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falcopkg.services.project_files import load_manifest
from tests.fixtures import catalog as catalog_fixtures
from tests.fixtures.catalog import BASE_DEPENDENCIES, Catalog, read_lock
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome

# The shared catalog, pushed once for this module.
catalog = catalog_fixtures.catalog
project = catalog_fixtures.project

COMMENTED = """\
# Falco on the edge nodes
[target]
platforms = ["linux/amd64", "linux/arm64"]  # both node pools

[dependencies]  # keep these few
json = "0.7"  # the json plugin
# more below
"""


def commented_manifest(catalog: Catalog) -> str:
    header, _, _ = catalog.manifest("").partition("[dependencies]\n")
    return header + COMMENTED


def test_init_writes_a_commented_manifest_once(tmp_path: Path, tmp_home: TmpHome) -> None:
    target = tmp_path / "new"
    target.mkdir()
    result = run_cli("-C", str(target), "init")
    assert result.exit_code == 0, result.stderr
    text = (target / "falco.toml").read_text()
    assert 'url = "https://falcosecurity.github.io/falcoctl/index.yaml"' in text
    assert "# rulesfiles_dir" in text
    manifest = load_manifest(target / "falco.toml")
    assert manifest.dependencies == {} and manifest.indexes[0].name == "falcosecurity"

    again = run_cli("-C", str(target), "init")
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert (target / "falco.toml").read_text() == text


def test_add_writes_the_resolved_version_and_keeps_comments(
    catalog: Catalog, project: Path
) -> None:
    (project / "falco.toml").write_text(commented_manifest(catalog))
    result = run_cli("-C", str(project), "add", "falco-rules", "k8saudit-rules:0.16", "--no-sync")
    assert result.exit_code == 0, result.stderr
    text = (project / "falco.toml").read_text()
    for comment in (
        "# Falco on the edge nodes",
        "# both node pools",
        "# keep these few",
        "# the json plugin",
        "# more below",
    ):
        assert comment in text
    # Like `cargo add`: the newest release as a caret constraint; a given constraint as is.
    assert 'falco-rules = "4.1.0"' in text
    assert 'k8saudit-rules = "0.16"' in text
    assert text.index('json = "0.7"') < text.index("falco-rules") < text.index("k8saudit-rules")
    assert "Added falco-rules 4.1.0" in result.stderr and "Added container 0.4.1" in result.stderr
    lock = read_lock(project)
    assert set(lock.by_name) == {"json", "falco-rules", "container", "k8saudit-rules", "k8saudit"}
    assert run_cli("-C", str(project), "lock", "--check").exit_code == 0


def test_add_registry_references_and_pins(catalog: Catalog, project: Path) -> None:
    (project / "falco.toml").write_text(catalog.manifest(""))
    edge = f"{catalog.source('edge-rules')}:main"
    plugin = catalog.source("k8saudit")
    result = run_cli("-C", str(project), "add", edge, plugin, "--no-sync")
    assert result.exit_code == 0, result.stderr
    dependencies = load_manifest(project / "falco.toml").dependencies
    assert dependencies["edge-rules"].to_input() == {
        "ref": catalog.source("edge-rules"),
        "tag": "main",
    }
    assert dependencies["k8saudit"].to_input() == {"ref": plugin, "version": "1.0.0"}
    assert read_lock(project).by_name["k8saudit"].version == "1.0.0"


def test_add_of_an_unknown_name_changes_nothing(catalog: Catalog, project: Path) -> None:
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest('json = "0.7"\n'))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    before = (manifest.read_bytes(), (project / "falco.lock").read_bytes())
    result = run_cli("-C", str(project), "add", "k8saudit-rulez", "--no-sync")
    assert result.exit_code == 1
    assert "artifact 'k8saudit-rulez' not found in index local" in result.stderr
    assert "did you mean `k8saudit-rules`" in result.stderr
    assert (manifest.read_bytes(), (project / "falco.lock").read_bytes()) == before


def test_add_that_conflicts_changes_nothing(catalog: Catalog, project: Path) -> None:
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest('container = "1"\n'))
    before = manifest.read_bytes()
    result = run_cli("-C", str(project), "add", "falco-rules", "--no-sync")
    assert result.exit_code == 1
    assert "falco-rules 4.1.0 requires container >=0.4.0, <1.0.0" in result.stderr
    assert 'falco.toml requires container = "1"' in result.stderr
    assert manifest.read_bytes() == before and not (project / "falco.lock").exists()


def test_add_then_sync_installs(catalog: Catalog, project: Path, tmp_path: Path) -> None:
    rules_dir, plugins_dir = tmp_path / "rules", tmp_path / "plugins"
    install = f'[install]\nrulesfiles_dir = "{rules_dir}"\nplugins_dir = "{plugins_dir}"\n\n'
    (project / "falco.toml").write_text(catalog.manifest("", extra=install))
    result = run_cli("-C", str(project), "add", "falco-rules")
    assert result.exit_code == 0, result.stderr
    assert (rules_dir / "falco_rules.yaml").is_file()
    assert (plugins_dir / "libcontainer.so").is_file()


def test_remove_uninstalls_its_files_and_keeps_the_users(
    catalog: Catalog, project: Path, tmp_path: Path
) -> None:
    rules_dir, plugins_dir = tmp_path / "rules", tmp_path / "plugins"
    install = f'[install]\nrulesfiles_dir = "{rules_dir}"\nplugins_dir = "{plugins_dir}"\n\n'
    (project / "falco.toml").write_text(catalog.manifest("", extra=install))
    assert run_cli("-C", str(project), "add", "falco-rules").exit_code == 0
    (rules_dir / "my_rules.yaml").write_text("- list: mine\n  items: []\n")
    result = run_cli("-C", str(project), "remove", "falco-rules")
    assert result.exit_code == 0, result.stderr
    assert not (rules_dir / "falco_rules.yaml").exists()
    assert not (plugins_dir / "libcontainer.so").exists()
    assert (rules_dir / "my_rules.yaml").read_text() == "- list: mine\n  items: []\n"


def test_remove_keeps_comments_and_relocks(catalog: Catalog, project: Path) -> None:
    manifest = project / "falco.toml"
    manifest.write_text(commented_manifest(catalog) + 'falco-rules = "4"  # default rules\n')
    assert run_cli("-C", str(project), "lock").exit_code == 0
    result = run_cli("-C", str(project), "remove", "falco-rules", "--no-sync")
    assert result.exit_code == 0, result.stderr
    text = manifest.read_text()
    assert "falco-rules" not in text and "# default rules" not in text
    for comment in (
        "# Falco on the edge nodes",
        "# both node pools",
        "# the json plugin",
        "# more below",
    ):
        assert comment in text
    assert (
        "Removed container 0.4.1" in result.stderr and "Removed falco-rules 4.1.0" in result.stderr
    )
    assert set(read_lock(project).by_name) == {"json"}


def test_remove_of_an_unknown_name_is_an_error(catalog: Catalog, project: Path) -> None:
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES))
    before = manifest.read_bytes()
    result = run_cli("-C", str(project), "remove", "falco-rulez")
    assert result.exit_code == 1
    assert "falco-rulez is not a dependency" in result.stderr
    assert "did you mean `falco-rules`?" in result.stderr
    assert manifest.read_bytes() == before


@pytest.fixture
def locked_project(catalog: Catalog, project: Path) -> Path:
    (project / "falco.toml").write_text(
        catalog.manifest(BASE_DEPENDENCIES + 'k8saudit = "=0.18.0"\n')
    )
    assert run_cli("-C", str(project), "lock").exit_code == 0
    return project


def test_tree_shows_who_brings_in_whom(locked_project: Path) -> None:
    result = run_cli("-C", str(locked_project), "tree")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        'falco-rules 4.1.0 [rulesfile] (falco.toml: "4")',
        "└── container 0.4.1 [plugin] (falco-rules requires >=0.4.0, <1.0.0)",
        'k8saudit-rules 0.16.0 [rulesfile] (falco.toml: "0.16")',
        "├── json 0.7.0 [plugin] (k8saudit-rules requires >=0.7.0, <1.0.0)",
        "└── k8saudit 0.18.0 [plugin] (k8saudit-rules requires >=0.18.0, <1.0.0)",
        'k8saudit 0.18.0 [plugin] (falco.toml: "=0.18.0")',
    ]

    as_json = run_cli("-C", str(locked_project), "tree", "--json")
    data = json.loads(as_json.stdout)
    assert data["roots"] == ["falco-rules", "k8saudit-rules", "k8saudit"]
    k8saudit = next(a for a in data["artifacts"] if a["name"] == "k8saudit")
    assert k8saudit["required_by"] == [
        {"by": "falco.toml", "constraint": "=0.18.0"},
        {"by": "k8saudit-rules", "constraint": ">=0.18.0, <1.0.0"},
    ]


def test_outdated_compares_locked_allowed_and_latest(locked_project: Path) -> None:
    result = run_cli("-C", str(locked_project), "outdated")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "type", "locked", "allowed", "latest"]
    assert [line.split() for line in lines[1:]] == [
        ["container", "plugin", "0.4.1", "0.4.1", "1.0.0"],
        ["k8saudit", "plugin", "0.18.0", "0.18.0", "1.0.0"],
    ]
    data = json.loads(run_cli("-C", str(locked_project), "outdated", "--json").stdout)
    rules = next(row for row in data if row["name"] == "falco-rules")
    assert rules == {
        "name": "falco-rules",
        "type": "rulesfile",
        "locked": "4.1.0",
        "allowed": "4.1.0",
        "latest": "4.1.0",
        "outdated": False,
    }


def test_tree_without_a_lock_says_what_to_do(catalog: Catalog, project: Path) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    result = run_cli("-C", str(project), "tree")
    assert result.exit_code == 1
    assert (
        "falco.lock does not exist" in result.stderr
        and "hint: run `falcopkg lock`" in result.stderr
    )


def test_add_reports_only_what_changed_in_the_lock(catalog: Catalog, project: Path) -> None:
    manifest = project / "falco.toml"
    # No lock yet: falco-rules (and container, which it brings) were declared before.
    manifest.write_text(catalog.manifest('falco-rules = "4"\n'))
    first = run_cli("-C", str(project), "add", "json", "--no-sync")
    assert first.exit_code == 0, first.stderr
    assert "Added json 0.7.0" in first.stderr
    assert "Added falco-rules" not in first.stderr and "Added container" not in first.stderr
    assert "Locked 3 artifacts in falco.lock" in first.stderr

    # Locked: adding a transitive artifact as a direct one changes no locked artifact.
    again = run_cli("-C", str(project), "add", "container", "--no-sync")
    assert again.exit_code == 0, again.stderr
    assert "Added" not in again.stderr and "Updated" not in again.stderr
    assert 'container = "0.4.1"' in manifest.read_text()


# -- install directories, dry runs and JSON (issue 11, defect 1) -----------------------------


def test_add_and_remove_take_the_directory_options_and_environment(
    catalog: Catalog, project: Path, tmp_path: Path
) -> None:
    rules_dir, plugins_dir = tmp_path / "env-rules", tmp_path / "flag-plugins"
    (project / "falco.toml").write_text(catalog.manifest(""))  # no [install]: /etc/falco…
    env = {"FALCOPKG_RULESFILES_DIR": str(rules_dir)}
    added = run_cli("-C", project, "add", "falco-rules", "--plugins-dir", plugins_dir, env=env)
    assert added.exit_code == 0, added
    assert (rules_dir / "falco_rules.yaml").is_file()
    assert (plugins_dir / "libcontainer.so").is_file()
    verified = run_cli("-C", project, "verify", "--plugins-dir", plugins_dir, env=env)
    assert verified.exit_code == 0, verified

    removed = run_cli("-C", project, "remove", "falco-rules", "--plugins-dir", plugins_dir, env=env)
    assert removed.exit_code == 0, removed
    assert not (rules_dir / "falco_rules.yaml").exists()
    assert not (plugins_dir / "libcontainer.so").exists()


def test_add_dry_run_writes_and_installs_nothing(
    catalog: Catalog, project: Path, tmp_path: Path
) -> None:
    rules_dir, plugins_dir = tmp_path / "rules", tmp_path / "plugins"
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest(""))
    before = manifest.read_bytes()
    result = run_cli(
        "-C", project, "add", "falco-rules", "--dry-run",
        "--rulesfiles-dir", rules_dir, "--plugins-dir", plugins_dir,
    )  # fmt: skip
    assert result.exit_code == 0, result
    assert "Would add falco-rules 4.1.0" in result.stderr
    assert "falco_rules.yaml" in result.stdout  # the files a sync would install
    assert "not written" in result.stderr
    assert manifest.read_bytes() == before and not (project / "falco.lock").exists()
    assert not rules_dir.exists() and not plugins_dir.exists()

    removed = run_cli("-C", project, "remove", "json", "--dry-run", "--no-sync")
    assert removed.exit_code == 1  # json is not a dependency: the same error as without
    (project / "falco.toml").write_text(catalog.manifest('json = "0.7"\n'))
    assert run_cli("-C", project, "lock").exit_code == 0
    locked = (project / "falco.lock").read_bytes()
    removed = run_cli("-C", project, "remove", "json", "--dry-run", "--no-sync")
    assert removed.exit_code == 0, removed
    assert "Would remove json 0.7.0" in removed.stderr
    assert (project / "falco.lock").read_bytes() == locked
    assert 'json = "0.7"' in manifest.read_text()


def test_a_failed_sync_after_add_says_the_files_were_written(
    catalog: Catalog, project: Path, tmp_path: Path
) -> None:
    rules_dir, plugins_dir = tmp_path / "rules", tmp_path / "plugins"
    rules_dir.mkdir()
    (rules_dir / "falco_rules.yaml").write_text("# shipped by the Falco package\n")
    (project / "falco.toml").write_text(catalog.manifest(""))
    result = run_cli(
        "-C", project, "add", "falco-rules",
        "--rulesfiles-dir", rules_dir, "--plugins-dir", plugins_dir,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "`falcopkg add` updated falco.toml and falco.lock, but the sync did not finish" in (
        result.stderr
    )
    assert "falcopkg sync --force" in result.stderr
    assert 'falco-rules = "4.1.0"' in (project / "falco.toml").read_text()
    assert "falco-rules" in read_lock(project).by_name


def test_init_writes_install_dirs_and_chosen_indexes(
    catalog: Catalog, tmp_path: Path, tmp_home: TmpHome
) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    index = catalog.workdir / "index.yaml"
    result = run_cli(
        "-C", target, "init", "--index", f"local={index}",
        "--rulesfiles-dir", target / "rules",
        env={"FALCOPKG_PLUGINS_DIR": str(tmp_path / "plugins")},
    )  # fmt: skip
    assert result.exit_code == 0, result
    manifest = load_manifest(target / "falco.toml")
    assert [(i.name, i.url) for i in manifest.indexes] == [("local", str(index))]
    assert manifest.install.rulesfiles_dir == "rules"  # inside the project: relative
    assert manifest.install.plugins_dir == str(tmp_path / "plugins")

    other = tmp_path / "offline"
    other.mkdir()
    assert run_cli("-C", other, "init", "--no-index").exit_code == 0
    assert load_manifest(other / "falco.toml").indexes == ()
    bad = run_cli("-C", tmp_path / "x", "init", "--index", "no-equals-sign")
    assert bad.exit_code == 2 and "NAME=URL" in bad.stderr
    both = run_cli("-C", tmp_path / "x", "init", "--index", "a=b", "--no-index")
    assert both.exit_code == 2


def test_lock_sync_and_add_print_json_results(
    catalog: Catalog, project: Path, tmp_path: Path
) -> None:
    rules_dir, plugins_dir = tmp_path / "rules", tmp_path / "plugins"
    install = f'[install]\nrulesfiles_dir = "{rules_dir}"\nplugins_dir = "{plugins_dir}"\n\n'
    (project / "falco.toml").write_text(catalog.manifest('json = "0.7"\n', extra=install))
    locked = run_cli("-C", project, "lock", "--json")
    assert locked.exit_code == 0, locked
    payload = json.loads(locked.stdout)
    assert payload["written"] is True
    assert [a["name"] for a in payload["artifacts"]] == ["json"]

    synced = run_cli("-C", project, "sync", "--json")
    assert synced.exit_code == 0, synced
    payload = json.loads(synced.stdout)
    assert payload["ok"] is True
    assert [(a["kind"], a["artifact"]) for a in payload["actions"]] == [("add", "json")]

    added = run_cli("-C", project, "add", "falco-rules", "--json")
    assert added.exit_code == 0, added
    payload = json.loads(added.stdout)
    assert "Added falco-rules 4.1.0" in payload["lock"]["changes"]
    kinds = sorted((a["kind"], a["artifact"]) for a in payload["sync"]["actions"])
    assert kinds == [("add", "container"), ("add", "falco-rules")]


def test_the_readme_quickstart_runs_as_written(
    catalog: Catalog, tmp_path: Path, tmp_home: TmpHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's quickstart against a local registry and index (the user config trusts the
    registry over plain HTTP, as `[registries]` there does); every step exits 0."""
    (tmp_home.config_dir / "config.toml").write_text(
        f'[registries."{catalog.registry.host}"]\nplain_http = true\n'
    )
    project_dir = tmp_path / "my-falco"
    project_dir.mkdir()
    monkeypatch.chdir(project_dir)
    index = f"local={catalog.workdir / 'index.yaml'}"
    steps = [
        ["init", "--index", index, "--rulesfiles-dir", "rules", "--plugins-dir", "plugins"],
        ["artifact", "search", "k8saudit"],
        ["add", "falco-rules", "k8saudit-rules", "--dry-run"],
        ["add", "falco-rules", "k8saudit-rules"],
        ["tree"],
        ["verify"],
    ]
    for step in steps:
        result = run_cli(*step)
        assert result.exit_code == 0, (step, result)
    assert (project_dir / "rules" / "falco_rules.yaml").is_file()
    assert (project_dir / "plugins" / "libcontainer.so").is_file()
