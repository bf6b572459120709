"""The §2 wire format of Falco artifacts, byte-compatible with falcoctl.

Modules: ``types`` (artifact type registry), ``config`` (config JSON, --depends-on /
--requires), ``rules_yaml`` (required_* entries of rules files), ``pack`` (tar.gz layers,
manifest and index bytes), ``platforms``, ``remote`` (inspect an artifact in a registry),
``push`` and ``pull`` (extraction itself is ``falcopkg.archive``).

The names below can be imported from the package itself; they are loaded on first use so
that importing ``falcopkg.artifact`` costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ArtifactType": "types",
    "ARTIFACT_TYPES": "types",
    "get_type": "types",
    "type_for_media_type": "types",
    "Alternative": "config",
    "Dependency": "config",
    "Requirement": "config",
    "ArtifactConfig": "config",
    "read_rules_requirements": "rules_yaml",
    "merge_dependencies": "rules_yaml",
    "merge_requirements": "rules_yaml",
    "inspect_artifact": "remote",
    "RemoteArtifact": "remote",
    "PlatformManifest": "remote",
    "push_artifact": "push",
    "pull_artifact": "pull",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
