"""The resolver (SPEC §6), driven by case files in tests/data/resolver/*.yaml.

A case file holds:

- ``available``: ``{name: {type, versions: {VERSION: {...}}, aliases: {TAG: VERSION}}}``;
  a version may give ``dependencies`` (from its config) and ``rules_dependencies`` (from
  its rules YAML) as ``[{name, version, alternatives: [{name, version}]}]``,
  ``requirements`` (``{name: version}``), ``rules_requirements``, ``files``,
  ``platforms`` (plugins; default both) and ``digest`` (default: derived from name@version);
- ``manifest``: falco.toml text;
- ``preferences`` (optional): ``{name: version}`` as a current lock would pin;
- ``expected``: ``{name: version}`` — exactly the locked set; optionally
  ``expected_dependencies`` ``{name: [names]}``;
- or ``expected_error``: substrings of the message, and ``expected_hint``: a substring the
  hint holds exactly once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from falcopkg.artifact.config import Alternative, Dependency, Requirement
from falcopkg.artifact.rules_yaml import merge_dependencies, merge_requirements
from falcopkg.core.lockfile import LockedLayer, LockedPlatform
from falcopkg.core.manifest import DependencySpec, TargetSettings, parse_manifest
from falcopkg.core.resolver import CandidateMetadata, Location, Resolution, resolve
from falcopkg.core.versions import Constraint, Version, semver_tags
from falcopkg.errors import InvalidReferenceError, ResolutionError

CASES_DIR = Path(__file__).parent.parent / "data" / "resolver"
CASES = sorted(CASES_DIR.glob("*.yaml"))
DEFAULT_PLATFORMS = ["linux/amd64", "linux/arm64"]


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _dependencies(raw: list[dict[str, Any]] | None) -> list[Dependency]:
    return [
        Dependency(
            item["name"],
            str(item["version"]),
            tuple(Alternative(a["name"], str(a["version"])) for a in item.get("alternatives", [])),
        )
        for item in raw or []
    ]


class InMemoryProvider:
    """Artifacts from a case file; counts calls so tests can check what was fetched."""

    def __init__(self, available: dict[str, Any]) -> None:
        self.available = available
        self.version_calls: list[str] = []
        self.metadata_calls: list[tuple[str, str]] = []

    def _artifact(self, name: str) -> dict[str, Any]:
        if name not in self.available:
            raise InvalidReferenceError(f"artifact {name!r} not found in index test")
        artifact: dict[str, Any] = self.available[name]
        return artifact

    def locate(self, name: str) -> Location:
        return Location(f"registry.test/{name}", "test", self._artifact(name)["type"])

    def versions(self, name: str) -> list[tuple[Version, str]]:
        self.version_calls.append(name)
        artifact = self._artifact(name)
        tags = [str(v) for v in artifact.get("versions", {})] + list(artifact.get("aliases", {}))
        return semver_tags(tags)

    def _version_key(self, name: str, reference: str) -> str:
        artifact = self._artifact(name)
        versions = {str(k): k for k in artifact.get("versions", {})}
        if reference in versions:
            return str(reference)
        aliases = artifact.get("aliases", {})
        if reference in aliases:
            return str(aliases[reference])
        for version in versions:
            if self._digest(name, version) == reference:
                return version
        raise InvalidReferenceError(f"{name}: no tag or digest {reference!r}")

    def _digest(self, name: str, version: str) -> str:
        entry = self._artifact(name)["versions"][_key(self._artifact(name), version)] or {}
        return str(entry.get("digest") or fake_digest(f"{name}@{version}"))

    def metadata(self, name: str, reference: str) -> CandidateMetadata:
        self.metadata_calls.append((name, reference))
        artifact = self._artifact(name)
        version = self._version_key(name, reference)
        entry = artifact["versions"][_key(artifact, version)] or {}
        digest = self._digest(name, version)
        files = tuple(entry.get("files", [f"{name}.yaml"]))
        if artifact["type"] == "plugin":
            platforms = {
                platform: LockedPlatform(
                    fake_digest(f"{name}@{version}/{platform}"),
                    LockedLayer(fake_digest(f"{name}@{version}/{platform}/layer"), 10, files),
                )
                for platform in entry.get("platforms", DEFAULT_PLATFORMS)
            }
        else:
            platforms = {
                "": LockedPlatform(digest, LockedLayer(fake_digest(f"{digest}/layer"), 10, files))
            }
        return CandidateMetadata(
            type=artifact["type"],
            digest=digest,
            version=entry.get("config_version", version),
            # config and rules YAML united as the registry provider does
            dependencies=tuple(
                merge_dependencies(
                    [
                        *_dependencies(entry.get("dependencies")),
                        *_dependencies(entry.get("rules_dependencies")),
                    ]
                )
            ),
            requirements={
                r.name: r.version
                for r in merge_requirements(
                    Requirement(k, str(v))
                    for key in ("requirements", "rules_requirements")
                    for k, v in (entry.get(key) or {}).items()
                )
            },
            platforms=platforms,
        )

    def prefetch(self, requests: Sequence[tuple[str, str | None]]) -> None:
        return None


def _key(artifact: dict[str, Any], version: str) -> Any:
    return next(k for k in artifact["versions"] if str(k) == version)


def run_case(data: dict[str, Any], provider: InMemoryProvider | None = None) -> Resolution:
    manifest = parse_manifest(data["manifest"], Path("falco.toml"))
    preferences = {name: Version.parse(v) for name, v in (data.get("preferences") or {}).items()}
    return resolve(
        list(manifest.dependencies.values()),
        provider or InMemoryProvider(data["available"]),
        manifest.target,
        manifest.target.platforms,
        preferences,
        allowed_types=manifest.install.allowed_types,
        directory_for=manifest.install.directory_for,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_resolver_case(case: Path) -> None:
    data = yaml.safe_load(case.read_text())
    if "expected_error" in data:
        with pytest.raises(ResolutionError) as caught:
            run_case(data)
        for fragment in data["expected_error"]:
            assert fragment in caught.value.message, caught.value.message
        if "expected_hint" in data:
            # Once: a hint is not repeated for each version that ran into the same constraint.
            assert caught.value.hint is not None
            assert caught.value.hint.count(data["expected_hint"]) == 1, caught.value.hint
        return
    resolution = run_case(data)
    locked = {name: str(a.version) for name, a in resolution.artifacts.items()}
    assert locked == {name: str(v) for name, v in data["expected"].items()}
    for name, dependencies in (data.get("expected_dependencies") or {}).items():
        assert list(resolution.artifacts[name].dependencies) == dependencies


def test_every_must_show_case_has_a_file() -> None:
    names = {case.stem for case in CASES}
    assert {
        "newest-compatible-plugin",
        "backtrack-when-manifest-forbids-plugin",
        "alternative-declared-by-manifest",
        "plugin-only-in-rules-yaml",
        "legacy-integer-engine-version",
        "plugin-too-new-for-target-api",
        "plugin-missing-target-platform",
        "prereleases-only-when-named",
        "digest-pin",
        "conflict-names-both-sides",
    } <= names


def test_edges_say_who_requires_what() -> None:
    data = yaml.safe_load((CASES_DIR / "newest-compatible-plugin.yaml").read_text())
    resolution = run_case(data)
    edges = {(e.parent, e.child, e.constraint) for e in resolution.edges}
    assert (None, "k8saudit-rules", "0.16") in edges
    assert ("k8saudit-rules", "k8saudit", ">=0.18.0, <1.0.0") in edges
    assert resolution.artifacts["k8saudit-rules"].dependency_constraints == {
        "k8saudit": ">=0.18.0, <1.0.0"
    }


def test_metadata_is_fetched_for_tried_candidates_only() -> None:
    data = yaml.safe_load((CASES_DIR / "newest-compatible-plugin.yaml").read_text())
    provider = InMemoryProvider(data["available"])
    run_case(data, provider)
    assert sorted(set(provider.version_calls)) == ["k8saudit", "k8saudit-rules"]
    assert {ref for _, ref in provider.metadata_calls} == {"0.16.1", "0.19.2"}


def _chain_of_roots(count: int, versions_per_root: int) -> dict[str, Any]:
    """``count`` independent roots with several versions, then a root whose only versions
    need a plugin version the manifest forbids: unsatisfiable, found without retrying
    every combination of the independent roots."""
    available: dict[str, Any] = {
        f"rules-{i}": {
            "type": "rulesfile",
            "versions": {
                f"1.{v}.0": {"files": [f"rules-{i}.yaml"]} for v in range(versions_per_root)
            },
        }
        for i in range(count)
    }
    available["last-rules"] = {
        "type": "rulesfile",
        "versions": {
            f"1.{v}.0": {"dependencies": [{"name": "plug", "version": "0.5.0"}]} for v in range(3)
        },
    }
    available["plug"] = {"type": "plugin", "versions": {"0.4.0": {}, "0.5.0": {}}}
    lines = [f'rules-{i} = "1"' for i in range(count)]
    manifest = (
        "[dependencies]\n" + "\n".join([*lines, 'last-rules = "1"', 'plug = "=0.4.0"']) + "\n"
    )
    return {"available": available, "manifest": manifest}


def test_backjumping_keeps_unsatisfiable_cases_fast() -> None:
    data = _chain_of_roots(count=30, versions_per_root=5)
    started = time.monotonic()
    with pytest.raises(ResolutionError) as caught:
        run_case(data)
    assert time.monotonic() - started < 2
    assert "last-rules 1.2.0 requires plug >=0.5.0, <1.0.0" in caught.value.message
    assert 'falco.toml requires plug = "=0.4.0"' in caught.value.message


def test_many_roots_resolve_in_one_pass() -> None:
    data = _chain_of_roots(count=100, versions_per_root=3)
    data["manifest"] = data["manifest"].replace('plug = "=0.4.0"', 'plug = "0.5"')
    resolution = run_case(data)
    assert len(resolution.artifacts) == 102
    assert str(resolution.artifacts["rules-99"].version) == "1.2.0"


def test_pin_without_version_satisfies_only_the_manifest() -> None:
    spec = DependencySpec("x", ref="registry.test/x", digest=fake_digest("x@1.0.0"))
    available = {"x": {"type": "rulesfile", "versions": {"1.0.0": {"config_version": ""}}}}
    resolution = resolve([spec], InMemoryProvider(available), TargetSettings())
    assert resolution.artifacts["x"].version is None
    assert resolution.artifacts["x"].metadata.digest == fake_digest("x@1.0.0")
    assert Constraint.any_version()


def test_an_unknown_transitive_name_says_who_needs_it() -> None:
    data = {
        "available": {
            "cloud-rules": {
                "type": "rulesfile",
                "versions": {
                    "1.0.0": {"dependencies": [{"name": "cloudtrail", "version": "0.10.0"}]}
                },
            }
        },
        "manifest": '[dependencies]\ncloud-rules = "1"\n',
    }
    with pytest.raises(InvalidReferenceError) as caught:
        run_case(data)
    assert caught.value.message == (
        "artifact 'cloudtrail' not found in index test (required by cloud-rules 1.0.0)"
    )


def test_a_group_member_chosen_too_old_for_the_group_backtracks() -> None:
    """k8saudit-rules' group waits (no member needed yet); eks-rules then brings in
    k8saudit-eks, chosen at the locked 0.11.0. When the group is settled, that member is
    too old for it (>= 0.12.0), so the search goes back and takes k8saudit-eks 0.12.0 —
    still not adding k8saudit."""
    data = {
        "available": {
            "eks-rules": {
                "type": "rulesfile",
                "versions": {
                    "0.3.0": {"dependencies": [{"name": "k8saudit-eks", "version": "0.11.0"}]}
                },
            },
            "k8saudit-rules": {
                "type": "rulesfile",
                "versions": {
                    "0.16.0": {
                        "dependencies": [
                            {
                                "name": "k8saudit",
                                "version": "0.18.0",
                                "alternatives": [{"name": "k8saudit-eks", "version": "0.12.0"}],
                            }
                        ]
                    }
                },
            },
            "k8saudit": {"type": "plugin", "versions": {"0.18.0": {}}},
            "k8saudit-eks": {"type": "plugin", "versions": {"0.11.0": {}, "0.12.0": {}}},
        },
        "manifest": '[dependencies]\nk8saudit-rules = "0.16"\neks-rules = "0.3"\n',
        "preferences": {"k8saudit-eks": "0.11.0"},
    }
    resolution = run_case(data)
    versions = {name: str(a.version) for name, a in resolution.artifacts.items()}
    assert versions == {"eks-rules": "0.3.0", "k8saudit-rules": "0.16.0", "k8saudit-eks": "0.12.0"}


def test_a_deep_chain_resolves_without_touching_the_recursion_limit() -> None:
    """3,000 artifacts, each brought in by the previous one: the search is iterative (no
    RecursionError, sys.getrecursionlimit() unchanged) and about linear in the count."""
    import sys

    count = 3000
    available: dict[str, Any] = {
        f"a{i}": {
            "type": "rulesfile",
            "versions": {
                "1.0.0": {
                    "files": [f"a{i}.yaml"],
                    "dependencies": [{"name": f"a{i + 1}", "version": "1.0.0"}]
                    if i + 1 < count
                    else [],
                }
            },
        }
        for i in range(count)
    }
    limit = sys.getrecursionlimit()
    started = time.monotonic()
    resolution = run_case({"available": available, "manifest": '[dependencies]\na0 = "1"\n'})
    elapsed = time.monotonic() - started
    assert len(resolution.artifacts) == count
    assert sys.getrecursionlimit() == limit
    assert elapsed < 10, elapsed
