"""The OCI client against a real registry (distribution 2.8), plus protocol edges (retries,
redirects) against tiny local HTTP servers."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from falcopkg.errors import IntegrityError, InvalidReferenceError, NetworkError
from falcopkg.oci import mediatypes
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.credentials import Credential
from falcopkg.oci.descriptor import Descriptor
from falcopkg.oci.errors import (
    AuthenticationError,
    NotFoundError,
    RegistryError,
    RegistryTLSError,
    RegistryUnreachableError,
)
from tests.fixtures.certs import TestCA
from tests.fixtures.oci import digest_of, manifest_bytes, push_artifact
from tests.fixtures.registries import RunningRegistry, free_port

FAST = RegistryOptions(plain_http=True, backoff=0.01, timeout=(2.0, 10.0))


@pytest.fixture
def plain(plain_registry: RunningRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(plain_registry.host, FAST) as client:
        yield client


# -- blobs ---------------------------------------------------------------------------------------


def test_upload_monolithic_from_bytes_and_file_then_skip(
    plain: RegistryClient, unique_repo: str, tmp_path: Path
) -> None:
    data = b"rules\n" * 1000
    assert plain.upload_blob(unique_repo, data, digest_of(data), len(data)) is True
    assert plain.upload_blob(unique_repo, data, digest_of(data), len(data)) is False
    assert plain.head_blob(unique_repo, digest_of(data)) == len(data)

    big = tmp_path / "layer.tar.gz"
    big.write_bytes(bytes(range(256)) * 12_000)  # ~3 MiB, streamed from the file
    digest, size = digest_of(big.read_bytes()), big.stat().st_size
    assert plain.upload_blob(unique_repo, big, digest, size) is True
    out = tmp_path / "out" / "blob"
    received: list[int] = []
    plain.download_blob(unique_repo, digest, out, expected_size=size, progress=received.append)
    assert out.read_bytes() == big.read_bytes()
    assert sum(received) == size
    assert sorted(p.name for p in out.parent.iterdir()) == ["blob"]


@pytest.mark.parametrize("chunk_size", [1, 1000, 1024 * 1024])
def test_upload_chunked(
    plain: RegistryClient, unique_repo: str, tmp_path: Path, chunk_size: int
) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"0123456789" * 250)
    data = source.read_bytes()
    if chunk_size == 1:
        source.write_bytes(data[:7])  # one byte per PATCH: keep it short
        data = data[:7]
    assert plain.upload_blob(unique_repo, source, digest_of(data), len(data), chunk_size=chunk_size)
    assert plain.get_blob_bytes(unique_repo, digest_of(data)) == data


def test_upload_rejects_a_source_that_does_not_match(
    plain: RegistryClient, unique_repo: str
) -> None:
    with pytest.raises(IntegrityError, match="does not match its digest"):
        plain.upload_blob(unique_repo, b"abc", digest_of(b"abd"), 3)
    with pytest.raises(IntegrityError, match="3 bytes, not 4"):
        plain.upload_blob(unique_repo, b"abc", digest_of(b"abc"), 4)


def test_empty_blob_round_trip(plain: RegistryClient, unique_repo: str, tmp_path: Path) -> None:
    empty = digest_of(b"")
    assert plain.upload_blob(unique_repo, b"", empty, 0, chunk_size=10)
    plain.download_blob(unique_repo, empty, tmp_path / "empty", expected_size=0)
    assert (tmp_path / "empty").read_bytes() == b""


def test_blob_size_limits(plain: RegistryClient, unique_repo: str, tmp_path: Path) -> None:
    data = b"x" * 5000
    plain.upload_blob(unique_repo, data, digest_of(data), len(data))
    with pytest.raises(IntegrityError, match="larger than the allowed 100 bytes"):
        plain.get_blob_bytes(unique_repo, digest_of(data), max_size=100)
    with pytest.raises(IntegrityError, match="has 5000 bytes, expected 10"):
        plain.download_blob(unique_repo, digest_of(data), tmp_path / "x", expected_size=10)
    with pytest.raises(IntegrityError, match="larger than the allowed 10 bytes"):
        plain.download_blob(unique_repo, digest_of(data), tmp_path / "x", max_size=10)
    assert list(tmp_path.iterdir()) == []


def test_open_blob_streams_and_verifies(plain: RegistryClient, unique_repo: str) -> None:
    data = b"y" * (3 * 1024 * 1024 + 5)
    plain.upload_blob(unique_repo, data, digest_of(data), len(data))
    with plain.open_blob(unique_repo, digest_of(data), expected_size=len(data)) as chunks:
        assert b"".join(chunks) == data


def test_missing_things(plain: RegistryClient, unique_repo: str, tmp_path: Path) -> None:
    absent = digest_of(b"absent")
    assert plain.head_blob(unique_repo, absent) is None
    assert plain.head_manifest(unique_repo, "1.0.0") is None
    with pytest.raises(NotFoundError) as info:
        plain.get_manifest(unique_repo, "1.0.0")
    assert info.value.status == 404 and info.value.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    assert f"{plain.host}/{unique_repo}:1.0.0" in info.value.message
    with pytest.raises(NotFoundError, match=absent):
        plain.download_blob(unique_repo, absent, tmp_path / "x")
    with pytest.raises(NotFoundError, match=unique_repo):
        plain.list_tags(unique_repo)
    assert list(tmp_path.iterdir()) == []


# -- manifests -----------------------------------------------------------------------------------


def test_manifest_by_tag_and_digest(plain: RegistryClient, unique_repo: str) -> None:
    layer = b"- rule: x\n"
    digest = push_artifact(plain, unique_repo, "1.0.0", layer)
    by_tag = plain.get_manifest(unique_repo, "1.0.0")
    by_digest = plain.get_manifest(unique_repo, digest)
    assert by_tag.digest == by_digest.digest == digest == digest_of(by_tag.data)
    assert by_tag.data == by_digest.data
    assert by_tag.media_type == mediatypes.OCI_MANIFEST
    assert by_tag.json()["layers"][0]["digest"] == digest_of(layer)
    assert plain.head_manifest(unique_repo, "1.0.0") == Descriptor(
        mediatypes.OCI_MANIFEST, digest, len(by_tag.data)
    )
    assert plain.get_manifest(unique_repo, "1.0.0", expected_digest=digest).digest == digest
    wrong = digest_of(b"something else")
    with pytest.raises(IntegrityError) as info:
        plain.get_manifest(unique_repo, "1.0.0", expected_digest=wrong)
    assert wrong in info.value.message


def test_put_manifest_by_digest_checks_the_bytes(plain: RegistryClient, unique_repo: str) -> None:
    layer = b"layer"
    digest = push_artifact(plain, unique_repo, "1.0.0", layer)
    data = plain.get_manifest(unique_repo, digest).data
    assert plain.put_manifest(unique_repo, digest, data, mediatypes.OCI_MANIFEST) == digest
    with pytest.raises(IntegrityError):
        plain.put_manifest(unique_repo, digest, data + b" ", mediatypes.OCI_MANIFEST)


def test_image_index_put_and_get(plain: RegistryClient, unique_repo: str) -> None:
    platforms = {"amd64": b"\x7fELF amd64", "arm64": b"\x7fELF arm64"}
    entries = []
    for arch, layer in platforms.items():
        digest = push_artifact(plain, unique_repo, f"1.0.0-{arch}", layer)
        size = len(plain.get_manifest(unique_repo, digest).data)
        descriptor = Descriptor(
            mediatypes.OCI_MANIFEST, digest, size, platform={"os": "linux", "architecture": arch}
        )
        entries.append(descriptor.to_dict())
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}
    ).encode()
    index_digest = plain.put_manifest(unique_repo, "1.0.0", index, mediatypes.OCI_INDEX)
    fetched = plain.get_manifest(unique_repo, "1.0.0")
    assert fetched.media_type == mediatypes.OCI_INDEX
    assert fetched.digest == index_digest and fetched.data == index
    names = [Descriptor.from_dict(m).platform_name for m in fetched.json()["manifests"]]
    assert names == ["linux/amd64", "linux/arm64"]
    head = plain.head_manifest(unique_repo, index_digest)
    assert head is not None and head.media_type == mediatypes.OCI_INDEX


def test_tags_pagination(plain: RegistryClient, unique_repo: str) -> None:
    digest = push_artifact(plain, unique_repo, "0.1.0", b"layer")
    data = plain.get_manifest(unique_repo, digest).data
    tags = ["0.1.0"] + [f"1.{i}.0" for i in range(6)] + ["latest"]
    for tag in tags[1:]:
        plain.put_manifest(unique_repo, tag, data, mediatypes.OCI_MANIFEST)
    # distribution 2.8 ignores `n` and sends everything: still every tag exactly once.
    for page_size in (3, 1, None):
        listed = plain.list_tags(unique_repo, page_size=page_size)
        assert sorted(listed) == sorted(tags)


def test_cross_repository_mount(plain: RegistryClient, unique_repo: str) -> None:
    data = b"shared layer"
    source, target = f"{unique_repo}/src", f"{unique_repo}/dst"
    plain.upload_blob(source, data, digest_of(data), len(data))
    assert plain.mount_blob(target, digest_of(data), source) is True
    assert plain.head_blob(target, digest_of(data)) == len(data)
    # Unknown blob: the registry opens an upload session instead (202) -> False.
    assert plain.mount_blob(target, digest_of(b"nope"), source) is False


# -- integrity -----------------------------------------------------------------------------------


def test_tampered_blob_is_refused_and_leaves_nothing(
    registry_factory: Callable[..., RunningRegistry], tmp_path: Path
) -> None:
    registry = registry_factory("plain")
    client = RegistryClient(registry.host, FAST)
    data = b"original rules content\n" * 100
    digest = digest_of(data)
    client.upload_blob("acme/rules", data, digest, len(data))
    stored = registry.blob_path(digest)
    stored.write_bytes(b"X" + stored.read_bytes()[1:])  # same size, different bytes

    dest_dir = tmp_path / "install"
    dest_dir.mkdir()
    with pytest.raises(IntegrityError) as info:
        client.download_blob("acme/rules", digest, dest_dir / "rules.yaml", expected_size=len(data))
    assert digest in info.value.message
    assert f"{registry.host}/acme/rules" in info.value.message
    assert list(dest_dir.iterdir()) == []  # no output file and no temporary file
    with pytest.raises(IntegrityError, match=digest):
        client.get_blob_bytes("acme/rules", digest)
    with pytest.raises(IntegrityError), client.open_blob("acme/rules", digest) as chunks:
        for _ in chunks:
            pass


# -- TLS -----------------------------------------------------------------------------------------


def test_tls_with_ca_file_and_basic_auth(tls_registry: RunningRegistry, unique_repo: str) -> None:
    assert tls_registry.username and tls_registry.password and tls_registry.ca_file
    credential = Credential(tls_registry.username, tls_registry.password)
    options = RegistryOptions(ca_file=tls_registry.ca_file)
    with RegistryClient(tls_registry.host, options, credential) as client:
        client.ping()
        digest = push_artifact(client, unique_repo, "1.0.0", b"tls layer")
        assert client.get_manifest(unique_repo, "1.0.0").digest == digest
        assert client.auth.scheme == "basic"


def test_tls_wrong_password(tls_registry: RunningRegistry, unique_repo: str) -> None:
    assert tls_registry.username
    options = RegistryOptions(ca_file=tls_registry.ca_file)
    with (
        RegistryClient(
            tls_registry.host, options, Credential(tls_registry.username, "wrong-pw-1")
        ) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.list_tags(unique_repo)
    assert tls_registry.host in info.value.message
    assert "wrong-pw-1" not in info.value.message
    assert f"falcopkg registry login {tls_registry.host}" in (info.value.hint or "")


def test_tls_without_ca_file_is_a_clear_error(tls_registry: RunningRegistry) -> None:
    with (
        RegistryClient(tls_registry.host, RegistryOptions(retries=0)) as client,
        pytest.raises(RegistryTLSError) as info,
    ):
        client.ping()
    assert tls_registry.host in info.value.message
    assert "ca_file" in (info.value.hint or "")


def test_tls_insecure_skips_verification(tls_registry: RunningRegistry) -> None:
    # TLS passes without a CA; the registry then wants credentials.
    with (
        RegistryClient(tls_registry.host, RegistryOptions(insecure=True)) as client,
        pytest.raises(AuthenticationError),
    ):
        client.list_tags("x/y")


def test_https_to_a_plain_http_registry_suggests_plain_http(
    plain_registry: RunningRegistry,
) -> None:
    with (
        RegistryClient(plain_registry.host, RegistryOptions(retries=0)) as client,
        pytest.raises(RegistryTLSError) as info,
    ):
        client.ping()
    assert plain_registry.host in info.value.message
    assert "plain_http" in (info.value.hint or "")


def test_plain_http_to_a_tls_registry_suggests_https(tls_registry: RunningRegistry) -> None:
    with (
        RegistryClient(tls_registry.host, FAST) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.ping()
    assert info.value.status == 400
    assert "plain_http" in (info.value.hint or "")


def test_empty_file_upload(plain: RegistryClient, unique_repo: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert plain.upload_blob(unique_repo, empty, digest_of(b""), 0)
    assert plain.head_blob(unique_repo, digest_of(b"")) == 0


@pytest.mark.parametrize("host", ["", "https://ghcr.io", "ghcr.io/acme", "user@ghcr.io"])
def test_invalid_host(host: str) -> None:
    with pytest.raises(InvalidReferenceError):
        RegistryClient(host)


# -- unreachable registries ----------------------------------------------------------------------


def test_registry_down_fails_fast(registry_factory: Callable[..., RunningRegistry]) -> None:
    registry = registry_factory("plain")
    registry.stop()
    client = RegistryClient(registry.host, RegistryOptions(plain_http=True))  # default retries
    started = time.monotonic()
    with pytest.raises(RegistryUnreachableError) as info:
        client.get_manifest("acme/rules", "1.0.0")
    assert time.monotonic() - started < 30
    assert isinstance(info.value, NetworkError)
    assert info.value.message == f"cannot reach registry {registry.host}: connection refused"
    assert "is running" in (info.value.hint or "")


def test_unused_port_fails_fast() -> None:
    host = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(RegistryUnreachableError, match="connection refused"):
        RegistryClient(host, RegistryOptions(retries=1)).ping()
    assert time.monotonic() - started < 30


# -- protocol edges against a scripted local server ----------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class ScriptedServer:
    """A local HTTP server whose answers come from ``respond(seen) -> (status, headers, body)``."""

    respond: Callable[[Seen], Reply]
    host: str = "127.0.0.1"
    tls: TestCA | None = None  # serve HTTPS with the session CA's server certificate
    seen: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> ScriptedServer:
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                server_ref.seen.append(seen)
                status, headers, body = server_ref.respond(seen)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _handle

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls.server.cert_file, self.tls.server.key_file)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def netloc(self) -> str:
        assert self._server is not None
        return f"{self.host}:{self._server.server_address[1]}"


def _json_error(status: int, code: str) -> Reply:
    body = json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()
    return status, {"Content-Type": "application/json"}, body


def test_retry_after_429_is_honoured() -> None:
    data = b'{"tags": ["1.0.0"], "name": "a/b"}'
    answers = iter(
        [(429, {"Retry-After": "1"}, b""), (200, {"Content-Type": "application/json"}, data)]
    )
    with ScriptedServer(lambda seen: next(answers)) as server:
        started = time.monotonic()
        tags = RegistryClient(server.netloc, FAST).list_tags("a/b")
    assert tags == ["1.0.0"]
    assert time.monotonic() - started >= 0.9
    assert len(server.seen) == 2


def test_5xx_is_retried_then_reported() -> None:
    with (
        ScriptedServer(lambda seen: _json_error(503, "UNAVAILABLE")) as server,
        pytest.raises(RegistryError) as info,
    ):
        RegistryClient(server.netloc, FAST).get_manifest("a/b", "1.0.0")
    assert len(server.seen) == FAST.retries + 1
    assert info.value.status == 503 and info.value.code == "UNAVAILABLE"
    assert server.netloc in info.value.message


def test_5xx_then_success() -> None:
    body = manifest_bytes(b"{}", b"layer")
    answers = iter(
        [
            _json_error(500, "UNKNOWN"),
            _json_error(502, "UNKNOWN"),
            (200, {"Content-Type": mediatypes.OCI_MANIFEST}, body),
        ]
    )
    with ScriptedServer(lambda seen: next(answers)) as server:
        fetched = RegistryClient(server.netloc, FAST).get_manifest("a/b", digest_of(body))
    assert fetched.data == body and len(server.seen) == 3


@pytest.mark.parametrize("status", [400, 404, 405])
def test_4xx_is_never_retried(status: int) -> None:
    with (
        ScriptedServer(lambda seen: _json_error(status, "MANIFEST_UNKNOWN")) as server,
        pytest.raises(RegistryError),
    ):
        RegistryClient(server.netloc, FAST).get_manifest("a/b", "1.0.0")
    assert len(server.seen) == 1


def test_manifest_with_wrong_bytes_for_its_digest() -> None:
    body = manifest_bytes(b"{}", b"layer")
    claimed = digest_of(b"other")
    reply: Reply = (200, {"Content-Type": mediatypes.OCI_MANIFEST}, body)
    with ScriptedServer(lambda seen: reply) as server, pytest.raises(IntegrityError) as info:
        RegistryClient(server.netloc, FAST).get_manifest("a/b", claimed)
    assert claimed in info.value.message


def test_media_type_from_the_body_when_content_type_is_generic() -> None:
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": []}
    ).encode()
    reply: Reply = (200, {"Content-Type": "application/json"}, body)
    with ScriptedServer(lambda seen: reply) as server:
        fetched = RegistryClient(server.netloc, FAST).get_manifest("a/b", "1.0.0")
    assert fetched.media_type == mediatypes.OCI_INDEX


def test_redirect_to_another_host_gets_no_authorization(tmp_path: Path) -> None:
    """Basic-auth registry redirects blob GETs to object storage on another host."""
    blob = b"blob behind a redirect"
    credential = Credential("alice", "s3cret-pw")

    def storage(seen: Seen) -> Reply:
        return 200, {"Content-Type": "application/octet-stream"}, blob

    with ScriptedServer(storage, host="127.0.0.2") as store:

        def registry(seen: Seen) -> Reply:
            if "Authorization" not in seen.headers:
                return 401, {"WWW-Authenticate": 'Basic realm="test"'}, b""
            if seen.path.startswith("/v2/a/b/blobs/"):
                location = f"http://{store.netloc}/bucket/blob?X-Amz-Signature=abc"
                return 307, {"Location": location}, b""
            return 200, {}, b"{}"

        with ScriptedServer(registry) as server:
            client = RegistryClient(server.netloc, FAST, credential)
            client.download_blob("a/b", digest_of(blob), tmp_path / "blob")
            assert client.get_blob_bytes("a/b", digest_of(blob)) == blob

    assert (tmp_path / "blob").read_bytes() == blob
    blob_gets = [s for s in server.seen if s.path.startswith("/v2/a/b/blobs/")]
    assert blob_gets[-1].headers.get("Authorization", "").startswith("Basic ")
    assert len(store.seen) == 2
    for seen in store.seen:
        assert "Authorization" not in seen.headers
        assert seen.path == "/bucket/blob?X-Amz-Signature=abc"


@pytest.mark.parametrize("setting", ["ca_file", "insecure"])
def test_registry_tls_settings_do_not_follow_a_redirect_to_another_host(
    session_ca: TestCA, tmp_path: Path, setting: str
) -> None:
    """ca_file/insecure are about the registry: the object storage a blob redirect points at
    is verified against the system's trust store (which does not know the test CA)."""
    blob = b"blob on a CDN"
    options = RegistryOptions(
        retries=0,
        ca_file=session_ca.ca_file if setting == "ca_file" else None,
        insecure=setting == "insecure",
    )
    with ScriptedServer(lambda seen: (200, {}, blob), host="127.0.0.2", tls=session_ca) as cdn:

        def registry(seen: Seen) -> Reply:
            if seen.path.startswith("/v2/a/b/blobs/"):
                return 307, {"Location": f"https://{cdn.netloc}/bucket/blob"}, b""
            return 200, {}, b"{}"

        with ScriptedServer(registry, tls=session_ca) as server:
            client = RegistryClient(server.netloc, options)
            client.ping()  # the registry itself is trusted (ca_file) or not verified (insecure)
            with pytest.raises(RegistryTLSError) as caught:
                client.download_blob("a/b", digest_of(blob), tmp_path / "blob")
    assert caught.value.message.startswith(f"TLS certificate of {cdn.netloc} is not trusted")
    assert caught.value.hint is not None and f"registry {server.netloc} redirected" in (
        caught.value.hint
    )
    assert cdn.seen == []  # the handshake failed: nothing was requested from it
    assert not (tmp_path / "blob").exists()


