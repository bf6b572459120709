"""Inspecting an artifact in a registry: root → platform manifests → config (SPEC §2).

``inspect_artifact`` fetches the root manifest (an image manifest, or an image index for
multi-platform types), every platform manifest by its digest (verified by the client), and
the config blob (verified). The artifact type is read from layer 0's media type, falling
back to the config's.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from falcopkg.artifact.config import ArtifactConfig
from falcopkg.artifact.types import ARTIFACT_TYPES, ArtifactType, type_for_media_type
from falcopkg.core.reference import DIGEST_RE
from falcopkg.errors import FalcopkgError
from falcopkg.oci import mediatypes
from falcopkg.oci.descriptor import Descriptor, FetchedManifest
from falcopkg.oci.errors import InvalidManifestError, NotFoundError
from falcopkg.oci.store import ContentStore

# Configs are a few hundred bytes; anything near this is not a Falco config.
MAX_CONFIG_BYTES = 1024 * 1024
#: An image index with more entries than this is refused before any of them is fetched.
MAX_INDEX_ENTRIES = 1024
SINGLE_PLATFORM = ""


class UnknownArtifactTypeError(FalcopkgError):
    """The artifact's media types match no known artifact type."""


class PlatformNotFoundError(FalcopkgError):
    """The artifact has no manifest for the requested platform."""


@dataclass(frozen=True)
class PlatformManifest:
    """One image manifest of an artifact: its platform ("" for single-manifest artifacts)."""

    platform: str
    manifest_digest: str
    config_digest: str
    layer: Descriptor

    @property
    def title(self) -> str | None:
        """The archive name (org.opencontainers.image.title) of the layer, if any."""
        annotations = self.layer.annotations or {}
        return annotations.get("org.opencontainers.image.title")


@dataclass(frozen=True)
class RemoteArtifact:
    repository: str
    root_digest: str
    root_media_type: str
    type: ArtifactType
    config: ArtifactConfig
    platforms: dict[str, PlatformManifest]
    # The root manifest's annotations (created, source …); empty when it has none.
    annotations: dict[str, str] | None = None
    # Every platform the image index lists, fetched or not (see inspect_artifact's filter).
    listed_platforms: tuple[str, ...] = ()

    @property
    def is_index(self) -> bool:
        return mediatypes.is_index(self.root_media_type)

    @property
    def platform_names(self) -> list[str]:
        """Platforms in sorted order (empty for single-manifest artifacts)."""
        return sorted(p for p in self.platforms if p != SINGLE_PLATFORM)

    def select(self, platform: str | None, *, where: str | None = None) -> PlatformManifest:
        """The manifest for ``platform``; a single-manifest artifact serves every platform
        (never for a multi-platform type: a plugin's binary is for one platform only).

        PlatformNotFoundError lists the platforms there are.
        """
        name = where or f"{self.repository}@{self.root_digest}"
        single = self.platforms.get(SINGLE_PLATFORM)
        if single is not None:
            _check_shape(self.type, self.root_media_type, name)
            return single
        if platform is not None and platform in self.platforms:
            return self.platforms[platform]
        available = ", ".join(sorted(self.listed_platforms) or self.platform_names) or "none"
        raise PlatformNotFoundError(
            f"{name} has no manifest for platform {platform}; available: {available}",
            hint=f"pass `--platform` with one of: {available}",
        )


SHOWN_TAGS = 6  # how many available tags an unknown-tag error lists


def _hint_available_tags(
    exc: NotFoundError, client: ContentStore, repository: str, tag: str
) -> None:
    """Turn "manifest … not found" for an unknown tag into a hint naming a few tags that
    exist (newest versions first), at the cost of one more request on the error path."""
    from falcopkg.core.versions import semver_tags

    try:
        tags = client.list_tags(repository)
    except FalcopkgError:
        return  # the repository itself is missing (or unreadable): the error says enough
    if not tags or tag in tags:
        return
    versions = [name for _, name in semver_tags(tags)]
    ordered = [*versions, *sorted(set(tags) - set(versions))]
    shown = ", ".join(ordered[:SHOWN_TAGS])
    more = f" (and {len(ordered) - SHOWN_TAGS} more)" if len(ordered) > SHOWN_TAGS else ""
    exc.message = f"{client.host}/{repository} has no tag {tag!r}"
    exc.args = (exc.message,)
    exc.hint = f"available tags: {shown}{more}"


