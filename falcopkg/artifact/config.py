"""The artifact config blob (SPEC §2): name, version, dependencies, requirements.

``to_json_bytes`` writes exactly what falcoctl's Go structs marshal to (field order
name, version, dependencies, requirements; ``omitempty`` on the top-level fields and on
``alternatives``; no spaces), so a config built here has falcoctl's digest.

``--depends-on``/``--requires`` values are parsed with falcoctl's rules: entries are kept
sorted by name, a repeated name updates the version in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from falcopkg.artifact.gojson import go_json_bytes
from falcopkg.errors import ConfigError, UsageError

# falcoctl's artifact name rule (inherited from the plugin naming convention).
DEPENDENCY_NAME_RE = re.compile(r"^[a-z]+[a-z0-9-_]*$")
# semver.org's suggested expression without build metadata, as falcoctl validates.
STRICT_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$",
    re.ASCII,  # \d is 0-9 only, not every Unicode digit
)

ENGINE_VERSION_SEMVER = "engine_version_semver"
ENGINE_VERSION_LEGACY = "engine_version"


@dataclass(frozen=True)
class Alternative:
    name: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class Dependency:
    """A required artifact; any of ``alternatives`` satisfies it as well."""

    name: str
    version: str
    alternatives: tuple[Alternative, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "alternatives", tuple(self.alternatives))

    @property
    def names(self) -> tuple[str, ...]:
        """Every artifact name that satisfies this dependency, the preferred one first."""
        return (self.name, *(alt.name for alt in self.alternatives))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.alternatives:
            data["alternatives"] = [alt.to_dict() for alt in self.alternatives]
        return data


@dataclass(frozen=True)
class Requirement:
    """A capability of Falco the artifact needs (engine_version_semver, plugin_api_version)."""

    name: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class ArtifactConfig:
    name: str = ""
    version: str = ""
    dependencies: tuple[Dependency, ...] = field(default=())
    requirements: tuple[Requirement, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "dependencies", tuple(self.dependencies))
        object.__setattr__(self, "requirements", tuple(self.requirements))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.name:
            data["name"] = self.name
        if self.version:
            data["version"] = self.version
        if self.dependencies:
            data["dependencies"] = [dep.to_dict() for dep in self.dependencies]
        if self.requirements:
            data["requirements"] = [req.to_dict() for req in self.requirements]
        return data

    def to_json_bytes(self) -> bytes:
        return go_json_bytes(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "artifact config") -> ArtifactConfig:
        """Parse a config blob; unknown fields and nulls are ignored as Go's decoder does."""
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError) as exc:  # int()'s digit limit, deep nesting too
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise ConfigError(
                f"{source}: config is not valid JSON ({reason})",
                hint="the artifact was not pushed by a Falco-compatible tool; ask its publisher",
            ) from None
        if parsed is None:
            return cls()
        if not isinstance(parsed, dict):
            raise ConfigError(f"{source}: config must be a JSON object, not {_json_kind(parsed)}")
        return cls.from_dict(parsed, source=source)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "artifact config"
    ) -> ArtifactConfig:
        dependencies = []
        for item in _list_field(data, "dependencies", source):
            alternatives = tuple(
                Alternative(_str_field(alt, "name", source), _str_field(alt, "version", source))
                for alt in _list_field(item, "alternatives", source)
            )
            dependencies.append(
                Dependency(
                    _str_field(item, "name", source),
                    _str_field(item, "version", source),
                    alternatives,
                )
            )
        requirements = [
            Requirement(_str_field(item, "name", source), _str_field(item, "version", source))
            for item in _list_field(data, "requirements", source)
        ]
        return cls(
            name=_str_field(data, "name", source),
            version=_str_field(data, "version", source),
            dependencies=tuple(dependencies),
            requirements=tuple(requirements),
        )

    def requirement(self, name: str) -> str | None:
        for req in self.requirements:
            if req.name == name:
                return req.version
        return None

    def filled_from(
        self, dependencies: Iterable[Dependency], requirements: Iterable[Requirement]
    ) -> ArtifactConfig:
        """This config plus the entries it lacks (by name) from ``dependencies``/``requirements``.

        Entries already present win, so explicit --depends-on/--requires override what a
        rules file declares. The result is sorted by name as falcoctl keeps it.
        """
        deps = {dep.name: dep for dep in self.dependencies}
        for dep in dependencies:
            deps.setdefault(dep.name, dep)
        reqs = {req.name: req for req in self.requirements}
        for req in requirements:
            reqs.setdefault(req.name, req)
        return ArtifactConfig(
            name=self.name,
            version=self.version,
            dependencies=tuple(deps[name] for name in sorted(deps)),
            requirements=tuple(reqs[name] for name in sorted(reqs)),
        )


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return kinds.get(type(value), "a number")


