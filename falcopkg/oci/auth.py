"""Registry authentication: basic and bearer tokens from the registry's challenge (SPEC §9).

The flow is Docker's: a request goes out with whatever authorization we already have; on a
401 the ``WWW-Authenticate`` challenge says what the registry wants. ``Basic`` means: send
the credential on every later request to this host. ``Bearer realm=… service=… scope=…``
means: ask the realm (the token service, maybe another host) for a token covering the
repository scopes of the request, anonymously or with the credential, and retry.

Tokens are cached per scope set and reused for any request they cover, until shortly before
``expires_in`` runs out. Everything here is thread-safe: one ``RegistryAuth`` serves every
thread that talks to a host. HTTP is not done here; the client passes a ``TokenRequester``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from falcopkg.oci.credentials import Credential
from falcopkg.oci.errors import AuthenticationError, RegistryError

#: Used when the token service does not say how long a token lives (Docker's default).
DEFAULT_TOKEN_LIFETIME = 60.0
#: Refresh this long (at most) before expiry so a token does not expire in flight.
MAX_REFRESH_MARGIN = 30.0

#: (realm URL, query parameters, credential or None) -> (HTTP status, body)
TokenRequester = Callable[[str, list[tuple[str, str]], "Credential | None"], tuple[int, bytes]]


# -- WWW-Authenticate -------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: scheme (lower case) and parameters
    (names lower case, values unquoted)."""

    scheme: str
    params: dict[str, str]


_SEPARATORS = ' \t,="'


