"""The OCI distribution client (SPEC §9): small, typed, and verifying what it fetches.

One ``RegistryClient`` talks to one registry host through one falcopkg.http ``Transport``
(connection pooling for parallel downloads; redirects, per-host TLS, proxies, retries and
every time limit are there). Each request has a total deadline (``request_timeout``);
connection errors, 429 and 5xx are retried a bounded number of times with jittered
exponential backoff (a ``Retry-After`` over the cap is an error); 4xx never is.
Authentication (basic, bearer tokens) is in ``auth.py``; the ``Authorization`` header only
ever goes to the registry's own origin (or the token realm), never to a host a redirect
points at.

Everything fetched by digest is verified: manifests in memory, blobs while streaming into a
temporary file that is renamed into place only when size and digest match.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from falcopkg import fsutil
from falcopkg.core.reference import DIGEST_RE
from falcopkg.deadline import CommandBudget, Deadline, HostTimeoutError
from falcopkg.digests import bytes_digest, check_digest, split_digest
from falcopkg.errors import IntegrityError, InvalidReferenceError, NetworkError
from falcopkg.http import (
    STALL_BYTES,
    STALL_INTERVAL,
    Body,
    ConnectTimeout,
    ReadTimeout,
    Response,
    TLSError,
    Transport,
    TransportError,
    causes,
    environment_ca_bundle,
    timeout_error,
)
from falcopkg.numbers import parse_ascii_int
from falcopkg.oci import mediatypes
from falcopkg.oci.auth import RegistryAuth, Scope, basic_header, parse_www_authenticate
from falcopkg.oci.credentials import Credential, Warn, lookup_credential
from falcopkg.oci.descriptor import Descriptor, FetchedManifest
from falcopkg.oci.errors import (
    AuthenticationError,
    InvalidManifestError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    RegistryTLSError,
    RegistryUnreachableError,
)
from falcopkg.oci.store import (
    DEFAULT_BLOB_BYTES_LIMIT,
    MAX_MANIFEST_SIZE,
    check_reference,
    check_repository,
)
from falcopkg.retry import backoff_delay, is_retryable_status, parse_retry_after

CHUNK_SIZE = 1024 * 1024
#: Tag lists are followed for at most this many pages and tags, within a few requests' time.
MAX_TAG_PAGES = 1000
MAX_TAGS = 100_000
TAG_LIST_TIME_FACTOR = 4
_NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "TAG_UNKNOWN"})
# Docker Hub's name in references is not where its API lives.
_API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}
# Content types that say nothing about which manifest this is; the body's mediaType decides.
_GENERIC_CONTENT_TYPES = frozenset(
    {"", "application/json", "application/octet-stream", "text/plain"}
)


# -- options and retry policy ------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryOptions:
    """How to talk to one registry (``[registries."host"]`` in falco.toml, or flags).

    ``timeout`` is seconds, or (connect, read) seconds, for one connect or read.
    ``request_timeout`` is the total for one request (connect, reads, retries and waits;
    ``timeout = SECONDS`` in falco.toml). ``retries`` is the number of extra attempts after a
    transient failure. ``backoff`` is the first retry delay (doubling, with jitter, capped at
    8 s); a ``Retry-After`` longer than ``max_retry_after`` (or than the time left) is an
    error at once instead of a wait.
    """

    plain_http: bool = False
    insecure: bool = False
    ca_file: str | Path | None = None
    timeout: float | tuple[float, float] = (10.0, 60.0)
    retries: int = 3
    backoff: float = 0.5
    max_retry_after: float = 30.0
    request_timeout: float = 30.0
    # A response must bring at least stall_bytes every stall_interval seconds.
    stall_bytes: int = STALL_BYTES
    stall_interval: float = STALL_INTERVAL

    @property
    def timeouts(self) -> tuple[float, float]:
        if isinstance(self.timeout, tuple):
            return self.timeout
        return (float(self.timeout), float(self.timeout))


def deadline_seconds(options: RegistryOptions) -> float:
    """How long a tag listing (every page) may take."""
    return options.request_timeout * TAG_LIST_TIME_FACTOR


def retry_delay(
    attempt: int,
    options: RegistryOptions,
    retry_after: str | None = None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (0-based) with ``options``' backoff and cap
    (see falcopkg.retry.backoff_delay)."""
    return backoff_delay(
        attempt,
        backoff=options.backoff,
        max_retry_after=options.max_retry_after,
        retry_after=retry_after,
        rand=rand,
    )


# -- the client --------------------------------------------------------------------------------


