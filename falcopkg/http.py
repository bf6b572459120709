"""The one HTTP transport of falcopkg (SPEC §9): registries and indexes both send through it.

A :class:`Transport` serves one configured host over HTTP/1.1 keep-alive connections of its
own (``http.client`` below, a small pool per origin). It is written on the standard library
rather than requests: a registry lock is thousands of small requests, and requests + urllib3
cost about 1.25 ms of CPU per request here against 0.3 ms for ``http.client``
(benchmarks/bench_http_floor.py), and 60 ms of imports before the first byte of a sync.

It follows redirects by hand, so that the ``Authorization`` header goes only to its own
origin and the host's TLS settings (``ca_file``, ``insecure``) apply to that host only: a
redirect target is verified against ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``/
``SSL_CERT_FILE`` when set, else against the system's trust store and certifi's bundle.
Proxies come from the standard environment variables (``NO_PROXY`` included; ``https://``
targets through a ``CONNECT`` tunnel). No cookies, no ``~/.netrc``. One retry loop
(falcopkg.retry's policy: connection errors, 429 and 5xx, never another 4xx) covers single
requests and whole operations (an upload session, a blob download restarting from zero).

Time is bounded everywhere:

- each request has a total deadline (connect, every read, retries and ``Retry-After``
  waits), and the command's :class:`~falcopkg.deadline.CommandBudget` may add one of its own;
- a ``Retry-After`` longer than the cap or than the time left is an immediate error;
- a response that delivers fewer than ``stall_bytes`` in ``stall_interval`` seconds is
  aborted (a dripping server cannot keep a command alive), whatever the per-read timeout;
- a host that failed at that level fails every later request of the command at once.

Every ``recv`` of a connection waits at most until the next of these limits (the socket is
wrapped, so a single blocking read of a large chunk cannot hide a drip). Bulk bodies (blobs)
are bounded by the stall rule and the command's deadline, not by the per-request one: a large
plugin on a slow link is fine as long as bytes keep coming.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import os
import select
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast, overload
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from falcopkg import __version__
from falcopkg.deadline import CLOCK, CommandBudget, Deadline, HostTimeoutError
from falcopkg.errors import NetworkError, known
from falcopkg.numbers import is_ascii_digits
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
#: Idle keep-alive connections kept per origin (the metadata provider runs 8 workers).
MAX_IDLE_CONNECTIONS = 16
#: An unread body up to this size is read to its end so that its connection can be reused.
DRAIN_LIMIT = 64 * 1024
#: How much later than asked a socket timeout may end a read (see _GuardedSocket._apply).
TIMEOUT_SLACK = 0.05
#: Bytes per send of a file body.
SEND_BLOCK = 256 * 1024

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
                yield handle  # sent in blocks: never the whole file in memory
            else:
                handle.seek(self.offset)
                # A chunk of a chunked upload: bounded by the caller's chunk size.
                yield handle.read(self.length if self.length is not None else -1)


# -- failures ------------------------------------------------------------------------------------


class TransportError(Exception):
    """A request failed below HTTP (connect, TLS, a broken or silent connection); transient
    unless it is a :class:`TLSError`. ``url`` is the URL it failed on (a redirect target)."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError):
    """No connection: refused, unresolvable, reset or closed before an answer."""


class Timeout(TransportError):
    """Connect or read timed out (the per-read silence, not a deadline: those are
    :class:`~falcopkg.deadline.HostTimeoutError` found by :func:`timeout_error`)."""


class ConnectTimeout(ConnectError, Timeout):
    pass


class ReadTimeout(Timeout):
    pass


class TLSError(TransportError):
    """The TLS handshake failed (an untrusted certificate, a server that is not TLS)."""


class BodyError(TransportError):
    """A response body was cut short or could not be decoded."""


class ProxyError(TransportError):
    """The proxy refused the tunnel or cannot be used (not retried: it will not change)."""


# -- bounded reads -------------------------------------------------------------------------------


class _GuardTimeout(TimeoutError):
    """Raised inside a read when a guard's limit is hit; the transport wraps it in a
    TransportError and finds it again (see :func:`timeout_error`)."""

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


