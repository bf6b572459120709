"""Every network wait is bounded (SPEC §9, issue 12 Found 1-3): real misbehaving servers on
loopback (tests/fixtures/slowserver.py), short deadlines, and an assertion on the time each
call took besides the error it gave."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from falcopkg.core.index_config import IndexConfig
from falcopkg.deadline import CommandBudget, HostTimeoutError
from falcopkg.digests import bytes_digest
from falcopkg.errors import NetworkError
from falcopkg.oci import mediatypes
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.errors import InvalidManifestError
from falcopkg.services.indexes import IndexStore
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.slowserver import MisbehavingServer, Reply, Request

DEADLINE = 2.0
MARGIN = 1.5  # scheduling on a loaded 2-core machine
FAST = RegistryOptions(plain_http=True, backoff=0.01, request_timeout=DEADLINE)
BLOB = "sha256:" + "0" * 64


@contextmanager
def within(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f}s, allowed {seconds:.1f}s"


def stall(request: Request, reply: Reply) -> None:
    reply.stall()


def test_a_registry_that_never_answers_ends_within_the_deadline() -> None:
    budget = CommandBudget()
    with MisbehavingServer(stall) as server:
        client = RegistryClient(server.netloc, FAST, budget=budget)
        with within(DEADLINE + MARGIN), pytest.raises(NetworkError) as info:
            client.list_tags("a/b")
        assert server.netloc in info.value.message
        # The host is remembered: the next request (another repository) fails at once.
        with within(0.5), pytest.raises(NetworkError) as again:
            client.get_manifest("c/d", "1.0.0")
        assert again.value is info.value
        seen = len(server.requests)
    assert seen == 1


def test_a_dripped_manifest_hits_the_request_deadline() -> None:
    def drip(request: Request, reply: Reply) -> None:
        reply.head(200, {"Content-Type": mediatypes.OCI_MANIFEST, "Content-Length": "4000"})
        reply.drip(b"{" * 4000, 0.2)

    with MisbehavingServer(drip) as server:
        client = RegistryClient(server.netloc, FAST)
        with within(DEADLINE + MARGIN), pytest.raises(HostTimeoutError) as info:
            client.get_manifest("a/b", "1.0.0")
    assert server.netloc in info.value.message
    assert f"within {DEADLINE:g}s" in info.value.message


def test_dripped_headers_hit_the_request_deadline() -> None:
    def drip(request: Request, reply: Reply) -> None:
        reply.drip(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000, 0.1)

    with MisbehavingServer(drip) as server:
        client = RegistryClient(server.netloc, FAST)
        with within(DEADLINE + MARGIN), pytest.raises(HostTimeoutError) as info:
            client.list_tags("a/b")
    assert server.netloc in info.value.message


def test_a_dripping_blob_is_aborted_by_the_throughput_rule(tmp_path: Path) -> None:
    """Blob bodies are not bounded by the request deadline (large plugins on slow links),
    but by throughput: here fewer than 1 KiB per second."""
    options = RegistryOptions(plain_http=True, backoff=0.01, request_timeout=30, stall_interval=1)

    def drip(request: Request, reply: Reply) -> None:
        reply.head(200, {"Content-Length": "100000"})
        reply.drip(b"x" * 100_000, 0.05)

    with MisbehavingServer(drip) as server:
        client = RegistryClient(server.netloc, options)
        with within(1.0 + MARGIN), pytest.raises(HostTimeoutError) as info:
            client.download_blob("a/b", BLOB, tmp_path / "blob")
        assert len(server.requests) == 1  # a stall is not retried
    assert "stalled" in info.value.message and server.netloc in info.value.message
    assert not (tmp_path / "blob").exists()


def test_a_blob_that_keeps_coming_is_not_cut_by_the_request_deadline(tmp_path: Path) -> None:
    data = b"y" * 60_000
    digest = bytes_digest(data)
    options = RegistryOptions(plain_http=True, request_timeout=0.5, stall_interval=0.3)

    def slow_but_steady(request: Request, reply: Reply) -> None:
        reply.head(200, {"Content-Length": str(len(data))})
        for start in range(0, len(data), 6000):  # 6 KB every 0.1 s, for a second in all
            time.sleep(0.1)
            reply.raw(data[start : start + 6000])

    with MisbehavingServer(slow_but_steady) as server:
        RegistryClient(server.netloc, options).download_blob("a/b", digest, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data


def test_retry_after_of_an_hour_is_an_immediate_error() -> None:
    def rate_limited(request: Request, reply: Reply) -> None:
        reply.send(429, {"Retry-After": "3600"})

    with MisbehavingServer(rate_limited) as server:
        client = RegistryClient(server.netloc, FAST)
        with within(0.5 + MARGIN), pytest.raises(HostTimeoutError) as info:
            client.get_manifest("a/b", "1.0.0")
        seen = len(server.requests)
    assert seen == 1
    assert server.netloc in info.value.message and "3600s" in info.value.message


def test_retry_after_beyond_the_deadline_is_not_waited_for() -> None:
    def rate_limited(request: Request, reply: Reply) -> None:
        reply.send(503, {"Retry-After": "5"})  # under the cap, over the 2 s deadline

    with (
        MisbehavingServer(rate_limited) as server,
        within(0.5 + MARGIN),
        pytest.raises(HostTimeoutError) as info,
    ):
        RegistryClient(server.netloc, FAST).get_manifest("a/b", "1.0.0")
    assert "5s" in info.value.message


def test_endless_tag_pagination_is_bounded() -> None:
    def forever(request: Request, reply: Reply) -> None:
        page = len(server.requests)
        body = json.dumps({"name": "a/b", "tags": [f"t{page}-{i}" for i in range(3)]}).encode()
        link = f'</v2/a/b/tags/list?n=3&last=t{page}>; rel="next"'
        reply.send(200, {"Content-Type": "application/json", "Link": link}, body)

    options = RegistryOptions(plain_http=True, request_timeout=10)
    with MisbehavingServer(forever) as server:
        client = RegistryClient(server.netloc, options)
        # Bounded in pages (1000) and in time (4 requests' worth): whichever comes first.
        with within(4 * 10 + MARGIN), pytest.raises(NetworkError) as info:
            client.list_tags("a/b")
        pages = len(server.requests)
    assert pages <= 1000
    assert server.netloc in info.value.message
    assert "1000 pages" in info.value.message or "to list the tags" in info.value.message


def test_a_huge_image_index_is_refused_before_fetching_its_entries() -> None:
    from falcopkg.artifact.remote import inspect_artifact

    entry = {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": "sha256:" + "1" * 64,
        "size": 500,
    }
    manifests = [
        {**entry, "platform": {"os": "linux", "architecture": f"arch{i}"}} for i in range(20_000)
    ]
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": manifests},
        separators=(",", ":"),
    ).encode()
    assert len(index) < 4 * 1024 * 1024  # under the manifest size limit

    def serve(request: Request, reply: Reply) -> None:
        reply.send(200, {"Content-Type": mediatypes.OCI_INDEX}, index)

    with MisbehavingServer(serve) as server:
        client = RegistryClient(server.netloc, FAST)
        with within(DEADLINE + MARGIN), pytest.raises(InvalidManifestError) as info:
            inspect_artifact(client, "a/b", "1.0.0")
        seen = len(server.requests)
    assert seen == 1
    assert "20000 manifests" in info.value.message


def test_index_entries_are_fetched_once_per_digest_and_only_for_wanted_platforms() -> None:
    from falcopkg.artifact.remote import inspect_artifact

    config = b'{"name": "p", "version": "1.0.0"}'
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.cncf.falco.plugin.config.v1+json",
                "digest": bytes_digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.cncf.falco.plugin.layer.v1+tar.gz",
                    "digest": "sha256:" + "2" * 64,
                    "size": 10,
                }
            ],
        }
    ).encode()
    shared = {"mediaType": mediatypes.OCI_MANIFEST, "digest": bytes_digest(manifest)}
    arches = ["amd64", "arm64", "s390x", "ppc64le"]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                {**shared, "size": len(manifest), "platform": {"os": "linux", "architecture": a}}
                for a in arches
            ],
        }
    ).encode()

    def serve(request: Request, reply: Reply) -> None:
        if "/manifests/1.0.0" in request.path:
            reply.send(200, {"Content-Type": mediatypes.OCI_INDEX}, index)
        elif "/manifests/" in request.path:
            reply.send(200, {"Content-Type": mediatypes.OCI_MANIFEST}, manifest)
        else:
            reply.send(200, {"Content-Type": "application/octet-stream"}, config)

    with MisbehavingServer(serve) as server:
        client = RegistryClient(server.netloc, FAST)
        every = inspect_artifact(client, "a/b", "1.0.0")
        one = inspect_artifact(client, "a/b", "1.0.0", platforms=["linux/arm64"])
        paths = [request.path for request in server.requests]
    assert every.platform_names == sorted(f"linux/{a}" for a in arches)
    assert one.platform_names == ["linux/arm64"]
    assert set(one.listed_platforms) == {f"linux/{a}" for a in arches}
    # Per inspection: the index, one platform manifest (all share a digest), the config.
    platform_gets = [p for p in paths if p.endswith(bytes_digest(manifest))]
    assert len(platform_gets) == 2 and len(paths) == 6


def test_waiting_notice_names_the_host_once() -> None:
    told: list[str] = []
    budget = CommandBudget(notify_waiting=told.append, notice_after=0.3)
    with MisbehavingServer(stall) as server:
        client = RegistryClient(server.netloc, FAST, budget=budget)
        with pytest.raises(NetworkError):
            client.list_tags("a/b")
    assert told == [server.netloc]


def test_an_index_that_never_answers_fails_fast_the_second_time(tmp_path: Path) -> None:
    with MisbehavingServer(stall) as server:
        config = IndexConfig("slow", f"http://{server.netloc}/index.yaml", allow_http=True)
        store = IndexStore(tmp_path / "cache", timeout=DEADLINE, backoff=0.01)
        with within(DEADLINE + MARGIN), pytest.raises(NetworkError) as info:
            store.update(config)
        with within(0.5), pytest.raises(NetworkError) as again:
            store.update(config)
        seen = len(server.requests)
    assert seen == 1
    assert "index slow" in info.value.message and again.value is info.value


def test_a_dripping_index_hits_its_deadline(tmp_path: Path) -> None:
    def drip(request: Request, reply: Reply) -> None:
        reply.head(200, {"Content-Type": "application/yaml", "Content-Length": "5000"})
        reply.drip(b"#" * 5000, 0.2)

    with MisbehavingServer(drip) as server:
        config = IndexConfig("drip", f"http://{server.netloc}/index.yaml", allow_http=True)
        store = IndexStore(tmp_path / "cache", timeout=DEADLINE, backoff=0.01)
        with within(DEADLINE + MARGIN), pytest.raises(NetworkError) as info:
            store.update(config)
    assert "index drip" in info.value.message and server.netloc in info.value.message


def test_lock_against_a_silent_registry_ends_within_its_timeout(
    tmp_path: Path, tmp_home: TmpHome
) -> None:
    """`lock` with four dependencies on a registry that accepts connections and never
    answers: one clear error naming the host, within the registry's `timeout` (not 4 times that)."""
    project = tmp_path / "project"
    project.mkdir()
    with MisbehavingServer(stall) as server:
        dependencies = "".join(
            f'dep{i} = {{ ref = "{server.netloc}/falco/dep{i}", version = "1" }}\n'
            for i in range(4)
        )
        (project / "falco.toml").write_text(
            f'[registries."{server.netloc}"]\nplain_http = true\ntimeout = {DEADLINE}\n\n'
            f"[dependencies]\n{dependencies}"
        )
        with within(DEADLINE + MARGIN + 1.0):
            result = run_cli("-C", project, "lock")
    assert result.exit_code == 1, result
    assert server.netloc in result.stderr
    assert "Traceback" not in result.output
    assert not (project / "falco.lock").exists()


