"""`falcopkg lock` end to end against a real registry (SPEC §6, §7).

A module-wide catalog of small rulesfiles and plugins is pushed once to the shared plain
registry under a unique prefix, with a local index file naming them; each test gets its own
project directory and caches (``tmp_home``).
"""

from __future__ import annotations

import io
import secrets
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from falcopkg.artifact.config import Alternative, Dependency
from falcopkg.artifact.push import push_artifact
from falcopkg.artifact.types import get_type
from falcopkg.core.lockfile import Lock
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.services import project_files
from falcopkg.services.cache import BlobCache
from falcopkg.services.project_files import load_manifest
from falcopkg.services.registries import RegistryAccess
from falcopkg.services.resolution import resolve_lock
from tests.cli import run_cli
from tests.conftest import TmpHome
from tests.fixtures.registries import RunningRegistry

PLATFORMS = ("linux/amd64", "linux/arm64")


def rules_yaml(engine: str | None = None, plugins: Sequence[dict[str, Any]] = ()) -> str:
    items: list[dict[str, Any]] = []
    if engine:
        items.append({"required_engine_version": engine})
    if plugins:
        items.append({"required_plugin_versions": list(plugins)})
    items.append(
        {
            "rule": "Example",
            "desc": "d",
            "condition": "evt.num > 0",
            "output": "o",
            "priority": "INFO",
        }
    )
    return yaml.safe_dump(items, sort_keys=False)


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A ready-made layer: pushed as is, so the config gets nothing from the YAML inside
    (like official rulesfiles, whose configs omit the plugins their YAML needs)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Catalog:
    registry: RunningRegistry
    prefix: str
    workdir: Path
    client: RegistryClient

    def repository(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def source(self, name: str) -> str:
        return f"{self.registry.host}/{self.repository(name)}"

    def push_rules(
        self,
        name: str,
        version: str,
        files: dict[str, bytes],
        *,
        prebuilt: bool = False,
        dependencies: Sequence[Dependency] = (),
        tags: Sequence[str] = (),
    ) -> str:
        directory = self.workdir / f"{name}-{version}"
        directory.mkdir(parents=True)
        if prebuilt:
            paths = [directory / f"{name}.tar.gz"]
            paths[0].write_bytes(tar_gz(files))
        else:
            paths = []
            for file_name, data in files.items():
                (directory / file_name).write_bytes(data)
                paths.append(directory / file_name)
        result = push_artifact(
            self.client,
            self.repository(name),
            get_type("rulesfile"),
            paths,
            version=version,
            tags=tags,
            dependencies=dependencies,
            created=None,
        )
        return result.digest

    def push_plugin(
        self,
        name: str,
        version: str,
        *,
        platforms: Sequence[str] = PLATFORMS,
        requirements: Sequence[Any] = (),
    ) -> str:
        directory = self.workdir / f"{name}-{version}"
        paths = []
        for platform in platforms:
            path = directory / platform.replace("/", "-") / f"lib{name}.so"
            path.parent.mkdir(parents=True)
            path.write_bytes(f"ELF {name} {version} {platform}".encode())
            paths.append(path)
        result = push_artifact(
            self.client,
            self.repository(name),
            get_type("plugin"),
            paths,
            version=version,
            platforms=platforms,
            requirements=requirements,
            created=None,
        )
        return result.digest

    def write_index(self, path: Path, names: Sequence[tuple[str, str]]) -> None:
        entries = [
            {
                "name": name,
                "type": kind,
                "registry": self.registry.host,
                "repository": self.repository(name),
                "description": f"{name} for tests",
            }
            for name, kind in names
        ]
        path.write_text(yaml.safe_dump(entries, sort_keys=False))

    def manifest(self, dependencies: str, *, extra: str = "") -> str:
        return (
            "# a test project\n"
            "[[index]]\n"
            'name = "local"\n'
            f'url = "{self.workdir / "index.yaml"}"\n\n'
            f'[registries."{self.registry.host}"]\n'
            "plain_http = true\n\n"
            f"{extra}"
            "[dependencies]\n"
            f"{dependencies}"
        )


CATALOG_ENTRIES = [
    ("falco-rules", "rulesfile"),
    ("k8saudit-rules", "rulesfile"),
    ("edge-rules", "rulesfile"),
    ("container", "plugin"),
    ("k8saudit", "plugin"),
    ("k8saudit-eks", "plugin"),
    ("json", "plugin"),
]


@pytest.fixture(scope="module")
def catalog(
    plain_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    """falco-rules 4.0.0/4.1.0 (prebuilt layers: container only in the YAML), k8saudit-rules
    0.16.0 (config: k8saudit | k8saudit-eks, json), plugins container 0.4.0/0.4.1/1.0.0,
    k8saudit 0.18.0/0.19.0/1.0.0, k8saudit-eks 0.12.0, json 0.7.0, and edge-rules tagged
    `main`."""
    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    found = Catalog(
        plain_registry, f"e2e-{secrets.token_hex(4)}", tmp_path_factory.mktemp("catalog"), client
    )
    needs_container = [{"name": "container", "version": "0.4.0"}]
    for version in ("4.0.0", "4.1.0"):
        found.push_rules(
            "falco-rules",
            version,
            {"falco_rules.yaml": rules_yaml("0.57.0", needs_container).encode()},
            prebuilt=True,
        )
    found.push_rules(
        "k8saudit-rules",
        "0.16.0",
        {"k8s_audit_rules.yaml": rules_yaml("15").encode()},
        dependencies=[
            Dependency("k8saudit", "0.18.0", (Alternative("k8saudit-eks", "0.12.0"),)),
            Dependency("json", "0.7.0"),
        ],
    )
    found.push_rules(
        "edge-rules", "2.0.0-dev.1", {"edge_rules.yaml": rules_yaml().encode()}, tags=["main"]
    )
    for version in ("0.4.0", "0.4.1", "1.0.0"):
        found.push_plugin("container", version)
    for version in ("0.18.0", "0.19.0", "1.0.0"):
        found.push_plugin("k8saudit", version)
    found.push_plugin("k8saudit-eks", "0.12.0")
    found.push_plugin("json", "0.7.0")
    found.write_index(found.workdir / "index.yaml", CATALOG_ENTRIES)
    yield found
    client.close()


@pytest.fixture
def project(tmp_path: Path, tmp_home: TmpHome) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


BASE_DEPENDENCIES = 'falco-rules = "4"\nk8saudit-rules = "0.16"\n'


def read_lock(project: Path) -> Lock:
    lock = project_files.read_lock(project / "falco.lock")
    assert lock is not None
    return lock


# --- tests --------------------------------------------------------------------------------------


def test_lock_pins_every_artifact_from_the_index(catalog: Catalog, project: Path) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    result = run_cli("-C", str(project), "lock")
    assert result.exit_code == 0, result.stderr
    assert "Locked 5 artifacts in falco.lock" in result.stderr
    assert result.stdout == ""

    lock = read_lock(project)
    versions = {a.name: a.version for a in lock.artifacts}
    # container comes only from falco_rules.yaml (the config lists nothing), at the newest
    # 0.x; k8saudit is the newest compatible (not the minimum 0.18.0, not 1.0.0).
    assert versions == {
        "falco-rules": "4.1.0",
        "container": "0.4.1",
        "k8saudit-rules": "0.16.0",
        "k8saudit": "0.19.0",
        "json": "0.7.0",
    }
    by_name = lock.by_name
    rules = by_name["falco-rules"]
    assert rules.type == "rulesfile" and rules.index == "local"
    assert rules.source == catalog.source("falco-rules")
    assert rules.layer is not None and rules.layer.files == ("falco_rules.yaml",)
    assert rules.dependencies == ("container",)
    assert rules.requirements == {"engine_version_semver": "0.57.0"}
    assert by_name["k8saudit-rules"].dependencies == ("json", "k8saudit")
    assert by_name["k8saudit-rules"].requirements == {"engine_version_semver": "0.15.0"}

    container = by_name["container"]
    assert container.type == "plugin" and container.layer is None
    assert sorted(container.platforms) == list(PLATFORMS)
    for platform in PLATFORMS:
        layer = container.layer_for(platform)
        assert layer is not None and layer.files == ("libcontainer.so",)
    head = catalog.client.head_manifest(catalog.repository("container"), "0.4.1")
    assert head is not None and container.digest == head.digest

    text = (project / "falco.lock").read_text()
    assert text.startswith("# This file is @generated by falcopkg. Do not edit it by hand.\n")
    assert "password" not in text and "127.0.0.1" in text


def test_deleting_the_lock_and_locking_again_gives_the_same_bytes(
    catalog: Catalog, project: Path, tmp_home: TmpHome
) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    first = (project / "falco.lock").read_bytes()

    (project / "falco.lock").unlink()
    assert run_cli("-C", str(project), "lock").exit_code == 0
    assert (project / "falco.lock").read_bytes() == first

    # A cold cache changes nothing either.
    shutil.rmtree(tmp_home.cache_dir)
    (project / "falco.lock").unlink()
    assert run_cli("-C", str(project), "lock").exit_code == 0
    assert (project / "falco.lock").read_bytes() == first

    again = run_cli("-C", str(project), "lock")
    assert again.exit_code == 0 and "falco.lock is up to date (5 artifacts)" in again.stderr


def test_lock_check_passes_then_fails_after_a_manifest_change(
    catalog: Catalog, project: Path
) -> None:
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES))
    missing = run_cli("-C", str(project), "lock", "--check")
    assert missing.exit_code == 1 and "falco.lock does not exist" in missing.stderr
    assert not (project / "falco.lock").exists()

    assert run_cli("-C", str(project), "lock").exit_code == 0
    locked = (project / "falco.lock").read_bytes()
    fresh = run_cli("-C", str(project), "lock", "--check")
    assert fresh.exit_code == 0, fresh.stderr
    assert "falco.lock is up to date" in fresh.stderr

    # A constraint that still allows the locked version keeps the lock fresh…
    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES.replace('"4"', '">=4.1, <5"')))
    assert run_cli("-C", str(project), "lock", "--check").exit_code == 0
    # …one that does not makes it stale; --check reports why and writes nothing.
    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES.replace('"4"', '"~4.0"')))
    stale = run_cli("-C", str(project), "lock", "--check")
    assert stale.exit_code == 1
    assert 'falco-rules 4.1.0 does not satisfy falco-rules = "~4.0"' in stale.stderr
    assert "hint: run `falcopkg lock`" in stale.stderr
    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES + 'json = "0.7"\nk8saudit-eks = "*"\n'))
    added = run_cli("-C", str(project), "lock", "--check")
    assert added.exit_code == 1 and "k8saudit-eks was added to falco.toml" in added.stderr
    assert (project / "falco.lock").read_bytes() == locked


