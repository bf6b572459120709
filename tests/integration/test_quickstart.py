"""The README's main command works on a fresh machine with no network (issue 10, item 4).

examples/quickstart is a project whose registry mirror is the OCI image layout kept beside it:
the committed layout and falco.lock must be exactly what build_layout.py and `lock` make, and
`sync`, `verify`, the exports and scripts/quickstart must work with an empty HOME and cache and
no network at all (a network namespace of its own when the kernel allows one).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from falcopkg.artifact.platforms import host_platform
from falcopkg.oci.layout import REF_NAME
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import REPO_ROOT, falcopkg_command

EXAMPLE = REPO_ROOT / "examples" / "quickstart"
LAYOUT = EXAMPLE / "layout"
# Not part of the layout's content: the writer lock (gitignored) and plain-sync installs.
UNTRACKED = {"layout/.falcopkg.lock"}


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_layout", EXAMPLE / "build_layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and str(path.relative_to(root.parent)) not in UNTRACKED
    }


def _installed(directory: Path) -> dict[str, bytes]:
    """The files sync installed (not its own .falcopkg/ state)."""
    return {name: data for name, data in _tree(directory).items() if ".falcopkg" not in name}


@cache
def _no_network() -> list[str]:
    """A command prefix that runs without any network (a new, empty network namespace)."""
    try:
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["unshare", "-rn"] if probe.returncode == 0 else []


def _isolated_env(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FALCOPKG_") and key not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG")
    }
    env.update(HOME=str(home), FALCOPKG_CACHE_DIR=str(home / "cache"))
    env["FALCOPKG_CONFIG"] = str(home / "config")
    return env


def _same_deflate_as_the_committed_layout() -> bool:
    """Whether this zlib compresses like the one that built layout/ (zlib-ng, for one, makes
    other valid bytes): the committed rules layer, decompressed and packed again."""
    from falcopkg.artifact.parallel_gzip import DEFAULT_LEVEL, ParallelGzipWriter

    index = json.loads((LAYOUT / "index.json").read_text())
    rules_ref = "registry.example.com/falco-quickstart/rules/quickstart-rules:1.0.0"
    root = next(m for m in index["manifests"] if m["annotations"][REF_NAME] == rules_ref)
    manifest = json.loads(_blob(root["digest"]))
    layer = _blob(manifest["layers"][0]["digest"])
    again = io.BytesIO()
    writer = ParallelGzipWriter(again, level=DEFAULT_LEVEL, threads=1)
    writer.write(gzip.decompress(layer))
    writer.close()
    return again.getvalue() == layer


def _blob(digest: str) -> bytes:
    return (LAYOUT / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_the_committed_layout_is_what_build_layout_writes(tmp_path: Path) -> None:
    for attempt in ("first", "second"):
        result = subprocess.run(
            [
                sys.executable,
                EXAMPLE / "build_layout.py",
                "--output",
                tmp_path / attempt / "layout",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    built = _tree(tmp_path / "first" / "layout")
    assert built == _tree(tmp_path / "second" / "layout")
    if not _same_deflate_as_the_committed_layout():
        pytest.skip("this zlib compresses differently from the one that built layout/")
    assert built == _tree(LAYOUT), "run examples/quickstart/build_layout.py and commit layout/"
    # Small enough to keep in the repository.
    assert sum(len(data) for data in built.values()) < 8 * 1024


def test_the_committed_lock_is_what_lock_writes_from_the_layout(
    tmp_home: TmpHome, tmp_path: Path
) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("installed", ".falcopkg.lock"))
    (project / "falco.lock").unlink()
    result = run_cli("-C", project, "lock")
    assert result.exit_code == 0, result
    assert (project / "falco.lock").read_bytes() == (EXAMPLE / "falco.lock").read_bytes()


def test_lock_check_passes(tmp_home: TmpHome) -> None:
    result = run_cli("-C", EXAMPLE, "lock", "--check")
    assert result.exit_code == 0, result


def test_sync_works_with_no_network_and_an_empty_cache(tmp_path: Path) -> None:
    before = _tree(EXAMPLE)
    rules, plugins = tmp_path / "D1", tmp_path / "D2"
    command = falcopkg_command(
        "-C", EXAMPLE, "sync", "--rulesfiles-dir", rules, "--plugins-dir", plugins
    )
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [*_no_network(), *command],
        capture_output=True,
        text=True,
        env=_isolated_env(home),
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    build = _build_script()
    assert _installed(rules) == {"quickstart_rules.yaml": build.RULES_YAML.encode()}
    stand_in = build.stand_in_plugin(host_platform()).encode()
    assert _installed(plugins) == {"libquickstart.so": stand_in}
    assert _tree(EXAMPLE) == before, "sync must not write into the example project"

    verify = run_cli("-C", EXAMPLE, "verify", "--rulesfiles-dir", rules, "--plugins-dir", plugins)
    assert verify.exit_code == 0, verify


def _clone_like_copy(destination: Path) -> Path:
    """The repository's files as a fresh clone has them (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = REPO_ROOT / name
        if not source.is_file():  # deleted in the work tree, not yet committed
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return destination


def _run_quickstart(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = _isolated_env(home)
    # The test's own Python: no venv is made, so no pip and no network.
    env["FALCOPKG_QUICKSTART_PYTHON"] = sys.executable
    return subprocess.run(
        [*_no_network(), "bash", repo / "scripts" / "quickstart", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=300,
    )


def test_scripts_quickstart_in_a_fresh_copy_with_an_empty_home(tmp_path: Path) -> None:
    repo = _clone_like_copy(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    result = _run_quickstart(repo, home)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = repo / "examples" / "quickstart" / "installed"
    assert (installed / "rules" / "quickstart_rules.yaml").is_file()
    assert (installed / "plugins" / "libquickstart.so").is_file()
    assert (
        "library_path: " + str(installed / "plugins" / "libquickstart.so")
        in (installed / "falco-config.yaml").read_text()
    )
    assert "load_plugins:\n  - quickstart" in (installed / "values-falcopkg.yaml").read_text()
    for heading in ("lock --check", "sync", "verify", "export helm", "export falco-config"):
        assert heading in result.stdout
    assert not (repo / ".venv").exists()
    assert sorted(p.name for p in home.iterdir()) == [], "the script's HOME is its own"


def test_scripts_quickstart_stops_at_the_first_failing_step(tmp_path: Path) -> None:
    repo = _clone_like_copy(tmp_path / "repo")
    manifest = repo / "examples" / "quickstart" / "falco.toml"
    manifest.write_text(
        manifest.read_text().replace('quickstart-rules = "1"', 'quickstart-rules = "2"')
    )
    home = tmp_path / "home"
    home.mkdir()
    result = _run_quickstart(repo, home, str(tmp_path / "out"))
    assert result.returncode != 0
    assert "1/5 lock --check" in result.stdout and "2/5" not in result.stdout
    assert not (tmp_path / "out" / "rules").exists()