def test_add_of_three_names_waits_for_a_silent_index_once(
    tmp_path: Path, tmp_home: TmpHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: `add a b c` with an index that does not answer took 25 s; now the index
    host is waited for once and the other names fail at once."""
    monkeypatch.setattr("falcopkg.services.indexes.DEFAULT_TIMEOUT", DEADLINE)
    project = tmp_path / "project"
    project.mkdir()
    with MisbehavingServer(stall) as server:
        (project / "falco.toml").write_text(
            f'[[index]]\nname = "silent"\nurl = "http://{server.netloc}/index.yaml"\n'
            "allow_http = true\n\n[dependencies]\n"
        )
        with within(DEADLINE + MARGIN + 1.0):
            result = run_cli("-C", project, "add", "a", "b", "c", "--no-sync")
        seen = len(server.requests)
    assert result.exit_code == 1, result
    assert "index silent" in result.stderr and "Traceback" not in result.output
    assert seen == 1


def test_proxies_from_the_environment_are_used_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY is honoured (the proxy sees an absolute URI) and a silent proxy ends
    within the deadline like a silent registry."""
    for variable in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(variable, raising=False)
    body = json.dumps({"name": "a/b", "tags": ["1.0.0"]}).encode()

    def proxy(request: Request, reply: Reply) -> None:
        if "/tags/list" in request.path:
            reply.send(200, {"Content-Type": "application/json"}, body)
        else:
            reply.stall()

    with MisbehavingServer(proxy) as server:
        monkeypatch.setenv("HTTP_PROXY", f"http://{server.netloc}")
        client = RegistryClient("registry.invalid:5000", FAST)
        assert client.list_tags("a/b") == ["1.0.0"]
        with within(DEADLINE + MARGIN), pytest.raises(NetworkError) as info:
            client.get_manifest("a/b", "1.0.0")
        paths = [request.path for request in server.requests]
    assert paths[0] == "http://registry.invalid:5000/v2/a/b/tags/list"
    assert "registry.invalid:5000" in info.value.message


def test_an_upload_longer_than_the_request_timeout_completes(tmp_path: Path) -> None:
    """A large file pushed over a slow link is not cut by `timeout`: only silence is."""
    source = tmp_path / "plugin.tar.gz"
    source.write_bytes(b"z" * (16 * 1024 * 1024))
    digest = bytes_digest(source.read_bytes())
    options = RegistryOptions(plain_http=True, backoff=0.01, request_timeout=0.5)

    def registry(request: Request, reply: Reply) -> None:
        if request.method == "HEAD":
            reply.send(404)
        elif request.method == "POST":
            reply.send(202, {"Location": "/v2/a/b/blobs/uploads/1"})
        else:
            reply.send(201, {"Docker-Content-Digest": digest})

    with MisbehavingServer(registry, body_delay=0.004) as server:
        started = time.monotonic()
        client = RegistryClient(server.netloc, options)
        assert client.upload_blob("a/b", source, digest, source.stat().st_size)
        took = time.monotonic() - started
        methods = [request.method for request in server.requests]
    assert methods == ["HEAD", "POST", "PUT"]
    assert took > 0.5  # longer than the request timeout, and it still went through
