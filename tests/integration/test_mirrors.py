"""Mirrors everywhere (SPEC §5 [registries], §11): a registry mirror and an OCI image layout
serve tags, manifests, configs and layers to `lock` and `sync`; the lock's sources stay the
origin; mirrors from the user config apply like falco.toml's."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from falcopkg.core.lockfile import parse_lock
from tests.fixtures.home import TmpHome
from tests.fixtures.project import HOST, PLUGIN_FOR, RULES_V1, Project, standard_project
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry


def _origin_project(tmp_path: Path, origin: RunningRegistry) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    project = standard_project(Project(root, origin.host, "acme"))
    result = project.sync()
    assert result.exit_code == 0, result
    return project


def _with_mirror(project: Project, stanza: str) -> None:
    path = project.root / "falco.toml"
    text = path.read_text()
    origin = f'[registries."{project.registry_host}"]\nplain_http = true\n'
    path.write_text(text.replace(origin, origin + stanza))


def _sync_into_fresh_dirs(project: Project, name: str, *args: str) -> None:
    rules, plugins = project.root / f"{name}-rules", project.root / f"{name}-plugins"
    result = project.sync(*args, "--rulesfiles-dir", rules, "--plugins-dir", plugins)
    assert result.exit_code == 0, result
    assert (rules / "falco_rules.yaml").read_bytes() == RULES_V1
    assert (plugins / "libcontainer.so").read_bytes() == PLUGIN_FOR[HOST]


def _skopeo_copy(source: str, destination: str) -> None:
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            source,
            destination,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


STANDARD = (("falco-rules", "1.0.0"), ("other-rules", "1.0.0"), ("container", "0.4.1"))


def _copy_all(origin: RunningRegistry, destination: Callable[[str], str]) -> None:
    """skopeo copies every artifact of standard_project from ``origin`` (an independent
    copier: what falcopkg reads back was not written by falcopkg)."""
    for name, version in STANDARD:
        reference = f"{origin.host}/acme/{name}:{version}"
        _skopeo_copy(f"docker://{reference}", destination(reference))


def test_lock_and_sync_through_a_registry_mirror_with_the_origin_down(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin, mirror = registry_factory("plain"), registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    locked = project.lock_path.read_bytes()
    _copy_all(origin, lambda ref: f"docker://{mirror.host}/cache/{ref.partition('/')[2]}")
    origin.stop()
    _with_mirror(
        project,
        f'mirror = "{mirror.host}/cache"\n\n[registries."{mirror.host}"]\nplain_http = true\n',
    )
    shutil.rmtree(tmp_home.cache_dir)
    project.lock_path.unlink()

    result = project_lock(project)
    assert result.returncode == 0, result.stderr
    # Tags and manifests came from the mirror; the lock still names the origin.
    assert project.lock_path.read_bytes() == locked
    assert all(
        a.source.startswith(origin.host + "/")
        for a in parse_lock(locked.decode(), "lock").artifacts
    )
    _sync_into_fresh_dirs(project, "via-mirror")


def test_lock_and_sync_from_an_oci_layout_with_no_registry_and_an_empty_cache(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin = registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    locked = project.lock_path.read_bytes()
    layout = project.root / "vendor"
    _copy_all(origin, lambda ref: f"oci:{layout}:{ref}")
    origin.stop()
    _with_mirror(project, 'mirror = "oci-layout:vendor"\n')
    shutil.rmtree(tmp_home.cache_dir)
    project.lock_path.unlink()

    result = project_lock(project, "--offline")
    assert result.returncode == 0, result.stderr
    assert project.lock_path.read_bytes() == locked
    shutil.rmtree(tmp_home.cache_dir)
    _sync_into_fresh_dirs(project, "from-layout", "--offline")


def test_a_mirror_from_the_user_config_applies_to_every_project(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin, mirror = registry_factory("plain"), registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    locked = project.lock_path.read_bytes()
    _copy_all(origin, lambda ref: f"docker://{mirror.host}/m/{ref.partition('/')[2]}")
    origin.stop()
    (tmp_home.config_dir / "config.toml").write_text(
        f'[registries."{origin.host}"]\nplain_http = true\nmirror = "{mirror.host}/m"\n\n'
        f'[registries."{mirror.host}"]\nplain_http = true\n'
    )
    # falco.toml's own entry for the origin replaces the user's: drop it for this test.
    path = project.root / "falco.toml"
    path.write_text(
        path.read_text().replace(f'[registries."{origin.host}"]\nplain_http = true\n', "")
    )
    shutil.rmtree(tmp_home.cache_dir)
    project.lock_path.unlink()
    result = project_lock(project)
    assert result.returncode == 0, result.stderr
    assert (
        parse_lock(project.lock_path.read_text(), "lock").artifacts
        == parse_lock(locked.decode(), "lock").artifacts
    )
    _sync_into_fresh_dirs(project, "user-mirror")


def test_a_layout_mirror_missing_a_locked_blob_is_an_error_naming_it(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin = registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    layout = project.root / "vendor"
    reference = f"{origin.host}/acme/other-rules:1.0.0"  # falco-rules and container are missing
    _skopeo_copy(f"docker://{reference}", f"oci:{layout}:{reference}")
    origin.stop()
    _with_mirror(project, 'mirror = "oci-layout:vendor"\n')
    shutil.rmtree(tmp_home.cache_dir)
    result = project.sync(
        "--frozen", "--rulesfiles-dir", project.root / "r", "--plugins-dir", project.root / "p"
    )
    assert result.exit_code == 1
    assert str(layout) in result.stderr and "Traceback" not in result.stderr


def project_lock(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """`falcopkg lock` as a user runs it (a subprocess, nothing shared with the test)."""
    from tests.fixtures.project import REPO_ROOT, falcopkg_command

    return subprocess.run(
        falcopkg_command("-C", project.root, "lock", *args),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