class _GuardedSocket:
    """A connection's socket whose reads obey the guard of the request it carries (set
    per request by the transport)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()
        self._applied = self._timeout  # what the socket has now
        self.guard: _Guard | None = None

    def _apply(self, wanted: float | None, *, guarded: bool = False) -> None:
        """Give the socket a timeout of about ``wanted``. Setting one is a system call (and a
        GIL hand-off), so a timeout already set is kept when it ends a wait no later than
        TIMEOUT_SLACK after ``wanted`` would, and no sooner: for a ``guarded`` read, no
        sooner than half of it (ending early only makes the guard compute the next wait)."""
        applied = self._applied
        if wanted is not None and applied is not None:
            if (wanted / 2 if guarded else wanted) <= applied <= wanted + TIMEOUT_SLACK:
                return
        elif wanted is None and applied is None:
            return
        self._sock.settimeout(wanted)
        self._applied = wanted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._apply(value)

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
                self._apply(guard.next_wait(), guarded=True)
                try:
                    count = int(self._sock.recv_into(buffer, *args))
                except TimeoutError:
                    continue  # next_wait decides whether this is the end
                guard.received(count)
                return count
        finally:
            self._apply(self._timeout)


# -- responses -----------------------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """Response headers, case-insensitive; repeated fields joined with ``, ``."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields: dict[str, tuple[str, str]] = {}
        for name, value in fields:
            key = name.lower()
            if key in self._fields:
                value = f"{self._fields[key][1]}, {value}"
            self._fields[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()][1]

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str | T) -> str | T: ...

    def get(self, name: str, default: object = None) -> object:
        # Mapping's own goes through __getitem__ and a KeyError: a few per response.
        field = self._fields.get(name.lower())
        return default if field is None else field[1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


def parse_link_header(value: str) -> dict[str, dict[str, str]]:
    """RFC 8288 ``Link`` values by ``rel``: ``{"next": {"url": ..., "rel": "next"}}``."""
    links: dict[str, dict[str, str]] = {}
    for part in value.split(","):
        target, _, params = part.strip().partition(";")
        target = target.strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        link = {"url": target[1:-1].strip()}
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip():
                link[key.strip().lower()] = val.strip().strip("'\"")
        links[link.get("rel", link["url"])] = link
    return links


class Response:
    """One HTTP response: status and headers read, the body still on its connection.

    Read the body with :attr:`content`, :meth:`iter_content` or :meth:`chunks`, then
    :meth:`close` (or use ``with``): a body read to its end gives the connection back to
    its pool; otherwise the connection is closed.
    """

    def __init__(
        self,
        raw: _LeanResponse,
        method: str,
        url: str,
        release: Callable[[bool], None],
    ) -> None:
        self._raw = raw
        self.method = method
        self.url = url
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers: Headers = raw.headers
        self._release: Callable[[bool], None] | None = release
        self._content: bytes | None = None
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        self._encoding = "" if encoding == "identity" else encoding
        if raw.isclosed():  # no body (HEAD, 204, 304, Content-Length: 0)
            self._finish(reusable=True)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def links(self) -> dict[str, dict[str, str]]:
        value = self.headers.get("Link")
        return parse_link_header(value) if value else {}

    @property
    def content(self) -> bytes:
        """The whole (decoded) body."""
        if self._content is None:
            self._content = b"".join(bytes(chunk) for chunk in self.iter_content(64 * 1024))
        return self._content

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The body, decoded (gzip, deflate), in chunks of up to ``chunk_size`` bytes."""
        if self._content is not None:
            yield self._content
            return
        if not self._encoding:
            for chunk in self.chunks(chunk_size):
                yield bytes(chunk)
            return
        if self._encoding not in ("gzip", "x-gzip", "deflate"):
            raise BodyError(f"unsupported Content-Encoding {self._encoding!r}", self.url)
        # 47: a zlib or gzip header, detected. Output is bounded per step (no inflate bomb
        # in memory: the caller counts what it gets).
        inflater = zlib.decompressobj(47)
        try:
            for chunk in self.chunks(chunk_size):
                data = inflater.decompress(chunk, chunk_size)
                while data:
                    yield data
                    data = inflater.decompress(inflater.unconsumed_tail, chunk_size)
            tail = inflater.flush()
        except zlib.error as exc:
            raise BodyError(
                f"the {self._encoding} body cannot be decoded: {exc}", self.url
            ) from exc
        if tail:
            yield tail

    def chunks(self, chunk_size: int) -> Iterator[memoryview]:
        """The body as it arrives (not decoded), read with ``readinto`` into one reused
        buffer: each chunk is a view valid only until the next (copy it to keep it)."""
        raw = self._raw
        # No bigger than the body: a zeroed 1 MiB buffer per 500-byte manifest costs an mmap,
        # 256 page faults and a munmap (most of a cold lock's system time).
        length = raw.length
        buffer = bytearray(max(1, min(chunk_size, length)) if length is not None else chunk_size)
        view = memoryview(buffer)
        while not raw.isclosed():
            try:
                count = raw.readinto(buffer)
            except TimeoutError as exc:
                self._finish(reusable=False)
                raise ReadTimeout(f"read timed out ({exc})", self.url) from exc
            except (ssl.SSLError, http.client.HTTPException, OSError) as exc:
                self._finish(reusable=False)
                raise BodyError(f"connection broken: {exc!r}", self.url) from exc
            if not count:
                if raw.length:  # http.client returns 0 for a body cut short
                    self._finish(reusable=False)
                    short = http.client.IncompleteRead(b"", raw.length)
                    raise BodyError(f"connection broken: {short!r}", self.url) from short
                break
            yield view[:count]
        self._finish(reusable=True)

    def close(self) -> None:
        if self._release is None:
            return
        length = self._raw.length
        if length is not None and length <= DRAIN_LIMIT:
            # A small unread body (an error, a 401 challenge): read it so the connection
            # can carry the next request.
            with contextlib.suppress(TransportError):
                for _ in self.chunks(DRAIN_LIMIT):
                    pass
        self._finish(reusable=False)

    def _finish(self, *, reusable: bool) -> None:
        release, self._release = self._release, None
        if release is not None:
            reuse = reusable and self._raw.isclosed() and not self._raw.will_close
            if not reuse:
                self._raw.close()
            release(reuse)


# -- connections ---------------------------------------------------------------------------------

_contexts: dict[bool | str, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The (shared) TLS context for a ``verify`` setting: False, a CA bundle path, or True
    (the system's trust store and certifi's bundle, when certifi is installed)."""
    with _contexts_lock:
        context = _contexts.get(verify)
        if context is None:
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif isinstance(verify, str):
                context = ssl.create_default_context(cafile=verify)
            else:
                context = ssl.create_default_context()
                with contextlib.suppress(ImportError, OSError):
                    import certifi

                    context.load_verify_locations(cafile=certifi.where())
            context.set_alpn_protocols(["http/1.1"])
            _contexts[verify] = context
        return context


@dataclass(frozen=True)
class _Route:
    """How to reach an origin: directly, or through an HTTP proxy (absolute-form requests
    for http://, a CONNECT tunnel for https://)."""

    scheme: str
    host: str
    port: int
    proxy: tuple[str, int, str | None] | None = None  # host, port, Proxy-Authorization

    @property
    def tunnel(self) -> bool:
        return self.proxy is not None and self.scheme == "https"

    @property
    def absolute_form(self) -> bool:
        return self.proxy is not None and self.scheme == "http"


#: Limits on a response's head, as http.client has them: a hostile server cannot make a
#: client buffer without end.
MAX_HEAD_LINE = 64 * 1024
MAX_HEADER_FIELDS = 100


class _LeanResponse(http.client.HTTPResponse):
    """http.client's response with its head parsed here.

    http.client parses header fields with the email package: about 0.1 ms per response,
    a sixth of the CPU of a registry request. This reads the status line and the fields
    into :class:`Headers` and decides the body's framing (RFC 9112 §6): the reading of the
    body stays http.client's.
    """

    headers: Headers  # type: ignore[assignment]  # set by begin(), never an HTTPMessage

    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._status_line()
            fields = self._fields()
            if not 100 <= status < 200 or status == 101:
                break  # interim answers (100 Continue, 103 Early Hints) come before the real one
        self.code = self.status = status
        self.reason = reason
        self.version = 10 if version == "HTTP/1.0" else 11
        headers = Headers(fields)
        self.headers = self.msg = headers
        codings = headers.get("Transfer-Encoding", "").replace(" ", "").lower().split(",")
        self.chunked = codings[-1] == "chunked"
        self.chunk_left = None
        self.length = None if self.chunked else _content_length(headers)
        self.will_close = self._closes(headers)
        if (
            status in (204, 304)
            or 100 <= status < 200
            or self._method == "HEAD"
            or (self._method == "CONNECT" and 200 <= status < 300)
        ):
            self.length = 0
        if not self.chunked and self.length is None:
            self.will_close = True  # the body ends when the server closes

    def _line(self, what: str) -> bytes:
        line = self.fp.readline(MAX_HEAD_LINE + 1)
        if len(line) > MAX_HEAD_LINE:
            raise http.client.LineTooLong(what)
        return line

    def _status_line(self) -> tuple[str, int, str]:
        line = self._line("status line")
        if not line:  # what http.client raises: a kept-alive connection the server closed
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        text = line.decode("iso-8859-1").rstrip("\r\n")
        version, _, rest = text.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not is_ascii_digits(code):
            raise http.client.BadStatusLine(text)
        return version, int(code), reason.strip()

    def _fields(self) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = []
        while True:
            line = self._line("header line")
            if line in (b"\r\n", b"\n", b""):
                return fields
            if len(fields) >= MAX_HEADER_FIELDS:
                raise http.client.HTTPException(f"got more than {MAX_HEADER_FIELDS} headers")
            text = line.decode("iso-8859-1").rstrip("\r\n")
            if text[:1] in (" ", "\t"):  # obsolete line folding: continues the last value
                if fields:
                    name, value = fields[-1]
                    fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            name = name.strip()
            if colon and name:
                fields.append((name, value.strip()))

    def _closes(self, headers: Headers) -> bool:
        tokens = {token.strip() for token in headers.get("Connection", "").lower().split(",")}
        if "close" in tokens:
            return True
        if self.version == 11:
            return False
        return not ("keep-alive" in tokens or "Keep-Alive" in headers)


def _content_length(headers: Headers) -> int | None:
    """The body's length, or None when the header is absent; a value that is not a number
    (or repeated with different numbers) is an error, never a guess (RFC 9112 §6.3)."""
    value = headers.get("Content-Length")
    if value is None:
        return None
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1:
        raise http.client.HTTPException(f"conflicting Content-Length values: {value!r}")
    (length,) = lengths
    if not is_ascii_digits(length) or len(length) > 19:
        raise http.client.HTTPException(f"invalid Content-Length: {value!r}")
    return int(length)


class _Connection(http.client.HTTPConnection):
    """One keep-alive connection of a route; its socket's reads obey the request's guard."""

    def __init__(self, route: _Route, *, connect_timeout: float, tls: ssl.SSLContext | None):
        dial_host, dial_port = (
            (route.proxy[0], route.proxy[1]) if route.proxy else (route.host, route.port)
        )
        super().__init__(dial_host, dial_port, timeout=connect_timeout, blocksize=SEND_BLOCK)
        self.route = route
        self.tls = tls
        self.reused = False
        self.response_class = _LeanResponse
        self.guarded: _GuardedSocket | None = None  # self.sock, typed

    def getresponse(self) -> _LeanResponse:
        return cast(_LeanResponse, super().getresponse())  # response_class above

    def connect(self) -> None:
        route = self.route
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if route.tunnel and route.proxy is not None:
                _open_tunnel(sock, route.host, route.port, route.proxy)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=route.host)
        except BaseException:
            sock.close()
            raise
        self.sock = self.guarded = _GuardedSocket(sock)

    def alive(self) -> bool:
        """Whether an idle connection may carry another request (the server has not closed
        it: an idle keep-alive socket is readable only at EOF or with stray bytes)."""
        sock = self.sock
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable


