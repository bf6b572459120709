"""required_engine_version / required_plugin_versions from rules files (cases in tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falcopkg.artifact.config import Alternative, Dependency, Requirement
from falcopkg.artifact.rules_yaml import (
    merge_dependencies,
    merge_requirements,
    read_rules_requirements,
)
from falcopkg.errors import ConfigError

CASES_DIR = Path(__file__).parent.parent / "data" / "artifact" / "rules"
CASES = sorted(CASES_DIR.glob("*.yaml"))
FIXTURES = Path(__file__).parent.parent.parent / "fixtures" / "rules"


@pytest.mark.parametrize("rules_file", CASES, ids=[c.stem for c in CASES])
def test_rules_requirements(rules_file: Path) -> None:
    expected = json.loads(rules_file.with_suffix(".expected.json").read_text(encoding="utf-8"))
    text = rules_file.read_text(encoding="utf-8")
    if "error" in expected:
        with pytest.raises(ConfigError) as info:
            read_rules_requirements(text, str(rules_file))
        assert expected["error"] in info.value.message
        assert str(rules_file) in info.value.message
        return
    dependencies, requirements = read_rules_requirements(text, str(rules_file))
    assert [d.to_dict() for d in dependencies] == expected["dependencies"]
    assert [r.to_dict() for r in requirements] == expected["requirements"]


def test_sample_fixture_rules() -> None:
    dependencies, requirements = read_rules_requirements(
        (FIXTURES / "acme_rules.yaml").read_text(encoding="utf-8"), "acme_rules.yaml"
    )
    assert [d.name for d in dependencies] == ["container", "k8saudit"]
    assert dependencies[1].names == ("k8saudit", "k8saudit-aks", "k8saudit-eks")
    assert requirements == [Requirement("engine_version_semver", "0.50.0")]


def test_merge_unites_configs_and_yaml() -> None:
    # §2: an official config may omit what its YAML declares; the union keeps both.
    from_config = [Dependency("k8saudit", "0.18.0", (Alternative("k8saudit-eks", "0.12.0"),))]
    from_yaml = [
        Dependency("container", "0.4.0"),
        Dependency("k8saudit", "0.17.0", (Alternative("k8saudit-gke", "0.9.0"),)),
    ]
    merged = merge_dependencies([*from_config, *from_yaml])
    assert merged == [
        Dependency("container", "0.4.0"),
        Dependency(
            "k8saudit",
            "0.18.0",
            (Alternative("k8saudit-eks", "0.12.0"), Alternative("k8saudit-gke", "0.9.0")),
        ),
    ]
    assert merge_requirements(
        [
            Requirement("engine_version_semver", "0.40.0"),
            Requirement("engine_version_semver", "0.9.0"),
        ]
    ) == [Requirement("engine_version_semver", "0.40.0")]
