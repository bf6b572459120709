"""`falcopkg sync` against a real registry (SPEC §8): exact, offline, pruning, safe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from falcopkg.services.cache import BlobCache
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import (
    HOST,
    OTHER,
    PLUGIN_FOR,
    RULES_V1,
    YA1,
    YA2,
    YB1,
    YC2,
    Project,
    falcopkg_command,
    push_raw_layer,
    standard_project,
)
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry


@pytest.fixture
def project(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry, unique_repo: str
) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return Project(root, plain_registry.host, unique_repo)


def test_sync_installs_exactly_the_locked_bytes_for_the_host_platform(project: Project) -> None:
    standard_project(project)
    result = project.sync()
    assert result.exit_code == 0, result
    assert project.lock_path.is_file()
    assert project.installed() == {
        "rules/falco_rules.yaml": RULES_V1,
        "rules/other_rules.yaml": b"- list: x\n  items: []\n",
        "plugins/libcontainer.so": PLUGIN_FOR[HOST],
    }
    assert "+ " in result.stderr and "Synced: 3 added" in result.stderr
    state = json.loads((project.rules_dir / ".falcopkg" / "state.json").read_text())
    assert set(state["artifacts"]) == {"falco-rules", "other-rules"}
    assert state["pending"] == {}

    again = project.sync()
    assert again.exit_code == 0, again
    assert "Nothing to do: 3 files of 3 artifacts are up to date" in again.stderr
    assert run_cli("-C", project.root, "verify").exit_code == 0


def test_platform_option_installs_that_platforms_plugin(project: Project) -> None:
    standard_project(project)
    result = project.sync("--platform", OTHER, "--plugins-dir", project.root / "other-plugins")
    assert result.exit_code == 0, result
    assert (project.root / "other-plugins" / "libcontainer.so").read_bytes() == PLUGIN_FOR[OTHER]
    bad = project.sync("--platform", "linux/riscv64")
    assert bad.exit_code == 1
    assert "not locked for platform linux/riscv64" in bad.stderr
    assert "under [target] in falco.toml (add the table if it has none)" in bad.stderr


def test_no_network_when_cached_and_offline_into_new_directories(
    tmp_home: TmpHome,
    tmp_path: Path,
    registry_factory: Callable[..., RunningRegistry],
) -> None:
    registry = registry_factory("plain")
    root = tmp_path / "project"
    root.mkdir()
    project = standard_project(Project(root, registry.host, "acme"))
    assert project.sync().exit_code == 0
    before = {p: (project.root / p).stat().st_mtime_ns for p in project.installed()}

    registry.stop()
    again = project.sync()
    assert again.exit_code == 0, again
    assert "Nothing to do" in again.stderr
    assert {p: (project.root / p).stat().st_mtime_ns for p in project.installed()} == before

    # Into new directories, from the cache only.
    offline = project.sync(
        "--offline",
        "--rulesfiles-dir",
        root / "new-rules",
        "--plugins-dir",
        root / "new-plugins",
    )
    assert offline.exit_code == 0, offline
    assert (root / "new-rules" / "falco_rules.yaml").read_bytes() == RULES_V1
    assert (root / "new-plugins" / "libcontainer.so").read_bytes() == PLUGIN_FOR[HOST]

    # Without the cache, --offline names what is missing.
    shutil.rmtree(tmp_home.cache_dir)
    missing = project.sync("--offline", "--rulesfiles-dir", root / "third")
    assert missing.exit_code == 1
    assert "is not in the cache" in missing.stderr and "sha256:" in missing.stderr
    assert "--offline" in missing.stderr
    assert (
        "vendor" not in missing.stderr and "with network access to fill the cache" in missing.stderr
    )
    assert not (root / "third" / "falco_rules.yaml").exists()


def test_removing_an_artifact_removes_its_files_and_unneeded_dependencies(project: Project) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    (project.rules_dir / "my_rules.yaml").write_text("- list: mine\n  items: []\n")
    (project.plugins_dir / "libmine.so").write_bytes(b"mine")

    project.dependencies = {"other-rules": "1"}
    project.write_manifest()
    result = project.sync()
    assert result.exit_code == 0, result
    assert "falco.lock" in result.stderr  # relocked
    assert project.installed() == {
        "rules/other_rules.yaml": b"- list: x\n  items: []\n",
        "rules/my_rules.yaml": b"- list: mine\n  items: []\n",
        "plugins/libmine.so": b"mine",
    }
    assert "container" not in project.lock_path.read_text()
    assert run_cli("-C", project.root, "verify").exit_code == 0


def test_upgrade_replaces_files_and_drops_files_the_new_version_lacks(project: Project) -> None:
    project.push("edge-rules", "1.0.0", {"a.yaml": YA1, "b.yaml": YB1})
    project.push("edge-rules", "2.0.0", {"a.yaml": YA2, "c.yaml": YC2})
    project.dependencies = {"edge-rules": "=1.0.0"}
    project.write_manifest()
    assert project.sync().exit_code == 0
    assert project.installed() == {"rules/a.yaml": YA1, "rules/b.yaml": YB1}

    project.dependencies = {"edge-rules": "2"}
    project.write_manifest()
    dry = project.sync("--dry-run")
    assert dry.exit_code == 0, dry
    assert "Would update edge-rules 1.0.0 -> 2.0.0" in dry.stderr and "Updated" not in dry.stderr
    assert project.installed() == {"rules/a.yaml": YA1, "rules/b.yaml": YB1}
    result = project.sync()
    assert result.exit_code == 0, result
    assert project.installed() == {"rules/a.yaml": YA2, "rules/c.yaml": YC2}
    assert "edge-rules 1.0.0 -> 2.0.0" in result.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(project: Project) -> None:
    standard_project(project)
    result = project.sync("--dry-run")
    assert result.exit_code == 0, result
    assert "falco_rules.yaml" in result.stdout and "install falco-rules 1.0.0" in result.stdout
    assert "libcontainer.so" in result.stdout
    assert "Would update falco.lock" in result.stderr
    assert not project.lock_path.exists()
    assert project.installed() == {}
    assert not project.rules_dir.exists()


def test_locked_and_frozen(project: Project) -> None:
    standard_project(project)
    missing = project.sync("--locked")
    assert (
        missing.exit_code == 1
        and "does not exist" in missing.stderr
        and "falcopkg lock" in missing.stderr
    )
    assert project.sync().exit_code == 0
    locked_text = project.lock_path.read_text()

    project.dependencies = {"other-rules": "1"}
    project.write_manifest()
    stale = project.sync("--locked")
    assert stale.exit_code == 1, stale
    assert (
        "out of date" in stale.stderr and "falco-rules was removed from falco.toml" in stale.stderr
    )
    assert project.lock_path.read_text() == locked_text

    frozen = project.sync("--frozen")
    assert frozen.exit_code == 0, frozen
    assert project.lock_path.read_text() == locked_text
    assert "rules/falco_rules.yaml" in project.installed()
    both = project.sync("--locked", "--frozen")
    assert both.exit_code == 2


def test_modified_file_is_reported_and_kept_unless_force(project: Project) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    target = project.rules_dir / "falco_rules.yaml"
    target.write_bytes(b"# my local edits\n")

    kept = project.sync()
    assert kept.exit_code == 1, kept
    assert "kept" in kept.stderr and "falco_rules.yaml" in kept.stderr and "--force" in kept.stderr
    assert target.read_bytes() == b"# my local edits\n"
    drift = run_cli("-C", project.root, "verify", "--json")
    assert drift.exit_code == 1
    payload = json.loads(drift.stdout)
    assert [(d["kind"], Path(d["path"]).name) for d in payload["drift"]] == [
        ("modified", "falco_rules.yaml")
    ]

    forced = project.sync("--force")
    assert forced.exit_code == 0, forced
    assert target.read_bytes() == RULES_V1
    assert project.sync().exit_code == 0


def test_files_falcopkg_did_not_install_are_adopted_when_identical_else_kept(
    project: Project,
) -> None:
    standard_project(project)
    project.rules_dir.mkdir()
    (project.rules_dir / "falco_rules.yaml").write_bytes(RULES_V1)  # e.g. from the Falco package
    (project.rules_dir / "other_rules.yaml").write_bytes(b"someone else's file\n")
    result = project.sync()
    assert result.exit_code == 1, result
    assert "other_rules.yaml" in result.stderr and "not installed by falcopkg" in result.stderr
    assert (project.rules_dir / "other_rules.yaml").read_bytes() == b"someone else's file\n"
    state = json.loads((project.rules_dir / ".falcopkg" / "state.json").read_text())
    assert "falco_rules.yaml" in state["artifacts"]["falco-rules"]["files"]  # adopted
    assert state["artifacts"]["other-rules"]["files"] == {}

    assert project.sync("--force").exit_code == 0
    assert (project.rules_dir / "other_rules.yaml").read_bytes() == b"- list: x\n  items: []\n"
    assert "Nothing to do" in project.sync().stderr


def test_tampered_blob_fails_naming_the_digest_and_keeps_no_bad_copy(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    registry = registry_factory("plain")
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, registry.host, "acme")
    pushed = project.push("falco-rules", "1.0.0", {"falco_rules.yaml": RULES_V1})
    layer_digest = pushed.manifests[0].layer.digest
    project.dependencies = {"falco-rules": "1"}
    project.write_manifest()
    assert project.sync().exit_code == 0  # the lock is written and verified

    shutil.rmtree(tmp_home.cache_dir)
    blob = registry.blob_path(layer_digest)
    original = blob.read_bytes()
    blob.write_bytes(bytes(b ^ 0x5A for b in original))
    new_dirs = ("--rulesfiles-dir", root / "fresh")
    failed = project.sync(*new_dirs)
    assert failed.exit_code == 1, failed
    assert layer_digest in failed.stderr
    assert not (root / "fresh" / "falco_rules.yaml").exists()
    cache = BlobCache(tmp_home.cache_dir)
    assert not cache.has(layer_digest)
    assert (
        not any((tmp_home.cache_dir / "tmp").glob("*"))
        if (tmp_home.cache_dir / "tmp").exists()
        else True
    )

    blob.write_bytes(original)
    repaired = project.sync(*new_dirs)
    assert repaired.exit_code == 0, repaired
    assert (root / "fresh" / "falco_rules.yaml").read_bytes() == RULES_V1
    assert cache.has(layer_digest)


def test_touched_file_is_rehashed_once_then_fast_again(project: Project) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    target = project.rules_dir / "falco_rules.yaml"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    result = project.sync()
    assert result.exit_code == 0 and "Nothing to do" in result.stderr
    state = json.loads((project.rules_dir / ".falcopkg" / "state.json").read_text())
    assert (
        state["artifacts"]["falco-rules"]["files"]["falco_rules.yaml"]["mtime_ns"]
        == target.stat().st_mtime_ns
    )


HOSTILE = {
    "dotdot": ({"../escape.yaml": b"x"}, "'../escape.yaml' escapes"),
    "absolute": ({"/tmp/falcopkg-absolute.yaml": b"x"}, "absolute path"),
    "symlink": ({"@symlink link.yaml": b"/etc/passwd"}, "'link.yaml' is a link"),
    "hardlink": ({"ok.yaml": b"x", "@hardlink hard.yaml": b"ok.yaml"}, "'hard.yaml' is a link"),
    "bomb": ({"zeros.yaml": bytes(8 * 1024 * 1024)}, "expands beyond"),
}


def _hostile_archive(path: Path, entries: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries.items():
            if name.startswith("@"):
                kind, _, link_name = name[1:].partition(" ")
                info = tarfile.TarInfo(link_name)
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = data.decode()
                tar.addfile(info)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("stage", ["lock", "install"])
def test_hostile_archives_are_refused_and_nothing_is_written(
    project: Project, monkeypatch: pytest.MonkeyPatch, kind: str, stage: str
) -> None:
    """Refused when locking reads the layer, and by the installer for a lock made elsewhere."""
    from falcopkg.core.lockfile import Lock, LockedArtifact, LockedLayer, LockInputs, render_lock
    from falcopkg.services.project_files import load_manifest

    entries, message = HOSTILE[kind]
    monkeypatch.setenv("FALCOPKG_MAX_UNPACKED_SIZE", str(1024 * 1024))
    archive = _hostile_archive(project.root.parent / f"{kind}.tar.gz", entries)
    pushed = push_raw_layer(project, "evil-rules", "1.0.0", archive)
    project.dependencies = {"evil-rules": "1"}
    manifest_path = project.write_manifest()
    if stage == "install":
        locked = LockedArtifact(
            name="evil-rules",
            type="rulesfile",
            version="1.0.0",
            source=project.ref("evil-rules"),
            digest=pushed.digest,
            index="test",
            layer=LockedLayer(pushed.layer_digest, pushed.layer_size, ("evil.yaml",)),
        )
        inputs = LockInputs.from_manifest(load_manifest(manifest_path))
        project.lock_path.write_text(render_lock(Lock(inputs, (locked,))))
    result = project.sync("--frozen") if stage == "install" else project.sync()
    assert result.exit_code == 1, result
    assert "evil-rules" in result.stderr and message in result.stderr, result.stderr
    assert "hint:" in result.stderr
    assert project.installed() == {}
    assert not Path("/tmp/falcopkg-absolute.yaml").exists()
    assert not (project.root / "escape.yaml").exists()
    staging = project.rules_dir / ".falcopkg"
    assert not staging.exists() or not [
        p for p in staging.iterdir() if p.name.startswith("staging-")
    ]


def test_mirrors_oci_layout_and_registry(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    """With the origin down: blobs from another registry, then from an OCI layout offline."""
    origin, mirror = registry_factory("plain"), registry_factory("plain")
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, origin.host, "acme")
    standard_project(project)
    assert project.sync().exit_code == 0
    # The same artifacts (same digests: pushes are reproducible) under a prefix elsewhere.
    copy = Project(tmp_path / "copy", mirror.host, "cache/acme")
    (tmp_path / "copy").mkdir()
    standard_project(copy)
    origin.stop()

    text = (root / "falco.toml").read_text()
    (root / "falco.toml").write_text(
        text.replace(
            f'[registries."{origin.host}"]\nplain_http = true\n',
            f'[registries."{origin.host}"]\nplain_http = true\nmirror = "{mirror.host}/cache"\n\n'
            f'[registries."{mirror.host}"]\nplain_http = true\n',
        )
    )
    shutil.rmtree(tmp_home.cache_dir)
    via_mirror = project.sync(
        "--frozen", "--rulesfiles-dir", root / "m1", "--plugins-dir", root / "p1"
    )
    assert via_mirror.exit_code == 0, via_mirror
    assert (root / "m1" / "falco_rules.yaml").read_bytes() == RULES_V1
    assert (root / "p1" / "libcontainer.so").read_bytes() == PLUGIN_FOR[HOST]

    # An OCI image layout holding the blobs (as `skopeo copy ... oci:DIR` writes), no network.
    layout = root / "vendor"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for blob in (tmp_home.cache_dir / "blobs" / "sha256").iterdir():
        shutil.copy(blob, layout / "blobs" / "sha256" / blob.name)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    text = (root / "falco.toml").read_text()
    (root / "falco.toml").write_text(
        text.replace(f'mirror = "{mirror.host}/cache"', 'mirror = "oci-layout:vendor"')
    )
    mirror.stop()
    shutil.rmtree(tmp_home.cache_dir)
    offline = project.sync(
        "--frozen", "--offline", "--rulesfiles-dir", root / "m2", "--plugins-dir", root / "p2"
    )
    assert offline.exit_code == 0, offline
    assert (root / "m2" / "falco_rules.yaml").read_bytes() == RULES_V1
    assert (root / "p2" / "libcontainer.so").read_bytes() == PLUGIN_FOR[HOST]


def test_an_empty_project_takes_the_no_op_fast_path(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write_manifest()  # no dependencies
    for directory in (project.rules_dir, project.plugins_dir, project.assets_dir):
        directory.mkdir()
    first = project.sync()
    assert first.exit_code == 0 and "Nothing to do" in first.stderr, first
    assert project.lock_path.is_file()

    from falcopkg.services import installer

    def full_path(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the second sync of an empty project took the full path")

    monkeypatch.setattr(installer, "install_artifacts", full_path)
    again = project.sync()
    assert again.exit_code == 0 and "Nothing to do: 0 files of 0 artifacts" in again.stderr, again


def test_the_no_op_fingerprint_covers_platform_and_frozen(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    other = project.sync("--platform", OTHER)
    assert other.exit_code == 0, other
    assert "Nothing to do" not in other.stderr  # the other platform's plugin build went in
    assert (project.plugins_dir / "libcontainer.so").read_bytes() == PLUGIN_FOR[OTHER]
    assert project.sync("--platform", OTHER).stderr.startswith("Nothing to do")

    from falcopkg.services import installer

    full_paths: list[str] = []
    real = installer.install_artifacts

    def recording(*args: object, **kwargs: object) -> object:
        full_paths.append("full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(installer, "install_artifacts", recording)
    assert project.sync("--platform", OTHER, "--frozen").exit_code == 0
    assert full_paths == ["full"]  # a frozen sync never matches a checked sync's stamp


def test_a_cache_hit_refreshes_the_blobs_age_so_prune_keeps_it(
    project: Project, tmp_home: TmpHome
) -> None:
    from falcopkg.services.cache import prune_cache

    standard_project(project)
    assert project.sync().exit_code == 0
    blobs = list((tmp_home.cache_dir / "blobs" / "sha256").iterdir())
    old = 1_000_000_000  # 2001
    for blob in blobs:
        os.utime(blob, (old, old))
    shutil.rmtree(project.plugins_dir)  # the next sync needs the plugin layer again, cached
    assert project.sync().exit_code == 0
    prune_cache(tmp_home.cache_dir, max_age_seconds=24 * 3600)
    from falcopkg.core.lockfile import parse_lock

    container = parse_lock(project.lock_path.read_text(), "lock").artifact("container")
    assert container is not None and (layer := container.layer_for(HOST)) is not None
    kept = {f"sha256:{b.name}" for b in (tmp_home.cache_dir / "blobs" / "sha256").iterdir()}
    assert layer.digest in kept  # used again just now: its age was refreshed
    assert len(kept) < len(blobs)  # what the sync did not use was old, and pruned


def _imports_of(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_a_no_op_sync_imports_no_http_yaml_toml_semver_or_resolver(project: Project) -> None:
    """The import budget of the fast path, as a user runs it: the `falcopkg` script in a
    fresh interpreter. ``-S`` with the checkout on PYTHONPATH: the editable venv's .pth
    finder imports pathlib and re itself, before falcopkg, which would hide ours."""
    from tests.fixtures.project import REPO_ROOT

    standard_project(project)
    assert project.sync().exit_code == 0
    arguments = ["-C", str(project.root), "sync"]
    proc = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", REPO_ROOT / "bin" / "falcopkg", *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
    )
    assert proc.returncode == 0 and "Nothing to do" in proc.stderr, proc.stderr[-2000:]
    imported = _imports_of(proc)
    heavy = {"requests", "yaml", "tomlkit", "tomllib", "semver", "falcopkg.core.resolver"}
    slow = {"click", "pathlib", "re", "typing", "json", "dataclasses", "hashlib", "tempfile"}
    assert not (heavy | slow) & imported, sorted((heavy | slow) & imported)
    assert "falcopkg.services.state" in imported  # it did read the records


def test_a_failed_sync_leaves_no_new_empty_install_directories(
    project: Project, tmp_home: TmpHome
) -> None:
    standard_project(project)
    assert run_cli("-C", project.root, "lock").exit_code == 0
    for path in tmp_home.cache_dir.rglob("*"):  # a cold cache: an offline sync must fail
        if path.is_file():
            path.unlink()
    nested = project.root / "new" / "plugins"
    result = project.sync("--offline", "--plugins-dir", nested)
    assert result.exit_code == 1, result
    assert not project.rules_dir.exists()
    assert not (project.root / "new").exists()


def test_verify_after_a_sync_for_another_platform_names_that_platform(project: Project) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    assert project.sync("--platform", OTHER).exit_code == 0
    result = run_cli("-C", project.root, "verify")
    assert result.exit_code == 1
    assert "other-platform" in result.stdout and "outdated" not in result.stdout
    assert f"the {OTHER} build is installed; verify checked {HOST}" in result.stdout
    assert f"`--platform {OTHER}`" in result.stdout
    assert run_cli("-C", project.root, "verify", "--platform", OTHER).exit_code == 0


def test_the_installed_falcopkg_script_answers_a_no_op_and_runs_the_full_cli(
    project: Project,
) -> None:
    """bin/falcopkg as the venv has it (installed by pip, its first line rewritten)."""
    script = Path(sys.executable).parent / "falcopkg"
    assert script.read_text().startswith(f"#!{sys.executable[:-1]}")  # python or python3
    standard_project(project)
    first = subprocess.run(
        [script, "-C", project.root, "sync"], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0 and "Synced: 3 added" in first.stderr, first.stderr
    again = subprocess.run(
        [script, "-C", project.root, "sync"], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr == "Nothing to do: 3 files of 3 artifacts are up to date\n"
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "falcopkg, version" in version.stdout


def _entry_sync(project: Project, *args: str | Path) -> tuple[bool, str]:
    """(whether the entry point answered without the full CLI, stderr) of `falcopkg sync`
    in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "falcopkg", "-C", project.root, "sync"]
        + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    messages = "".join(
        line + "\n" for line in proc.stderr.splitlines() if "import time:" not in line
    )
    return "click" not in _imports_of(proc), messages