def _open_tunnel(
    sock: socket.socket, host: str, port: int, proxy: tuple[str, int, str | None]
) -> None:
    """``CONNECT host:port`` through ``proxy`` on ``sock``; raises ConnectError unless 200."""
    target = f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", f"User-Agent: {USER_AGENT}"]
    if proxy[2]:
        lines.append(f"Proxy-Authorization: {proxy[2]}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = _LeanResponse(sock, method="CONNECT")
    try:
        answer.begin()
    finally:
        answer.close()  # its file only: the socket carries the tunnel
    if answer.status != 200:
        raise ProxyError(
            f"proxy {proxy[0]}:{proxy[1]} refused the tunnel to {target}: "
            f"HTTP {answer.status} {answer.reason}"
        )


class _Pool:
    """Idle connections per route (thread-safe)."""

    def __init__(self) -> None:
        self._idle: dict[_Route, list[_Connection]] = {}
        self._lock = threading.Lock()

    def take(self, route: _Route) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(route)
            while idle:
                connection = idle.pop()
                if connection.alive():
                    connection.reused = True
                    return connection
                connection.close()
        return None

    def give_back(self, connection: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(connection.route, [])
            if len(idle) < MAX_IDLE_CONNECTIONS:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            connections = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for connection in connections:
            connection.close()


# -- proxies from the environment ----------------------------------------------------------------


def environment_proxy(scheme: str, host: str, port: int) -> str | None:
    """The proxy URL the environment gives for a request (``http_proxy``, ``https_proxy``,
    ``all_proxy``; ``no_proxy`` honoured: ``*``, host names and their subdomains, with or
    without a port), or None for a direct connection."""

    def variable(name: str) -> str:
        return os.environ.get(name.lower()) or os.environ.get(name.upper()) or ""

    proxy = variable(f"{scheme}_proxy") or variable("all_proxy")
    if not proxy:
        return None
    host = host.lower().strip("[]")
    for entry in variable("no_proxy").replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return None
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".").strip("[]")
        if host == name or host.endswith("." + name) or _in_network(host, name):
            return None
    return proxy


def _in_network(host: str, entry: str) -> bool:
    """Whether IP address ``host`` lies in the CIDR block ``entry`` (``10.0.0.0/8``)."""
    if "/" not in entry:
        return False
    import ipaddress

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


def _proxy_address(proxy: str) -> tuple[str, int, str | None]:
    """Host, port and ``Proxy-Authorization`` of an ``http://`` proxy URL."""
    if "://" not in proxy:
        proxy = "http://" + proxy
    parts = urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname:
        raise ProxyError(
            f"unsupported proxy {parts.scheme}://{parts.hostname or ''}: only http:// proxies are supported"
        )
    authorization = None
    if parts.username is not None:
        authorization = basic_authorization(unquote(parts.username), unquote(parts.password or ""))
    return parts.hostname, parts.port or 80, authorization


def timeout_error(exc: BaseException) -> HostTimeoutError | None:
    """The deadline, stall or wait error behind a transport failure, if it is one."""
    for cause in causes(exc):
        if isinstance(cause, _GuardTimeout):
            return cause.error
        if isinstance(cause, HostTimeoutError):
            return cause
    return None


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (its causes and contexts, recursively)."""
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


def failed_url(exc: BaseException, url: str) -> str:
    """The URL a request failed on: a redirect target rather than the first URL."""
    failed = getattr(exc, "url", None)
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
        self._pool = _Pool()
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.close()

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
    ) -> Response:
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

        def send_once() -> Response:
            try:
                response = self._transmit(
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
                if not stream:
                    response.content  # noqa: B018 - read now: a broken body is retried
                return response
            except TransportError as exc:
                found = timeout_error(exc)
                if found is not None:
                    # Described by the caller (it may add which index or registry this is).
                    error = self._describe(exc, failed_url(exc, url), 1)
                    raise self._remember(found.host or parts.netloc, error) from None
                if isinstance(exc, (TLSError, ProxyError)):  # a certificate stays bad
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
            transient=(TransportError,),
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

    def _route(self, scheme: str, netloc: str, url: str) -> _Route:
        key = (scheme, netloc)
        with self._lock:
            route = self._routes.get(key)
        if route is None:
            parts = urlsplit(url)
            if scheme not in ("http", "https") or not parts.hostname:
                raise ConnectError(f"cannot send to {scheme}://{netloc}: not an http(s) URL", url)
            try:
                port = parts.port or (443 if scheme == "https" else 80)
            except ValueError:
                raise ConnectError(f"invalid port in {netloc!r}", url) from None
            proxy = environment_proxy(scheme, parts.hostname, port)
            address = _proxy_address(proxy) if proxy else None
            route = _Route(scheme, parts.hostname, port, address)
            with self._lock:
                route = self._routes.setdefault(key, route)
        return route

    def _exchange(
        self,
        method: str,
        url: str,
        parts: SplitResult,
        headers: dict[str, str],
        data: bytes | IO[bytes] | None,
        guard: _Guard,
        left: float,
    ) -> Response:
        """One HTTP exchange on a pooled connection: the response with its headers read.
        A kept-alive connection the server closed meanwhile is replaced once, at once.
        ``parts`` is ``urlsplit(url)``, which the caller has already."""
        route = self._route(parts.scheme, parts.netloc, url)
        target = (
            _without_userinfo(url.partition("#")[0])
            if route.absolute_form
            else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        )
        request_headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        request_headers.update(headers)
        request_headers["Host"] = parts.netloc.rpartition("@")[2]
        if route.absolute_form and route.proxy is not None and route.proxy[2]:
            request_headers["Proxy-Authorization"] = route.proxy[2]
        if (
            data is not None
            and not isinstance(data, bytes)
            and "content-length" not in {name.lower() for name in headers}
        ):
            request_headers["Content-Length"] = str(os.fstat(data.fileno()).st_size - data.tell())
        resendable = data is None or isinstance(data, bytes)
        while True:
            connection = self._pool.take(route)
            if connection is None:
                tls = tls_context(self.verify_for(url)) if route.scheme == "https" else None
                connection = _Connection(
                    route, connect_timeout=min(self.connect_timeout, left), tls=tls
                )
                _connect(connection, url)
            sock = known(connection.guarded, "the socket of a connected connection")
            sock.guard = guard
            sock.settimeout(min(self.read_timeout, max(left, 0.001)))
            try:
                connection.request(method, target, body=data, headers=request_headers)
                raw = connection.getresponse()
            except _GuardTimeout as exc:
                connection.close()
                raise ReadTimeout(str(exc), url) from exc
            except TimeoutError as exc:
                connection.close()
                raise ReadTimeout(f"no answer within {self.read_timeout:g}s", url) from exc
            except (ConnectionError, http.client.RemoteDisconnected) as exc:
                connection.close()
                if connection.reused and resendable:
                    continue  # closed while idle: a fresh connection, not a retry
                raise ConnectError(f"connection aborted: {exc!r}", url) from exc
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise ConnectError(f"connection broken: {exc!r}", url) from exc

            def release(reuse: bool, connection: _Connection = connection) -> None:
                if reuse and connection.guarded is not None:
                    connection.guarded.guard = None
                    self._pool.give_back(connection)
                else:
                    connection.close()

            return Response(raw, method, url, release)

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
    ) -> Response:
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
            with body.open() if body is not None else contextlib.nullcontext(None) as data:
                response = self._exchange(method, url, parts, request_headers, data, guard, left)
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


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _connect(connection: _Connection, url: str) -> None:
    """Open ``connection``, its failures as TransportErrors."""
    try:
        connection.connect()
    except TransportError:
        raise
    except http.client.HTTPException as exc:  # the proxy's answer to CONNECT
        raise ProxyError(f"the proxy sent an invalid answer: {exc!r}", url) from exc
    except TimeoutError as exc:
        raise ConnectTimeout(f"connection timed out ({exc})", url) from exc
    except ssl.SSLError as exc:
        raise TLSError(f"TLS handshake failed: {exc}", url) from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect: {exc!r}", url) from exc


__all__ = [
    "Body",
    "BodyError",
    "ConnectError",
    "ConnectTimeout",
    "Headers",
    "ProxyError",
    "ReadTimeout",
    "Response",
    "TLSError",
    "Timeout",
    "Transport",
    "TransportError",
    "basic_authorization",
    "environment_ca_bundle",
    "timeout_error",
]