class CountingAccess(RegistryAccess):
    """Real registry access whose clients record every API call (method name, repository)."""

    def __init__(self, calls: list[tuple[str, str]]) -> None:
        super().__init__({}, plain_http=True)
        self.calls = calls

    def origin(self, host: str) -> RegistryClient:
        real = super().origin(host)
        calls = self.calls

        class Recording:
            def __getattr__(self, attribute: str) -> Any:
                method = getattr(real, attribute)
                if not callable(method):
                    return method

                def record(*args: Any, **kwargs: Any) -> Any:
                    calls.append((attribute, str(args[0]) if args else ""))
                    return method(*args, **kwargs)

                return record

        return Recording()  # type: ignore[return-value]


def test_relock_with_nothing_changed_fetches_only_tag_lists(
    catalog: Catalog, project: Path, tmp_home: TmpHome
) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    manifest = load_manifest(project / "falco.toml")
    cache = BlobCache(tmp_home.cache_dir)
    cold_calls: list[tuple[str, str]] = []
    with CountingAccess(cold_calls) as pool:
        first = resolve_lock(manifest, existing_lock=None, stores=pool, cache=cache)
    assert {name for name, _ in cold_calls} >= {"list_tags", "get_manifest", "get_blob_bytes"}

    warm_calls: list[tuple[str, str]] = []
    with CountingAccess(warm_calls) as pool:
        second = resolve_lock(manifest, existing_lock=first, stores=pool, cache=cache)
    assert second == first
    tag_lists = sorted(("list_tags", catalog.repository(a.name)) for a in first.artifacts)
    assert sorted(warm_calls) == tag_lists

    # Without a lock, the warm cache still spares every manifest GET, config and layer:
    # one HEAD per artifact checks that its tag still names the cached digest.
    no_lock_calls: list[tuple[str, str]] = []
    with CountingAccess(no_lock_calls) as pool:
        third = resolve_lock(manifest, existing_lock=None, stores=pool, cache=cache)
    assert third == first
    heads = sorted(("head_manifest", catalog.repository(a.name)) for a in first.artifacts)
    assert sorted(no_lock_calls) == sorted(tag_lists + heads)