def _record(project: Project) -> Path:
    return project.rules_dir / ".falcopkg" / "noop"


def _touch(path: Path) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))


def _replace_state(project: Project) -> None:
    """state.json rewritten by someone else (same text, a new file)."""
    state = project.rules_dir / ".falcopkg" / "state.json"
    copy = state.with_name("copy")
    copy.write_bytes(state.read_bytes())
    _touch(copy)
    os.replace(copy, state)


# What changes after a no-op was recorded; each must send the next sync the full way.
CHANGES: dict[str, Callable[[Project], object]] = {
    "touched file": lambda p: _touch(p.rules_dir / "falco_rules.yaml"),
    "deleted file": lambda p: (p.rules_dir / "falco_rules.yaml").unlink(),
    "falco.toml edited": lambda p: (p.root / "falco.toml").write_text(
        (p.root / "falco.toml").read_text() + "# a comment\n"
    ),
    "falco.lock edited": lambda p: p.lock_path.write_text(p.lock_path.read_text() + "\n"),
    "torn record": lambda p: _record(p).write_bytes(_record(p).read_bytes()[:-5]),
    "record of another stamp": lambda p: _record(p).write_bytes(
        b"\0".join(
            b"0" + field if number == 1 else field
            for number, field in enumerate(_record(p).read_bytes().split(b"\0"))
        )
    ),
    "record deleted": lambda p: _record(p).unlink(),
    "state.json replaced": _replace_state,
    "plugins record deleted, its state kept": lambda p: (
        p.plugins_dir / ".falcopkg" / "noop"
    ).unlink(),
    "leftover staging directory": lambda p: (p.rules_dir / ".falcopkg" / "staging-x").mkdir(),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_change_since_the_recorded_no_op_takes_the_full_path_once(
    project: Project, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    from falcopkg.services import installer

    standard_project(project)
    assert project.sync().exit_code == 0
    expected = project.installed()
    full_paths: list[str] = []
    real = installer.install_artifacts

    def recording(*args: object, **kwargs: object) -> object:
        full_paths.append(change)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(installer, "install_artifacts", recording)
    assert project.sync().exit_code == 0 and full_paths == []  # the no-op, recorded
    CHANGES[change](project)
    result = project.sync()
    assert result.exit_code == 0, result
    assert full_paths == [change]
    assert project.installed() == expected  # repaired where needed
    again = project.sync()
    assert again.exit_code == 0 and "Nothing to do: 3 files" in again.stderr, again
    assert full_paths == [change]  # recorded again: fast
    assert not (project.rules_dir / ".falcopkg" / "staging-x").exists()


def test_a_file_replaced_by_a_directory_is_never_a_no_op(project: Project) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    assert _entry_sync(project)[0]
    plugin = project.plugins_dir / "libcontainer.so"
    plugin.unlink()
    plugin.mkdir()
    for _ in range(2):
        proc = subprocess.run(
            falcopkg_command("-C", project.root, "sync"), capture_output=True, text=True
        )
        assert proc.returncode == 1 and "kept" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("options", "environment"),
    [
        (["--platform", OTHER], {}),
        (["--frozen"], {}),
        (["--rulesfiles-dir", "rules"], {}),  # the configured directory, given as an override
        ([], {"FALCOPKG_RULESFILES_DIR": "rules"}),
        (["--falco-config-dir", "etc"], {}),
    ],
)
def test_the_entry_point_sends_other_options_the_full_way_then_answers_them_fast(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    environment: dict[str, str],
) -> None:
    standard_project(project)
    monkeypatch.chdir(project.root)  # relative overrides are relative to the current directory
    assert project.sync().exit_code == 0
    assert _entry_sync(project) == (True, "Nothing to do: 3 files of 3 artifacts are up to date\n")
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    fast, _ = _entry_sync(project, *options)
    assert not fast
    fast, messages = _entry_sync(project, *options)
    assert fast and messages.startswith("Nothing to do"), messages
    for key in environment:
        monkeypatch.delenv(key)
    assert _entry_sync(project)[0] is False  # back to the plain sync: its stamp was replaced


def test_the_entry_point_falls_back_on_a_torn_record_and_a_touched_file(project: Project) -> None:
    standard_project(project)
    assert project.sync().exit_code == 0
    assert _entry_sync(project)[0]
    _record(project).write_bytes(_record(project).read_bytes()[:40])
    assert _entry_sync(project) == (False, "Nothing to do: 3 files of 3 artifacts are up to date\n")
    assert _entry_sync(project)[0]
    _touch(project.plugins_dir / "libcontainer.so")
    assert not _entry_sync(project)[0]
    assert _entry_sync(project)[0]
