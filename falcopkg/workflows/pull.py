"""Pulling an artifact (`registry pull`): pick the platform, download, verify, extract safely."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from falcopkg.archive import extract_into
from falcopkg.artifact.platforms import host_platform
from falcopkg.artifact.remote import PlatformManifest, RemoteArtifact, inspect_artifact
from falcopkg.core.reference import DIGEST_RE
from falcopkg.oci.store import ContentStore
from falcopkg.services.cache import BlobCache

if TYPE_CHECKING:
    from falcopkg.services.fetch import DownloadProgress
    from falcopkg.services.registries import RegistryAccess


@dataclass(frozen=True)
class PullResult:
    artifact: RemoteArtifact
    manifest: PlatformManifest
    out_dir: Path
    files: tuple[str, ...]  # relative to out_dir


def pull_artifact(
    client: ContentStore,
    repository: str,
    reference: str,
    platform: str | None,
    out_dir: Path,
    *,
    cache: BlobCache | None = None,
    max_bytes: int | None = None,
    progress: DownloadProgress | None = None,
) -> PullResult:
    """Download the layer of ``reference`` for ``platform`` (default: this host) and extract
    it into ``out_dir``. Single-manifest artifacts ignore the platform.

    The layer is verified against its digest before extraction; with a ``cache`` it is kept
    there (and taken from there next time). Unsafe archives are refused whole and nothing
    is written (``archive``); ``max_bytes`` bounds the unpacked size (default:
    ``$FALCOPKG_MAX_UNPACKED_SIZE`` or 1 GiB).
    """
    separator = "@" if DIGEST_RE.match(reference) else ":"
    where = f"{client.host}/{repository}{separator}{reference}"
    wanted = platform or host_platform()
    artifact = inspect_artifact(client, repository, reference, platforms=[wanted])
    chosen = artifact.select(wanted, where=where)
    layer = chosen.layer
    advance = progress.advance if progress is not None else None
    if progress is not None:
        progress.begin(1, layer.size)
    try:
        with _layer_file(client, repository, layer.digest, layer.size, cache, advance) as archive:
            out_dir.mkdir(parents=True, exist_ok=True)
            extracted = extract_into(
                archive, where, out_dir, max_bytes=max_bytes, expected_digest=layer.digest
            )
    finally:
        if progress is not None:
            progress.end()
    return PullResult(artifact, chosen, out_dir, tuple(f.path for f in extracted))


def registry_pull(
    registries: RegistryAccess,
    source: str,
    reference: str,
    platform: str | None,
    out_dir: Path,
    *,
    cache_dir: Path,
    progress: DownloadProgress | None = None,
) -> PullResult:
    """`registry pull`: ``source`` (``host/repository``) read through its mirror, if any."""
    store, repository = registries.endpoint(source)
    return pull_artifact(
        store,
        repository,
        reference,
        platform,
        out_dir,
        cache=BlobCache(cache_dir),
        progress=progress,
    )


@contextlib.contextmanager
def _layer_file(
    client: ContentStore,
    repository: str,
    digest: str,
    size: int,
    cache: BlobCache | None,
    progress: Callable[[int], None] | None,
) -> Iterator[Path]:
    """A verified local copy of the blob: from the cache, or downloaded (into the cache)."""
    if cache is not None:
        if not cache.has(digest):
            tmp = cache.temp_path()
            try:
                client.download_blob(repository, digest, tmp, expected_size=size, progress=progress)
                cache.adopt(tmp, digest, verified=True)
            finally:
                tmp.unlink(missing_ok=True)
        yield cache.path_for(digest)
        return
    with tempfile.TemporaryDirectory(prefix="falcopkg-pull-") as work:
        target = Path(work) / "layer.tar.gz"
        client.download_blob(repository, digest, target, expected_size=size, progress=progress)
        yield target
