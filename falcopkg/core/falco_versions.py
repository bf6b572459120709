"""What a running Falco reports at its webserver's ``GET /versions`` (SPEC §11), parsed
strictly, and the target it sets for resolution.

The JSON has ``falco_version``, ``engine_version`` (the engine's minor number as a string),
``engine_version_semver``, ``plugin_api_version`` and ``plugin_versions`` ({name: version}),
among keys we do not need (ignored). Version texts must be ASCII semver; numbers ASCII
digits. Pure: fetching it is services.falco_versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from falcopkg.core.manifest import TargetSettings
from falcopkg.core.versions import Version
from falcopkg.errors import ConfigError

MAX_VERSIONS_BYTES = 64 * 1024
MAX_PLUGINS = 256
_SEMVER_RE = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
    re.ASCII,
)
_DIGITS_RE = re.compile(r"^(0|[1-9][0-9]{0,5})$", re.ASCII)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", re.ASCII)
_TEXT_RE = re.compile(r"^[\x21-\x7e]{1,128}$", re.ASCII)
HINT = "point --falco-versions at Falco's webserver, e.g. http://localhost:8765/versions"


@dataclass(frozen=True)
class FalcoVersions:
    """The versions a running Falco reports (None: not reported)."""

    source: str  # the URL or file, for messages
    falco_version: str | None = None
    engine_version: str | None = None  # semver: engine_version_semver, else 0.N.0
    plugin_api_version: str | None = None
    plugin_versions: Mapping[str, str] = field(default_factory=dict)

    def as_target(self) -> TargetSettings:
        """The target this Falco is, for checking requirements (platforms: any)."""
        return TargetSettings(
            engine_version=self.engine_version, plugin_api_version=self.plugin_api_version
        )


def parse_falco_versions(data: bytes, source: str) -> FalcoVersions:
    """``data`` (the /versions body) read strictly; ConfigError naming ``source`` and the key."""
    if len(data) > MAX_VERSIONS_BYTES:
        raise _bad(source, f"is larger than {MAX_VERSIONS_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(source, f"is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _bad(source, "is not a JSON object")
    semver = _semver(document, "engine_version_semver", source)
    minor = document.get("engine_version")
    if isinstance(minor, int) and not isinstance(minor, bool):
        minor = str(minor)
    if minor is not None and not (isinstance(minor, str) and _DIGITS_RE.match(minor)):
        raise _bad(source, f"has engine_version {minor!r}, not a number")
    if semver is not None and minor is not None:
        parsed = Version.parse(semver)
        if parsed.major == 0 and parsed.minor != int(minor):
            raise _bad(source, f"has engine_version {minor!r} but engine_version_semver {semver!r}")
    engine = semver if semver is not None else (f"0.{int(minor)}.0" if minor else None)
    plugin_api = _semver(document, "plugin_api_version", source)
    if engine is None and plugin_api is None:
        raise _bad(source, "reports neither engine_version_semver nor plugin_api_version")
    falco_version = document.get("falco_version")
    if falco_version is not None and not (
        isinstance(falco_version, str) and _TEXT_RE.match(falco_version)
    ):
        raise _bad(source, f"has falco_version {falco_version!r}, not a version")
    return FalcoVersions(
        source,
        falco_version=falco_version,
        engine_version=engine,
        plugin_api_version=plugin_api,
        plugin_versions=_plugin_versions(document.get("plugin_versions"), source),
    )


def stricter_target(target: TargetSettings, running: TargetSettings) -> TargetSettings:
    """``target`` with each version lowered to ``running``'s when that is older (or unset in
    ``target``): a candidate must suit both the configured and the running Falco."""
    return replace(
        target,
        engine_version=_older(target.engine_version, running.engine_version),
        plugin_api_version=_older(target.plugin_api_version, running.plugin_api_version),
    )


def _older(configured: str | None, running: str | None) -> str | None:
    if configured is None or running is None:
        return configured if running is None else running
    try:
        return running if Version.parse(running) < Version.parse(configured) else configured
    except ValueError:  # an unreadable [target] value is the manifest's error to report
        return configured


def _semver(document: Mapping[str, Any], key: str, source: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _SEMVER_RE.match(value):
        raise _bad(source, f"has {key} {value!r}, not a semantic version")
    return value


def _plugin_versions(value: Any, source: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_PLUGINS:
        raise _bad(source, f"has plugin_versions that is not an object of at most {MAX_PLUGINS}")
    found = {}
    for name, version in value.items():
        if not _NAME_RE.match(name) or not isinstance(version, str) or not _TEXT_RE.match(version):
            raise _bad(source, f"has an unreadable plugin_versions entry {name!r}: {version!r}")
        found[name] = version
    return dict(sorted(found.items()))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bad(source: str, problem: str) -> ConfigError:
    return ConfigError(f"Falco versions from {source} {problem}", hint=HINT)