def test_offline_lock_with_a_warm_cache_needs_no_registry(catalog: Catalog, project: Path) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    locked = (project / "falco.lock").read_bytes()
    (project / "falco.lock").unlink()
    with catalog.registry.stopped():
        result = run_cli("-C", str(project), "lock", "--offline")
    assert result.exit_code == 0, result.stderr
    assert (project / "falco.lock").read_bytes() == locked


def test_offline_lock_with_a_cold_cache_says_what_is_missing(
    catalog: Catalog, project: Path
) -> None:
    (project / "falco.toml").write_text(
        catalog.manifest(f'x = {{ ref = "{catalog.source("json")}" }}\n')
    )
    result = run_cli("-C", str(project), "lock", "--offline")
    assert result.exit_code == 1
    assert f"no cached tag list for {catalog.source('json')}" in result.stderr
    assert "hint: run `falcopkg lock` once without --offline" in result.stderr
    assert not (project / "falco.lock").exists()


def test_conflicts_name_both_sides_and_leave_the_lock_alone(
    catalog: Catalog, project: Path
) -> None:
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    locked = (project / "falco.lock").read_bytes()

    manifest.write_text(catalog.manifest(BASE_DEPENDENCIES + 'container = "1"\n'))
    result = run_cli("-C", str(project), "lock")
    assert result.exit_code == 1
    assert (
        'falco-rules 4.1.0 requires container >=0.4.0, <1.0.0, but falco.toml requires container = "1"'
        in result.stderr
    )
    assert 'hint: relax `container = "1"` in falco.toml' in result.stderr
    assert "Traceback" not in result.stderr
    assert (project / "falco.lock").read_bytes() == locked