def parse_www_authenticate(value: str | None) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value (RFC 7235) into its challenges.

    Quoted values may contain commas, ``=`` and escaped quotes; several challenges may share
    one header. A token68 (``Basic abc==``) is kept as the parameter ``token68``. Malformed
    input never raises: what can be understood is returned.
    """
    if not value:
        return []
    challenges: list[Challenge] = []
    current: Challenge | None = None
    text = value
    length = len(text)
    pos = 0

    def skip(chars: str) -> None:
        nonlocal pos
        while pos < length and text[pos] in chars:
            pos += 1

    def read_token() -> str:
        nonlocal pos
        start = pos
        while pos < length and text[pos] not in _SEPARATORS:
            pos += 1
        return text[start:pos]

    def read_quoted() -> str:
        nonlocal pos
        pos += 1  # opening quote
        out: list[str] = []
        while pos < length and text[pos] != '"':
            if text[pos] == "\\" and pos + 1 < length:
                pos += 1
            out.append(text[pos])
            pos += 1
        pos += 1  # closing quote (or end of input)
        return "".join(out)

    while pos < length:
        skip(" \t")
        saw_comma = pos < length and text[pos] == ","
        skip(" \t,")
        if pos >= length:
            break
        token = read_token()
        if not token:
            pos += 1  # stray character such as a lone '=' or '"': skip it
            continue
        skip(" \t")
        # Right after the scheme (no comma yet), a token68 may follow: "Basic abc==".
        expects_token68 = current is not None and not current.params and not saw_comma
        if pos < length and text[pos] == "=":
            equals_end = pos
            while equals_end < length and text[equals_end] == "=":
                equals_end += 1
            rest = text[equals_end:].lstrip(" \t")
            if current is not None and expects_token68 and (not rest or rest[0] == ","):
                current.params["token68"] = token + text[pos:equals_end]
                pos = equals_end
                continue
            pos += 1
            skip(" \t")
            if pos < length and text[pos] == '"':
                param_value = read_quoted()
            else:
                start = pos
                while pos < length and text[pos] not in " \t,":
                    pos += 1
                param_value = text[start:pos]
            if current is not None:
                current.params.setdefault(token.lower(), param_value)
            continue
        if current is not None and expects_token68 and (pos >= length or text[pos] == ","):
            current.params["token68"] = token
            continue
        current = Challenge(token.lower(), {})
        challenges.append(current)
    return challenges


# -- scopes ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Scope:
    """A token scope: ``repository:<name>:<actions>`` (actions like pull, push)."""

    repository: str
    actions: frozenset[str]

    @classmethod
    def of(cls, repository: str, *actions: str) -> Scope:
        return cls(repository, frozenset(actions))

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """``repository:name:pull,push`` (the name may hold ``:`` for host:port) or None."""
        kind, sep, rest = text.partition(":")
        if not sep or kind != "repository" or ":" not in rest:
            return None
        name, actions = rest.rsplit(":", 1)
        wanted = frozenset(a for a in actions.split(",") if a)
        return cls(name, wanted) if name and wanted else None

    def __str__(self) -> str:
        return f"repository:{self.repository}:{','.join(sorted(self.actions))}"


def merge_scopes(scopes: Iterable[Scope]) -> frozenset[Scope]:
    """One scope per repository with the union of its actions."""
    by_repository: dict[str, set[str]] = {}
    for scope in scopes:
        by_repository.setdefault(scope.repository, set()).update(scope.actions)
    return frozenset(Scope(repo, frozenset(actions)) for repo, actions in by_repository.items())


def covers(granted: frozenset[Scope], required: Iterable[Scope]) -> bool:
    return all(
        any(g.repository == r.repository and r.actions <= g.actions for g in granted)
        for r in required
    )


def basic_header(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


# -- per-host authentication state ----------------------------------------------------------


@dataclass
class _Token:
    value: str = field(repr=False)  # a bearer token is a credential: never in a repr
    scopes: frozenset[Scope]
    refresh_at: float  # time.monotonic() after which we fetch a new one


class RegistryAuth:
    """Authentication state of one registry host, shared by all threads using it.

    ``credential`` is resolved lazily (on the first challenge) so that anonymous registries
    never trigger a credential lookup (which may run a Docker credential helper).
    """

    def __init__(
        self,
        host: str,
        credential: Credential | Callable[[], Credential | None] | None,
        request_token: TokenRequester,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self._credential_source = credential
        self._credential: Credential | None = None
        self._credential_resolved = False
        self._request_token = request_token
        self._clock = clock
        self._lock = threading.Lock()
        self._scheme: str | None = None  # "basic" or "bearer" once the host challenged us
        self._realm: str | None = None
        self._service: str | None = None
        self._tokens: dict[frozenset[Scope], _Token] = {}
        self._fetch_locks: dict[frozenset[Scope], threading.Lock] = {}

    @property
    def credential(self) -> Credential | None:
        with self._lock:
            if not self._credential_resolved:
                source = self._credential_source
                self._credential = source() if callable(source) else source
                self._credential_resolved = True
            return self._credential

    @property
    def scheme(self) -> str | None:
        return self._scheme

    def header_for(self, scopes: Sequence[Scope]) -> str | None:
        """The ``Authorization`` value to send for a request needing ``scopes`` (or None)."""
        scheme = self._scheme
        if scheme == "basic":
            credential = self.credential
            return basic_header(credential) if credential is not None else None
        if scheme == "bearer":
            token = self._cached_token(scopes) or self._fetch_token(merge_scopes(scopes))
            return f"Bearer {token.value}"
        return None

    def handle_unauthorized(
        self, challenge_header: str | None, scopes: Sequence[Scope], sent: str | None
    ) -> None:
        """React to a 401 so that the next ``header_for`` may succeed; raise if it cannot."""
        challenges = parse_www_authenticate(challenge_header)
        bearer = next(
            (c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None
        )
        if bearer is not None:
            with self._lock:
                self._scheme = "bearer"
                self._realm = bearer.params["realm"]
                self._service = bearer.params.get("service")
                if sent is not None and sent.startswith("Bearer "):
                    stale = sent[len("Bearer ") :]
                    self._tokens = {k: t for k, t in self._tokens.items() if t.value != stale}
            # The challenge may name more scopes than we asked for (a cross-repo mount).
            extra = [s for s in map(Scope.parse, bearer.params.get("scope", "").split()) if s]
            self._fetch_token(merge_scopes([*scopes, *extra]))
            return
        if any(c.scheme == "basic" for c in challenges):
            credential = self.credential
            if credential is None:
                raise self.login_required()
            if sent is not None and sent.startswith("Basic "):
                raise self.credentials_rejected()
            with self._lock:
                self._scheme = "basic"
            return
        raise AuthenticationError(
            f"registry {self.host} answered 401 Unauthorized without a usable "
            "WWW-Authenticate challenge",
            host=self.host,
            status=401,
        )

    def login_required(self, what: str | None = None) -> AuthenticationError:
        target = what or f"registry {self.host}"
        return AuthenticationError(
            f"{target} requires authentication",
            hint=f"run `falcopkg registry login {self.host}` or set credentials for it",
            host=self.host,
            status=401,
        )

    def credentials_rejected(self, what: str | None = None) -> AuthenticationError:
        target = what or f"registry {self.host}"
        return AuthenticationError(
            f"{target} rejected the credentials",
            hint=f"check them and run `falcopkg registry login {self.host}` again",
            host=self.host,
            status=401,
        )

    # -- tokens
    def _cached_token(self, scopes: Sequence[Scope]) -> _Token | None:
        now = self._clock()
        with self._lock:
            for token in self._tokens.values():
                if token.refresh_at > now and covers(token.scopes, scopes):
                    return token
        return None

    def _fetch_token(self, scopes: frozenset[Scope]) -> _Token:
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(scopes, threading.Lock())
            realm, service = self._realm, self._service
        if realm is None:
            raise AuthenticationError(f"registry {self.host} did not name a token service")
        # One fetch per scope set at a time; other scope sets proceed in parallel.
        with fetch_lock:
            cached = self._cached_token(list(scopes))
            if cached is not None and cached.scopes == scopes:
                return cached
            credential = self.credential
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", str(scope)) for scope in sorted(scopes))
            started = self._clock()
            status, body = self._request_token(realm, params, credential)
            token = self._parse_token(status, body, credential, scopes, started)
            with self._lock:
                now = self._clock()
                self._tokens = {k: t for k, t in self._tokens.items() if t.refresh_at > now}
                self._tokens[scopes] = token
            return token

    def _parse_token(
        self,
        status: int,
        body: bytes,
        credential: Credential | None,
        scopes: frozenset[Scope],
        started: float,
    ) -> _Token:
        service = f"the token service of registry {self.host}"
        if status in (401, 403):
            raise self.credentials_rejected(service) if credential else self.login_required(service)
        if status != 200:
            raise RegistryError(
                f"{service} answered HTTP {status}",
                hint="try again later; if it persists, check the registry's auth configuration",
                host=self.host,
                status=status,
            )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # also int()'s digit limit, and deep nesting
            payload = None
        token = None
        lifetime = DEFAULT_TOKEN_LIFETIME
        if isinstance(payload, dict):
            token = payload.get("token") or payload.get("access_token")
            expires_in = payload.get("expires_in")
            if (
                isinstance(expires_in, (int, float))
                and not isinstance(expires_in, bool)
                and expires_in > 0
            ):
                lifetime = float(expires_in)
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{service} returned no token", host=self.host, status=status)
        margin = min(MAX_REFRESH_MARGIN, lifetime * 0.1)
        return _Token(token, scopes, started + lifetime - margin)
