"""falcopkg.http against real servers on loopback: proxies from the environment (a CONNECT
tunnel for https, absolute-form requests for http, NO_PROXY), keep-alive and what happens
when a server closes a kept-alive connection, Content-Encoding (and an inflate bomb), and a
small unread body drained so that its connection carries the next request."""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from falcopkg.core.index import parse_index
from falcopkg.core.index_config import IndexConfig
from falcopkg.errors import NetworkError
from falcopkg.http import Body, Transport, basic_authorization
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.credentials import Credential
from falcopkg.services.indexes import MAX_INDEX_BYTES, IndexStore
from tests.fixtures.forward_proxy import ForwardProxy
from tests.fixtures.index_server import IndexServer
from tests.fixtures.oci import digest_of, push_artifact
from tests.fixtures.registries import RunningRegistry

REALISTIC = Path(__file__).parent.parent / "data" / "index" / "falcosecurity-like.yaml"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# A proxy password that needs percent-encoding in the proxy URL.
PROXY_CREDENTIALS = ("proxy-user", "p@ss word:1")


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``proxy_env(HTTPS_PROXY=..., NO_PROXY=...)``: exactly these proxy variables set (the
    machine's own, in either case, removed first)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)

    def set_env(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_env


def _describe(exc: BaseException, url: str, attempts: int) -> NetworkError:
    return NetworkError(f"{url}: {exc} ({attempts} attempts)")


def _transport(host: str, **options: object) -> Transport:
    return Transport(host, describe=_describe, **options)  # type: ignore[arg-type]


# -- a tiny HTTP/1.1 server that counts its connections -------------------------------------------


class CountingServer:
    """Answers every request 200 ``ok <n>`` (or 401 with a body without Authorization, when
    ``challenge_body`` is set); counts accepted connections. ``close_after``: "never" (keep
    alive), "at once" (close right after answering, without saying so) or "later" (the same
    after a moment: the client has sent its next request by then)."""

    def __init__(self, close_after: str = "never", challenge_body: bytes | None = None) -> None:
        self.close_after = close_after
        self.challenge_body = challenge_body
        self.connections = 0
        self.requests: list[tuple[str, bool]] = []  # method, had Authorization
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body are two writes: without this, Nagle holds the body back
                # for the client's delayed ACK (40 ms a request).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with owner._lock:
                    owner.connections += 1

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                authorized = "Authorization" in self.headers
                with owner._lock:
                    owner.requests.append((self.command, authorized))
                    number = len(owner.requests)
                if owner.challenge_body is not None and not authorized:
                    status, body = 401, owner.challenge_body
                else:
                    status, body = 200, f"ok {number}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if owner.close_after != "never":
                    if owner.close_after == "later":
                        time.sleep(0.01)
                    self.close_connection = True

            do_GET = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counting_server() -> Iterator[Callable[..., CountingServer]]:
    started: list[CountingServer] = []

    def make(**options: object) -> CountingServer:
        server = CountingServer(**options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


# -- 1. https through a CONNECT tunnel ------------------------------------------------------------


def test_a_tls_registry_through_https_proxy_is_reached_through_one_connect_tunnel(
    tls_registry: RunningRegistry,
    unique_repo: str,
    forward_proxy: Callable[..., ForwardProxy],
    proxy_env: Callable[..., None],
) -> None:
    reg = tls_registry
    assert reg.username is not None and reg.password is not None
    credential = Credential(reg.username, reg.password)
    options = RegistryOptions(ca_file=reg.ca_file, backoff=0.01)
    with RegistryClient(reg.host, options, credential) as direct:
        digest = push_artifact(direct, unique_repo, "1.0.0", b"rules through a tunnel\n")

    proxy = forward_proxy(credentials=PROXY_CREDENTIALS)
    proxy_env(HTTPS_PROXY=proxy.url)
    with RegistryClient(reg.host, options, credential) as client:
        for _ in range(20):
            assert client.list_tags(unique_repo) == ["1.0.0"]
        fetched = client.get_manifest(unique_repo, "1.0.0")
    assert fetched.digest == digest

    # One tunnel carried everything (the 401 challenge and 21 requests): kept alive.
    assert proxy.connections == 1
    [connect] = proxy.requests
    assert (connect.method, connect.target, connect.status) == ("CONNECT", reg.host, 200)
    # The proxy's credentials, from the proxy URL's userinfo (percent-decoded), in the CONNECT.
    assert connect.headers["Proxy-Authorization"] == basic_authorization(*PROXY_CREDENTIALS)
    # What went through the tunnel is TLS (a handshake record first), and the registry's
    # credentials and paths never crossed the proxy in cleartext.
    tunnelled = bytes(connect.tunnelled)
    assert tunnelled[:1] == b"\x16"
    registry_basic = base64.b64encode(f"{reg.username}:{reg.password}".encode())
    for secret in (registry_basic, reg.password.encode(), b"Authorization", b"/v2/"):
        assert secret not in tunnelled
    assert b"Proxy-Authorization" not in tunnelled  # not repeated inside the tunnel


def test_an_https_index_through_a_proxy_gets_its_authorization_and_no_proxy_credentials(
    https_index_server: IndexServer,
    forward_proxy: Callable[..., ForwardProxy],
    proxy_env: Callable[..., None],
    tmp_path: Path,
) -> None:
    """The other end of a tunnel: the origin gets its own Authorization and never the
    proxy's credentials (nor anything else meant for the proxy)."""
    server = https_index_server
    (server.root / "index.yaml").write_bytes(REALISTIC.read_bytes())
    proxy = forward_proxy(credentials=PROXY_CREDENTIALS)
    proxy_env(https_proxy=proxy.url)
    assert server.auth is not None
    config = IndexConfig("tunnelled", server.url_for("index.yaml"), ca_file=str(server.ca_file))
    store = IndexStore(tmp_path / "cache", backoff=0.01)
    try:
        store.update(config, credential=Credential(*server.auth))
    finally:
        store.close()
    assert proxy.methods() == ["CONNECT"]
    assert [r.status for r in server.requests] == [200]
    [seen] = server.requests
    assert seen.auth_sent
    assert not {"proxy-authorization", "proxy-connection"} & {k.lower() for k in seen.headers}


def test_a_proxy_that_refuses_the_tunnel_is_an_error_naming_the_proxy(
    https_index_server: IndexServer,
    forward_proxy: Callable[..., ForwardProxy],
    proxy_env: Callable[..., None],
) -> None:
    proxy = forward_proxy(credentials=PROXY_CREDENTIALS)
    proxy_env(HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}")  # no credentials: 407
    transport = _transport(
        f"127.0.0.1:{https_index_server.port}", verify=str(https_index_server.ca_file), retries=0
    )
    with pytest.raises(NetworkError) as caught:
        transport.send("GET", https_index_server.url_for("index.yaml"))
    assert f"proxy 127.0.0.1:{proxy.port} refused the tunnel" in caught.value.message
    assert "407" in caught.value.message
    assert https_index_server.requests == []


# -- 2. http through absolute-form requests; NO_PROXY ---------------------------------------------


def test_a_plain_registry_through_http_proxy_gets_absolute_form_requests(
    plain_registry: RunningRegistry,
    unique_repo: str,
    forward_proxy: Callable[..., ForwardProxy],
    proxy_env: Callable[..., None],
) -> None:
    reg = plain_registry
    proxy = forward_proxy(credentials=PROXY_CREDENTIALS)
    proxy_env(HTTP_PROXY=proxy.url)
    layer = b"rules through a proxy\n"
    with RegistryClient(reg.host, RegistryOptions(plain_http=True, backoff=0.01)) as client:
        digest = push_artifact(client, unique_repo, "1.0.0", layer)  # bodies through the proxy
        assert client.list_tags(unique_repo) == ["1.0.0"]
        assert client.get_manifest(unique_repo, "1.0.0").digest == digest
        assert client.get_blob_bytes(unique_repo, digest_of(layer)) == layer

    methods = proxy.methods()
    assert {"POST", "PUT", "GET"} <= set(methods) and "CONNECT" not in methods
    for request in proxy.requests:
        assert request.target.startswith(f"http://{reg.host}/v2/"), request.target
        assert request.headers["Host"] == reg.host
        assert request.headers["Proxy-Authorization"] == basic_authorization(*PROXY_CREDENTIALS)
        assert request.status in (200, 201, 202, 404), request  # 404: a HEAD before upload
    assert proxy.connections == 1  # kept alive through the proxy too


@pytest.mark.parametrize(
    ("no_proxy", "proxied"),
    [
        ("127.0.0.1", False),
        ("{host}", False),  # with the registry's port
        ("example.org, 127.0.0.1", False),
        ("*", False),
        ("127.0.0.1:{other}", True),  # another port of the host
        ("127.0.0.10, localhost", True),
    ],
)
def test_no_proxy_decides_which_requests_bypass_http_proxy(
    plain_registry: RunningRegistry,
    forward_proxy: Callable[..., ForwardProxy],
    proxy_env: Callable[..., None],
    no_proxy: str,
    proxied: bool,
) -> None:
    reg = plain_registry
    proxy = forward_proxy()
    proxy_env(HTTP_PROXY=proxy.url, NO_PROXY=no_proxy.format(host=reg.host, other=reg.port + 1))
    with RegistryClient(reg.host, RegistryOptions(plain_http=True, backoff=0.01)) as client:
        client.ping()
    assert bool(proxy.requests) is proxied
    assert all(r.target == f"http://{reg.host}/v2/" for r in proxy.requests)


# -- 3. keep-alive ---------------------------------------------------------------------------------


def test_fifty_requests_to_one_host_use_one_connection(
    counting_server: Callable[..., CountingServer], proxy_env: Callable[..., None]
) -> None:
    server = counting_server()
    transport = _transport(server.host)
    try:
        for number in range(1, 51):
            response = transport.send("GET", f"http://{server.host}/thing/{number}")
            assert response.content == f"ok {number}".encode()
            response.close()
    finally:
        transport.close()
    assert len(server.requests) == 50
    assert server.connections == 1


@pytest.mark.parametrize("close_after", ["at once", "later"])
def test_a_server_that_closes_kept_alive_connections_costs_no_retry_delay(
    counting_server: Callable[..., CountingServer],
    proxy_env: Callable[..., None],
    close_after: str,
) -> None:
    """The server closes every connection after its answer without ``Connection: close``:
    the pooled connection is dead, found so before the next request ("at once") or by it
    ("later": the request went out, the server resets). Either way a fresh connection at
    once, not a retry: with a 5 s backoff any retry would take at least 2.5 s."""
    server = counting_server(close_after=close_after)
    transport = _transport(server.host, backoff=5.0, retries=3)
    started = time.monotonic()
    try:
        for number in range(1, 21):
            method, body = ("PUT", b"payload") if number % 2 else ("GET", None)
            response = transport.send(
                method,
                f"http://{server.host}/thing/{number}",
                body=None if body is None else Body(body),
            )
            assert response.status_code == 200
            assert response.content == f"ok {number}".encode()  # each request served once
            response.close()
    finally:
        transport.close()
    elapsed = time.monotonic() - started
    assert len(server.requests) == 20
    assert server.connections == 20
    assert elapsed < 2.0, f"20 requests took {elapsed:.2f}s: a retry delay was waited"


def test_a_kept_alive_connection_found_closed_is_not_used_for_a_file_upload(
    counting_server: Callable[..., CountingServer],
    proxy_env: Callable[..., None],
    tmp_path: Path,
) -> None:
    """A file body cannot be sent again on a fresh connection without reopening it: a pooled
    connection the server has closed (its FIN arrived while idle) is left before the request
    goes out, so the upload needs no retry (which would wait at least 2.5 s here)."""
    server = counting_server(close_after="at once")
    source = tmp_path / "payload"
    source.write_bytes(b"layer bytes\n" * 100)
    transport = _transport(server.host, backoff=5.0, retries=3)
    started = time.monotonic()
    try:
        for number in range(1, 6):
            time.sleep(0.02)  # the server's FIN is in by now
            with transport.send("PUT", f"http://{server.host}/up", body=Body(source)) as answer:
                assert answer.content == f"ok {number}".encode()
    finally:
        transport.close()
    assert time.monotonic() - started < 2.0
    assert server.connections == 5


# -- 4. Content-Encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_an_encoded_index_is_decoded(
    https_index_server: IndexServer, tmp_path: Path, proxy_env: Callable[..., None], encoding: str
) -> None:
    server = https_index_server
    text = REALISTIC.read_bytes()
    encoded = gzip.compress(text) if encoding == "gzip" else zlib.compress(text)
    (server.root / "index.yaml").write_bytes(encoded)
    server.content_encodings["/index.yaml"] = encoding
    assert server.auth is not None
    config = IndexConfig("encoded", server.url_for("index.yaml"), ca_file=str(server.ca_file))
    store = IndexStore(tmp_path / "cache", backoff=0.01)
    try:
        entries = store.update(config, credential=Credential(*server.auth)).entries
    finally:
        store.close()
    assert entries == parse_index(text.decode(), "expected")


def _gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (about a thousandth of it), made without ever
    holding ``size`` bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


BOMB_SIZE = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return _gzip_bomb(BOMB_SIZE)


def test_a_gzip_bomb_index_is_refused_by_the_size_limit_in_bounded_memory(
    https_index_server: IndexServer,
    tmp_path: Path,
    proxy_env: Callable[..., None],
    gzip_bomb: bytes,
) -> None:
    server = https_index_server
    assert len(gzip_bomb) < 1024 * 1024 < MAX_INDEX_BYTES < BOMB_SIZE
    (server.root / "index.yaml").write_bytes(gzip_bomb)
    server.content_encodings["/index.yaml"] = "gzip"
    assert server.auth is not None
    config = IndexConfig("bomb", server.url_for("index.yaml"), ca_file=str(server.ca_file))
    store = IndexStore(tmp_path / "cache", backoff=0.01)
    tracemalloc.start()
    try:
        with pytest.raises(NetworkError) as caught:
            store.update(config, credential=Credential(*server.auth))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.close()
    assert "larger than 64 MiB" in caught.value.message
    # What the index limit keeps, and no more: never the 200 MiB the bomb inflates to.
    assert peak < MAX_INDEX_BYTES + 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_each_decoded_chunk_is_bounded_by_the_chunk_size(
    https_index_server: IndexServer, proxy_env: Callable[..., None], gzip_bomb: bytes
) -> None:
    server = https_index_server
    (server.root / "bomb").write_bytes(gzip_bomb)
    server.content_encodings["/bomb"] = "gzip"
    assert server.auth is not None
    transport = _transport(f"127.0.0.1:{server.port}", verify=str(server.ca_file))
    try:
        response = transport.send(
            "GET",
            server.url_for("bomb"),
            authorization=basic_authorization(*server.auth),
            stream=True,
        )
        with response:
            sizes = [len(c) for c, _ in zip(response.iter_content(8192), range(2000), strict=False)]
    finally:
        transport.close()
    assert len(sizes) == 2000 and max(sizes) <= 8192


# -- 5. a small unread body is drained --------------------------------------------------------------


@pytest.mark.parametrize(("body_size", "connections"), [(300, 1), (200 * 1024, 2)])
def test_an_unread_401_body_is_drained_so_the_authorized_retry_reuses_the_connection(
    counting_server: Callable[..., CountingServer],
    proxy_env: Callable[..., None],
    body_size: int,
    connections: int,
) -> None:
    """A 401 challenge closed without reading its body: a small body is read to its end and
    the connection carries the next request; a large one (past DRAIN_LIMIT) is not read, the
    connection is closed instead."""
    server = counting_server(challenge_body=b"{" + b" " * (body_size - 2) + b"}")
    transport = _transport(server.host)
    url = f"http://{server.host}/v2/"
    try:
        challenge = transport.send("GET", url, stream=True)
        assert challenge.status_code == 401
        challenge.close()
        with transport.send("GET", url, authorization=basic_authorization("u", "p")) as answer:
            assert answer.status_code == 200
    finally:
        transport.close()
    assert server.requests == [("GET", False), ("GET", True)]
    assert server.connections == connections


def test_a_basic_auth_registry_challenge_and_the_authorized_request_share_a_connection(
    registry_factory: Callable[..., RunningRegistry],
    forward_proxy: Callable[..., ForwardProxy],
    proxy_env: Callable[..., None],
) -> None:
    reg = registry_factory("basic")
    assert reg.username is not None and reg.password is not None
    proxy = forward_proxy()
    proxy_env(HTTP_PROXY=proxy.url)
    options = RegistryOptions(plain_http=True, backoff=0.01)
    with RegistryClient(reg.host, options, Credential(reg.username, reg.password)) as client:
        client.ping()
    assert [r.status for r in proxy.requests] == [401, 200]
    assert proxy.connections == 1
