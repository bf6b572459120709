"""Downloads teed into the extractor (services/fetch.py ``on_stream``) against a real registry:
read once, verified at the last read, and a connection that breaks mid-stream falls back to
the retrying download."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest

from falcopkg.archive import ByteReader
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.services.cache import BlobCache
from falcopkg.services.fetch import BlobRequest, ensure_blobs
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry
from tests.fixtures.stores import OneStore

pytestmark = pytest.mark.registry

BLOB = os.urandom(24 * 1024 * 1024)  # larger than what socket buffers hold
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class _CountingClient(RegistryClient):
    downloads = 0

    def download_blob(self, *args: Any, **kwargs: Any) -> None:
        self.downloads += 1
        super().download_blob(*args, **kwargs)


def _pushed(registry: RunningRegistry) -> _CountingClient:
    client = _CountingClient(registry.host, RegistryOptions(plain_http=True, retries=2))
    client.upload_blob("acme/blobs", BLOB, DIGEST, len(BLOB))
    return client


def _read_all(raw: ByteReader, size: int = 256 * 1024) -> bytes:
    parts = []
    while chunk := raw.read(size):
        parts.append(chunk)
    return b"".join(parts)


def test_a_download_is_read_once_by_the_consumer_and_lands_in_the_cache(
    tmp_home: TmpHome, registry_factory: Callable[..., RunningRegistry]
) -> None:
    client = _pushed(registry_factory("plain"))
    cache = BlobCache(tmp_home.cache_dir)
    streamed: list[bytes] = []
    ready: list[tuple[str, bool]] = []
    paths = ensure_blobs(
        [BlobRequest("blobs 1.0.0", f"{client.host}/acme/blobs", DIGEST, len(BLOB))],
        cache,
        OneStore(client),
        on_stream=lambda digest, raw: streamed.append(_read_all(raw)),
        on_ready=lambda digest, path, downloaded: ready.append((digest, downloaded)),
    )
    assert streamed == [BLOB]
    assert client.downloads == 0
    assert ready == [(DIGEST, True)]
    assert paths[DIGEST].read_bytes() == BLOB
    assert not list((tmp_home.cache_dir / "tmp").iterdir())


def test_a_stream_broken_midway_falls_back_to_the_retrying_download(
    tmp_home: TmpHome, registry_factory: Callable[..., RunningRegistry]
) -> None:
    registry = registry_factory("plain")
    client = _pushed(registry)
    cache = BlobCache(tmp_home.cache_dir)
    attempts: list[str] = []
    ready: list[tuple[str, bool]] = []

    def consume(digest: str, raw: ByteReader) -> None:
        attempts.append(digest)
        raw.read(1024 * 1024)
        registry.restart()  # the connection of this stream dies; the next one works
        _read_all(raw)

    paths = ensure_blobs(
        [BlobRequest("blobs 1.0.0", f"{client.host}/acme/blobs", DIGEST, len(BLOB))],
        cache,
        OneStore(client),
        on_stream=consume,
        on_ready=lambda digest, path, downloaded: ready.append((digest, downloaded)),
    )
    assert attempts == [DIGEST]
    assert client.downloads == 1
    # The consumer saw an error, so it gets the verified cache file instead.
    assert ready == [(DIGEST, True)]
    assert paths[DIGEST].read_bytes() == BLOB
    assert not list((tmp_home.cache_dir / "tmp").iterdir())


def test_a_consumer_error_on_damaged_bytes_is_reported_as_damage(
    tmp_home: TmpHome, registry_factory: Callable[..., RunningRegistry]
) -> None:
    from falcopkg.errors import InstallError, IntegrityError

    registry = registry_factory("plain")
    client = _pushed(registry)
    blob = registry.blob_path(DIGEST)
    blob.write_bytes(b"\0" * 10 + blob.read_bytes()[10:])
    cache = BlobCache(tmp_home.cache_dir)

    def refuse(digest: str, raw: ByteReader) -> None:
        raw.read(1024)
        raise InstallError("not a tar.gz")

    with pytest.raises(IntegrityError, match=DIGEST):
        ensure_blobs(
            [BlobRequest("blobs 1.0.0", f"{client.host}/acme/blobs", DIGEST, len(BLOB))],
            cache,
            OneStore(client),
            on_stream=refuse,
        )
    assert not cache.has(DIGEST)
    assert not list((tmp_home.cache_dir / "tmp").iterdir())
