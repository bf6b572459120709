"""`artifact info`: what an index says of an artifact plus what its registry holds: versions,
floating tags, platforms, and the dependencies and requirements `lock` uses (the config's
united with the rules YAML's, SPEC §2). Read through the registry's mirror, like every read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from falcopkg.errors import FalcopkgError

if TYPE_CHECKING:
    from falcopkg.artifact.config import Dependency
    from falcopkg.artifact.remote import RemoteArtifact
    from falcopkg.core.index import IndexEntry
    from falcopkg.core.reference import Reference
    from falcopkg.oci.store import ContentStore
    from falcopkg.services.registries import RegistryAccess

HEAD_WORKERS = 8


class ArtifactInfo(NamedTuple):
    """What `artifact info` shows: index metadata plus the registry's view."""

    reference: str  # registry/repository
    entry: IndexEntry | None
    index_name: str | None
    tags: list[str]
    versions: list[str]  # semver tags, newest first
    floating: dict[str, str | None]  # alias tag -> the version tag it points to
    selected_tag: str | None
    remote: RemoteArtifact
    # The config's united with the rules YAML's (SPEC §2): what `lock` uses.
    dependencies: tuple[Dependency, ...]
    requirements: dict[str, str]


def artifact_info(
    located: Reference,
    entry: IndexEntry | None,
    index_name: str | None,
    registries: RegistryAccess,
    cache_dir: Path,
) -> ArtifactInfo:
    """``located`` (a reference at its registry location) as `artifact info` shows it."""
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.metadata import declared_metadata

    source = f"{located.registry}/{located.repository}"
    store, repository = registries.endpoint(source)
    tags, versions, floating, selected_tag, remote = _gather(store, repository, located.version_ref)
    declared = declared_metadata(registries, BlobCache(cache_dir), source, remote)
    return ArtifactInfo(
        reference=located.locator,
        entry=entry,
        index_name=index_name,
        tags=tags,
        versions=versions,
        floating=floating,
        selected_tag=selected_tag,
        remote=remote,
        dependencies=declared.dependencies,
        requirements=dict(declared.requirements),
    )


def _gather(
    client: ContentStore, repository: str, version_ref: str | None
) -> tuple[list[str], list[str], dict[str, str | None], str | None, RemoteArtifact]:
    """Tags, versions (newest first), floating tags, the selected tag and the artifact."""
    from falcopkg.artifact.remote import inspect_artifact
    from falcopkg.core.reference import DIGEST_RE
    from falcopkg.core.versions import semver_tags

    tags = client.list_tags(repository)
    ordered = semver_tags(tags)
    versions = [tag for _, tag in ordered]
    # Like resolution (§4): the newest release; a pre-release only when there is nothing else.
    stable = [tag for version, tag in ordered if not version.prerelease]
    version_set = set(versions)
    aliases = sorted(tag for tag in tags if tag not in version_set)
    selected = version_ref
    if selected is None:
        if versions:
            selected = (stable or versions)[0]
        elif "latest" in tags:
            selected = "latest"
        else:
            raise FalcopkgError(
                f"{client.host}/{repository} has no tags",
                hint="push a version first, e.g. `falcopkg registry push …`",
            )
    pinned = DIGEST_RE.match(selected) is not None
    # Digests are needed to tell what floating tags (and a pinned digest) point to.
    digests = _tag_digests(client, repository, [*aliases, *versions]) if aliases or pinned else {}
    by_digest: dict[str, str] = {}
    for tag in reversed(versions):  # newest wins when several versions share a digest
        if tag in digests:
            by_digest[digests[tag]] = tag
    floating: dict[str, str | None] = {
        alias: by_digest.get(digests.get(alias, "")) for alias in aliases
    }
    remote = inspect_artifact(client, repository, selected)
    selected_tag = by_digest.get(remote.root_digest) if pinned else selected
    return tags, versions, floating, selected_tag, remote


def _tag_digests(client: ContentStore, repository: str, tags: Sequence[str]) -> dict[str, str]:
    """Manifest digest of each tag (HEAD requests in parallel); missing tags are skipped."""
    from concurrent.futures import ThreadPoolExecutor

    def head(tag: str) -> tuple[str, str | None]:
        descriptor = client.head_manifest(repository, tag)
        return tag, descriptor.digest if descriptor is not None else None

    with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, max(1, len(tags)))) as pool:
        return {tag: digest for tag, digest in pool.map(head, tags) if digest is not None}
