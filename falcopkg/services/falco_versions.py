"""Read a running Falco's versions (``GET /versions`` of its webserver, or a file holding
that JSON) for `follow --falco-versions URL|FILE`: bounded in time and size, parsed
strictly by core.falco_versions."""

from __future__ import annotations

from pathlib import Path

from falcopkg.core.falco_versions import (
    HINT,
    MAX_VERSIONS_BYTES,
    FalcoVersions,
    parse_falco_versions,
)
from falcopkg.errors import ConfigError, NetworkError

TIMEOUT = (5.0, 10.0)  # connect, read (seconds)
DEADLINE = 15.0  # the whole request, however slowly the bytes drip


def read_falco_versions(location: str, *, timeout: tuple[float, float] = TIMEOUT) -> FalcoVersions:
    """The versions at ``location``: an http(s) URL, else a file path."""
    if location.startswith(("http://", "https://")):
        return parse_falco_versions(_fetch(location, timeout), _shown(location))
    path = Path(location).expanduser()
    try:
        with path.open("rb") as file:
            data = file.read(MAX_VERSIONS_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read Falco versions from {path}: {exc.strerror}", hint=HINT
        ) from None
    return parse_falco_versions(data, str(path))


def _shown(url: str) -> str:
    """``url`` without any user:password part (never shown)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def _fetch(location: str, timeout: tuple[float, float]) -> bytes:
    from urllib.parse import unquote, urlsplit

    from falcopkg.http import Transport, TransportError, basic_authorization, timeout_error

    url = _shown(location)
    parts = urlsplit(location)
    authorization = (
        basic_authorization(unquote(parts.username), unquote(parts.password or ""))
        if parts.username is not None
        else None
    )

    def describe(exc: BaseException, _url: str, _attempts: int) -> NetworkError:
        timed_out = timeout_error(exc)
        if timed_out is not None:
            return NetworkError(f"Falco at {url}: {timed_out.message}", hint=HINT)
        return NetworkError(
            f"cannot read Falco versions from {url}: {type(exc).__name__}",
            hint="check that Falco runs with its webserver enabled (webserver.enabled: true)",
        )

    transport = Transport(
        parts.netloc.rpartition("@")[2],
        describe=describe,
        connect_timeout=timeout[0],
        read_timeout=timeout[1],
        request_timeout=DEADLINE,  # the whole request, however slowly the bytes drip
        retries=0,
        kind="Falco",
    )
    try:
        with transport.send(
            "GET",
            url,
            headers={"Accept": "application/json"},
            authorization=authorization,
            stream=True,
        ) as response:
            if response.status_code != 200:
                raise NetworkError(
                    f"Falco at {url} answered HTTP {response.status_code} for its versions",
                    hint=HINT,
                )
            data = bytearray()
            try:
                for chunk in response.iter_content(8192):
                    data += chunk
                    if len(data) > MAX_VERSIONS_BYTES:
                        break  # parse_falco_versions says it is too large
            except TransportError as exc:
                raise transport.read_error(exc, url) from None
            return bytes(data)
    finally:
        transport.close()
