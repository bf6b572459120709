"""The one HTTP transport of falcopkg (SPEC §9): registries and indexes both send through it.

A :class:`Transport` serves one configured host. It follows redirects by hand, so that the
``Authorization`` header goes only to its own origin and the host's TLS settings (``ca_file``,
``insecure``) apply to that host only: a redirect target is verified against the system's
trust store, or ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``. Proxies come from the standard
environment variables (``NO_PROXY`` included). One retry loop (falcopkg.retry's policy:
connection errors, 429 and 5xx, never another 4xx) covers single requests and whole
operations (an upload session, a blob download restarting from zero).

Time is bounded everywhere:

- each request has a total deadline (connect, every read, retries and ``Retry-After``
  waits), and the command's :class:`~falcopkg.deadline.CommandBudget` may add one of its own;
- a ``Retry-After`` longer than the cap or than the time left is an immediate error;
- a response that delivers fewer than ``stall_bytes`` in ``stall_interval`` seconds is
  aborted (a dripping server cannot keep a command alive), whatever the per-read timeout;
- a host that failed at that level fails every later request of the command at once.

The reads are bounded below requests: the connections' sockets are wrapped so that every
``recv`` waits at most until the next of these limits (a single blocking read of a large
chunk cannot hide a drip). Bulk bodies (blobs) are bounded by the stall rule and the
command's deadline, not by the per-request one: a large plugin on a slow link is fine as
long as bytes keep coming.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import os
import re
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3
import urllib3.connection
import urllib3.exceptions

from falcopkg import __version__
from falcopkg.deadline import CLOCK, CommandBudget, Deadline, HostTimeoutError
from falcopkg.errors import NetworkError
from falcopkg.retry import send_with_retries

T = TypeVar("T")

USER_AGENT = f"falcopkg/{__version__}"
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Total seconds for one request unless the host's ``timeout`` says otherwise.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: A ``Retry-After`` longer than this is not waited for.
MAX_RETRY_AFTER = 30.0
#: A response body must deliver at least STALL_BYTES every STALL_INTERVAL seconds.
STALL_BYTES = 1024
STALL_INTERVAL = 10.0

#: What to say when a connection-level failure happened: (exception, url, attempts) → error.
Describe = Callable[[BaseException, str, int], NetworkError]


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value of HTTP basic auth."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def environment_ca_bundle() -> str | None:
    """The CA bundle the environment names (requests' and OpenSSL's variables), if any."""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(variable)
        if value:
            return value
    return None


@dataclass(frozen=True)
class Body:
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


# -- bounded reads, below requests ---------------------------------------------------------------


class _GuardTimeout(TimeoutError):
    """Raised inside a read when a guard's limit is hit; requests wraps it, the transport
    unwraps it (see :func:`timeout_error`)."""

    def __init__(self, error: HostTimeoutError) -> None:
        super().__init__(error.message)
        self.error = error


class _Guard:
    """The limits on the reads of one request: its deadline, the per-read timeout (silence),
    the throughput rule, and when to tell the user we are waiting."""

    def __init__(
        self,
        host: str,
        deadline: Deadline,
        *,
        total: float,
        read_timeout: float,
        stall_bytes: int,
        stall_interval: float,
        budget: CommandBudget,
        slow_hint: str | None,
        kind: str,
    ) -> None:
        self.host = host
        self.kind = kind
        self.deadline = deadline
        self.total = total
        self.read_timeout = read_timeout
        self.stall_bytes = stall_bytes
        self.stall_interval = stall_interval
        self.budget = budget
        self.slow_hint = slow_hint
        self.last_data = CLOCK.monotonic()
        self.window_start: float | None = None  # the throughput rule starts at the first byte
        self.window_bytes = 0
        self.received_bytes = 0
        self.noticed = False

    def next_wait(self) -> float:
        """How long the next read may block; raises when a limit is already reached."""
        now = CLOCK.monotonic()
        left = self.deadline.at - now
        if left <= 0:
            what = (
                f"did not finish answering within {self.total:g}s ({self.received_bytes} "
                "bytes received)"
                if self.received_bytes
                else f"did not answer within {self.total:g}s"
            )
            raise _GuardTimeout(
                HostTimeoutError(
                    f"{self.kind} {self.host} {what}", hint=self.slow_hint, host=self.host
                )
            )
        silent_for = now - self.last_data
        if silent_for >= self.read_timeout:
            raise TimeoutError("timed out")  # the per-read timeout: transient, retried
        wait = min(left, self.read_timeout - silent_for)
        if self.window_start is not None and self.stall_interval > 0:
            in_window = now - self.window_start
            if in_window >= self.stall_interval:
                if self.window_bytes < self.stall_bytes:
                    raise _GuardTimeout(
                        HostTimeoutError(
                            f"{self.kind} {self.host} stalled: {self.window_bytes} bytes in the last "
                            f"{in_window:.0f}s (at least {self.stall_bytes} bytes every "
                            f"{self.stall_interval:g}s are needed; {self.received_bytes} "
                            "bytes received in all)",
                            hint="the server or the network is too slow or stuck; try again later",
                            host=self.host,
                        )
                    )
                self.window_start, self.window_bytes, in_window = now, 0, 0.0
            wait = min(wait, self.stall_interval - in_window)
        if not self.noticed:
            until_notice = self.last_data + self.budget.notice_after - now
            if until_notice <= 0:
                self.noticed = True
                self.budget.waiting(self.host)
            else:
                wait = min(wait, until_notice)
        return max(wait, 0.001)

    def received(self, count: int) -> None:
        now = CLOCK.monotonic()
        self.last_data = now
        if self.window_start is None:
            self.window_start = now
        self.window_bytes += count
        self.received_bytes += count


_current = threading.local()  # the guard of the request this thread is sending


class _GuardedSocket:
    """A connection's socket whose reads obey the guard of the request it carries."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()
        self.guard: _Guard | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> IO[bytes]:
        # http.client reads responses through this file: its reads come to recv_into. As in
        # socket.makefile, the file holds a reference: closing the connection while a
        # response is still being read closes the socket only when that file is closed.
        self._sock._io_refs += 1
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]

    def _decref_socketios(self) -> None:
        self._sock._decref_socketios()

    def sendall(self, data: Any, *args: Any) -> None:
        self._sock.sendall(data, *args)
        if self.guard is not None:
            self.guard.last_data = CLOCK.monotonic()  # an upload in progress is not silence

    def recv_into(self, buffer: Any, *args: Any) -> int:
        guard = self.guard
        if guard is None:
            return int(self._sock.recv_into(buffer, *args))
        try:
            while True:
                self._sock.settimeout(guard.next_wait())
                try:
                    count = int(self._sock.recv_into(buffer, *args))
                except TimeoutError:
                    continue  # next_wait decides whether this is the end
                guard.received(count)
                return count
        finally:
            self._sock.settimeout(self._timeout)


