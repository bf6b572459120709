"""Getting layer blobs into the blob cache (SPEC §8): parallel, streamed, verified.

``ensure_blobs`` returns a verified cache path for every requested digest. Blobs already in
the cache cost no request (and no registry client is even built). Missing blobs are
streamed in 1 MiB chunks straight into a cache temporary file by the registry client, which
checks size and digest before the file is kept; only then is it adopted into the cache. A
failed or tampered download leaves no copy behind.

With ``on_stream`` (the installer) each download is read once: the chunks go into the cache
file and, in the same worker thread, to the caller's extractor, so nothing is read back from
disk and hashing, decompression and writes of several blobs run on all cores. The digest is
checked when the last chunk arrives; a mismatch raises out of that read, so the caller
throws away what it made. A connection that breaks mid-stream falls back to the retrying
download into the cache (the extractor's partial work is discarded).

Where a blob comes from is the caller's :class:`StoreRouter` (services.registries.
RegistryAccess): the origin registry, a mirror registry, or an OCI image layout (which needs
no network, so it works with ``--offline``). Every store verifies what it serves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from falcopkg.digests import split_digest
from falcopkg.errors import IntegrityError, OfflineError
from falcopkg.services.cache import BlobCache

if TYPE_CHECKING:
    from falcopkg.archive import ByteReader

DEFAULT_WORKERS = 8
_FILL_CACHE_HINT = (
    "run `falcopkg sync` once with network access to fill the cache, or point a "
    '[registries."HOST"] mirror = "oci-layout:DIR" in falco.toml at an OCI layout directory '
    "holding the artifacts"
)


@dataclass(frozen=True)
class BlobRequest:
    artifact: str  # for messages: "falco-rules 4.0.0"
    source: str  # "host/repository" the lock names
    digest: str
    size: int | None = None


class BlobStreamer(Protocol):
    """What ``ensure_blobs`` needs of a content store (falcopkg.oci.store.ContentStore)."""

    @property
    def host(self) -> str: ...

    def download_blob(
        self,
        repository: str,
        digest: str,
        dest: Path,
        expected_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None: ...

    def open_blob(
        self, repository: str, digest: str, expected_size: int | None = None
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]: ...


class StoreRouter(Protocol):
    """Where to read a ``host/repository`` from (services.registries.RegistryAccess)."""

    def endpoint(self, source: str) -> tuple[BlobStreamer, str]: ...

    def is_local(self, source: str) -> bool: ...


class DownloadProgress(Protocol):
    """Progress of a batch of downloads (the CLI draws it). Called from worker threads."""

    def begin(self, count: int, total_bytes: int) -> None: ...

    def advance(self, size: int) -> None: ...

    def finished(self, request: BlobRequest) -> None: ...

    def end(self) -> None: ...


# Called as each blob becomes available: (digest, cache path, downloaded by this call).
OnReady = Callable[[str, Path, bool], None]
# Called in a download worker with the bytes of a blob as they arrive: (digest, readable).
# It must read to the end (b""); that last read raises IntegrityError on a digest mismatch.
# on_ready follows for the same digest once the blob is in the cache.
OnStream = Callable[[str, "ByteReader"], None]


def ensure_blobs(
    requests: Sequence[BlobRequest],
    cache: BlobCache,
    stores: StoreRouter | None,
    *,
    offline: bool = False,
    progress: DownloadProgress | None = None,
    workers: int = DEFAULT_WORKERS,
    on_ready: OnReady | None = None,
    on_stream: OnStream | None = None,
) -> dict[str, Path]:
    """Make every requested blob available in ``cache``; digest → verified path.

    ``stores`` is asked only when something must be downloaded. With ``offline`` (or no
    ``stores``) a blob that is neither cached nor in an OCI-layout mirror is an OfflineError naming the artifact and the digest. ``on_ready`` lets the caller start
    working on each blob while others still download (cached ones first, from this thread;
    downloaded ones from the worker threads); ``on_stream`` while it downloads (see the
    module docstring).
    """
    paths: dict[str, Path] = {}
    missing: dict[str, BlobRequest] = {}
    for request in requests:
        split_digest(request.digest)  # an unsupported digest fails before any download
        if request.digest in paths or request.digest in missing:
            continue
        cached = cache.lookup(request.digest)
        if cached is not None:
            paths[request.digest] = cached
        else:
            missing[request.digest] = request
    if not missing:
        for digest, path in paths.items():
            if on_ready is not None:
                on_ready(digest, path, False)
        return paths

    need_network = [r for r in missing.values() if stores is None or not stores.is_local(r.source)]
    if (offline or stores is None) and need_network:
        first = need_network[0]
        more = f" (and {len(need_network) - 1} more)" if len(need_network) > 1 else ""
        raise OfflineError(
            f"the layer of {first.artifact} ({first.digest}) is not in the cache{more}, and "
            "--offline forbids downloading it",
            hint=_FILL_CACHE_HINT,
        )
    if on_ready is not None:
        for digest, path in paths.items():
            on_ready(digest, path, False)
    todo = list(missing.values())
    if progress is not None:
        progress.begin(len(todo), sum(r.size or 0 for r in todo))
    try:
        if len(todo) == 1:
            paths[todo[0].digest] = _fetch_one(
                todo[0], cache, stores, progress, on_ready, on_stream
            )
        else:
            paths.update(
                _fetch_parallel(todo, cache, stores, progress, workers, on_ready, on_stream)
            )
    finally:
        if progress is not None:
            progress.end()
    return paths


def _fetch_parallel(
    todo: Sequence[BlobRequest],
    cache: BlobCache,
    stores: StoreRouter | None,
    progress: DownloadProgress | None,
    workers: int,
    on_ready: OnReady | None,
    on_stream: OnStream | None,
) -> dict[str, Path]:
    results: dict[str, Path] = {}
    # Largest first: the long downloads start early and the tail is short.
    ordered = sorted(todo, key=lambda r: -(r.size or 0))
    with ThreadPoolExecutor(max_workers=min(workers, len(ordered))) as executor:
        futures: dict[Future[Path], BlobRequest] = {
            executor.submit(_fetch_one, r, cache, stores, progress, on_ready, on_stream): r
            for r in ordered
        }
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        errors = [error for f in done if (error := f.exception()) is not None]
        if errors:
            wait(pending)  # let running downloads finish cleaning up their files
            raise errors[0]
        for future, request in futures.items():
            results[request.digest] = future.result()
    return results


def _fetch_one(
    request: BlobRequest,
    cache: BlobCache,
    stores: StoreRouter | None,
    progress: DownloadProgress | None,
    on_ready: OnReady | None = None,
    on_stream: OnStream | None = None,
) -> Path:
    if stores is None:  # ensure_blobs refused this already; keeps the types honest
        raise OfflineError(f"the layer of {request.artifact} is not in the cache")
    store, repository = stores.endpoint(request.source)
    tmp = cache.temp_path()
    path: Path | None = None
    try:
        advance = progress.advance if progress is not None else None
        try:
            streamed = on_stream is not None and _stream_into(
                store, repository, request, tmp, on_stream, advance
            )
            if not streamed:
                store.download_blob(
                    repository, request.digest, tmp, expected_size=request.size, progress=advance
                )
        except IntegrityError as exc:
            raise IntegrityError(
                f"the layer of {request.artifact} from {store.host}/{repository} is damaged: "
                f"{exc.message}; nothing of it was installed",
                hint=exc.hint,
            ) from None
        path = cache.adopt(tmp, request.digest, verified=True)
    finally:
        if path is None:  # not adopted (adopt renames it into the cache, or removes it)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    if progress is not None:
        progress.finished(request)
    if on_ready is not None:
        on_ready(request.digest, path, True)
    return path


def _stream_into(
    client: BlobStreamer,
    repository: str,
    request: BlobRequest,
    tmp: Path,
    on_stream: OnStream,
    progress: Callable[[int], None] | None,
) -> bool:
    """Download into ``tmp`` while ``on_stream`` reads the same bytes; False when the
    connection broke mid-stream (the caller then downloads again, with retries).

    ``tmp`` is not fsynced: a cached blob is verified again whenever it is used, so a copy
    damaged by a power cut is found (and the installed files never come from it unchecked).
    """
    from falcopkg.oci.errors import RegistryUnreachableError

    reader: _TeeReader | None = None
    try:
        with (
            client.open_blob(repository, request.digest, request.size) as chunks,
            tmp.open("wb") as sink,
        ):
            reader = _TeeReader(chunks, sink, progress)
            try:
                on_stream(request.digest, reader)
            except (IntegrityError, RegistryUnreachableError):
                raise
            except Exception:
                # The extractor refused bytes not verified yet: a damaged download must be
                # reported as damaged, not as a broken archive. Raises on a mismatch.
                reader.drain()
                raise
            reader.drain()  # the digest is checked after the last chunk
    except RegistryUnreachableError:
        if progress is not None and reader is not None and reader.received:
            progress(-reader.received)
        return False
    return True


class _TeeReader:
    """A ByteReader over a blob's chunks that writes each chunk to ``sink`` as it is read."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        sink: BinaryIO,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._chunks = chunks
        self._sink = sink
        self._progress = progress
        self._current = memoryview(b"")
        self.received = 0

    def read(self, size: int = -1, /) -> bytes:
        if not self._current:
            chunk = next(self._chunks, b"")
            if not chunk:
                return b""
            self._sink.write(chunk)
            self.received += len(chunk)
            if self._progress is not None:
                self._progress(len(chunk))
            self._current = memoryview(chunk)
        if size < 0 or size >= len(self._current):
            part, self._current = self._current, memoryview(b"")
        else:
            part, self._current = self._current[:size], self._current[size:]
        return part.tobytes()

    def drain(self) -> None:
        self._current = memoryview(b"")
        while self.read():
            self._current = memoryview(b"")