def inspect_artifact(
    client: ContentStore,
    repository: str,
    reference: str,
    *,
    platforms: Collection[str] | None = None,
) -> RemoteArtifact:
    """Resolve ``reference`` (tag or digest) in ``repository`` to its manifests and config.

    An image index may list at most MAX_INDEX_ENTRIES entries; each manifest digest is
    fetched once. With ``platforms``, only those platforms' manifests are fetched (plus the
    first one listed when none of them is there, to tell the type); the others are left out
    of the result.
    """
    where = _where(client, repository, reference)
    accept = (*mediatypes.MANIFEST_MEDIA_TYPES,)
    expected = reference if DIGEST_RE.match(reference) else None
    try:
        root = client.get_manifest(repository, reference, accept=accept, expected_digest=expected)
    except NotFoundError as exc:
        if expected is None:
            _hint_available_tags(exc, client, repository, reference)
        raise
    root_body = _json(root, where)
    wanted = set(platforms) if platforms is not None else None
    found: dict[str, PlatformManifest] = {}
    manifest_bodies: dict[str, dict[str, Any]] = {}
    listed: dict[str, Descriptor] = {}
    if mediatypes.is_index(root.media_type):
        for entry in _index_entries(root_body, where):
            name = entry.platform_name
            if name is not None and not name.startswith("unknown/"):
                # Attestations and duplicates are not installable platforms.
                listed.setdefault(name, entry)
        chosen = [name for name in listed if wanted is None or name in wanted]
        if not chosen and listed:
            chosen = [next(iter(listed))]
        fetched: dict[str, tuple[FetchedManifest, dict[str, Any]]] = {}
        for name in chosen:
            digest = listed[name].digest
            if digest not in fetched:
                manifest = client.get_manifest(
                    repository,
                    digest,
                    accept=sorted(mediatypes.IMAGE_MANIFEST_TYPES),
                    expected_digest=digest,
                )
                fetched[digest] = (manifest, _json(manifest, f"{where} ({name})"))
            manifest, body = fetched[digest]
            found[name] = _platform_manifest(name, manifest, body, f"{where} ({name})")
            manifest_bodies[name] = body
        if not found:
            raise InvalidManifestError(
                f"image index of {where} lists no platform manifests",
                hint="the artifact is broken upstream; ask its publisher",
            )
    elif mediatypes.is_image_manifest(root.media_type):
        found[SINGLE_PLATFORM] = _platform_manifest(SINGLE_PLATFORM, root, root_body, where)
        manifest_bodies[SINGLE_PLATFORM] = root_body
    else:
        raise UnknownArtifactTypeError(
            f"{where} is a {root.media_type!r}, not an OCI image manifest or index",
            hint="falcopkg handles Falco artifacts pushed by falcoctl or falcopkg",
        )

    # Every platform manifest must say the same type: one that does not is not the
    # artifact the others describe.
    types = {
        name: _artifact_type(manifest, manifest_bodies[name], _platform_where(where, name))
        for name, manifest in found.items()
    }
    first = found[min(found)]
    artifact_type = types[min(found)]
    disagreeing = sorted(name for name, t in types.items() if t != artifact_type)
    if disagreeing:
        listing = ", ".join(f"{name}: {types[name].name}" for name in sorted(types))
        raise InvalidManifestError(
            f"{where} mixes artifact types across its platforms ({listing})",
            hint="every platform manifest of an artifact must have the same type; "
            "the artifact is broken upstream, ask its publisher",
        )
    _check_shape(artifact_type, root.media_type, where)
    config_bytes = client.get_blob_bytes(repository, first.config_digest, max_size=MAX_CONFIG_BYTES)
    config = ArtifactConfig.from_json(config_bytes, source=f"config of {where}")
    annotations = root_body.get("annotations")
    return RemoteArtifact(
        repository=repository,
        root_digest=root.digest,
        root_media_type=root.media_type,
        type=artifact_type,
        config=config,
        platforms=found,
        annotations=dict(annotations) if isinstance(annotations, dict) else None,
        listed_platforms=tuple(listed),
    )