class RegistryClient:
    """A client for one registry host. Thread-safe: share one per host (see RegistryPool).

    ``credential`` may be a Credential, None (anonymous), or a callable returning either,
    called only when the registry first asks for authentication.
    """

    def __init__(
        self,
        host: str,
        options: RegistryOptions | None = None,
        credential: Credential | Callable[[], Credential | None] | None = None,
        *,
        budget: CommandBudget | None = None,
    ) -> None:
        if not host or "/" in host or "@" in host or host != host.strip():
            raise InvalidReferenceError(
                f"invalid registry host {host!r}",
                hint="give a host name with an optional port, like `ghcr.io` or `localhost:5000`",
            )
        self.host = host
        self.options = options or RegistryOptions()
        scheme = "http" if self.options.plain_http else "https"
        api_host = _API_HOSTS.get(host, host)
        self.base_url = f"{scheme}://{api_host}"
        self._origin = (scheme, api_host.lower())
        self._hostname = urlsplit(self.base_url).hostname or api_host.lower()
        verify: bool | str
        if self.options.insecure:
            verify = False
        elif self.options.ca_file is not None:
            verify = str(self.options.ca_file)
        else:
            verify = environment_ca_bundle() or True
        connect_timeout, read_timeout = self.options.timeouts
        self.transport = Transport(
            api_host,
            describe=lambda exc, url, _attempts: self._transport_error(exc, url),
            tls_hostname=self._hostname,
            verify=verify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            request_timeout=self.options.request_timeout,
            retries=self.options.retries,
            backoff=self.options.backoff,
            max_retry_after=self.options.max_retry_after,
            budget=budget,
            stall_bytes=self.options.stall_bytes,
            stall_interval=self.options.stall_interval,
            kind="registry",
            slow_hint=f"check that {host} is up; a slow registry can be given more time with "
            f'`timeout = SECONDS` under [registries."{host}"] in falco.toml',
        )
        self.auth = RegistryAuth(host, credential, self._request_token)

    # -- lifecycle
    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    # -- API: base ------------------------------------------------------------------------------
    def ping(self) -> None:
        """Check that the registry speaks the distribution API and accepts our credentials."""
        what = f"registry {self.host}"
        with self._send("GET", self._url("/v2/"), scopes=(), what=what) as response:
            if response.status_code != 200:
                raise self._error(response, what)

    def list_tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of ``repository`` in the registry's order, following pagination (at
        most MAX_TAG_PAGES pages and MAX_TAGS tags, within TAG_LIST_TIME_FACTOR requests'
        time: a registry that paginates forever is an error, not a hang)."""
        check_repository(repository)
        what = f"repository {self.host}/{repository}"
        query = {"n": str(page_size)} if page_size else {}
        url = self._url(f"/v2/{repository}/tags/list", query)
        tags: list[str] = []
        known: set[str] = set()
        seen: set[str] = set()
        deadline = Deadline.after(self.options.request_timeout * TAG_LIST_TIME_FACTOR)
        while url and url not in seen:
            if len(seen) >= MAX_TAG_PAGES or len(tags) > MAX_TAGS:
                raise RegistryError(
                    f"registry {self.host} sent more than "
                    + (f"{MAX_TAGS} tags" if len(tags) > MAX_TAGS else f"{MAX_TAG_PAGES} pages")
                    + f" of tags for {what}; stopped following its pages",
                    hint="the registry paginates without end; report it to its operator",
                    host=self.host,
                )
            if deadline.expired:
                raise HostTimeoutError(
                    f"registry {self.host} took longer than {deadline_seconds(self.options):g}s "
                    f"to list the tags of {what} ({len(seen)} pages, {len(tags)} tags)",
                    hint="the registry is too slow; raise `timeout` under "
                    f'[registries."{self.host}"] in falco.toml',
                    host=self.host,
                )
            seen.add(url)
            with self._send(
                "GET", url, scopes=(Scope.of(repository, "pull"),), what=what, deadline=deadline
            ) as resp:
                if resp.status_code != 200:
                    raise self._error(resp, what)
                page = _json_object(resp.content, f"tag list of {what}").get("tags") or []
                if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                    raise RegistryError(f"registry {self.host} sent an invalid tag list for {what}")
                fresh = [tag for tag in page if tag not in known]
                if not fresh:
                    break  # a registry that ignores `last` would repeat itself forever
                known.update(fresh)
                tags.extend(fresh)
                next_link = resp.links.get("next", {}).get("url")
            if next_link:
                url = urljoin(url, next_link)
            elif page_size and len(page) == page_size:
                # No Link header but a full page: continue after the last tag (`n`/`last`).
                # A registry that ignores `n` (distribution 2.8) returns everything at once.
                url = self._url(
                    f"/v2/{repository}/tags/list", {"n": str(page_size), "last": page[-1]}
                )
            else:
                url = ""
        return tags

    # -- API: manifests ---------------------------------------------------------------------------
    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
        expected_digest: str | None = None,
    ) -> FetchedManifest:
        """The manifest's exact bytes, media type and digest.

        Fetched by digest (or with ``expected_digest``), the bytes are verified and an
        IntegrityError names the digest on a mismatch.
        """
        check_repository(repository)
        check_reference(reference)
        what = self._describe(repository, reference)
        headers = {"Accept": ", ".join(accept)}
        scopes = (Scope.of(repository, "pull"),)
        url = self._url(f"/v2/{repository}/manifests/{reference}")
        with self._send("GET", url, scopes=scopes, headers=headers, stream=True, what=what) as resp:
            if resp.status_code != 200:
                raise self._error(resp, what)
            data = _read_limited(resp, MAX_MANIFEST_SIZE, what, self.transport)
            content_type = _media_type(resp.headers.get("Content-Type"))
            header_digest = resp.headers.get("Docker-Content-Digest")
        pinned = reference if DIGEST_RE.match(reference) else None
        for expected in (pinned, expected_digest):
            if expected:
                _verify_bytes(data, expected, what)
        digest = pinned or expected_digest or bytes_digest(data)
        if header_digest and DIGEST_RE.match(header_digest):
            _verify_bytes(data, header_digest, f"{what} (Docker-Content-Digest)")
        return FetchedManifest(_manifest_media_type(content_type, data, what), digest, data)

    def head_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
    ) -> Descriptor | None:
        """The manifest's descriptor without its body, or None if it does not exist."""
        check_repository(repository)
        check_reference(reference)
        what = self._describe(repository, reference)
        url = self._url(f"/v2/{repository}/manifests/{reference}")
        scopes = (Scope.of(repository, "pull"),)
        headers = {"Accept": ", ".join(accept)}
        with self._send("HEAD", url, scopes=scopes, headers=headers, what=what) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._error(resp, what)
            digest = resp.headers.get("Docker-Content-Digest", "")
            media_type = _media_type(resp.headers.get("Content-Type"))
            size = _int_header(resp.headers, "Content-Length")
        if DIGEST_RE.match(reference):
            digest = reference
        if not DIGEST_RE.match(digest) or size is None or media_type in _GENERIC_CONTENT_TYPES:
            # The registry did not say enough: fetch it (small) and compute.
            return self.get_manifest(repository, reference, accept).descriptor
        return Descriptor(media_type, digest, size)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Upload ``data`` exactly as given under a tag or its digest; returns its digest."""
        check_repository(repository)
        check_reference(reference)
        digest = bytes_digest(data)
        what = self._describe(repository, reference)
        if DIGEST_RE.match(reference):
            _verify_bytes(data, reference, what)
            digest = reference
        url = self._url(f"/v2/{repository}/manifests/{reference}")
        scopes = (Scope.of(repository, "pull", "push"),)
        headers = {"Content-Type": media_type}
        with self._send(
            "PUT", url, scopes=scopes, headers=headers, body=Body(data), what=what
        ) as resp:
            if resp.status_code not in (200, 201):
                raise self._error(resp, what)
            stored = resp.headers.get("Docker-Content-Digest")
        if (
            stored
            and DIGEST_RE.match(stored)
            and stored.split(":")[0] == digest.split(":")[0]
            and stored != digest
        ):
            raise IntegrityError(
                f"registry {self.host} stored {what} under digest {stored}, expected {digest}",
                hint="the registry or a proxy changed the manifest; push it again",
            )
        return digest

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """The manifests whose ``subject`` is ``digest`` (OCI referrers API), or None when the
        registry has no such API (404: distribution 2.8; use the ``sha256-<hex>`` tags)."""
        check_repository(repository)
        split_digest(digest)
        what = f"referrers of {self.host}/{repository}@{digest}"
        url = self._url(f"/v2/{repository}/referrers/{digest}")
        headers = {"Accept": mediatypes.OCI_INDEX}
        found: list[Descriptor] = []
        seen: set[str] = set()
        while url and url not in seen and len(seen) < MAX_TAG_PAGES:
            seen.add(url)
            scopes = (Scope.of(repository, "pull"),)
            with self._send(
                "GET", url, scopes=scopes, headers=headers, stream=True, what=what
            ) as resp:
                if resp.status_code == 404:
                    return None
                if resp.status_code != 200:
                    raise self._error(resp, what)
                data = _read_limited(resp, MAX_MANIFEST_SIZE, what, self.transport)
                body = _json_object(data, what)
                next_link = resp.links.get("next", {}).get("url")
            entries = body.get("manifests")
            if not isinstance(entries, list):
                return None  # not a referrers answer: treat the API as missing
            found += [
                Descriptor.from_dict(entry, context=f"{what} manifests[{number}]")
                for number, entry in enumerate(entries)
            ]
            url = urljoin(url, next_link) if next_link else ""
        return found

    # -- API: blobs -------------------------------------------------------------------------------
    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size if the repository has it, else None."""
        return self._head_blob(repository, digest, (Scope.of(repository, "pull"),))

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
        """Stream a blob into ``dest`` (via a temporary file beside it), verified.

        ``progress`` is called with the number of bytes of each chunk received (negative
        when a retry starts over). More bytes than ``expected_size`` (or ``max_size``) are
        refused. On a digest or size mismatch no file is left behind and IntegrityError
        names the blob.
        """
        self._receive_blob(
            repository,
            digest,
            lambda: fsutil.atomic_writer(dest),
            expected_size=expected_size,
            max_size=max_size,
            progress=progress,
        )

    def get_blob_bytes(
        self, repository: str, digest: str, max_size: int = DEFAULT_BLOB_BYTES_LIMIT
    ) -> bytes:
        """A small blob (a config) in memory, verified; refuses more than ``max_size`` bytes."""
        buffers: list[io.BytesIO] = []

        @contextlib.contextmanager
        def new_buffer() -> Iterator[IO[bytes]]:
            buffers.clear()
            buffers.append(io.BytesIO())
            yield buffers[0]

        self._receive_blob(
            repository, digest, new_buffer, expected_size=None, max_size=max_size, progress=None
        )
        return buffers[0].getvalue()

    @contextlib.contextmanager
    def open_blob(
        self, repository: str, digest: str, expected_size: int | None = None
    ) -> Iterator[Iterator[bytes]]:
        """``with client.open_blob(repo, digest) as chunks: for chunk in chunks: …``

        Streams without a temporary file (no retry once started); the iterator raises
        IntegrityError after the last chunk if size or digest do not match, so a consumer
        must treat what it wrote as unverified until the iteration ends normally.
        """
        check_repository(repository)
        algorithm, _ = split_digest(digest)
        what = f"blob {digest} from {self.host}/{repository}"
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        scopes = (Scope.of(repository, "pull"),)
        headers = {"Accept-Encoding": "identity"}
        with self._send(
            "GET", url, scopes=scopes, headers=headers, stream=True, bulk=True, what=what
        ) as resp:
            if resp.status_code != 200:
                raise self._error(resp, f"blob {digest} in {self.host}/{repository}")
            limit = _check_length(resp, expected_size, None, what)

            def chunks() -> Iterator[bytes]:
                hasher = hashlib.new(algorithm)
                received = 0
                try:
                    for chunk in resp.chunks(CHUNK_SIZE):
                        received += len(chunk)
                        if limit is not None and received > limit:
                            raise _too_large(what, limit)
                        hasher.update(chunk)
                        # A view of a reused buffer: the consumer may keep what it gets.
                        yield bytes(chunk)
                except TransportError as exc:
                    raise self.transport.read_error(exc, url) from None
                _verify_received(hasher, received, digest, expected_size, what)

            yield chunks()

    def upload_blob(
        self,
        repository: str,
        source: Path | bytes,
        digest: str,
        size: int,
        chunk_size: int | None = None,
    ) -> bool:
        """Upload a blob unless the repository has it; True if it was uploaded.

        Monolithic (one streamed PUT) by default, chunked PATCHes of ``chunk_size`` bytes
        when given (at least the registry's ``OCI-Chunk-Min-Length``). A failed upload
        starts over from the beginning, reopening the file.
        """
        check_repository(repository)
        split_digest(digest)
        actual_size = len(source) if isinstance(source, bytes) else source.stat().st_size
        what = f"blob {digest} to {self.host}/{repository}"
        if actual_size != size:
            raise IntegrityError(
                f"cannot upload {what}: the source has {actual_size} bytes, not {size}"
            )
        if isinstance(source, bytes):
            _verify_bytes(source, digest, what)
        scopes = (Scope.of(repository, "pull", "push"),)
        if self._head_blob(repository, digest, scopes) is not None:
            return False

        def transient(exc: Exception) -> bool:
            # A failed upload session starts over from the beginning (the file is reopened).
            return isinstance(exc, RegistryUnreachableError) or (
                isinstance(exc, RegistryError)
                and exc.status is not None
                and is_retryable_status(exc.status)
            )

        self.transport.retrying(
            lambda: self._upload_once(repository, source, digest, size, chunk_size, scopes, what),
            transient=transient,
        )
        return True

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob of another repository; True if it did (201)."""
        check_repository(repository)
        check_repository(from_repository)
        split_digest(digest)
        what = f"blob {digest} mounted from {self.host}/{from_repository} into {repository}"
        url = self._url(
            f"/v2/{repository}/blobs/uploads/", {"mount": digest, "from": from_repository}
        )
        scopes = (Scope.of(repository, "pull", "push"), Scope.of(from_repository, "pull"))
        with self._send("POST", url, scopes=scopes, what=what) as resp:
            if resp.status_code == 201:
                return True
            if resp.status_code != 202:
                raise self._error(resp, what)
            location = resp.headers.get("Location")
        if location:
            # The registry opened an upload session instead; cancel it (best effort).
            with contextlib.suppress(NetworkError):
                cancel = urljoin(url, location)
                self._send("DELETE", cancel, scopes=scopes, what=what, retry=False).close()
        return False

    # -- blob internals ---------------------------------------------------------------------------
    def _head_blob(self, repository: str, digest: str, scopes: Sequence[Scope]) -> int | None:
        check_repository(repository)
        split_digest(digest)
        what = f"blob {digest} in {self.host}/{repository}"
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        with self._send("HEAD", url, scopes=scopes, what=what) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._error(resp, what)
            size = _int_header(resp.headers, "Content-Length")
        if size is None:
            raise RegistryError(f"registry {self.host} gave no size for {what}", host=self.host)
        return size

    def _receive_blob(
        self,
        repository: str,
        digest: str,
        open_sink: Callable[[], contextlib.AbstractContextManager[IO[bytes]]],
        *,
        expected_size: int | None,
        max_size: int | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        check_repository(repository)
        algorithm, _ = split_digest(digest)
        what = f"blob {digest} from {self.host}/{repository}"
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        scopes = (Scope.of(repository, "pull"),)
        # Blobs are stored compressed already; ask for them as they are.
        headers = {"Accept-Encoding": "identity"}

        def receive() -> None:
            received = 0
            try:
                with open_sink() as sink:
                    with self._send(
                        "GET",
                        url,
                        scopes=scopes,
                        headers=headers,
                        stream=True,
                        bulk=True,
                        what=what,
                    ) as resp:
                        if resp.status_code != 200:
                            raise self._error(resp, f"blob {digest} in {self.host}/{repository}")
                        limit = _check_length(resp, expected_size, max_size, what)
                        hasher = hashlib.new(algorithm)
                        for chunk in resp.chunks(CHUNK_SIZE):
                            received += len(chunk)
                            if limit is not None and received > limit:
                                raise _too_large(what, limit)
                            hasher.update(chunk)
                            sink.write(chunk)
                            if progress is not None:
                                progress(len(chunk))
                    _verify_received(hasher, received, digest, expected_size, what)
            except TransportError as exc:
                # The connection broke mid-stream: the sink was discarded; undo the progress.
                if progress is not None and received:
                    progress(-received)
                raise _BrokenDownload(self.transport.read_error(exc, url)) from None

        try:
            self.transport.retrying(
                receive, transient=lambda exc: isinstance(exc, _BrokenDownload) and exc.retryable
            )
        except _BrokenDownload as exc:
            raise exc.error from None

    def _upload_once(
        self,
        repository: str,
        source: Path | bytes,
        digest: str,
        size: int,
        chunk_size: int | None,
        scopes: Sequence[Scope],
        what: str,
    ) -> None:
        start = self._url(f"/v2/{repository}/blobs/uploads/")
        # No per-request retries inside an upload session: upload_blob starts it over.
        with self._send("POST", start, scopes=scopes, what=what, retry=False) as resp:
            if resp.status_code != 202:
                raise self._error(resp, what)
            url = self._upload_location(resp, start, what)
            min_chunk = _int_header(resp.headers, "OCI-Chunk-Min-Length") or 0
        octet = {"Content-Type": "application/octet-stream"}
        if chunk_size is None:
            headers = {**octet, "Content-Length": str(size)}
            final = _with_query(url, digest=digest)
            # An empty file: no body to open (Content-Length says 0).
            body = Body(source) if size else Body(b"")
        else:
            step = max(chunk_size, min_chunk, 1)
            offset = 0
            while offset < size:
                length = min(step, size - offset)
                headers = {
                    **octet,
                    "Content-Length": str(length),
                    "Content-Range": f"{offset}-{offset + length - 1}",
                }
                chunk = Body(source, offset, length)
                with self._send(
                    "PATCH", url, scopes=scopes, headers=headers, body=chunk, what=what, retry=False
                ) as resp:
                    if resp.status_code != 202:
                        raise self._error(resp, what)
                    url = self._upload_location(resp, url, what)
                offset += length
            headers = {**octet, "Content-Length": "0"}
            final = _with_query(url, digest=digest)
            body = Body(b"")
        with self._send(
            "PUT", final, scopes=scopes, headers=headers, body=body, what=what, retry=False
        ) as resp:
            if resp.status_code not in (201, 204):
                raise self._error(resp, what)
            stored = resp.headers.get("Docker-Content-Digest")
        if (
            stored
            and DIGEST_RE.match(stored)
            and stored != digest
            and stored.split(":")[0] == digest.split(":")[0]
        ):
            raise IntegrityError(f"registry {self.host} stored {what} under digest {stored}")

    def _upload_location(self, resp: Response, current: str, what: str) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(
                f"registry {self.host} gave no upload location for {what}", host=self.host
            )
        # Relative or absolute; its query (upload state) must be kept as is.
        return urljoin(current, location)

    # -- HTTP plumbing ----------------------------------------------------------------------------
    def _url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        url = f"{self.base_url}{path}"
        return f"{url}?{urlencode(query)}" if query else url

    def _describe(self, repository: str, reference: str) -> str:
        separator = "@" if DIGEST_RE.match(reference) else ":"
        return f"manifest {self.host}/{repository}{separator}{reference}"

    def _same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self._origin

    def _send(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[Scope],
        what: str,
        headers: Mapping[str, str] | None = None,
        body: Body | None = None,
        stream: bool = False,
        retry: bool = True,
        bulk: bool = False,
        deadline: Deadline | None = None,
    ) -> Response:
        """Send with registry authentication: answer 401 challenges (at most twice)."""
        for round_number in range(3):
            sent = self.auth.header_for(scopes)
            resp = self.transport.send(
                method,
                url,
                headers=headers,
                authorization=sent,
                auth_origin=self._origin,
                body=body,
                stream=stream,
                retry=retry,
                bulk=bulk,
                deadline=deadline,
            )
            if resp.status_code != 401 or not self._same_origin(resp.url):
                return resp
            challenge = resp.headers.get("WWW-Authenticate")
            resp.close()
            if round_number < 2:
                self.auth.handle_unauthorized(challenge, scopes, sent)
        raise self._unauthorized(challenge, scopes, what)

    def _unauthorized(
        self, challenge: str | None, scopes: Sequence[Scope], what: str
    ) -> RegistryError:
        if self.auth.credential is None:
            return self.auth.login_required(what)
        errors = {c.params.get("error") for c in parse_www_authenticate(challenge)}
        if "insufficient_scope" in errors and scopes:
            wanted = ", ".join(
                f"{'/'.join(sorted(s.actions))} on {s.repository}" for s in sorted(scopes)
            )
            return PermissionDeniedError(
                f"registry {self.host} does not allow {wanted} for these credentials",
                hint=f"check the account's permissions, or log in as another user with "
                f"`falcopkg registry login {self.host}`",
                host=self.host,
                status=401,
            )
        return self.auth.credentials_rejected(f"registry {self.host} ({what})")

    def _request_token(
        self, realm: str, params: list[tuple[str, str]], credential: Credential | None
    ) -> tuple[int, bytes]:
        """GET a token from the realm (auth.TokenRequester); basic credentials only to it."""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(
                f"registry {self.host} named an invalid token service {realm!r}", host=self.host
            )
        if parts.scheme == "http" and not self.options.plain_http:
            # The realm would get the password (or hand out a token) in cleartext.
            raise AuthenticationError(
                f"registry {self.host} named a plain-http token service {realm!r}; refusing "
                "to send credentials or fetch tokens without TLS",
                hint=f"fix the token realm of {self.host} to use https://, or set "
                f'plain_http = true under [registries."{self.host}"] if the whole registry '
                "is plain HTTP",
                host=self.host,
            )
        query = parse_qsl(parts.query, keep_blank_values=True) + params
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
        resp = self.transport.send(
            "GET",
            url,
            headers={"Accept": "application/json"},
            authorization=basic_header(credential) if credential is not None else None,
            auth_origin=(parts.scheme, parts.netloc.lower()),
        )
        with resp:
            return resp.status_code, resp.content

    # -- errors ------------------------------------------------------------------------------------
    def _error(self, resp: Response, what: str) -> RegistryError:
        """The RegistryError for a failed response (closes nothing; callers use ``with``)."""
        status = resp.status_code
        body = _read_prefix(resp)
        code, message = _registry_error_body(body)
        detail = f" ({code}: {message})" if code and message else f" ({code})" if code else ""
        fields: dict[str, Any] = {
            "host": self.host,
            "status": status,
            "code": code,
            "registry_message": message,
            "retry_after": parse_retry_after(resp.headers.get("Retry-After"))
            if status in (429, 503)
            else None,
        }
        if status == 404 or code in _NOT_FOUND_CODES:
            return NotFoundError(
                f"{what} not found{detail}",
                hint="check the repository, tag or digest (and that you may see it)",
                **fields,
            )
        if status == 401:
            return AuthenticationError(
                f"registry {self.host} refused access to {what}{detail}",
                hint=f"run `falcopkg registry login {self.host}`",
                **fields,
            )
        if status == 403 or code == "DENIED":
            return PermissionDeniedError(
                f"registry {self.host} denied access to {what}{detail}",
                hint="check that your account has permission for this repository",
                **fields,
            )
        if status == 429:
            return RegistryError(
                f"registry {self.host} is rate-limiting requests (HTTP 429) for {what}",
                hint="wait and try again; authenticated pulls usually get higher limits",
                **fields,
            )
        if status >= 500:
            return RegistryError(
                f"registry {self.host} failed with HTTP {status} for {what}{detail}",
                hint="the registry has a problem; try again later",
                **fields,
            )
        hint = None
        if status == 400 and self.options.plain_http and b"HTTPS server" in body:
            hint = f"the registry speaks HTTPS: do not set plain_http for {self.host}"
        return RegistryError(
            f"registry {self.host} rejected the request for {what}: HTTP {status}{detail}",
            hint=hint,
            **fields,
        )

    def _transport_error(self, exc: BaseException, url: str) -> NetworkError:
        timed_out = timeout_error(exc)
        if timed_out is not None:
            return timed_out
        host = urlsplit(url).netloc or self.host
        registry_hint = (
            f"check that the registry at {host} is running and the host and port are right"
            if self.options.plain_http
            else f"check the host and port; if {host} serves plain HTTP, set plain_http = true "
            f'under [registries."{host}"] in falco.toml or pass --plain-http'
        )
        found_causes = list(causes(exc))
        if isinstance(exc, TLSError):
            verify_error = next(
                (c for c in found_causes if isinstance(c, ssl.SSLCertVerificationError)), None
            )
            if verify_error is not None:
                reason = verify_error.verify_message or "certificate verify failed"
                hint = (
                    f'set ca_file = "/path/to/ca.pem" under [registries."{host}"] in '
                    "falco.toml (insecure = true skips verification)"
                )
                if urlsplit(url).hostname != self._hostname:
                    hint = (
                        f"registry {self.host} redirected to {host}, whose certificate must be "
                        f"trusted by the system's CA store (ca_file and insecure apply to "
                        f"{self.host} only)"
                    )
                return RegistryTLSError(
                    f"TLS certificate of {host} is not trusted: {reason}", hint=hint, host=host
                )
            text = " ".join(str(c) for c in found_causes)
            not_tls = "WRONG_VERSION_NUMBER" in text or "record layer failure" in text
            return RegistryTLSError(
                f"TLS handshake with {host} failed"
                + (": it does not speak TLS" if not_tls else f": {_short(exc)}"),
                hint=registry_hint if not_tls else f'check the ca_file setting of "{host}"',
                host=host,
            )
        if isinstance(exc, ConnectTimeout):
            reason = f"connection timed out after {self.options.timeouts[0]:g}s"
        elif isinstance(exc, ReadTimeout):
            reason = f"no answer within {self.options.timeouts[1]:g}s"
        elif any(isinstance(c, ConnectionRefusedError) for c in found_causes):
            reason = "connection refused"
        elif any(
            isinstance(c, socket.gaierror) for c in found_causes
        ) or "NameResolution" in " ".join(type(c).__name__ for c in found_causes):
            reason = "host name not found"
        elif any(isinstance(c, ConnectionResetError) for c in found_causes):
            reason = "connection reset"
        else:
            reason = _short(exc)
        return RegistryUnreachableError(
            f"cannot reach registry {host}: {reason}", hint=registry_hint, host=host
        )


# -- the pool ------------------------------------------------------------------------------------


class RegistryPool:
    """One RegistryClient per host, built from per-registry options (thread-safe).

    ``plain_http=True`` (the global flag) forces plain HTTP for every host.
    ``credential_overrides`` are explicit credentials (flags); other credentials are looked
    up lazily with ``lookup_credential`` when a registry first asks for them.
    """

    def __init__(
        self,
        options_by_host: Mapping[str, RegistryOptions] | None = None,
        default: RegistryOptions | None = None,
        plain_http: bool = False,
        credential_overrides: Mapping[str, Credential] | None = None,
        *,
        warn: Warn | None = None,
        budget: CommandBudget | None = None,
    ) -> None:
        self.options_by_host = dict(options_by_host or {})
        # One per command: every client shares its deadline and its memory of failed hosts.
        self.budget = budget or CommandBudget()
        self.default = default or RegistryOptions()
        self.plain_http = plain_http
        self.credential_overrides = dict(credential_overrides or {})
        self._warn = warn
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def options_for(self, host: str) -> RegistryOptions:
        options = self.options_by_host.get(host, self.default)
        return replace(options, plain_http=True) if self.plain_http else options

    def client(self, host: str) -> RegistryClient:
        with self._lock:
            existing = self._clients.get(host)
            if existing is None:
                explicit = self.credential_overrides.get(host)
                existing = RegistryClient(
                    host,
                    self.options_for(host),
                    lambda: lookup_credential(host, explicit, warn=self._warn),
                    budget=self.budget,
                )
                self._clients[host] = existing
            return existing

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> RegistryPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- helpers -------------------------------------------------------------------------------------


class _BrokenDownload(Exception):
    """A blob download that failed mid-way; retried from zero unless it timed out."""

    def __init__(self, error: NetworkError) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = not isinstance(error, HostTimeoutError)


def _with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added, keeping its own query (upload session state)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _manifest_media_type(content_type: str, data: bytes, what: str) -> str:
    if content_type not in _GENERIC_CONTENT_TYPES:
        return content_type
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # also int()'s digit limit, and deep nesting
        raise InvalidManifestError(f"{what} is not JSON") from None
    found = mediatypes.media_type_of_manifest(body)
    if found is not None:
        return found
    raise InvalidManifestError(f"{what} has no media type (neither Content-Type nor mediaType)")


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    """A numeric header's value; None when missing or not plain ASCII digits (``²``)."""
    try:
        return parse_ascii_int(headers.get(name, "").strip(), name)
    except ValueError:
        return None