def test_target_requirements_and_platforms_against_real_metadata(
    catalog: Catalog, project: Path
) -> None:
    extra = '[target]\nengine_version = "0.50.0"\n\n'
    (project / "falco.toml").write_text(catalog.manifest('falco-rules = "4"\n', extra=extra))
    result = run_cli("-C", str(project), "lock")
    assert result.exit_code == 1
    assert "falco-rules 4.1.0 requires engine_version_semver 0.57.0" in result.stderr
    assert "[target] engine_version is 0.50.0" in result.stderr

    extra = '[target]\nplatforms = ["linux/amd64", "linux/s390x"]\n\n'
    (project / "falco.toml").write_text(catalog.manifest('json = "0.7"\n', extra=extra))
    result = run_cli("-C", str(project), "lock")
    assert result.exit_code == 1
    assert "json 0.7.0 has no linux/s390x build (it has linux/amd64, linux/arm64)" in result.stderr


def test_digest_and_tag_pins(catalog: Catalog, project: Path) -> None:
    digest = catalog.client.head_manifest(catalog.repository("falco-rules"), "4.0.0")
    assert digest is not None
    dependencies = (
        f'falco-rules = {{ digest = "{digest.digest}" }}\n'
        f'edge = {{ ref = "{catalog.source("edge-rules")}", tag = "main" }}\n'
    )
    (project / "falco.toml").write_text(catalog.manifest(dependencies))
    result = run_cli("-C", str(project), "lock")
    assert result.exit_code == 0, result.stderr
    lock = read_lock(project).by_name
    assert lock["falco-rules"].version == "4.0.0" and lock["falco-rules"].digest == digest.digest
    assert lock["edge"].tag == "main" and lock["edge"].version == "2.0.0-dev.1"
    assert lock["edge"].index is None and lock["edge"].source == catalog.source("edge-rules")
    assert "container" in lock
    assert run_cli("-C", str(project), "lock", "--check").exit_code == 0


