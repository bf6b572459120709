"""`falcopkg lock` with nothing changed, answered by the tag lists (services.lock_stamp),
against the real registry: the resolver is skipped only when every input is as stamped."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from falcopkg.core import resolver
from falcopkg.oci.client import RegistryClient, RegistryOptions
from tests.fixtures import catalog as catalog_fixtures
from tests.fixtures.catalog import BASE_DEPENDENCIES, Catalog, read_lock, rules_yaml
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry

catalog = catalog_fixtures.catalog
project = catalog_fixtures.project


@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per run of the resolver."""
    runs: list[int] = []
    real = resolver._Resolver.run

    def counting(self: Any) -> Any:
        runs.append(1)
        return real(self)

    monkeypatch.setattr(resolver._Resolver, "run", counting)
    return runs


@pytest.fixture
def app(plain_registry: RunningRegistry, project: Path, tmp_path: Path) -> Iterator[Catalog]:
    """A catalog of its own (app-rules 1.0.0) and a project that depends on it."""
    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    own = Catalog(plain_registry, f"stamp-{secrets.token_hex(4)}", tmp_path / "own", client)
    own.push_rules("app-rules", "1.0.0", {"app_rules.yaml": rules_yaml().encode()})
    own.write_index(own.workdir / "index.yaml", [("app-rules", "rulesfile")])
    (project / "falco.toml").write_text(own.manifest('app-rules = "1"\n'))
    yield own
    client.close()


def lock(project: Path, *args: str) -> str:
    result = run_cli("-C", str(project), "lock", *args)
    assert result.exit_code == 0, result
    return result.stderr


def stamps(home: TmpHome) -> list[Path]:
    return sorted((home.cache_dir / "locks").glob("*.stamp"))


def test_a_relock_whose_tag_lists_are_unchanged_skips_the_resolver(
    catalog: Catalog, project: Path, tmp_home: TmpHome, resolutions: list[int]
) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    assert "Locked" in lock(project)
    written = (project / "falco.lock").read_bytes()
    assert len(resolutions) == 1 and len(stamps(tmp_home)) == 1  # the lock just written

    quick = lock(project, "-v")
    assert len(resolutions) == 1, "the resolver ran although nothing changed"
    count = len(read_lock(project).artifacts)
    assert f"the indexes and {count} tag lists are as when falco.lock was last" in quick
    assert f"falco.lock is up to date ({count} artifacts)" in quick
    assert (project / "falco.lock").read_bytes() == written


def test_a_new_version_runs_the_resolver_and_is_stamped_again(
    app: Catalog, project: Path, resolutions: list[int]
) -> None:
    lock(project)  # resolves and stamps
    lock(project)
    assert len(resolutions) == 1

    app.push_rules("app-rules", "1.1.0", {"app_rules.yaml": rules_yaml().encode()})
    assert "up to date" in lock(project)  # the locked version is kept, as always
    assert len(resolutions) == 2, "a changed tag list must run the resolver"
    lock(project)
    assert len(resolutions) == 2  # stamped with the new tag list

    upgraded = lock(project, "--upgrade")
    assert "Updated app-rules 1.0.0 -> 1.1.0" in upgraded and len(resolutions) == 3
    lock(project)  # an upgrade is not stamped: the next plain lock resolves, and stamps
    lock(project)
    assert len(resolutions) == 4


def test_a_lock_that_turned_a_candidate_down_is_stamped_by_the_next_one(
    app: Catalog, project: Path, tmp_home: TmpHome, resolutions: list[int]
) -> None:
    """The newest version needs a newer Falco than [target]: the first lock read its tag and
    kept the one before, so it depended on more than the tag lists and falco.lock show."""
    app.push_rules("app-rules", "1.1.0", {"app_rules.yaml": rules_yaml("99.0.0").encode()})
    manifest = project / "falco.toml"
    manifest.write_text(
        app.manifest('app-rules = "1"\n', extra='[target]\nengine_version = "0.57.0"\n\n')
    )
    assert "Locked" in lock(project)
    assert read_lock(project).artifact("app-rules").version == "1.0.0"
    assert stamps(tmp_home) == []
    assert "up to date" in lock(project)  # falco.lock pins 1.0.0: no other tag is read
    assert len(resolutions) == 2 and len(stamps(tmp_home)) == 1
    lock(project)
    assert len(resolutions) == 2


def test_any_changed_input_runs_the_resolver(
    catalog: Catalog, project: Path, tmp_home: TmpHome, resolutions: list[int]
) -> None:
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES))
    lock(project)
    lock(project)
    count = len(resolutions)

    manifest.write_text(manifest.read_text() + "# a comment\n")  # falco.toml's bytes
    lock(project)
    assert len(resolutions) == count + 1
    lock(project)
    assert len(resolutions) == count + 1

    index = catalog.workdir / "index.yaml"  # an index falco.toml names
    index.write_text(index.read_text() + "\n")
    lock(project)
    assert len(resolutions) == count + 2

    lock(project, "--upgrade-package", "falco-rules")  # upgrades never use the stamp
    assert len(resolutions) == count + 3

    stamp = stamps(tmp_home)[0]
    stamp.write_bytes(stamp.read_bytes()[:-5])  # damaged: read as missing
    lock(project)
    assert len(resolutions) == count + 4
    lock(project)
    assert len(resolutions) == count + 4  # stamped again


def test_offline_and_dry_run_locks_resolve_as_before(
    catalog: Catalog, project: Path, resolutions: list[int]
) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    lock(project)
    lock(project)
    count = len(resolutions)
    assert "up to date" in lock(project, "--offline")
    dry = run_cli("-C", str(project), "lock", "--dry-run")
    assert dry.exit_code == 0, dry
    assert len(resolutions) == count + 2
    assert {a.name for a in read_lock(project).artifacts} >= {"falco-rules", "k8saudit-rules"}


def test_a_repository_gone_since_it_was_stamped_is_an_error_naming_the_dependency(
    app: Catalog, plain_registry: RunningRegistry, project: Path, resolutions: list[int]
) -> None:
    """The tag lists asked for ahead fail quietly; the resolver's own request reports it."""
    import shutil

    lock(project)
    lock(project)  # stamps
    before = (project / "falco.lock").read_bytes()
    repositories = plain_registry.storage_dir / "docker/registry/v2/repositories"
    shutil.rmtree(repositories / app.repository("app-rules"))

    result = run_cli("-C", str(project), "lock")
    assert result.exit_code == 1, result
    assert "app-rules" in result.stderr and "falco.toml:" in result.stderr
    assert "Traceback" not in result.stderr
    assert (project / "falco.lock").read_bytes() == before


def test_the_stamped_answer_is_the_resolved_one_in_json_too(
    catalog: Catalog, project: Path, tmp_home: TmpHome, resolutions: list[int]
) -> None:
    import json

    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    lock(project)
    for stamp in stamps(tmp_home):
        stamp.unlink()
    resolved = run_cli("-C", str(project), "lock", "--json")  # resolves, stamps
    stamped = run_cli("-C", str(project), "lock", "--json")  # skips the resolver
    assert resolved.exit_code == stamped.exit_code == 0
    assert len(resolutions) == 2
    assert json.loads(stamped.stdout) == json.loads(resolved.stdout)
    assert stamped.stderr == resolved.stderr