def _read_limited(resp: Response, limit: int, what: str, transport: Transport) -> bytes:
    buffer = bytearray()
    try:
        for chunk in resp.iter_content(CHUNK_SIZE):
            buffer += chunk
            if len(buffer) > limit:
                raise _too_large(what, limit)
    except TransportError as exc:
        error = transport.read_error(exc, resp.url)
        if isinstance(error, HostTimeoutError):
            raise error from None
        raise NetworkError(f"reading {what} failed: {_short(exc)}") from None
    return bytes(buffer)


def _check_length(
    resp: Response, expected_size: int | None, max_size: int | None, what: str
) -> int | None:
    """The byte limit for this blob; refuse early when Content-Length already exceeds it."""
    limit = expected_size if expected_size is not None else max_size
    length = _int_header(resp.headers, "Content-Length")
    if length is not None and not resp.headers.get("Content-Encoding"):
        if expected_size is not None and length != expected_size:
            raise IntegrityError(
                f"{what} has {length} bytes, expected {expected_size}",
                hint="the registry holds different content than the lock or manifest says",
            )
        if limit is not None and length > limit:
            raise _too_large(what, limit)
    return limit


def _too_large(what: str, limit: int) -> IntegrityError:
    return IntegrityError(f"{what} is larger than the allowed {limit} bytes; refusing it")