def test_upgrade_moves_pins_only_when_asked(
    plain_registry: RunningRegistry, project: Path, tmp_path: Path
) -> None:
    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    own = Catalog(plain_registry, f"upgrade-{secrets.token_hex(4)}", tmp_path / "own", client)
    own.push_rules(
        "app-rules",
        "1.0.0",
        {"app_rules.yaml": rules_yaml(plugins=[{"name": "app", "version": "0.1.0"}]).encode()},
    )
    own.push_plugin("app", "0.1.0")
    own.write_index(own.workdir / "index.yaml", [("app-rules", "rulesfile"), ("app", "plugin")])
    (project / "falco.toml").write_text(own.manifest('app-rules = "1"\n'))
    assert run_cli("-C", str(project), "lock").exit_code == 0

    own.push_plugin("app", "0.2.0")
    own.push_rules("app-rules", "1.1.0", {"app_rules.yaml": rules_yaml().encode()})
    kept = run_cli("-C", str(project), "lock")
    assert kept.exit_code == 0 and "up to date" in kept.stderr
    assert {a.name: a.version for a in read_lock(project).artifacts} == {
        "app-rules": "1.0.0",
        "app": "0.1.0",
    }

    before = (project / "falco.lock").read_bytes()
    dry = run_cli("-C", str(project), "lock", "--upgrade-package", "app", "--dry-run")
    assert dry.exit_code == 0 and "Would update app 0.1.0 -> 0.2.0" in dry.stderr
    assert (project / "falco.lock").read_bytes() == before

    one = run_cli("-C", str(project), "lock", "--upgrade-package", "app")
    assert one.exit_code == 0 and "Updated app 0.1.0 -> 0.2.0" in one.stderr
    assert read_lock(project).by_name["app-rules"].version == "1.0.0"

    everything = run_cli("-C", str(project), "lock", "--upgrade")
    assert everything.exit_code == 0
    assert "Updated app-rules 1.0.0 -> 1.1.0" in everything.stderr
    # app-rules 1.1.0 no longer needs the plugin: it leaves the lock.
    assert "Removed app 0.2.0" in everything.stderr

    unknown = run_cli("-C", str(project), "lock", "--upgrade-package", "nope")
    assert unknown.exit_code == 2 and "--upgrade-package nope" in unknown.stderr
    client.close()


def test_a_damaged_lock_is_reported_by_check_and_repaired_by_lock(
    catalog: Catalog, project: Path
) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    good = (project / "falco.lock").read_bytes()
    damaged = good.replace(b'type = "plugin"', b"type = 7", 1)
    (project / "falco.lock").write_bytes(damaged)

    check = run_cli("-C", str(project), "lock", "--check")
    assert check.exit_code == 1
    assert "falco.lock:" in check.stderr and "`type` must be a non-empty string" in check.stderr
    assert (project / "falco.lock").read_bytes() == damaged

    repaired = run_cli("-C", str(project), "lock")
    assert repaired.exit_code == 0, repaired.stderr
    assert "warning: ignoring the damaged falco.lock" in repaired.stderr
    assert (project / "falco.lock").read_bytes() == good


def test_damaged_metadata_cache_entries_are_fetched_again(
    catalog: Catalog, project: Path, tmp_home: TmpHome
) -> None:
    (project / "falco.toml").write_text(catalog.manifest(BASE_DEPENDENCIES))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    locked = (project / "falco.lock").read_bytes()
    records = list((tmp_home.cache_dir / "metadata").rglob("*.json"))
    assert records
    for record in records:
        record.write_text("{not json")
    (project / "falco.lock").unlink()
    result = run_cli("-C", str(project), "lock")
    assert result.exit_code == 0, result.stderr
    assert (project / "falco.lock").read_bytes() == locked


