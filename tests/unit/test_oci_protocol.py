"""Pure protocol logic of the OCI client: challenges, scopes, token cache, retry policy,
descriptors. No network: the token service is a function here."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from falcopkg.http import Headers
from falcopkg.oci.auth import (
    RegistryAuth,
    Scope,
    basic_header,
    covers,
    merge_scopes,
    parse_www_authenticate,
)
from falcopkg.oci.client import (
    RegistryClient,
    RegistryOptions,
    _int_header,
    is_retryable_status,
    parse_retry_after,
    retry_delay,
)
from falcopkg.oci.credentials import Credential
from falcopkg.oci.descriptor import Descriptor, FetchedManifest
from falcopkg.oci.errors import AuthenticationError, InvalidManifestError, RegistryError

DATA = Path(__file__).parent.parent / "data" / "oci"
CHALLENGES: list[dict[str, Any]] = json.loads((DATA / "www_authenticate.json").read_text())
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("case", CHALLENGES, ids=[c["id"] for c in CHALLENGES])
def test_parse_www_authenticate(case: dict[str, Any]) -> None:
    parsed = [
        {"scheme": c.scheme, "params": c.params} for c in parse_www_authenticate(case["header"])
    ]
    assert parsed == case["expected"]


# -- scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:a/b:pull", Scope.of("a/b", "pull")),
        ("repository:a/b:push,pull", Scope.of("a/b", "pull", "push")),
        ("repository:127.0.0.1:5000/x:pull", Scope.of("127.0.0.1:5000/x", "pull")),
        ("registry:catalog:*", None),
        ("repository:a/b", None),
        ("repository:a/b:", None),
        ("nonsense", None),
    ],
)
def test_scope_parse(text: str, expected: Scope | None) -> None:
    assert Scope.parse(text) == expected


def test_scope_text_is_sorted_and_merge_unions_actions() -> None:
    assert str(Scope.of("a", "push", "pull")) == "repository:a:pull,push"
    merged = merge_scopes([Scope.of("a", "pull"), Scope.of("a", "push"), Scope.of("b", "pull")])
    assert merged == frozenset({Scope.of("a", "pull", "push"), Scope.of("b", "pull")})


@pytest.mark.parametrize(
    ("granted", "required", "expected"),
    [
        ([("a", "pull", "push")], [("a", "pull")], True),
        ([("a", "pull")], [("a", "pull", "push")], False),
        ([("a", "pull")], [("b", "pull")], False),
        ([("a", "pull", "push"), ("b", "pull")], [("a", "push"), ("b", "pull")], True),
        ([], [], True),
    ],
)
def test_covers(
    granted: list[tuple[str, ...]], required: list[tuple[str, ...]], expected: bool
) -> None:
    def as_scopes(items: list[tuple[str, ...]]) -> list[Scope]:
        return [Scope.of(repository, *actions) for repository, *actions in items]

    assert covers(frozenset(as_scopes(granted)), as_scopes(required)) is expected


# -- RegistryAuth with a fake token service -----------------------------------------------------


class FakeTokenService:
    """Records calls; issues token-1, token-2, … valid for ``expires_in`` seconds."""

    def __init__(self, expires_in: object = 300, status: int = 200) -> None:
        self.expires_in = expires_in
        self.status = status
        self.calls: list[tuple[str, list[tuple[str, str]], Credential | None]] = []
        self._lock = threading.Lock()

    def __call__(
        self, realm: str, params: list[tuple[str, str]], credential: Credential | None
    ) -> tuple[int, bytes]:
        with self._lock:
            self.calls.append((realm, params, credential))
            number = len(self.calls)
        body: dict[str, Any] = {"token": f"token-{number}"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return self.status, json.dumps(body).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BEARER = 'Bearer realm="https://auth.example/token",service="reg"'
PULL_A = [Scope.of("a", "pull")]


def bearer_auth(
    service: FakeTokenService, credential: Credential | None = None
) -> tuple[RegistryAuth, FakeClock]:
    clock = FakeClock()
    auth = RegistryAuth("reg.example", credential, service, clock=clock)
    return auth, clock


def test_no_header_before_any_challenge() -> None:
    service = FakeTokenService()
    auth, _ = bearer_auth(service)
    assert auth.header_for(PULL_A) is None
    assert service.calls == []


def test_bearer_token_requested_with_service_scopes_and_credential() -> None:
    service = FakeTokenService()
    credential = Credential("u", "p")
    auth, _ = bearer_auth(service, credential)
    auth.handle_unauthorized(BEARER, [Scope.of("a", "push", "pull")], None)
    assert service.calls == [
        (
            "https://auth.example/token",
            [("service", "reg"), ("scope", "repository:a:pull,push")],
            credential,
        )
    ]
    # The cached push token also covers pulls of the same repository.
    assert auth.header_for(PULL_A) == "Bearer token-1"
    assert len(service.calls) == 1


def test_tokens_are_cached_per_scope_set_and_fetched_proactively() -> None:
    service = FakeTokenService()
    auth, _ = bearer_auth(service)
    auth.handle_unauthorized(BEARER, PULL_A, None)
    assert auth.header_for([Scope.of("b", "pull")]) == "Bearer token-2"
    assert auth.header_for(PULL_A) == "Bearer token-1"
    assert auth.header_for([Scope.of("b", "pull")]) == "Bearer token-2"
    assert len(service.calls) == 2


def test_cross_repository_scopes_go_in_one_request() -> None:
    service = FakeTokenService()
    auth, _ = bearer_auth(service)
    auth.handle_unauthorized(
        BEARER, [Scope.of("dst", "pull", "push"), Scope.of("src", "pull")], None
    )
    assert service.calls[0][1] == [
        ("service", "reg"),
        ("scope", "repository:dst:pull,push"),
        ("scope", "repository:src:pull"),
    ]


def test_insufficient_scope_adds_the_challenge_scope_and_drops_the_stale_token() -> None:
    service = FakeTokenService()
    auth, _ = bearer_auth(service)
    auth.handle_unauthorized(BEARER, PULL_A, None)
    challenge = BEARER + ',scope="repository:other:pull",error="insufficient_scope"'
    auth.handle_unauthorized(challenge, PULL_A, "Bearer token-1")
    assert service.calls[1][1] == [
        ("service", "reg"),
        ("scope", "repository:a:pull"),
        ("scope", "repository:other:pull"),
    ]
    assert auth.header_for(PULL_A) == "Bearer token-2"


@pytest.mark.parametrize(
    ("expires_in", "still_valid_at", "refetched_at"),
    [
        (300, 260.0, 275.0),  # margin 30 s
        (10, 8.5, 9.5),  # margin 10 %
        (None, 50.0, 55.0),  # default lifetime 60 s
        ("bogus", 50.0, 55.0),
    ],
)
def test_tokens_are_refreshed_before_they_expire(
    expires_in: object, still_valid_at: float, refetched_at: float
) -> None:
    service = FakeTokenService(expires_in=expires_in)
    auth, clock = bearer_auth(service)
    start = clock.now
    auth.handle_unauthorized(BEARER, PULL_A, None)
    clock.now = start + still_valid_at
    assert auth.header_for(PULL_A) == "Bearer token-1"
    clock.now = start + refetched_at
    assert auth.header_for(PULL_A) == "Bearer token-2"


@pytest.mark.parametrize(
    ("status", "credential", "error", "fragment"),
    [
        (401, Credential("u", "pw-secret"), AuthenticationError, "rejected the credentials"),
        (401, None, AuthenticationError, "requires authentication"),
        (500, None, RegistryError, "answered HTTP 500"),
    ],
)
def test_token_service_failures(
    status: int, credential: Credential | None, error: type[Exception], fragment: str
) -> None:
    auth, _ = bearer_auth(FakeTokenService(status=status), credential)
    with pytest.raises(error) as info:
        auth.handle_unauthorized(BEARER, PULL_A, None)
    assert fragment in str(info.value)
    assert "reg.example" in str(info.value)
    assert "pw-secret" not in str(info.value)


def test_basic_challenge_sends_credentials_up_front_afterwards() -> None:
    credential = Credential("u", "p")
    auth, _ = bearer_auth(FakeTokenService(), credential)
    auth.handle_unauthorized('Basic realm="r"', PULL_A, None)
    assert auth.header_for([Scope.of("anything", "push")]) == basic_header(credential)
    with pytest.raises(AuthenticationError, match="rejected the credentials"):
        auth.handle_unauthorized('Basic realm="r"', PULL_A, basic_header(credential))


def test_basic_challenge_without_credentials_asks_to_log_in() -> None:
    auth, _ = bearer_auth(FakeTokenService())
    with pytest.raises(AuthenticationError) as info:
        auth.handle_unauthorized('Basic realm="r"', PULL_A, None)
    assert info.value.hint == "run `falcopkg registry login reg.example` or set credentials for it"


def test_credential_callable_is_resolved_once_and_only_when_challenged() -> None:
    calls: list[int] = []

    def provide() -> Credential:
        calls.append(1)
        return Credential("u", "p")

    auth = RegistryAuth("reg.example", provide, FakeTokenService())
    assert auth.header_for(PULL_A) is None
    assert calls == []
    auth.handle_unauthorized('Basic realm="r"', PULL_A, None)
    auth.header_for(PULL_A)
    auth.header_for(PULL_A)
    assert calls == [1]


def test_unusable_challenge_is_an_error() -> None:
    auth, _ = bearer_auth(FakeTokenService())
    with pytest.raises(AuthenticationError, match="without a usable"):
        auth.handle_unauthorized(None, PULL_A, None)


def test_parallel_threads_share_one_token_per_scope_set() -> None:
    service = FakeTokenService()
    auth, _ = bearer_auth(service)
    auth.handle_unauthorized(BEARER, [], None)
    repositories = [f"repo{i}" for i in range(4)]
    headers: list[str | None] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        for _ in range(20):
            header = auth.header_for([Scope.of(repositories[index % 4], "pull")])
            with lock:
                headers.append(header)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(headers) == 160 and all(h and h.startswith("Bearer ") for h in headers)
    assert len(service.calls) == 1 + 4  # the ping token + one per repository


# -- retry policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (200, False),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (429, True),
        (500, True),
        (501, False),
        (502, True),
        (503, True),
        (504, True),
        (505, False),
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),  # now = 07:28:00
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("-5", None),
        (None, None),
        ("", None),
        ("²", None),  # str.isdigit() accepts it, int() and float() do not
        ("\u0661\u0662", None),  # Arabic-Indic digits: float() read them as 12
        ("9" * 5000, float(2**31)),  # too many digits: RFC 9111's 2**31, then capped
        ("1.5", None),
        # Found by the property tests: email.utils raised OverflowError.
        ("Wed, 999999999999999999999999921 Oct 2015 07:28:00 GMT", None),
        ("Wed, 21 Oct 2015 07:99999999999999999999999:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "rand", "expected"),
    [
        (0, None, 0.5, 0.5),
        (1, None, 0.5, 1.0),
        (2, None, 0.0, 1.0),  # jitter low end: half
        (2, None, 1.0, 3.0),  # jitter high end: one and a half
        (10, None, 0.5, 8.0),  # capped backoff
        (0, "2", 0.5, 2.0),  # Retry-After honoured
        (0, "3600", 0.5, 30.0),  # and capped
    ],
)
def test_retry_delay(attempt: int, retry_after: str | None, rand: float, expected: float) -> None:
    options = RegistryOptions(backoff=0.5, max_retry_after=30.0)
    assert retry_delay(attempt, options, retry_after, rand=lambda: rand) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234", 1234),
        (" 7 ", 7),
        ("²", None),
        ("\u0661\u0662", None),
        ("9" * 5000, None),
        ("-1", None),
    ],
)
def test_numeric_headers_are_ascii_digits_only(value: str, expected: int | None) -> None:
    headers = Headers([("content-length", value)])
    assert _int_header(headers, "Content-Length") == expected


def test_options_timeouts() -> None:
    assert RegistryOptions(timeout=5).timeouts == (5.0, 5.0)
    assert RegistryOptions(timeout=(1.0, 2.0)).timeouts == (1.0, 2.0)
    assert RegistryOptions().timeouts == (10.0, 60.0)


# -- descriptors --------------------------------------------------------------------------------


def test_descriptor_round_trip_in_go_field_order() -> None:
    raw = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": DIGEST,
        "size": 12,
        "annotations": {"z": "1", "a": "2"},
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    }
    descriptor = Descriptor.from_dict(raw)
    assert descriptor.platform_name == "linux/arm64/v8"
    encoded = descriptor.to_dict()
    assert list(encoded) == ["mediaType", "digest", "size", "annotations", "platform"]
    assert list(encoded["annotations"]) == ["a", "z"]
    assert list(encoded["platform"]) == ["architecture", "os", "variant"]
    assert Descriptor.from_dict(encoded) == descriptor


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"digest": DIGEST, "size": 1}, "mediaType"),
        ({"mediaType": "x", "digest": "sha256:short", "size": 1}, "digest"),
        ({"mediaType": "x", "digest": DIGEST, "size": -1}, "size"),
        ({"mediaType": "x", "digest": DIGEST, "size": True}, "size"),
        ({"mediaType": "x", "digest": DIGEST, "size": 1, "annotations": {"a": 1}}, "annotations"),
        ({"mediaType": "x", "digest": DIGEST, "size": 1, "platform": {"os": "linux"}}, "platform"),
    ],
)
def test_descriptor_validation(raw: object, fragment: str) -> None:
    with pytest.raises(InvalidManifestError) as info:
        Descriptor.from_dict(raw, context="layer 0 of test")
    assert "layer 0 of test" in str(info.value) and fragment in str(info.value)


def test_fetched_manifest_json() -> None:
    good = FetchedManifest("application/vnd.oci.image.manifest.v1+json", DIGEST, b'{"a": 1}')
    assert good.json() == {"a": 1} and good.descriptor.size == 8
    with pytest.raises(InvalidManifestError, match=DIGEST):
        FetchedManifest("x", DIGEST, b"[1]").json()
    with pytest.raises(InvalidManifestError, match="not valid JSON"):
        FetchedManifest("x", DIGEST, b"\xff").json()


def test_a_token_never_shows_in_a_repr() -> None:
    from falcopkg.oci.auth import _Token

    token = _Token("secret-bearer-token", frozenset({Scope.of("a/b", "pull")}), 12.0)
    assert "secret-bearer-token" not in repr(token)
    assert "a/b" in repr(token)


def test_an_insecure_registry_changes_no_global_warning_filter() -> None:
    """insecure = true applies to its own host only: nothing process-wide is silenced."""
    import warnings

    before = list(warnings.filters)
    RegistryClient("insecure.example:5000", RegistryOptions(insecure=True)).close()
    assert warnings.filters == before


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b'{"schemaVersion": ' + b"9" * 5000 + b"}", b"\xff\xfe"],
    ids=["nested-100000", "5000-digit-number", "not-utf8"],
)
def test_hostile_manifest_json_is_invalid_manifest(data: bytes) -> None:
    """json raises RecursionError and a plain ValueError (not JSONDecodeError) for these."""
    with pytest.raises(InvalidManifestError, match="is not valid JSON"):
        FetchedManifest("application/vnd.oci.image.manifest.v1+json", DIGEST, data).json()
