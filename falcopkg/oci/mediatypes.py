"""Media types of the OCI image spec and of Docker's registry API v2 that falcopkg handles."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

#: Manifests that describe one artifact (config + layers).
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
#: Manifests that list other manifests, one per platform.
INDEX_MANIFEST_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
#: Everything ``get_manifest`` accepts by default, in order of preference.
MANIFEST_MEDIA_TYPES: tuple[str, ...] = (
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
)


def is_index(media_type: str) -> bool:
    return media_type in INDEX_MANIFEST_TYPES


def is_image_manifest(media_type: str) -> bool:
    return media_type in IMAGE_MANIFEST_TYPES


def media_type_of_manifest(body: object) -> str | None:
    """The media type a manifest's JSON declares, else the one its shape implies
    (``manifests`` → image index, ``layers`` → image manifest); None if neither."""
    if not isinstance(body, dict):
        return None
    declared = body.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in body:
        return OCI_INDEX
    if "layers" in body:
        return OCI_MANIFEST
    return None
