"""The pure parts of falcopkg.http: which proxy the environment gives a request, ``Link``
headers, and the response headers' mapping."""

from __future__ import annotations

import http.client
import io

import pytest

from falcopkg.http import (
    MAX_HEAD_LINE,
    MAX_HEADER_FIELDS,
    Headers,
    _LeanResponse,
    environment_proxy,
    parse_link_header,
)

PROXY = "http://proxy.example:3128"
OTHER = "http://other.example:8080"
VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# (environment, scheme, host, port, the proxy expected or None for a direct connection)
CASES: list[tuple[dict[str, str], str, str, int, str | None]] = [
    ({}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY}, "https", "ghcr.io", 443, PROXY),
    ({"https_proxy": PROXY}, "https", "ghcr.io", 443, PROXY),
    ({"HTTPS_PROXY": PROXY}, "http", "ghcr.io", 80, None),  # only for https
    ({"HTTP_PROXY": PROXY}, "http", "ghcr.io", 80, PROXY),
    ({"HTTP_PROXY": PROXY}, "https", "ghcr.io", 443, None),  # only for http
    ({"ALL_PROXY": PROXY}, "https", "ghcr.io", 443, PROXY),
    ({"all_proxy": PROXY}, "http", "ghcr.io", 80, PROXY),
    ({"ALL_PROXY": OTHER, "HTTPS_PROXY": PROXY}, "https", "ghcr.io", 443, PROXY),
    ({"https_proxy": PROXY, "HTTPS_PROXY": OTHER}, "https", "ghcr.io", 443, PROXY),  # lower first
    ({"HTTPS_PROXY": ""}, "https", "ghcr.io", 443, None),
    # no_proxy: exact names, subdomains, leading dots, case, spaces, ports, "*"
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "ghcr.io"}, "https", "ghcr.io", 443, None),
    # CIDR blocks: addresses inside go direct, others and host names through the proxy.
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, "https", "10.1.2.3", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, "https", "11.1.2.3", 443, PROXY),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, "https", "ghcr.io", 443, PROXY),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "fd00::/8"}, "https", "fd12::1", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "not-a/cidr"}, "https", "10.1.2.3", 443, PROXY),
    ({"HTTPS_PROXY": PROXY, "no_proxy": "ghcr.io"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "GHCR.IO"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "ghcr.io"}, "https", "GHCR.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "ghcr.io"}, "https", "pkg.ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": ".ghcr.io"}, "https", "pkg.ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": ".ghcr.io"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "ghcr.io"}, "https", "notghcr.io", 443, PROXY),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "pkg.ghcr.io"}, "https", "ghcr.io", 443, PROXY),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "a.org, ghcr.io"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "a.org ghcr.io"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": ",,a.org,"}, "https", "ghcr.io", 443, PROXY),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "a.org,*"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "ghcr.io:443"}, "https", "ghcr.io", 443, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "ghcr.io:8443"}, "https", "ghcr.io", 443, PROXY),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "localhost:5000"}, "http", "localhost", 5000, None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "localhost:5000"}, "http", "localhost", 5001, PROXY),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "127.0.0.1"}, "http", "127.0.0.1", 5000, None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "127.0.0.1"}, "http", "127.0.0.2", 5000, PROXY),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "127.0.0.1:5000"}, "http", "127.0.0.1", 5000, None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "127.0.0.1:5000"}, "http", "127.0.0.1", 80, PROXY),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "::1"}, "http", "::1", 5000, None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "[::1]"}, "http", "[::1]", 5000, None),
    ({"HTTP_PROXY": PROXY, "no_proxy": "ghcr.io", "NO_PROXY": "*"}, "http", "ghcr.io", 80, None),
]


@pytest.mark.parametrize(("environment", "scheme", "host", "port", "expected"), CASES)
def test_environment_proxy(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    scheme: str,
    host: str,
    port: int,
    expected: str | None,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy(scheme, host, port) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        (
            '</v2/r/tags/list?n=2&last=b>; rel="next"',
            {"next": {"url": "/v2/r/tags/list?n=2&last=b", "rel": "next"}},
        ),
        (  # several links, unquoted and single-quoted values, spaces, case of the key
            "<https://a.example/1>; rel=prev, < https://a.example/3 > ; REL='next'; title=x",
            {
                "prev": {"url": "https://a.example/1", "rel": "prev"},
                "next": {"url": "https://a.example/3", "rel": "next", "title": "x"},
            },
        ),
        ("<https://a.example/only>", {"https://a.example/only": {"url": "https://a.example/only"}}),
        ('no-brackets; rel="next", <ok>; rel=next', {"next": {"url": "ok", "rel": "next"}}),
        (
            '<https://a.example/x>; rel="next"; ;',
            {"next": {"url": "https://a.example/x", "rel": "next"}},
        ),
    ],
)
def test_parse_link_header(value: str, expected: dict[str, dict[str, str]]) -> None:
    assert parse_link_header(value) == expected


def test_headers_are_case_insensitive_and_keep_their_spelling() -> None:
    headers = Headers([("Content-Type", "application/json"), ("docker-content-digest", "sha256:1")])
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "application/json"
    assert headers.get("Docker-Content-Digest") == "sha256:1"
    assert "CONTENT-type" in headers and "Location" not in headers
    not_a_name: object = 42
    assert not_a_name not in headers  # not a str: not a header, and no error
    assert headers.get("Location") is None and headers.get("Location", "x") == "x"
    with pytest.raises(KeyError):
        headers["Location"]
    assert list(headers) == ["Content-Type", "docker-content-digest"]
    assert len(headers) == 2
    assert dict(headers.items()) == {
        "Content-Type": "application/json",
        "docker-content-digest": "sha256:1",
    }