def _list_field(data: Any, key: str, source: str) -> list[Mapping[str, Any]]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a JSON object, found {_json_kind(data)}")
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key!r} must be an array, not {_json_kind(value)}")
    items = []
    for item in value:
        if item is None:
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{source}: entries of {key!r} must be objects")
        items.append(item)
    return items


def _str_field(data: Mapping[str, Any], key: str, source: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key!r} must be a string, not {_json_kind(value)}")
    return value


# --- command-line flags -------------------------------------------------------------------


def parse_depends_on(values: Iterable[str]) -> tuple[Dependency, ...]:
    """``--depends-on "a:1.0.0|b:2.0.0"`` values: the first entry is the dependency, the rest
    its alternatives. Sorted by name; a repeated dependency updates its version."""
    deps: dict[str, tuple[str, dict[str, str]]] = {}
    for value in values:
        parts = value.split("|")
        first_name, first_version = _parse_name_version(parts[0], "--depends-on", value)
        _, alternatives = deps.get(first_name, ("", {}))
        deps[first_name] = (first_version, alternatives)
        for part in parts[1:]:
            alt_name, alt_version = _parse_name_version(part, "--depends-on", value)
            alternatives[alt_name] = alt_version
    return tuple(
        Dependency(
            name,
            version,
            tuple(Alternative(alt, alts[alt]) for alt in sorted(alts)),
        )
        for name, (version, alts) in sorted(deps.items())
    )


def parse_requires(values: Iterable[str]) -> tuple[Requirement, ...]:
    """``--requires name:version`` values, sorted by name; a repeated name updates the version."""
    from falcopkg.core.versions import parse_version, requirement_version

    hint = "write NAME:VERSION, e.g. `--requires plugin_api_version:3.10.0`"
    reqs: dict[str, str] = {}
    for value in values:
        parts = value.split(":")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise UsageError(f"invalid --requires value {value!r}", hint=hint)
        name, version = parts[0].strip(), parts[1].strip()
        # Falco compares requirements as semver (a legacy engine_version is an integer).
        if parse_version(requirement_version(name, version)) is None:
            legacy = " (or an integer)" if name == ENGINE_VERSION_LEGACY else ""
            raise UsageError(
                f"invalid --requires value {value!r}: version {version!r} of {name!r} is not "
                f"a semver version like 1.2.3{legacy}",
                hint=hint,
            )
        reqs[name] = version
    return tuple(Requirement(name, reqs[name]) for name in sorted(reqs))


def _parse_name_version(part: str, flag: str, value: str) -> tuple[str, str]:
    pieces = part.strip().split(":")
    hint = f'write NAME:VERSION[|ALT:VERSION…], e.g. `{flag} "k8saudit:0.18.0|k8saudit-eks:0.12.0"`'
    if len(pieces) != 2:
        raise UsageError(f"invalid {flag} value {value!r}: {part!r} is not NAME:VERSION", hint=hint)
    name, version = pieces
    if not DEPENDENCY_NAME_RE.match(name):
        raise UsageError(
            f"invalid {flag} value {value!r}: artifact name {name!r} must match "
            f"{DEPENDENCY_NAME_RE.pattern}",
            hint=hint,
        )
    if not STRICT_SEMVER_RE.match(version):
        raise UsageError(
            f"invalid {flag} value {value!r}: version {version!r} of {name!r} is not a semver "
            "version like 1.2.3",
            hint=hint,
        )
    return name, version