def test_an_https_registry_may_not_name_a_plain_http_token_realm(session_ca: TestCA) -> None:
    """The realm would get the password in cleartext: refused before anything is sent."""
    with ScriptedServer(lambda seen: (200, {}, b'{"token": "t"}'), host="127.0.0.2") as realm:
        challenge = f'Bearer realm="http://{realm.netloc}/token",service="svc"'

        def registry(seen: Seen) -> Reply:
            return 401, {"WWW-Authenticate": challenge}, b""

        with ScriptedServer(registry, tls=session_ca) as server:
            options = RegistryOptions(retries=0, ca_file=session_ca.ca_file)
            client = RegistryClient(server.netloc, options, Credential("alice", "s3cret-pw"))
            with pytest.raises(AuthenticationError) as caught:
                client.list_tags("a/b")
    assert "plain-http token service" in caught.value.message
    assert caught.value.hint is not None and "https://" in caught.value.hint
    assert "s3cret-pw" not in f"{caught.value.message} {caught.value.hint}"
    assert realm.seen == []


ALL_TAGS = [f"1.{i}.0" for i in range(7)]


def _paged_tags(seen: Seen, *, link: bool) -> Reply:
    """A registry paginating like distribution 3: `n`, `last`, and optionally a Link header."""
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(seen.path).query)
    size = int(query.get("n", ["100"])[0])
    last = query.get("last", [None])[0]
    start = ALL_TAGS.index(last) + 1 if last else 0
    page = ALL_TAGS[start : start + size]
    headers = {"Content-Type": "application/json"}
    if link and start + size < len(ALL_TAGS):
        headers["Link"] = f'</v2/a/b/tags/list?last={page[-1]}&n={size}>; rel="next"'
    return 200, headers, json.dumps({"name": "a/b", "tags": page}).encode()


