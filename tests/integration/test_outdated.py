"""`outdated` against a real registry: pre-releases are never "the newest"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import RULES_V1, RULES_V2, Project
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry


def test_outdated_does_not_count_a_pre_release_as_the_newest(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry, unique_repo: str
) -> None:
    project = Project(tmp_path, plain_registry.host, unique_repo)
    project.push("demo-rules", "1.0.0", {"demo_rules.yaml": RULES_V1})
    project.push("demo-rules", "1.1.0-rc.1", {"demo_rules.yaml": RULES_V2})
    project.dependencies = {"demo-rules": "1"}
    project.write_manifest()
    assert run_cli("-C", tmp_path, "lock").exit_code == 0
    result = run_cli("-C", tmp_path, "outdated", "--json")
    assert result.exit_code == 0, result
    (row,) = json.loads(result.stdout)
    assert (row["locked"], row["allowed"], row["latest"], row["outdated"]) == (
        "1.0.0",
        "1.0.0",
        "1.0.0",
        False,
    )
