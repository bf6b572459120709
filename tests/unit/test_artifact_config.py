"""Config JSON (byte-compatible with falcoctl) and the --depends-on/--requires flag parsers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from falcopkg.artifact.config import ArtifactConfig, parse_depends_on, parse_requires
from falcopkg.errors import ConfigError, UsageError

DATA = Path(__file__).parent.parent / "data" / "artifact"
CONFIG_CASES = json.loads((DATA / "config_json_cases.json").read_text(encoding="utf-8"))
FLAG_CASES = json.loads((DATA / "flag_cases.json").read_text(encoding="utf-8"))


def _params(cases: list[dict[str, Any]]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c["id"] for c in cases])


@_params(CONFIG_CASES["to_json"])
def test_to_json_bytes_matches_go(case: dict[str, Any]) -> None:
    config = ArtifactConfig.from_dict(case["config"])
    assert config.to_json_bytes() == case["json"].encode("utf-8")
    # What we write we read back unchanged, byte for byte.
    assert (
        ArtifactConfig.from_json(config.to_json_bytes()).to_json_bytes() == config.to_json_bytes()
    )


@_params(CONFIG_CASES["from_json"])
def test_from_json_is_tolerant(case: dict[str, Any]) -> None:
    assert ArtifactConfig.from_json(case["json"]) == ArtifactConfig.from_dict(case["config"])


@_params(CONFIG_CASES["from_json_errors"])
def test_from_json_errors_name_the_source(case: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        ArtifactConfig.from_json(case["json"], source="ghcr.io/acme/rules:1.0.0")
    assert info.value.message.startswith("ghcr.io/acme/rules:1.0.0: ")
    assert case["error"] in info.value.message


@_params(FLAG_CASES["depends_on"])
def test_parse_depends_on(case: dict[str, Any]) -> None:
    parsed = parse_depends_on(case["args"])
    assert [dep.to_dict() for dep in parsed] == case["expected"]


@_params(FLAG_CASES["depends_on_errors"])
def test_parse_depends_on_errors(case: dict[str, Any]) -> None:
    with pytest.raises(UsageError) as info:
        parse_depends_on(case["args"])
    assert case["error"] in info.value.message
    assert info.value.hint and "NAME:VERSION" in info.value.hint


@_params(FLAG_CASES["requires"])
def test_parse_requires(case: dict[str, Any]) -> None:
    assert [req.to_dict() for req in parse_requires(case["args"])] == case["expected"]


@_params(FLAG_CASES["requires_errors"])
def test_parse_requires_errors(case: dict[str, Any]) -> None:
    with pytest.raises(UsageError) as info:
        parse_requires(case["args"])
    assert case["error"] in info.value.message


def test_filled_from_keeps_explicit_entries_and_sorts() -> None:
    explicit = ArtifactConfig(
        "rules",
        "1.0.0",
        parse_depends_on(["json:0.8.0"]),
        parse_requires(["plugin_api_version:3.0.0"]),
    )
    from_yaml_deps = parse_depends_on(["json:0.7.0", "container:0.4.0"])
    from_yaml_reqs = parse_requires(["engine_version_semver:0.57.0"])
    filled = explicit.filled_from(from_yaml_deps, from_yaml_reqs)
    assert [d.to_dict() for d in filled.dependencies] == [
        {"name": "container", "version": "0.4.0"},
        {"name": "json", "version": "0.8.0"},
    ]
    assert [r.name for r in filled.requirements] == ["engine_version_semver", "plugin_api_version"]
    assert filled.requirement("engine_version_semver") == "0.57.0"
    assert filled.requirement("missing") is None


def test_dependency_names_lists_alternatives() -> None:
    (dep,) = parse_depends_on(["k8saudit:0.18.0|k8saudit-eks:0.12.0"])
    assert dep.names == ("k8saudit", "k8saudit-eks")


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b'{"name": "x", "size": ' + b"9" * 5000 + b"}"],
    ids=["nested-100000", "5000-digit-number"],
)
def test_hostile_config_json_is_a_config_error(data: bytes) -> None:
    with pytest.raises(ConfigError, match="config of x: config is not valid JSON"):
        ArtifactConfig.from_json(data, source="config of x")