def _attach_guard(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, _GuardedSocket):
        sock.guard = getattr(_current, "guard", None)


class _GuardedConnection(urllib3.connection.HTTPConnection):
    """Wraps the socket on connect and hands it the sending thread's guard per request
    (mixed into both connection classes, ahead of urllib3's)."""

    def connect(self) -> None:
        super().connect()
        self.sock = _GuardedSocket(self.sock)
        _attach_guard(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_guard(self)
        super().request(*args, **kwargs)


class _HTTPSConnection(_GuardedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with guarded connections (direct and through proxies)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


def new_session() -> requests.Session:
    session = requests.Session()
    # No ~/.netrc credentials and no environment CA bundle overriding ca_file: the transport
    # decides what is sent and verified, and applies proxies per hop.
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # nobody needs them
    adapter = _Adapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def timeout_error(exc: BaseException) -> HostTimeoutError | None:
    """The deadline, stall or wait error behind a requests exception, if it is one."""
    for cause in causes(exc):
        if isinstance(cause, _GuardTimeout):
            return cause.error
        if isinstance(cause, HostTimeoutError):
            return cause
    return None


def causes(exc: BaseException) -> Iterator[BaseException]:
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


def body_chunks(response: requests.Response, chunk_size: int) -> Iterator[memoryview | bytes]:
    """The body of a streamed ``response`` in chunks of up to ``chunk_size`` bytes.

    An unencoded body is read with ``readinto`` straight from the connection into one
    reused buffer: each chunk is a view of that buffer, valid only until the next one is
    asked for (copy it to keep it). That skips urllib3's per-chunk copies and allocations
    (a fresh megabyte per chunk costs page faults); the reads still go through the guarded
    socket (deadlines, stalls). Failures are raised as requests raises them from
    ``iter_content`` (a short body as ChunkedEncodingError, a read timeout as
    ConnectionError), so callers handle both paths alike. Anything else (a
    Content-Encoding to decode, a body already being read) goes through ``iter_content``.
    """
    raw = response.raw
    connection_body = getattr(raw, "_fp", None)
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if (
        not isinstance(connection_body, http.client.HTTPResponse)
        or encoding not in ("", "identity")
        or response._content_consumed  # type: ignore[attr-defined]
        or getattr(raw, "_fp_bytes_read", 0)
        or len(getattr(raw, "_decoded_buffer", b""))
    ):
        yield from response.iter_content(chunk_size)
        return
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        try:
            count = connection_body.readinto(buffer)
        except (TimeoutError, ssl.SSLError, http.client.HTTPException, OSError) as exc:
            raise _read_failure(exc, response) from exc
        if not count:
            left = connection_body.length
            if left:  # http.client returns 0 for a body cut short; urllib3 would raise
                short = http.client.IncompleteRead(b"", left)
                raise _read_failure(short, response) from None
            break
        yield view[:count]
    response._content_consumed = True  # type: ignore[attr-defined]
    raw.release_conn()  # read to its end: the connection goes back to the pool


def _read_failure(exc: BaseException, response: requests.Response) -> requests.RequestException:
    """``exc`` from a body read, wrapped as ``iter_content`` would wrap it."""
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, ssl.SSLError) and "read operation timed out" in str(exc)
    ):
        return requests.exceptions.ConnectionError(
            f"Read timed out. ({exc})", exc, request=response.request
        )
    if isinstance(exc, ssl.SSLError):
        return requests.exceptions.SSLError(exc, request=response.request)
    return requests.exceptions.ChunkedEncodingError(
        f"Connection broken: {exc!r}", exc, request=response.request
    )


