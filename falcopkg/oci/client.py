"""The OCI distribution client (SPEC §9): small, typed, and verifying what it fetches.

One ``RegistryClient`` talks to one registry host over one ``requests.Session`` (connection
pooling for parallel downloads). Every request has a timeout; connection errors, timeouts,
429 and 5xx are retried a bounded number of times with jittered exponential backoff (a
``Retry-After`` is honoured, capped); 4xx never is. Authentication (basic, bearer tokens) is
in ``auth.py``; the ``Authorization`` header only ever goes to the registry's own origin (or
the token realm), never to a host a redirect points at.

Everything fetched by digest is verified: manifests in memory, blobs while streaming into a
temporary file that is renamed into place only when size and digest match.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import requests.adapters
import requests.utils
import urllib3.exceptions

from falcopkg import __version__, fsutil
from falcopkg.core.reference import DIGEST_RE, REPOSITORY_RE, TAG_RE
from falcopkg.digests import bytes_digest, check_digest, split_digest
from falcopkg.errors import IntegrityError, InvalidReferenceError, NetworkError
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
from falcopkg.retry import (
    backoff_delay,
    is_retryable_status,
    parse_retry_after,
    send_with_retries,
)

CHUNK_SIZE = 1024 * 1024
MAX_MANIFEST_SIZE = 4 * 1024 * 1024  # distribution's own limit for manifests
DEFAULT_BLOB_BYTES_LIMIT = 16 * 1024 * 1024
MAX_REDIRECTS = 10
#: No new attempt after a connection failure once this much time has gone by, so that an
#: unreachable registry is reported in well under 30 s even with connect timeouts.
USER_AGENT = f"falcopkg/{__version__}"
_NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "TAG_UNKNOWN"})
# Docker Hub's name in references is not where its API lives.
_API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Content types that say nothing about which manifest this is; the body's mediaType decides.
_GENERIC_CONTENT_TYPES = frozenset(
    {"", "application/json", "application/octet-stream", "text/plain"}
)


# -- options and retry policy ------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryOptions:
    """How to talk to one registry (``[registries."host"]`` in falco.toml, or flags).

    ``timeout`` is seconds, or (connect, read) seconds. ``retries`` is the number of extra
    attempts after a transient failure. ``backoff`` is the first retry delay (doubling, with
    jitter, capped at 8 s); ``max_retry_after`` caps how long a ``Retry-After`` makes us wait.
    """

    plain_http: bool = False
    insecure: bool = False
    ca_file: str | Path | None = None
    timeout: float | tuple[float, float] = (10.0, 60.0)
    retries: int = 3
    backoff: float = 0.5
    max_retry_after: float = 30.0

    @property
    def timeouts(self) -> tuple[float, float]:
        if isinstance(self.timeout, tuple):
            return self.timeout
        return (float(self.timeout), float(self.timeout))


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


# -- request bodies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Body:
    """A request body that can be produced again for a retry (files are reopened)."""

    source: Path | bytes
    offset: int = 0
    length: int | None = None  # None: to the end

    @contextlib.contextmanager
    def open(self) -> Iterator[bytes | IO[bytes]]:
        if isinstance(self.source, bytes):
            end = None if self.length is None else self.offset + self.length
            yield self.source[self.offset : end]
            return
        with self.source.open("rb") as handle:
            if self.offset == 0 and self.length is None:
                yield handle  # requests streams file objects: never the whole file in memory
            else:
                handle.seek(self.offset)
                # A chunk of a chunked upload: bounded by the caller's chunk size.
                yield handle.read(self.length if self.length is not None else -1)


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
        if self.options.insecure:
            self._verify: bool | str = False
            # The user chose this for this registry; urllib3 would warn on every request to
            # it. Only its own host is silenced: other hosts are always verified (_verify_for).
            warnings.filterwarnings(
                "ignore",
                message=f"Unverified HTTPS request is being made to host '{re.escape(self._hostname)}'",
                category=urllib3.exceptions.InsecureRequestWarning,
            )
        elif self.options.ca_file is not None:
            self._verify = str(self.options.ca_file)
        else:
            self._verify = True
        self._session = _new_session()
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._proxies_lock = threading.Lock()
        self.auth = RegistryAuth(host, credential, self._request_token)

    # -- lifecycle
    def close(self) -> None:
        self._session.close()

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
        """Every tag of ``repository`` in the registry's order, following pagination."""
        _check_repository(repository)
        what = f"repository {self.host}/{repository}"
        query = {"n": str(page_size)} if page_size else {}
        url = self._url(f"/v2/{repository}/tags/list", query)
        tags: list[str] = []
        known: set[str] = set()
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            with self._send("GET", url, scopes=(Scope.of(repository, "pull"),), what=what) as resp:
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
        _check_repository(repository)
        _check_reference(reference)
        what = self._describe(repository, reference)
        headers = {"Accept": ", ".join(accept)}
        scopes = (Scope.of(repository, "pull"),)
        url = self._url(f"/v2/{repository}/manifests/{reference}")
        with self._send("GET", url, scopes=scopes, headers=headers, stream=True, what=what) as resp:
            if resp.status_code != 200:
                raise self._error(resp, what)
            data = _read_limited(resp, MAX_MANIFEST_SIZE, what)
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
        _check_repository(repository)
        _check_reference(reference)
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
            size = _int_header(resp, "Content-Length")
        if DIGEST_RE.match(reference):
            digest = reference
        if not DIGEST_RE.match(digest) or size is None or media_type in _GENERIC_CONTENT_TYPES:
            # The registry did not say enough: fetch it (small) and compute.
            return self.get_manifest(repository, reference, accept).descriptor
        return Descriptor(media_type, digest, size)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Upload ``data`` exactly as given under a tag or its digest; returns its digest."""
        _check_repository(repository)
        _check_reference(reference)
        digest = bytes_digest(data)
        what = self._describe(repository, reference)
        if DIGEST_RE.match(reference):
            _verify_bytes(data, reference, what)
            digest = reference
        url = self._url(f"/v2/{repository}/manifests/{reference}")
        scopes = (Scope.of(repository, "pull", "push"),)
        headers = {"Content-Type": media_type}
        with self._send(
            "PUT", url, scopes=scopes, headers=headers, body=_Body(data), what=what
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
        _check_repository(repository)
        algorithm, _ = split_digest(digest)
        what = f"blob {digest} from {self.host}/{repository}"
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        scopes = (Scope.of(repository, "pull"),)
        headers = {"Accept-Encoding": "identity"}
        with self._send("GET", url, scopes=scopes, headers=headers, stream=True, what=what) as resp:
            if resp.status_code != 200:
                raise self._error(resp, f"blob {digest} in {self.host}/{repository}")
            limit = _check_length(resp, expected_size, None, what)

            def chunks() -> Iterator[bytes]:
                hasher = hashlib.new(algorithm)
                received = 0
                try:
                    for chunk in resp.iter_content(CHUNK_SIZE):
                        received += len(chunk)
                        if limit is not None and received > limit:
                            raise _too_large(what, limit)
                        hasher.update(chunk)
                        yield chunk
                except requests.RequestException as exc:
                    raise self._transport_error(exc, url) from None
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
        _check_repository(repository)
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
        attempt = 0
        while True:
            try:
                self._upload_once(repository, source, digest, size, chunk_size, scopes, what)
                return True
            except (RegistryError, RegistryUnreachableError) as exc:
                transient = isinstance(exc, RegistryUnreachableError) or (
                    exc.status is not None and is_retryable_status(exc.status)
                )
                if not transient or attempt >= self.options.retries:
                    raise
                time.sleep(retry_delay(attempt, self.options))
                attempt += 1

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob of another repository; True if it did (201)."""
        _check_repository(repository)
        _check_repository(from_repository)
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
        _check_repository(repository)
        split_digest(digest)
        what = f"blob {digest} in {self.host}/{repository}"
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        with self._send("HEAD", url, scopes=scopes, what=what) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._error(resp, what)
            size = _int_header(resp, "Content-Length")
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
        _check_repository(repository)
        algorithm, _ = split_digest(digest)
        what = f"blob {digest} from {self.host}/{repository}"
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        scopes = (Scope.of(repository, "pull"),)
        # Blobs are stored compressed already; ask for them as they are.
        headers = {"Accept-Encoding": "identity"}
        attempt = 0
        while True:
            received = 0
            try:
                with open_sink() as sink:
                    with self._send(
                        "GET", url, scopes=scopes, headers=headers, stream=True, what=what
                    ) as resp:
                        if resp.status_code != 200:
                            raise self._error(resp, f"blob {digest} in {self.host}/{repository}")
                        limit = _check_length(resp, expected_size, max_size, what)
                        hasher = hashlib.new(algorithm)
                        for chunk in resp.iter_content(CHUNK_SIZE):
                            received += len(chunk)
                            if limit is not None and received > limit:
                                raise _too_large(what, limit)
                            hasher.update(chunk)
                            sink.write(chunk)
                            if progress is not None:
                                progress(len(chunk))
                    _verify_received(hasher, received, digest, expected_size, what)
                return
            except requests.RequestException as exc:
                # The connection broke mid-stream: start over (the sink was discarded).
                if progress is not None and received:
                    progress(-received)
                if attempt >= self.options.retries:
                    raise self._transport_error(exc, url) from None
                time.sleep(retry_delay(attempt, self.options))
                attempt += 1

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
            min_chunk = _int_header(resp, "OCI-Chunk-Min-Length") or 0
        octet = {"Content-Type": "application/octet-stream"}
        if chunk_size is None:
            headers = {**octet, "Content-Length": str(size)}
            final = _with_query(url, digest=digest)
            # An empty file would make requests send "Transfer-Encoding: chunked".
            body = _Body(source) if size else _Body(b"")
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
                chunk = _Body(source, offset, length)
                with self._send(
                    "PATCH", url, scopes=scopes, headers=headers, body=chunk, what=what, retry=False
                ) as resp:
                    if resp.status_code != 202:
                        raise self._error(resp, what)
                    url = self._upload_location(resp, url, what)
                offset += length
            headers = {**octet, "Content-Length": "0"}
            final = _with_query(url, digest=digest)
            body = _Body(b"")
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

    def _upload_location(self, resp: requests.Response, current: str, what: str) -> str:
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

    def _verify_for(self, url: str) -> bool | str:
        """TLS verification for ``url``: ca_file and insecure are about this registry's host
        (its token service on another port included); any other host, such as the object
        storage a blob redirect points at, is verified against the system's trust store."""
        return self._verify if urlsplit(url).hostname == self._hostname else True

    def _send(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[Scope],
        what: str,
        headers: Mapping[str, str] | None = None,
        body: _Body | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> requests.Response:
        """Send with registry authentication: answer 401 challenges (at most twice)."""
        for round_number in range(3):
            sent = self.auth.header_for(scopes)
            resp = self._send_retrying(
                method, url, headers=headers, auth=sent, body=body, stream=stream, retry=retry
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

    def _send_retrying(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        auth: str | None,
        body: _Body | None,
        stream: bool,
        retry: bool,
        auth_origin: tuple[str, str] | None = None,
    ) -> requests.Response:
        """One logical request: transient failures retried, redirects followed by hand."""

        def send_once() -> requests.Response:
            try:
                return self._transmit(
                    method, url, headers, auth, body, stream, auth_origin or self._origin
                )
            except requests.exceptions.SSLError as exc:  # a certificate problem stays one
                raise self._transport_error(exc, _failed_url(exc, url)) from None

        return send_with_retries(
            send_once,
            retries=self.options.retries if retry else 0,
            backoff=self.options.backoff,
            max_retry_after=self.options.max_retry_after,
            connect_timeout=self.options.timeouts[0],
            transient=(requests.RequestException,),
            give_up=lambda exc, _attempts: self._transport_error(exc, _failed_url(exc, url)),
        )

    def _transmit(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        auth: str | None,
        body: _Body | None,
        stream: bool,
        auth_origin: tuple[str, str],
    ) -> requests.Response:
        """Send once, following redirects ourselves so that ``Authorization`` goes to
        ``auth_origin`` only (a blob redirect to object storage must not get it)."""
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            request_headers = dict(headers or {})
            if auth is not None and (parts.scheme, parts.netloc.lower()) == auth_origin:
                request_headers["Authorization"] = auth
            with body.open() if body is not None else contextlib.nullcontext(None) as data:
                resp = self._session.request(
                    method,
                    url,
                    headers=request_headers,
                    data=data,
                    stream=stream,
                    allow_redirects=False,
                    timeout=self.options.timeouts,
                    verify=self._verify_for(url),
                    proxies=self._proxies_for(parts.scheme, parts.netloc),
                )
            location = resp.headers.get("Location")
            follow = method in ("GET", "HEAD") and resp.status_code in _REDIRECT_STATUSES
            if not follow or not location:
                return resp
            resp.close()
            url = urljoin(url, location)
        raise RegistryError(f"too many redirects from registry {self.host}", host=self.host)

    def _proxies_for(self, scheme: str, netloc: str) -> dict[str, str]:
        # trust_env is off (no netrc, no REQUESTS_CA_BUNDLE overriding ca_file), so the
        # standard proxy variables are applied here, NO_PROXY included.
        key = (scheme, netloc)
        with self._proxies_lock:
            if key not in self._proxies:
                self._proxies[key] = requests.utils.get_environ_proxies(f"{scheme}://{netloc}/")
            return self._proxies[key]

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
        resp = self._send_retrying(
            "GET",
            url,
            headers={"Accept": "application/json"},
            auth=basic_header(credential) if credential is not None else None,
            body=None,
            stream=False,
            retry=True,
            auth_origin=(parts.scheme, parts.netloc.lower()),
        )
        with resp:
            return resp.status_code, resp.content

    # -- errors ------------------------------------------------------------------------------------
    def _error(self, resp: requests.Response, what: str) -> RegistryError:
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
        host = urlsplit(url).netloc or self.host
        registry_hint = (
            f"check that the registry at {host} is running and the host and port are right"
            if self.options.plain_http
            else f"check the host and port; if {host} serves plain HTTP, set plain_http = true "
            f'under [registries."{host}"] in falco.toml or pass --plain-http'
        )
        causes = list(_causes(exc))
        if isinstance(exc, requests.exceptions.SSLError):
            verify_error = next(
                (c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None
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
            text = " ".join(str(c) for c in causes)
            not_tls = "WRONG_VERSION_NUMBER" in text or "record layer failure" in text
            return RegistryTLSError(
                f"TLS handshake with {host} failed"
                + (": it does not speak TLS" if not_tls else f": {_short(exc)}"),
                hint=registry_hint if not_tls else f'check the ca_file setting of "{host}"',
                host=host,
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            reason = f"connection timed out after {self.options.timeouts[0]:g}s"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            reason = f"no answer within {self.options.timeouts[1]:g}s"
        elif any(isinstance(c, ConnectionRefusedError) for c in causes):
            reason = "connection refused"
        elif any(isinstance(c, socket.gaierror) for c in causes) or "NameResolution" in " ".join(
            type(c).__name__ for c in causes
        ):
            reason = "host name not found"
        elif any(isinstance(c, ConnectionResetError) for c in causes):
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
    ) -> None:
        self.options_by_host = dict(options_by_host or {})
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


def _new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # registries need none
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _failed_url(exc: BaseException, url: str) -> str:
    """The URL a request failed on: a redirect target rather than the first URL."""
    request = getattr(exc, "request", None)
    failed = getattr(request, "url", None)
    return failed if isinstance(failed, str) and failed else url


def _check_repository(repository: str) -> None:
    if not REPOSITORY_RE.match(repository):
        raise InvalidReferenceError(
            f"invalid repository name {repository!r}",
            hint="repository names are lower-case path components like `falcosecurity/rules/x`",
        )


def _check_reference(reference: str) -> None:
    if not (TAG_RE.match(reference) or DIGEST_RE.match(reference)):
        raise InvalidReferenceError(f"invalid tag or digest {reference!r}")


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
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidManifestError(f"{what} is not JSON") from None
    declared = body.get("mediaType") if isinstance(body, dict) else None
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(body, dict) and "manifests" in body:
        return mediatypes.OCI_INDEX
    if isinstance(body, dict) and "layers" in body:
        return mediatypes.OCI_MANIFEST
    raise InvalidManifestError(f"{what} has no media type (neither Content-Type nor mediaType)")


def _int_header(resp: requests.Response, name: str) -> int | None:
    value = resp.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    buffer = bytearray()
    try:
        for chunk in resp.iter_content(CHUNK_SIZE):
            buffer += chunk
            if len(buffer) > limit:
                raise _too_large(what, limit)
    except requests.RequestException as exc:
        raise NetworkError(f"reading {what} failed: {_short(exc)}") from None
    return bytes(buffer)


def _check_length(
    resp: requests.Response, expected_size: int | None, max_size: int | None, what: str
) -> int | None:
    """The byte limit for this blob; refuse early when Content-Length already exceeds it."""
    limit = expected_size if expected_size is not None else max_size
    length = _int_header(resp, "Content-Length")
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
    except (UnicodeDecodeError, json.JSONDecodeError):
        value = None
    if not isinstance(value, dict):
        raise RegistryError(f"invalid JSON in the {what}")
    return value


def _registry_error_body(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) of the first entry of a distribution ``{"errors": [...]}`` body."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, None
    code, message = errors[0].get("code"), errors[0].get("message")
    return (
        code if isinstance(code, str) else None,
        message[:200] if isinstance(message, str) else None,
    )


def _read_prefix(resp: requests.Response, limit: int = 64 * 1024) -> bytes:
    """At most ``limit`` bytes of an error body (never an unbounded read)."""
    if resp.request.method == "HEAD":
        return b""
    data = bytearray()
    try:
        for chunk in resp.iter_content(8192):
            data += chunk
            if len(data) >= limit:
                break
    except (requests.RequestException, OSError):
        pass
    return bytes(data[:limit])


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (requests and urllib3 nest their causes deeply)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested.extend(arg for arg in current.args if isinstance(arg, BaseException))
        stack.extend(n for n in nested if isinstance(n, BaseException))


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