def _artifact_type(manifest: PlatformManifest, body: dict[str, Any], where: str) -> ArtifactType:
    """The type layer 0's media type names, else the config's (falcoctl sets both)."""
    config_media_type = _config_descriptor(body, where).media_type
    found = type_for_media_type(manifest.layer.media_type) or type_for_media_type(config_media_type)
    if found is None:
        known = ", ".join(ARTIFACT_TYPES)
        raise UnknownArtifactTypeError(
            f"{where} is not a Falco artifact: layer media type {manifest.layer.media_type!r} "
            f"and config media type {config_media_type!r} are unknown",
            hint=f"falcopkg knows the artifact types {known}",
        )
    return found


def _check_shape(artifact_type: ArtifactType, root_media_type: str, where: str) -> None:
    """A multi-platform type (a plugin) is always an image index (SPEC §2): pushed as one
    manifest, its single binary would be served to every platform."""
    if artifact_type.multi_platform and not mediatypes.is_index(root_media_type):
        raise InvalidManifestError(
            f"{where} is a {artifact_type.name} pushed as a single image manifest, not an "
            f"image index with one manifest per platform",
            hint=f"a {artifact_type.name} must be pushed as an image index (falcoctl and "
            f"`falcopkg registry push --platform OS/ARCH` do this); ask its publisher",
        )


def _platform_where(where: str, platform: str) -> str:
    return f"{where} ({platform})" if platform else where


def _where(client: ContentStore, repository: str, reference: str) -> str:
    separator = "@" if DIGEST_RE.match(reference) else ":"
    return f"{client.host}/{repository}{separator}{reference}"


def _json(manifest: FetchedManifest, where: str) -> dict[str, Any]:
    try:
        return manifest.json()
    except InvalidManifestError as exc:
        raise InvalidManifestError(f"{where}: {exc.message}") from None


def _index_entries(body: dict[str, Any], where: str) -> list[Descriptor]:
    entries = body.get("manifests")
    if not isinstance(entries, list):
        raise InvalidManifestError(f"image index of {where} has no `manifests` list")
    if len(entries) > MAX_INDEX_ENTRIES:
        raise InvalidManifestError(
            f"image index of {where} lists {len(entries)} manifests, more than the "
            f"{MAX_INDEX_ENTRIES} falcopkg reads",
            hint="a Falco artifact has one manifest per platform; this one is broken or "
            "hostile, ask its publisher",
        )
    return [
        Descriptor.from_dict(entry, context=f"{where} manifests[{number}]")
        for number, entry in enumerate(entries)
    ]


def _config_descriptor(body: dict[str, Any], where: str) -> Descriptor:
    return Descriptor.from_dict(body.get("config"), context=f"{where} config")


def _platform_manifest(
    platform: str, manifest: FetchedManifest, body: dict[str, Any], where: str
) -> PlatformManifest:
    config = _config_descriptor(body, where)
    layers = body.get("layers")
    if not isinstance(layers, list) or not layers:
        raise InvalidManifestError(
            f"{where} has no layers",
            hint="a Falco artifact has exactly one layer; the artifact is broken upstream",
        )
    layer = Descriptor.from_dict(layers[0], context=f"{where} layers[0]")
    return PlatformManifest(platform, manifest.digest, config.digest, layer)
