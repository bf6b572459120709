"""Artifact types (SPEC §2) as data: each name maps to its config and layer media types.

Code never branches on a type's name; it reads the fields here (``multi_platform`` decides
whether an artifact is an image index, ``install_dir`` where it is installed). A new type is
one more row in ``ARTIFACT_TYPES``. No imports beyond errors: core/ reads this data too.
"""

from __future__ import annotations

from dataclasses import dataclass

from falcopkg.errors import UsageError


@dataclass(frozen=True)
class ArtifactType:
    name: str
    config_media_type: str
    layer_media_type: str
    # Published as an image index with one manifest per platform (plugins are binaries).
    multi_platform: bool = False
    # Its files are Falco rules YAML whose required_* entries fill the config on push.
    reads_rules_yaml: bool = False
    description: str = ""
    # The [install] key of the directory it is installed into (falcopkg.defaults).
    install_dir: str = "assets_dir"


ARTIFACT_TYPES: dict[str, ArtifactType] = {
    t.name: t
    for t in (
        ArtifactType(
            name="rulesfile",
            config_media_type="application/vnd.cncf.falco.rulesfile.config.v1+json",
            layer_media_type="application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz",
            reads_rules_yaml=True,
            description="Falco rules files",
            install_dir="rulesfiles_dir",
        ),
        ArtifactType(
            name="plugin",
            config_media_type="application/vnd.cncf.falco.plugin.config.v1+json",
            layer_media_type="application/vnd.cncf.falco.plugin.layer.v1+tar.gz",
            multi_platform=True,
            description="Falco plugins (shared libraries, one per platform)",
            install_dir="plugins_dir",
        ),
        ArtifactType(
            name="asset",
            config_media_type="application/vnd.cncf.falco.asset.config.v1+json",
            layer_media_type="application/vnd.cncf.falco.asset.layer.v1+tar.gz",
            description="files consumed by a plugin",
        ),
    )
}

_BY_MEDIA_TYPE: dict[str, ArtifactType] = {
    media_type: t
    for t in ARTIFACT_TYPES.values()
    for media_type in (t.config_media_type, t.layer_media_type)
}


def install_dir_key(type_name: str) -> str | None:
    """The [install] key (``rulesfiles_dir`` …) for artifacts of ``type_name``; None for a
    type falcopkg does not know (it cannot be installed)."""
    artifact_type = ARTIFACT_TYPES.get(type_name)
    return artifact_type.install_dir if artifact_type is not None else None


def get_type(name: str) -> ArtifactType:
    """The type called ``name``; a UsageError lists the known ones otherwise."""
    try:
        return ARTIFACT_TYPES[name]
    except KeyError:
        known = ", ".join(ARTIFACT_TYPES)
        raise UsageError(
            f"unknown artifact type {name!r}",
            hint=f"use one of: {known}",
        ) from None


def type_for_media_type(media_type: str | None) -> ArtifactType | None:
    """The type whose config or layer media type is ``media_type`` (None when unknown)."""
    if not media_type:
        return None
    return _BY_MEDIA_TYPE.get(media_type)