@pytest.mark.parametrize("link", [True, False], ids=["link-header", "n-last-only"])
def test_tags_pagination_protocol(link: bool) -> None:
    with ScriptedServer(lambda seen: _paged_tags(seen, link=link)) as server:
        assert RegistryClient(server.netloc, FAST).list_tags("a/b", page_size=3) == ALL_TAGS
    assert [s.path for s in server.seen][:2] == [
        "/v2/a/b/tags/list?n=3",
        "/v2/a/b/tags/list?last=1.2.0&n=3" if link else "/v2/a/b/tags/list?n=3&last=1.2.0",
    ]
    assert len(server.seen) == 3  # pages of 3, 3 and 1 tags


def test_basic_credentials_go_up_front_after_the_first_challenge() -> None:
    credential = Credential("alice", "pw")

    def registry(seen: Seen) -> Reply:
        if "Authorization" not in seen.headers:
            return 401, {"WWW-Authenticate": 'Basic realm="test"'}, b""
        return 200, {"Content-Type": "application/json"}, b'{"tags": []}'

    with ScriptedServer(registry) as server:
        client = RegistryClient(server.netloc, FAST, credential)
        client.ping()
        client.list_tags("a/b")
        client.list_tags("c/d")
    assert [("Authorization" in s.headers) for s in server.seen] == [False, True, True, True]


