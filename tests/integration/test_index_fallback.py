"""One unreachable index does not fail `lock`, `search` or `info` when another index has the
answer (issue: the error names the index and the hint says how to drop it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import RULES_V1, Project
from tests.fixtures.registries import RunningRegistry, free_port

pytestmark = pytest.mark.registry


@pytest.fixture
def project(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry, unique_repo: str
) -> Project:
    found = Project(tmp_path, plain_registry.host, unique_repo)
    found.push("demo-rules", "1.0.0", {"demo_rules.yaml": RULES_V1})
    found.dependencies = {"demo-rules": "1"}
    dead = f"http://127.0.0.1:{free_port()}/index.yaml"  # nothing listens there
    found.extra = f'\n[[index]]\nname = "dead"\nurl = "{dead}"\n'
    found.write_manifest()
    return found


def test_lock_and_search_use_the_indexes_that_answer(project: Project) -> None:
    locked = run_cli("-C", project.root, "lock")
    assert locked.exit_code == 0, locked
    assert "index 'dead' is unavailable" in locked.stderr and "index remove dead" in locked.stderr
    search = run_cli("-C", project.root, "artifact", "search", "demo")
    assert search.exit_code == 0 and "demo-rules" in search.stdout, search
    assert "index 'dead' is unavailable" in search.stderr


def test_a_name_only_the_unreachable_index_could_have_says_so(project: Project) -> None:
    result = run_cli("-C", project.root, "artifact", "info", "elsewhere-rules")
    assert result.exit_code == 1
    assert "'dead' could not be read" in result.stderr and "index remove dead" in result.stderr
    assert "Traceback" not in result.stderr
