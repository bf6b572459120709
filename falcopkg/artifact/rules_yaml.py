"""What a Falco rules file asks for (SPEC §2): engine version and plugin dependencies.

Rules files declare ``- required_engine_version: <int | "x.y.z">`` and
``- required_plugin_versions: [{name, version, alternatives: [{name, version}]}]``. Several
such items may appear (files are often concatenations); they are merged: the highest
version asked for a name wins and alternatives are united (``merge_dependencies``, also
what the resolver uses to unite a config with its rules YAML). Results are sorted by name,
as falcoctl keeps configs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from falcopkg.artifact.config import (
    ENGINE_VERSION_LEGACY,
    ENGINE_VERSION_SEMVER,
    STRICT_SEMVER_RE,
    Alternative,
    Dependency,
    Requirement,
)
from falcopkg.core.versions import (
    MAX_VERSION_DIGITS,
    Version,
    parse_version,
    requirement_version,
)
from falcopkg.errors import ConfigError
from falcopkg.yamlfile import shown_value

ENGINE_KEY = "required_engine_version"
PLUGINS_KEY = "required_plugin_versions"
_QUOTE_HINT = 'write versions as quoted x.y.z strings, e.g. version: "0.18.0"'


def read_rules_requirements(text: str, source: str) -> tuple[list[Dependency], list[Requirement]]:
    """Dependencies and requirements declared by the rules file ``text`` (named ``source``).

    A legacy integer engine version N becomes ``engine_version_semver = 0.N.0``. Malformed
    YAML or entries raise ConfigError naming ``source`` and the line.
    """
    document = _load_yaml(text, source)
    if document is None:
        return [], []
    if not isinstance(document, list):
        raise ConfigError(
            f"{source}: not a Falco rules file: the top level must be a list of items",
            hint="rules files are YAML lists of `- rule:`, `- macro:`, `- list:` … items",
        )
    dependencies: list[Dependency] = []
    requirements: list[Requirement] = []
    engine_seen = plugins_seen = 0
    for item in document:
        if not isinstance(item, dict):
            continue
        if ENGINE_KEY in item:
            engine_seen += 1
            line = _item_line(text, ENGINE_KEY, engine_seen)
            version_text = _engine_version(item[ENGINE_KEY], source, line)
            _semver(version_text, source, line, ENGINE_KEY)
            requirements.append(Requirement(ENGINE_VERSION_SEMVER, version_text))
        if PLUGINS_KEY in item:
            plugins_seen += 1
            line = _item_line(text, PLUGINS_KEY, plugins_seen)
            dependencies.extend(_plugin_dependencies(item[PLUGINS_KEY], source, line))
    return merge_dependencies(dependencies), merge_requirements(requirements)


def merge_dependencies(dependencies: Iterable[Dependency]) -> list[Dependency]:
    """One entry per name, sorted: the highest version asked wins, alternatives are united
    (each at the highest version asked). Versions that are not semver lose to ones that are."""
    merged: dict[str, tuple[str, dict[str, str]]] = {}
    for dep in dependencies:
        version, alternatives = merged.get(dep.name, (dep.version, {}))
        merged[dep.name] = (_higher(version, dep.version), alternatives)
        for alt in dep.alternatives:
            alternatives[alt.name] = _higher(alternatives.get(alt.name, alt.version), alt.version)
    return [
        Dependency(name, version, tuple(Alternative(a, alts[a]) for a in sorted(alts)))
        for name, (version, alts) in sorted(merged.items())
    ]


def merge_requirements(requirements: Iterable[Requirement]) -> list[Requirement]:
    """One entry per name, sorted; the highest version asked wins."""
    merged: dict[str, str] = {}
    for req in requirements:
        merged[req.name] = _higher(merged.get(req.name, req.version), req.version)
    return [Requirement(name, merged[name]) for name in sorted(merged)]


def _higher(current: str, candidate: str) -> str:
    current_version, candidate_version = parse_version(current), parse_version(candidate)
    if candidate_version is None:
        return current
    if current_version is None or candidate_version > current_version:
        return candidate
    return current


def _load_yaml(text: str, source: str) -> Any:
    from falcopkg.yamlfile import YamlProblem, load_yaml

    try:
        return load_yaml(text)
    except YamlProblem as exc:
        raise ConfigError(
            f"{_where(source, exc.line)}: invalid YAML: {exc}",
            hint="fix the YAML at that line",
        ) from None


def _item_line(text: str, key: str, occurrence: int) -> int | None:
    """The line (1-based) of the ``occurrence``-th top-level ``- key:`` item, for messages."""
    pattern = re.compile(rf"^-\s*{re.escape(key)}\s*:")
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            seen += 1
            if seen == occurrence:
                return number
    return None


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source


def _engine_version(value: Any, source: str, line: int | None) -> str:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value < 10**MAX_VERSION_DIGITS
    ):
        value = str(value)
    if isinstance(value, str):
        # A legacy integer N (ASCII digits only: not "²") means 0.N.0.
        return requirement_version(ENGINE_VERSION_LEGACY, value)
    raise ConfigError(
        f"{_where(source, line)}: {ENGINE_KEY} must be an integer or an x.y.z version, "
        f"not {shown_value(value)}",
        hint="write e.g. `- required_engine_version: 0.57.0` (or the legacy integer form `15`)",
    )


def _semver(text: str, source: str, line: int | None, what: str) -> Version:
    version = parse_version(text) if STRICT_SEMVER_RE.match(text) else None
    if version is None:
        raise ConfigError(
            f"{_where(source, line)}: {what}: {shown_value(text)} is not a semver version",
            hint=_QUOTE_HINT,
        )
    return version


def _name_version(entry: Any, source: str, line: int | None) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{_where(source, line)}: {PLUGINS_KEY} entries must be mappings with name and "
            f"version, not {shown_value(entry)}",
            hint="write `- name: k8saudit` and `version: 0.18.0` under required_plugin_versions",
        )
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{_where(source, line)}: {PLUGINS_KEY} entry without a name")
    if not isinstance(version, str):
        raise ConfigError(
            f"{_where(source, line)}: plugin {name!r}: version must be an x.y.z string, "
            f"not {shown_value(version)}",
            hint=_QUOTE_HINT,
        )
    name, version = name.strip(), version.strip()
    _semver(version, source, line, f"plugin {name!r}")
    return name, version


def _plugin_dependencies(value: Any, source: str, line: int | None) -> list[Dependency]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(
            f"{_where(source, line)}: {PLUGINS_KEY} must be a list, not {shown_value(value)}",
            hint="write `- required_plugin_versions:` followed by `- name: …` entries",
        )
    dependencies = []
    for entry in value:
        name, version = _name_version(entry, source, line)
        raw_alternatives = entry.get("alternatives") or []
        if not isinstance(raw_alternatives, list):
            raise ConfigError(
                f"{_where(source, line)}: plugin {name!r}: alternatives must be a list"
            )
        alternatives = tuple(
            Alternative(*_name_version(alt, source, line)) for alt in raw_alternatives
        )
        dependencies.append(Dependency(name, version, alternatives))
    return dependencies