def failed_url(exc: BaseException, url: str) -> str:
    """The URL a request failed on: a redirect target rather than the first URL."""
    request = getattr(exc, "request", None)
    failed = getattr(request, "url", None)
    return failed if isinstance(failed, str) and failed else url


# -- the transport -------------------------------------------------------------------------------


class _Outcome:
    """A finished operation, as the retry loop sees a response."""

    status_code = 200
    headers: Mapping[str, str] = {}

    def __init__(self, value: object) -> None:
        self.value = value

    def close(self) -> None:
        pass


class _Again(Exception):
    """A transient failure of a whole operation, to be retried."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Transport:
    """HTTP to one configured host (``host``: its ``netloc``; its TLS settings apply to
    ``tls_hostname`` only). Thread-safe; ``close`` ends its connections."""

    def __init__(
        self,
        host: str,
        *,
        describe: Describe,
        tls_hostname: str | None = None,
        verify: bool | str = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = MAX_RETRY_AFTER,
        budget: CommandBudget | None = None,
        stall_bytes: int = STALL_BYTES,
        stall_interval: float = STALL_INTERVAL,
        slow_hint: str | None = None,
        kind: str = "server",
    ) -> None:
        self.host = host
        self.kind = kind  # how messages call the host: "registry", "server"
        self.tls_hostname = (tls_hostname or urlsplit(f"//{host}").hostname or host).lower()
        self.verify = verify
        self.request_timeout = request_timeout
        self.connect_timeout = min(connect_timeout, request_timeout)
        self.read_timeout = min(read_timeout, request_timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.budget = budget or CommandBudget()
        self.stall_bytes = stall_bytes
        self.stall_interval = stall_interval
        self.slow_hint = slow_hint
        self._describe = describe
        if verify is False:
            # The user chose this for this host; urllib3 would warn on every request to it.
            # Only its own host is silenced: other hosts are always verified (verify_for).
            warnings.filterwarnings(
                "ignore",
                message=f"Unverified HTTPS request is being made to host "
                f"'{re.escape(self.tls_hostname)}'",
                category=urllib3.exceptions.InsecureRequestWarning,
            )
        self._session = new_session()
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    # -- one request ----------------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        authorization: str | None = None,
        auth_origin: tuple[str, str] | None = None,
        body: Body | None = None,
        stream: bool = False,
        retry: bool = True,
        bulk: bool = False,
        deadline: Deadline | None = None,
        check_redirect: Callable[[str], None] | None = None,
    ) -> requests.Response:
        """One logical request: transient failures retried within its deadline, GET/HEAD
        redirects followed by hand. ``authorization`` goes to ``auth_origin`` (scheme,
        netloc; default: the URL's own) only. ``bulk``: the body (read by the caller) is
        bounded by the stall rule and the command's deadline instead of this request's (so
        is a request whose body is a file).
        ``check_redirect`` may refuse a redirect target (raise)."""
        parts = urlsplit(url)
        self._fail_fast(parts.netloc)
        origin = auth_origin or (parts.scheme, parts.netloc.lower())
        budget = self.budget.deadline.sooner(deadline)
        # Uploading a file takes as long as it takes: bounded by the per-read silence and
        # the throughput rule on the answer, not by the request timeout.
        uploading = body is not None and isinstance(body.source, Path)
        request_deadline = (
            budget if uploading else Deadline.after(self.request_timeout).sooner(budget)
        )

        def send_once() -> requests.Response:
            try:
                return self._transmit(
                    method,
                    url,
                    headers=headers,
                    authorization=authorization,
                    auth_origin=origin,
                    body=body,
                    stream=stream,
                    deadline=request_deadline,
                    body_deadline=budget if bulk else request_deadline,
                    check_redirect=check_redirect,
                )
            except requests.RequestException as exc:
                found = timeout_error(exc)
                if found is not None:
                    # Described by the caller (it may add which index or registry this is).
                    error = self._describe(exc, failed_url(exc, url), 1)
                    raise self._remember(found.host or parts.netloc, error) from None
                if isinstance(exc, requests.exceptions.SSLError):  # a certificate stays bad
                    raise self._describe(exc, failed_url(exc, url), 1) from None
                raise

        def give_up(exc: Exception, attempts: int) -> Exception:
            where = failed_url(exc, url)
            return self._remember(urlsplit(where).netloc, self._describe(exc, where, attempts))

        return send_with_retries(
            send_once,
            retries=self.retries if retry else 0,
            backoff=self.backoff,
            max_retry_after=self.max_retry_after,
            connect_timeout=self.connect_timeout,
            transient=(requests.RequestException,),
            give_up=give_up,
            deadline=request_deadline,
            sleep=self._sleeper(parts.netloc),
            monotonic=CLOCK.monotonic,
            refuse_wait=lambda response, asked: self._refuse_wait(
                urlsplit(response.url).netloc or parts.netloc, asked
            ),
        )

    def read_error(self, exc: BaseException, url: str) -> NetworkError:
        """The error for a failure while the caller read a response body (a deadline or a
        stall is remembered for the host, as in :meth:`send`)."""
        error = self._describe(exc, failed_url(exc, url), 1)
        found = timeout_error(exc)
        if found is not None:
            return self._remember(found.host or urlsplit(url).netloc, error)
        return error

    # -- whole operations -----------------------------------------------------------------------

    def retrying(self, operation: Callable[[], T], *, transient: Callable[[Exception], bool]) -> T:
        """``operation()`` run again from the start while it fails with an error that
        ``transient`` accepts (a broken blob download, an upload session answered 5xx), with
        the same policy and limits as a single request."""

        def attempt() -> _Outcome:
            try:
                return _Outcome(operation())
            except HostTimeoutError:
                raise
            except Exception as exc:
                if transient(exc):
                    raise _Again(exc) from None
                raise

        def give_up(exc: Exception, _attempts: int) -> Exception:
            return exc.error if isinstance(exc, _Again) else exc

        outcome = send_with_retries(
            attempt,
            retries=self.retries,
            backoff=self.backoff,
            max_retry_after=self.max_retry_after,
            connect_timeout=0.0,
            transient=(_Again,),
            give_up=give_up,
            deadline=self.budget.deadline,
            sleep=self._sleeper(self.host),
            monotonic=CLOCK.monotonic,
            retry_budget=None,
        )
        return outcome.value  # type: ignore[return-value]

    # -- internals ------------------------------------------------------------------------------

    def _fail_fast(self, netloc: str) -> None:
        failed = self.budget.failure(netloc)
        if failed is not None:
            raise failed

    def _remember(self, host: str, error: NetworkError) -> NetworkError:
        """``error`` after noting that ``host`` failed with it (see CommandBudget)."""
        if host:
            self.budget.remember(host, error)
        return error

    def _refuse_wait(self, host: str, asked: float) -> NetworkError:
        cap = self.max_retry_after
        error = HostTimeoutError(
            f"{self.kind} {host} asked to wait {asked:.0f}s before retrying (Retry-After); falcopkg waits "
            f"at most {cap:g}s and what is left of this request's {self.request_timeout:g}s",
            hint="the server is rate-limiting or down for maintenance; try again later "
            "(authenticated requests often get higher limits)",
            host=host,
        )
        return self._remember(host, error)

    def _sleeper(self, host: str) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            if seconds >= self.budget.notice_after:
                self.budget.waiting(host)
            CLOCK.sleep(seconds)

        return sleep

    def verify_for(self, url: str) -> bool | str:
        """TLS verification for ``url``: the host's own settings for its host name (another
        port of it included, such as its token service); any other host is verified against
        the environment's CA bundle or the system's trust store."""
        if (urlsplit(url).hostname or "").lower() == self.tls_hostname:
            return self.verify
        return environment_ca_bundle() or True

    def _proxies_for(self, scheme: str, netloc: str) -> dict[str, str]:
        key = (scheme, netloc)
        with self._lock:
            if key not in self._proxies:
                self._proxies[key] = requests.utils.get_environ_proxies(f"{scheme}://{netloc}/")
            return self._proxies[key]

    def _transmit(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        authorization: str | None,
        auth_origin: tuple[str, str],
        body: Body | None,
        stream: bool,
        deadline: Deadline,
        body_deadline: Deadline,
        check_redirect: Callable[[str], None] | None,
    ) -> requests.Response:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            self._fail_fast(parts.netloc)
            request_headers = dict(headers or {})
            if authorization is not None and (parts.scheme, parts.netloc.lower()) == auth_origin:
                request_headers["Authorization"] = authorization
            guard = _Guard(
                parts.netloc,
                deadline,
                total=self.request_timeout,
                read_timeout=self.read_timeout,
                stall_bytes=self.stall_bytes,
                stall_interval=self.stall_interval,
                budget=self.budget,
                slow_hint=self.slow_hint,
                kind=self.kind,
            )
            left = deadline.remaining()
            if left <= 0:
                guard.next_wait()  # raises the deadline error
            _current.guard = guard
            try:
                with body.open() if body is not None else contextlib.nullcontext(None) as data:
                    response = self._session.request(
                        method,
                        url,
                        headers=request_headers,
                        data=data,
                        stream=stream,
                        allow_redirects=False,
                        timeout=(min(self.connect_timeout, left), min(self.read_timeout, left)),
                        verify=self.verify_for(url),
                        proxies=self._proxies_for(parts.scheme, parts.netloc),
                    )
            except _GuardTimeout as exc:  # raised outside requests' wrapping (rare)
                raise self._remember(parts.netloc, exc.error) from None
            finally:
                _current.guard = None
            guard.deadline = body_deadline
            location = response.headers.get("Location")
            follow = method in ("GET", "HEAD") and response.status_code in REDIRECT_STATUSES
            if not follow or not location:
                return response
            response.close()
            url = urljoin(url, location)
            if check_redirect is not None:
                check_redirect(url)
        raise NetworkError(f"too many redirects from {self.host}")


__all__ = [
    "Body",
    "Transport",
    "basic_authorization",
    "body_chunks",
    "environment_ca_bundle",
    "new_session",
    "timeout_error",
]