def _verify_received(
    hasher: Any, received: int, digest: str, expected_size: int | None, what: str
) -> None:
    if expected_size is not None and received != expected_size:
        raise IntegrityError(
            f"{what} has {received} bytes, expected {expected_size}",
            hint="the registry holds different content than expected; nothing was written",
        )
    check_digest(
        f"{hasher.name}:{hasher.hexdigest()}",
        digest,
        what,
        hint="the registry's copy is corrupt or was tampered with; nothing was written",
    )


def _verify_bytes(data: bytes, digest: str, what: str) -> None:
    algorithm, _ = split_digest(digest)
    check_digest(
        bytes_digest(data, algorithm),
        digest,
        what,
        "the registry or a proxy returned different content",
    )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # also int()'s digit limit, and deep nesting
        value = None
    if not isinstance(value, dict):
        raise RegistryError(f"invalid JSON in the {what}")
    return value


def _registry_error_body(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) of the first entry of a distribution ``{"errors": [...]}`` body."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # also int()'s digit limit, and deep nesting
        return None, None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, None
    code, message = errors[0].get("code"), errors[0].get("message")
    return (
        code if isinstance(code, str) else None,
        message[:200] if isinstance(message, str) else None,
    )


def _read_prefix(resp: Response, limit: int = 64 * 1024) -> bytes:
    """At most ``limit`` bytes of an error body (never an unbounded read)."""
    if resp.method == "HEAD":
        return b""
    data = bytearray()
    try:
        for chunk in resp.iter_content(8192):
            data += chunk
            if len(data) >= limit:
                break
    except (TransportError, OSError):
        pass
    return bytes(data[:limit])


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = [
    "RegistryClient",
    "RegistryOptions",
    "RegistryPool",
    "is_retryable_status",
    "parse_retry_after",
    "retry_delay",
]