def test_rejected_token_is_replaced_and_basic_credentials_only_go_to_the_realm() -> None:
    """A registry that stops accepting a token (expired, revoked) gets a fresh one."""
    credential = Credential("alice", "pw")
    issued: list[str] = []

    def token_service(seen: Seen) -> Reply:
        issued.append(f"token-{len(issued) + 1}")
        body = json.dumps({"token": issued[-1], "expires_in": 300}).encode()
        return 200, {"Content-Type": "application/json"}, body

    with ScriptedServer(token_service, host="127.0.0.2") as realm:
        challenge = f'Bearer realm="http://{realm.netloc}/token",service="svc"'

        def registry(seen: Seen) -> Reply:
            # token-1 works once, then the registry considers it expired.
            accepted = {"Bearer token-2"} | (
                {"Bearer token-1"} if len(registry_calls) < 2 else set()
            )
            registry_calls.append(seen)
            if seen.headers.get("Authorization") not in accepted:
                return 401, {"WWW-Authenticate": challenge + ',error="invalid_token"'}, b""
            return 200, {"Content-Type": "application/json"}, b'{"tags": ["1.0.0"]}'

        registry_calls: list[Seen] = []
        with ScriptedServer(registry) as server:
            client = RegistryClient(server.netloc, FAST, credential)
            assert client.list_tags("a/b") == ["1.0.0"]  # 401, token-1, 200
            assert client.list_tags("a/b") == ["1.0.0"]  # token-1 rejected -> token-2
    assert issued == ["token-1", "token-2"]
    assert [s.headers.get("Authorization") for s in server.seen] == [
        None,
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert all(s.headers["Authorization"].startswith("Basic ") for s in realm.seen)
    assert all("scope=repository%3Aa%2Fb%3Apull" in s.path for s in realm.seen)


def test_failed_upload_starts_over_with_the_file_reopened(tmp_path: Path) -> None:
    source = tmp_path / "layer"
    source.write_bytes(b"layer bytes " * 1000)
    data = source.read_bytes()
    sessions = iter(["/v2/a/b/blobs/uploads/one?_state=s1", "/v2/a/b/blobs/uploads/two?_state=s2"])
    puts: list[Seen] = []

    def registry(seen: Seen) -> Reply:
        if seen.method == "HEAD":
            return 404, {}, b""
        if seen.method == "POST":
            return 202, {"Location": next(sessions)}, b""
        puts.append(seen)
        if len(puts) == 1:
            return _json_error(500, "UNKNOWN")  # the first session breaks
        return 201, {"Docker-Content-Digest": digest_of(seen.body)}, b""

    with ScriptedServer(registry) as server:
        assert RegistryClient(server.netloc, FAST).upload_blob(
            "a/b", source, digest_of(data), len(data)
        )
    assert [s.method for s in server.seen] == ["HEAD", "POST", "PUT", "POST", "PUT"]
    digest_query = "digest=sha256%3A" + digest_of(data).split(":")[1]
    assert puts[0].path == f"/v2/a/b/blobs/uploads/one?_state=s1&{digest_query}"
    assert puts[1].path == f"/v2/a/b/blobs/uploads/two?_state=s2&{digest_query}"
    assert puts[0].body == puts[1].body == data


def test_get_manifest_refuses_a_wrong_docker_content_digest() -> None:
    """A registry (or proxy) that names other bytes than it sends is caught."""
    body = manifest_bytes(b"{}", b"layer")
    lie = digest_of(body + b" ")

    def registry(seen: Seen) -> Reply:
        return 200, {"Content-Type": mediatypes.OCI_MANIFEST, "Docker-Content-Digest": lie}, body

    with ScriptedServer(registry) as server, pytest.raises(IntegrityError) as caught:
        RegistryClient(server.netloc, FAST).get_manifest("a/b", "1.0.0")
    assert "Docker-Content-Digest" in caught.value.message and lie in caught.value.message


def test_put_manifest_refuses_a_digest_the_registry_computed_differently() -> None:
    body = manifest_bytes(b"{}", b"layer")

    def registry(seen: Seen) -> Reply:
        return 201, {"Docker-Content-Digest": digest_of(seen.body + b"x")}, b""

    with ScriptedServer(registry) as server, pytest.raises(IntegrityError) as caught:
        RegistryClient(server.netloc, FAST).put_manifest(
            "a/b", "1.0.0", body, mediatypes.OCI_MANIFEST
        )
    assert digest_of(body) in caught.value.message
