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

Mirrors (``[registries."host"] mirror``): ``"host2/prefix"`` fetches ``host/repo`` from
``host2/prefix/repo``; ``"oci-layout:DIR"`` reads ``DIR/blobs/<alg>/<hex>`` from an OCI image
layout directory (e.g. one filled by ``skopeo copy … oci:DIR``), which needs no network and
so works with ``--offline``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol, TextIO, cast

from falcopkg.digests import split_digest
from falcopkg.errors import FalcopkgError, IntegrityError, OfflineError
from falcopkg.services.cache import BlobCache

if TYPE_CHECKING:
    from falcopkg.services.extract import ByteReader

DEFAULT_WORKERS = 8
LAYOUT_PREFIX = "oci-layout:"
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


class BlobDownloader(Protocol):
    """What ``ensure_blobs`` needs of falcopkg.oci.client.RegistryClient."""

    def download_blob(
        self,
        repository: str,
        digest: str,
        dest: Path,
        expected_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None: ...


class BlobStreamer(BlobDownloader, Protocol):
    """A downloader that can also stream a blob (falcopkg.oci.client.RegistryClient)."""

    def open_blob(
        self, repository: str, digest: str, expected_size: int | None = None
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]: ...


ClientFor = Callable[[str], BlobDownloader]
# Called as each blob becomes available: (digest, cache path, downloaded by this call).
OnReady = Callable[[str, Path, bool], None]
# Called in a download worker with the bytes of a blob as they arrive: (digest, readable).
# It must read to the end (b""); that last read raises IntegrityError on a digest mismatch.
# on_ready follows for the same digest once the blob is in the cache.
OnStream = Callable[[str, "ByteReader"], None]


@dataclass(frozen=True)
class Mirror:
    """Where blobs of one registry are fetched from instead."""

    host: str | None = None  # another registry …
    prefix: str = ""  # … with this repository prefix
    layout: Path | None = None  # or an OCI image layout directory

    @property
    def needs_network(self) -> bool:
        return self.layout is None


def parse_mirror(text: str, base_dir: Path) -> Mirror:
    """``"host/prefix"`` or ``"oci-layout:DIR"`` (DIR relative to ``base_dir``)."""
    if text.startswith(LAYOUT_PREFIX):
        return Mirror(layout=base_dir / Path(text[len(LAYOUT_PREFIX) :]).expanduser())
    host, _, prefix = text.strip("/").partition("/")
    return Mirror(host=host, prefix=prefix)


def ensure_blobs(
    requests: Sequence[BlobRequest],
    cache: BlobCache,
    client_for: ClientFor | None,
    *,
    offline: bool = False,
    mirrors: Mapping[str, Mirror] | None = None,
    progress: Progress | None = None,
    workers: int = DEFAULT_WORKERS,
    on_ready: OnReady | None = None,
    on_stream: OnStream | None = None,
) -> dict[str, Path]:
    """Make every requested blob available in ``cache``; digest → verified path.

    ``client_for(host)`` is called only when something must be downloaded. With
    ``offline`` a blob that is neither cached nor in an OCI-layout mirror is an
    OfflineError naming the artifact and the digest. ``on_ready`` lets the caller start
    working on each blob while others still download (cached ones first, from this thread;
    downloaded ones from the worker threads); ``on_stream`` while it downloads (see the
    module docstring).
    """
    mirrors = mirrors or {}
    paths: dict[str, Path] = {}
    missing: dict[str, BlobRequest] = {}
    for request in requests:
        split_digest(request.digest)  # an unsupported digest fails before any download
        if request.digest in paths or request.digest in missing:
            continue
        cached = cache.path_for(request.digest)
        if cached.is_file():
            _touch(cached)  # `cache prune` removes what was not used for a while
            paths[request.digest] = cached
        else:
            missing[request.digest] = request
    if not missing:
        for digest, path in paths.items():
            if on_ready is not None:
                on_ready(digest, path, False)
        return paths

    need_network = [r for r in missing.values() if _needs_network(r, mirrors)]
    if offline and need_network:
        first = need_network[0]
        more = f" (and {len(need_network) - 1} more)" if len(need_network) > 1 else ""
        raise OfflineError(
            f"the layer of {first.artifact} ({first.digest}) is not in the cache{more}, and "
            "--offline forbids downloading it",
            hint=_FILL_CACHE_HINT,
        )
    if need_network and client_for is None:
        first = need_network[0]
        raise OfflineError(
            f"the layer of {first.artifact} ({first.digest}) is not in the cache",
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
                todo[0], cache, client_for, mirrors, progress, on_ready, on_stream
            )
        else:
            paths.update(
                _fetch_parallel(
                    todo, cache, client_for, mirrors, progress, workers, on_ready, on_stream
                )
            )
    finally:
        if progress is not None:
            progress.end()
    return paths


def _fetch_parallel(
    todo: Sequence[BlobRequest],
    cache: BlobCache,
    client_for: ClientFor | None,
    mirrors: Mapping[str, Mirror],
    progress: Progress | None,
    workers: int,
    on_ready: OnReady | None,
    on_stream: OnStream | None,
) -> dict[str, Path]:
    results: dict[str, Path] = {}
    # Largest first: the long downloads start early and the tail is short.
    ordered = sorted(todo, key=lambda r: -(r.size or 0))
    with ThreadPoolExecutor(max_workers=min(workers, len(ordered))) as executor:
        futures: dict[Future[Path], BlobRequest] = {
            executor.submit(
                _fetch_one, r, cache, client_for, mirrors, progress, on_ready, on_stream
            ): r
            for r in ordered
        }
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        errors = [f.exception() for f in done if f.exception() is not None]
        if errors:
            wait(pending)  # let running downloads finish cleaning up their files
            error = errors[0]
            assert error is not None
            raise error
        for future, request in futures.items():
            results[request.digest] = future.result()
    return results


def _fetch_one(
    request: BlobRequest,
    cache: BlobCache,
    client_for: ClientFor | None,
    mirrors: Mapping[str, Mirror],
    progress: Progress | None,
    on_ready: OnReady | None = None,
    on_stream: OnStream | None = None,
) -> Path:
    host, _, repository = request.source.partition("/")
    mirror = mirrors.get(host)
    tmp = cache.temp_path()
    try:
        if mirror is not None and mirror.layout is not None:
            _copy_from_layout(request, mirror.layout, tmp)
            path = cache.adopt(tmp, request.digest)  # verifies
        else:
            if mirror is not None and mirror.host is not None:
                host = mirror.host
                repository = f"{mirror.prefix}/{repository}" if mirror.prefix else repository
            assert client_for is not None
            client = client_for(host)
            advance = progress.advance if progress is not None else None
            try:
                streamer = _as_streamer(client) if on_stream is not None else None
                streamed = (
                    streamer is not None
                    and on_stream is not None
                    and _stream_into(streamer, repository, request, tmp, on_stream, advance)
                )
                if not streamed:
                    client.download_blob(
                        repository,
                        request.digest,
                        tmp,
                        expected_size=request.size,
                        progress=advance,
                    )
            except IntegrityError as exc:
                raise IntegrityError(
                    f"the layer of {request.artifact} from {host}/{repository} is damaged: "
                    f"{exc.message}; nothing of it was installed",
                    hint=exc.hint,
                ) from None
            path = cache.adopt(tmp, request.digest, verified=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    if progress is not None:
        progress.finished(request)
    if on_ready is not None:
        on_ready(request.digest, path, True)
    return path


def _as_streamer(client: BlobDownloader) -> BlobStreamer | None:
    return cast("BlobStreamer", client) if hasattr(client, "open_blob") else None


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


def _copy_from_layout(request: BlobRequest, layout: Path, tmp: Path) -> None:
    algorithm, hex_digest = split_digest(request.digest)
    source = layout / "blobs" / algorithm / hex_digest
    try:
        with source.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    except FileNotFoundError:
        raise FalcopkgError(
            f"the layer of {request.artifact} ({request.digest}) is not in the OCI layout {layout}",
            hint=f"copy the artifact into {layout} again (it must hold every blob falco.lock "
            "names), or remove that mirror from falco.toml",
        ) from None


def _needs_network(request: BlobRequest, mirrors: Mapping[str, Mirror]) -> bool:
    mirror = mirrors.get(request.source.partition("/")[0])
    return mirror is None or mirror.needs_network


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


# --- progress ---------------------------------------------------------------------------

ProgressMode = Literal["tty", "lines", "quiet"]


class Progress:
    """Download progress on stderr: one updating line on a terminal, plain lines otherwise.

    Thread-safe: workers call ``advance`` with chunk sizes and ``finished`` per blob.
    """

    REFRESH_SECONDS = 0.1

    def __init__(self, mode: ProgressMode, stream: TextIO | None = None) -> None:
        self.mode = mode
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._count = 0
        self._done = 0
        self._total = 0
        self._received = 0
        self._last_draw = 0.0
        self._drawn = False

    @classmethod
    def for_console(cls, verbosity: int, is_tty: bool) -> Progress:
        if verbosity < 0:
            return cls("quiet")
        return cls("tty" if is_tty else "lines")

    def begin(self, count: int, total_bytes: int) -> None:
        with self._lock:
            self._count, self._total = count, total_bytes
            self._done = self._received = 0

    def advance(self, size: int) -> None:
        with self._lock:
            self._received += size
            if self.mode == "tty":
                self._draw(force=False)

    def finished(self, request: BlobRequest) -> None:
        with self._lock:
            self._done += 1
            if self.mode == "lines":
                from falcopkg.terminal import escape_controls  # the name may be anyone's

                name = escape_controls(request.artifact)
                self.stream.write(f"Downloaded {name} ({format_size(request.size or 0)})\n")
                self.stream.flush()
            elif self.mode == "tty":
                self._draw(force=True)

    def end(self) -> None:
        with self._lock:
            if self.mode == "tty" and self._drawn:
                self.stream.write("\r\033[K")
                self.stream.flush()
                self._drawn = False

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.REFRESH_SECONDS:
            return
        self._last_draw = now
        total = f" / {format_size(self._total)}" if self._total else ""
        line = (
            f"Downloading {self._done}/{self._count} layers: {format_size(self._received)}{total}"
        )
        self.stream.write(f"\r\033[K{line}")
        self.stream.flush()
        self._drawn = True


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