def test_repeated_headers_are_joined_in_order() -> None:
    headers = Headers(
        [
            ("WWW-Authenticate", 'Bearer realm="https://auth.example/token"'),
            ("Link", "</a>; rel=prev"),
            ("www-authenticate", 'Basic realm="registry"'),
            ("link", "</c>; rel=next"),
        ]
    )
    assert headers["www-authenticate"] == (
        'Bearer realm="https://auth.example/token", Basic realm="registry"'
    )
    assert len(headers) == 2
    assert set(parse_link_header(headers["Link"])) == {"prev", "next"}


# -- response heads: status line, fields and the body's framing -------------------------------


class _Wire:
    """What http.client reads a response from: a socket whose makefile gives these bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))  # type: ignore[arg-type]


def _response(data: bytes, method: str = "GET") -> _LeanResponse:
    response = _LeanResponse(_Wire(data), method=method)  # type: ignore[arg-type]
    response.begin()
    return response


# (the bytes on the wire, the method, then status, length (None: unknown), chunked,
# will_close, the headers expected, the body read)
HEADS: list[tuple[bytes, str, int, int | None, bool, bool, dict[str, str], bytes]] = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "GET", 200, 2, False, False, {}, b"hi"),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        "GET",
        200,
        None,
        True,
        False,
        {"transfer-encoding": "chunked"},
        b"hi",
    ),
    # No length and not chunked: the body runs to the end of the connection.
    (b"HTTP/1.1 200 OK\r\n\r\nall of it", "GET", 200, None, False, True, {}, b"all of it"),
    (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "GET",
        200,
        0,
        False,
        True,
        {},
        b"",
    ),
    # HTTP/1.0 closes unless it says keep-alive.
    (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", 200, 1, False, True, {}, b"x"),
    (
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
        "GET",
        200,
        1,
        False,
        False,
        {},
        b"x",
    ),
    # A HEAD answer, a 204 and a 304 have no body whatever their headers say.
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", 200, 0, False, False, {}, b""),
    (
        b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
        "GET",
        304,
        0,
        False,
        False,
        {"etag": '"x"'},
        b"",
    ),
    # Interim answers come first and are skipped, their headers with them.
    (
        b"HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        "PUT",
        201,
        0,
        False,
        False,
        {},
        b"",
    ),
    # Fields: case-insensitive, repeated ones joined, folded lines continued, no reason.
    (
        b"HTTP/1.1 200\r\nx-Tag: a\r\nX-TAG: b\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n",
        "GET",
        200,
        0,
        False,
        False,
        {"X-Tag": "a, b", "x-long": "one two"},
        b"",
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
        "GET",
        200,
        3,
        False,
        False,
        {},
        b"abc",
    ),
]


@pytest.mark.parametrize(
    ("wire", "method", "status", "length", "chunked", "closes", "expected", "body"), HEADS
)
def test_response_heads_are_read_and_framed(
    wire: bytes,
    method: str,
    status: int,
    length: int | None,
    chunked: bool,
    closes: bool,
    expected: dict[str, str],
    body: bytes,
) -> None:
    response = _response(wire, method)
    assert (response.status, response.length if not chunked else None) == (status, length)
    assert (response.chunked, response.will_close) == (chunked, closes)
    assert isinstance(response.headers, Headers)
    for name, value in expected.items():
        assert response.headers[name] == value
    assert response.read() == body


BAD_HEADS: list[tuple[bytes, type[Exception]]] = [
    (b"", http.client.RemoteDisconnected),  # a kept-alive connection closed meanwhile
    (b"SSH-2.0-OpenSSH\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 2000 OK\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/2 200\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xd9\xa3\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD_LINE + 1) + b"\r\n\r\n", http.client.LineTooLong),
    (
        b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * (MAX_HEADER_FIELDS + 1) + b"\r\n",
        http.client.HTTPException,
    ),
]


@pytest.mark.parametrize(("wire", "error"), BAD_HEADS)
def test_bad_response_heads_are_refused(wire: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        _response(wire)


class _CountingSocket:
    def __init__(self) -> None:
        self.timeout: float | None = 30.0
        self.set: list[float | None] = []

    def gettimeout(self) -> float | None:
        return self.timeout

    def settimeout(self, value: float | None) -> None:
        self.set.append(value)
        self.timeout = value


def test_a_socket_timeout_is_set_only_when_it_must_change() -> None:
    from falcopkg.http import TIMEOUT_SLACK, _GuardedSocket

    raw = _CountingSocket()
    sock = _GuardedSocket(raw)
    sock.settimeout(30.0)
    sock._apply(29.99, guarded=True)  # a read's wait, just under the timeout set: kept
    assert raw.set == []
    sock._apply(10.0, guarded=True)  # 30 s would end it late: set
    sock._apply(16.0, guarded=True)  # 10 s ends it early, not late: kept
    assert raw.set == [10.0]
    sock._apply(30.0)  # a send's timeout is never kept shorter than asked
    assert raw.set == [10.0, 30.0]
    sock.settimeout(30.0 - TIMEOUT_SLACK / 2)  # later by less than the slack: kept
    sock.settimeout(None)
    sock.settimeout(None)
    assert raw.set == [10.0, 30.0, None]
