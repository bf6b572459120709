"""`falcopkg cache dir|clean|prune` with a cache filled by a real sync."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from falcopkg.durations import parse_duration
from falcopkg.errors import UsageError
from falcopkg.services.cache import BlobCache
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import Project
from tests.fixtures.registries import RunningRegistry

RULES = b"- list: cached\n  items: []\n"
DAY = 86400.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * DAY),
        ("12h", 12 * 3600),
        ("90m", 5400),
        ("45s", 45),
        ("2w", 14 * DAY),
        ("7", 7 * DAY),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, option="--max-age", bare_unit="d") == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1d", "3y", "d", "\u0663d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text, option="--max-age", bare_unit="d")


def test_cache_dir_honours_env_and_option(tmp_home: TmpHome, tmp_path: Path) -> None:
    assert run_cli("cache", "dir").stdout.strip() == str(tmp_home.cache_dir)
    assert run_cli("--cache-dir", tmp_path / "c2", "cache", "dir").stdout.strip() == str(
        tmp_path / "c2"
    )


def _age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


@pytest.mark.registry
def test_prune_and_clean(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry, unique_repo: str
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, plain_registry.host, unique_repo)
    pushed = project.push("cached-rules", "1.0.0", {"cached.yaml": RULES})
    project.dependencies = {"cached-rules": "1"}
    project.write_manifest()
    assert project.sync().exit_code == 0
    cache = BlobCache(tmp_home.cache_dir)
    layer = pushed.manifests[0].layer.digest
    assert cache.has(layer)

    fresh_tmp = cache.temp_path()  # a download in progress elsewhere: kept
    old_tmp = cache.temp_path()
    _age(old_tmp, 1)
    kept = run_cli("cache", "prune")
    assert kept.exit_code == 0, kept
    assert "Pruned 1 files" in kept.stderr
    assert cache.has(layer) and fresh_tmp.exists() and not old_tmp.exists()

    _age(cache.path_for(layer), 40)
    pruned = run_cli("cache", "prune", "--max-age", "30d")
    assert pruned.exit_code == 0 and not cache.has(layer)
    offline = project.sync("--offline", "--rulesfiles-dir", root / "again")
    assert offline.exit_code == 1 and layer in offline.stderr

    assert project.sync("--rulesfiles-dir", root / "again").exit_code == 0  # fetched again
    assert cache.has(layer)
    cleaned = run_cli("cache", "clean")
    assert cleaned.exit_code == 0 and "Removed" in cleaned.stderr
    assert list(tmp_home.cache_dir.iterdir()) == []
    assert run_cli("cache", "prune", "--max-age", "soon").exit_code == 2
