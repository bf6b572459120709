"""A content store in front of another that keeps manifests and configs in the blob cache.

Everything behind a digest is immutable, so a manifest or config read once (by tag or by
digest) is kept in the content-addressed blob cache (in its packs when small) and served
from there the next time it is asked for by digest: a warm cache can rebuild every locked
artifact (root, platform manifests, configs, layers) without the network, which is what
`vendor` and an offline `lock` need. Reads from the cache are verified again; tags, HEADs and writes go to the store
behind.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from falcopkg.core.reference import DIGEST_RE
from falcopkg.oci import mediatypes
from falcopkg.oci.descriptor import Descriptor, FetchedManifest
from falcopkg.oci.store import DEFAULT_BLOB_BYTES_LIMIT, MAX_MANIFEST_SIZE
from falcopkg.services.packs import PACKED_BLOB_LIMIT

if TYPE_CHECKING:
    from falcopkg.oci.store import ContentStore
    from falcopkg.services.cache import BlobCache


class CachedStore:
    """``inner`` with manifests and small blobs read through ``cache``."""

    def __init__(self, inner: ContentStore, cache: BlobCache) -> None:
        self.inner = inner
        self.cache = cache

    @property
    def host(self) -> str:
        return self.inner.host

    def list_tags(self, repository: str) -> list[str]:
        return self.inner.list_tags(repository)

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
        expected_digest: str | None = None,
    ) -> FetchedManifest:
        digest = reference if DIGEST_RE.match(reference) else expected_digest
        if digest is not None:
            cached = self._cached_manifest(digest, accept)
            if cached is not None:
                return cached
        fetched = self.inner.get_manifest(repository, reference, accept, expected_digest)
        self.cache.put_bytes(fetched.data, fetched.digest)
        return fetched

    def _cached_manifest(self, digest: str, accept: Sequence[str]) -> FetchedManifest | None:
        data = self.cache.read_bytes(digest, MAX_MANIFEST_SIZE)
        if data is None:
            return None
        try:
            media_type = json.loads(data).get("mediaType")
        except (ValueError, AttributeError):
            return None
        # A manifest without its own mediaType: only the store knows how it was served.
        if not isinstance(media_type, str) or media_type not in accept:
            return None
        return FetchedManifest(media_type, digest, data)

    def head_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
    ) -> Descriptor | None:
        return self.inner.head_manifest(repository, reference, accept)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        return self.inner.put_manifest(repository, reference, data, media_type)

    def head_blob(self, repository: str, digest: str) -> int | None:
        path = self.cache.lookup(digest)
        if path is not None:
            return path.stat().st_size
        packed = self.cache.read_bytes(digest, PACKED_BLOB_LIMIT)
        if packed is not None:
            return len(packed)
        return self.inner.head_blob(repository, digest)

    def download_blob(
        self,
        repository: str,
        digest: str,
        dest: Path,
        expected_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        max_size: int | None = None,
    ) -> None:
        self.inner.download_blob(
            repository, digest, dest, expected_size, progress, max_size=max_size
        )

    def get_blob_bytes(
        self, repository: str, digest: str, max_size: int = DEFAULT_BLOB_BYTES_LIMIT
    ) -> bytes:
        cached = self.cache.read_bytes(digest, max_size)
        if cached is not None:
            return cached
        data = self.inner.get_blob_bytes(repository, digest, max_size)
        self.cache.put_bytes(data, digest)
        return data

    @contextlib.contextmanager
    def open_blob(
        self, repository: str, digest: str, expected_size: int | None = None
    ) -> Iterator[Iterator[bytes]]:
        with self.inner.open_blob(repository, digest, expected_size) as chunks:
            yield chunks

    def upload_blob(
        self,
        repository: str,
        source: Path | bytes,
        digest: str,
        size: int,
        chunk_size: int | None = None,
    ) -> bool:
        return self.inner.upload_blob(repository, source, digest, size, chunk_size)

    def close(self) -> None:
        self.inner.close()


if TYPE_CHECKING:

    def _is_a_store(store: CachedStore) -> ContentStore:
        return store