def test_an_index_added_ahead_of_the_locked_one_makes_the_lock_stale(
    catalog: Catalog, project: Path
) -> None:
    """§3: the first index in manifest order that names an artifact wins. An index added
    before the one falco-rules was locked from may name it too: --check must say the lock
    is stale (and sync --locked refuse), and relocking moves to the other repository."""
    manifest = project / "falco.toml"
    manifest.write_text(catalog.manifest('falco-rules = "4"\n'))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    locked = (project / "falco.lock").read_bytes()

    catalog.push_rules(
        "falco-rules-fork",
        "4.2.0",
        {"falco_rules.yaml": rules_yaml("0.57.0").encode()},
        prebuilt=True,
    )
    first = project / "first.yaml"
    first.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "falco-rules",
                    "type": "rulesfile",
                    "registry": catalog.registry.host,
                    "repository": catalog.repository("falco-rules-fork"),
                }
            ]
        )
    )
    first_index = f'[[index]]\nname = "first"\nurl = "{first}"\n\n'
    manifest.write_text(
        catalog.manifest('falco-rules = "4"\n').replace(
            "[[index]]\n", first_index + "[[index]]\n", 1
        )
    )

    check = run_cli("-C", str(project), "lock", "--check")
    assert check.exit_code == 1, check.stderr
    assert "falco-rules: index 'first' was added before 'local'" in check.stderr
    refused = run_cli("-C", str(project), "sync", "--locked", "--dry-run")
    assert refused.exit_code == 1 and "index 'first' was added before" in refused.stderr

    dry = run_cli("-C", str(project), "lock", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    fork = catalog.source("falco-rules-fork")
    assert f"Would update falco-rules 4.1.0 -> 4.2.0 (from {fork})" in dry.stderr
    assert (project / "falco.lock").read_bytes() == locked

    assert run_cli("-C", str(project), "lock").exit_code == 0
    relocked = read_lock(project).by_name["falco-rules"]
    assert (relocked.source, relocked.index) == (fork, "first")
    assert run_cli("-C", str(project), "lock", "--check").exit_code == 0

    # Added after the one used, an index changes nothing.
    (project / "falco.lock").write_bytes(locked)
    manifest.write_text(catalog.manifest('falco-rules = "4"\n') + "\n" + first_index)
    assert run_cli("-C", str(project), "lock", "--check").exit_code == 0


def test_a_lock_with_bad_values_is_refused_and_repaired_by_lock(
    catalog: Catalog, project: Path
) -> None:
    """Values an install acts on are checked when falco.lock is read: a path escaping the
    install directory, a digest that is not one, credentials in `source`, a dependency
    that is not locked."""
    (project / "falco.toml").write_text(catalog.manifest('falco-rules = "4"\n'))
    assert run_cli("-C", str(project), "lock").exit_code == 0
    good = (project / "falco.lock").read_text()
    rules = read_lock(project).by_name["falco-rules"]
    assert rules.layer is not None
    edits = [
        ('files = ["falco_rules.yaml"]', 'files = ["../../etc/passwd"]', "layer file"),
        (f'digest = "{rules.digest}"', 'digest = "sha256:zz"', "`digest` is not a digest"),
        (
            f'source = "{rules.source}"',
            f'source = "http://user:secret@{rules.source}"',
            "`source` must be a registry location",
        ),
        ('dependencies = ["container"]', 'dependencies = ["nothere"]', "'nothere', which is not"),
    ]
    for old, new, message in edits:
        assert old in good, old
        (project / "falco.lock").write_text(good.replace(old, new))
        for command in (("lock", "--check"), ("sync", "--frozen", "--dry-run")):
            result = run_cli("-C", str(project), *command)
            assert result.exit_code == 1, (command, result.stderr)
            assert message in result.stderr and "falco.lock:" in result.stderr
            assert "hint: run `falcopkg lock`" in result.stderr
            assert "secret" not in result.stderr and "/etc/passwd" not in result.stdout
        repaired = run_cli("-C", str(project), "lock")
        assert repaired.exit_code == 0, repaired.stderr
        assert "ignoring the damaged falco.lock" in repaired.stderr
        assert (project / "falco.lock").read_text() == good
