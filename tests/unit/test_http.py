"""The pure parts of falcopkg.http: which proxy the environment gives a request, ``Link``
headers, and the response headers' mapping."""

from __future__ import annotations

import pytest

from falcopkg.http import Headers, environment_proxy, parse_link_header

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
