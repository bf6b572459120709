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
    import time

    import requests

    url = _shown(location)
    started = time.monotonic()
    try:
        with requests.get(
            location,
            timeout=timeout,
            stream=True,
            allow_redirects=False,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code != 200:
                raise NetworkError(
                    f"Falco at {url} answered HTTP {response.status_code} for its versions",
                    hint=HINT,
                )
            data = bytearray()
            for chunk in response.iter_content(8192):
                data += chunk
                if len(data) > MAX_VERSIONS_BYTES:
                    break  # parse_falco_versions says it is too large
                if time.monotonic() - started > DEADLINE:
                    raise NetworkError(
                        f"Falco at {url} took more than {DEADLINE:.0f}s to send its versions",
                        hint=HINT,
                    )
            return bytes(data)
    except requests.RequestException as exc:
        raise NetworkError(
            f"cannot read Falco versions from {url}: {type(exc).__name__}",
            hint="check that Falco runs with its webserver enabled (webserver.enabled: true)",
        ) from None
