"""The content-store protocol: what the resolver, the fetcher, mirror and vendor need of a
place that holds OCI artifacts.

Two implementations: ``falcopkg.oci.client.RegistryClient`` (a registry over HTTP) and
``falcopkg.oci.layout.OciLayout`` (an OCI image layout directory). Code that takes a
``ContentStore`` works on either, so an ``oci-layout:`` mirror serves tags, manifests,
configs and layers exactly as a registry does, and every read is verified the same way.

The method names and signatures are RegistryClient's (this protocol was drawn from it, not
the other way round); ``host`` is the registry the content comes from, used in messages and,
for a layout, in its ref names (``HOST/REPOSITORY:TAG``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from falcopkg.core.reference import DIGEST_RE, REPOSITORY_RE, TAG_RE
from falcopkg.errors import InvalidReferenceError
from falcopkg.oci import mediatypes
from falcopkg.oci.descriptor import Descriptor, FetchedManifest

#: Distribution's own limit for manifests; a layout refuses larger ones too.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
#: ``get_blob_bytes`` is for configs and other small blobs.
DEFAULT_BLOB_BYTES_LIMIT = 16 * 1024 * 1024


class ContentStore(Protocol):
    """Tags, manifests and blobs of one origin registry, wherever they are kept.

    Every read is verified: manifests fetched by digest (or with ``expected_digest``)
    against it, blobs against their digest and ``expected_size`` while they stream. A
    missing repository, tag, manifest or blob is a ``falcopkg.oci.errors.NotFoundError``.
    """

    @property
    def host(self) -> str:
        """The origin registry (``ghcr.io``), for messages and a layout's ref names."""
        ...

    def list_tags(self, repository: str) -> list[str]: ...

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
        expected_digest: str | None = None,
    ) -> FetchedManifest: ...

    def head_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
    ) -> Descriptor | None:
        """Resolve a tag or digest to the manifest's descriptor; None if there is none."""
        ...

    def put_manifest(
        self, repository: str, reference: str, data: bytes, media_type: str
    ) -> str: ...

    def head_blob(self, repository: str, digest: str) -> int | None: ...

    def download_blob(
        self,
        repository: str,
        digest: str,
        dest: Path,
        expected_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        max_size: int | None = None,
    ) -> None: ...

    def get_blob_bytes(
        self, repository: str, digest: str, max_size: int = DEFAULT_BLOB_BYTES_LIMIT
    ) -> bytes: ...

    def open_blob(
        self, repository: str, digest: str, expected_size: int | None = None
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """``with store.open_blob(repo, digest) as chunks: …``; the iterator raises
        IntegrityError after the last chunk when size or digest do not match."""
        ...

    def upload_blob(
        self,
        repository: str,
        source: Path | bytes,
        digest: str,
        size: int,
        chunk_size: int | None = None,
    ) -> bool:
        """Store a blob unless it is there already; True if it was written."""
        ...

    def close(self) -> None: ...


def check_repository(repository: str) -> None:
    """InvalidReferenceError unless ``repository`` is a valid repository name."""
    if not REPOSITORY_RE.match(repository):
        raise InvalidReferenceError(
            f"invalid repository name {repository!r}",
            hint="repository names are lower-case path components like `falcosecurity/rules/x`",
        )


def check_reference(reference: str) -> None:
    """InvalidReferenceError unless ``reference`` is a tag or a digest."""
    if not (TAG_RE.match(reference) or DIGEST_RE.match(reference)):
        raise InvalidReferenceError(f"invalid tag or digest {reference!r}")


if TYPE_CHECKING:
    # mypy checks here that both implementations satisfy the protocol.
    from falcopkg.oci.client import RegistryClient
    from falcopkg.oci.layout import OciLayout

    def _registry_is_a_store(client: RegistryClient) -> ContentStore:
        return client

    def _layout_is_a_store(layout: OciLayout) -> ContentStore:
        return layout
