"""Faults injected between falcopkg and a real registry (tests/fixtures/faultproxy.py).

Transient statuses retried, a broken blob download restarted cleanly, lying lengths and
escape-laden error bodies handled, and (issue 12, Found #1-#3) endless pagination, dripped
bodies, an over-cap Retry-After and inflated image indexes bounded by the transport.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from falcopkg.artifact.push import push_artifact
from falcopkg.artifact.remote import inspect_artifact
from falcopkg.artifact.types import get_type
from falcopkg.errors import FalcopkgError
from falcopkg.oci.client import RegistryClient, RegistryOptions
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.faultproxy import Fault, FaultProxy
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry

RULES = b"- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n" * 40
MANIFESTS = r"/manifests/"
BLOBS = r"/blobs/sha256:"
NOT_BOUNDED = "not bounded yet: the transport's deadlines and limits (issue 12 Found #1-#3)"


@pytest.fixture(scope="module")
def artifact(plain_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A rules file and a two-platform plugin pushed straight to the registry; the repository
    of the rules file (``…/plugin`` holds the plugin), tag 1.0.0."""
    directory = tmp_path_factory.mktemp("faults")
    rules = directory / "faults_rules.yaml"
    rules.write_bytes(RULES)
    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    repository = f"faults/{hashlib.sha256(str(directory).encode()).hexdigest()[:8]}"
    push_artifact(client, repository, get_type("rulesfile"), [rules], version="1.0.0", created=None)
    plugins = []
    for platform in ("linux-amd64", "linux-arm64"):
        (directory / platform).mkdir()
        library = directory / platform / "libfaults.so"
        library.write_bytes(f"library for {platform}".encode())
        plugins.append(library)
    push_artifact(
        client,
        f"{repository}/plugin",
        get_type("plugin"),
        plugins,
        version="1.0.0",
        platforms=["linux/amd64", "linux/arm64"],
        created=None,
    )
    return repository


def _pull(proxy: FaultProxy, repository: str, output: Path) -> CliResult:
    return run_cli(
        "registry", "pull", f"{proxy.host}/{repository}:1.0.0", "-o", output, "--plain-http"
    )


def _client(proxy: FaultProxy, **options: object) -> RegistryClient:
    return RegistryClient(proxy.host, RegistryOptions(plain_http=True, **options))  # type: ignore[arg-type]


def _no_traceback(result: CliResult) -> None:
    assert "Traceback" not in result.output, result


def _pulled(output: Path) -> dict[str, bytes]:
    return {str(p.relative_to(output)): p.read_bytes() for p in output.rglob("*") if p.is_file()}


# -- ends correctly today ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(503, "0"), (429, "0"), (500, None), (429, "²"), (503, "Wed, 21 Oct 2015 07:28:00 GMT")],
    ids=["503", "429", "500-no-retry-after", "429-superscript-retry-after", "503-date-in-past"],
)
def test_transient_statuses_are_retried(
    fault_proxy: FaultProxy,
    artifact: str,
    tmp_path: Path,
    tmp_home: TmpHome,
    status: int,
    retry_after: str | None,
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    fault_proxy.add(Fault("status", MANIFESTS, times=2, status=status, headers=headers))
    result = _pull(fault_proxy, artifact, tmp_path / "out")
    assert result.exit_code == 0, result
    assert _pulled(tmp_path / "out") == {"faults_rules.yaml": RULES}
    assert fault_proxy.count("GET", MANIFESTS) == 3


def test_a_status_that_persists_is_a_clear_error_after_bounded_attempts(
    fault_proxy: FaultProxy, artifact: str, tmp_path: Path, tmp_home: TmpHome
) -> None:
    fault_proxy.add(Fault("status", MANIFESTS, status=503, headers={"Retry-After": "0"}))
    result = _pull(fault_proxy, artifact, tmp_path / "out")
    assert result.exit_code == 1, result
    _no_traceback(result)
    assert fault_proxy.host in result.stderr and "503" in result.stderr
    assert fault_proxy.count("GET", MANIFESTS) == RegistryOptions().retries + 1
    assert _pulled(tmp_path / "out") == {}


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_a_blob_broken_mid_body_is_downloaded_again(
    fault_proxy: FaultProxy, artifact: str, tmp_path: Path, tmp_home: TmpHome, kind: str
) -> None:
    fault_proxy.add(Fault(kind, BLOBS, times=2, keep=100))  # the config's, then the layer's
    result = _pull(fault_proxy, artifact, tmp_path / "out")
    assert result.exit_code == 0, result
    assert _pulled(tmp_path / "out") == {"faults_rules.yaml": RULES}
    assert sum(1 for r in fault_proxy.requests if r.fault == kind) == 2


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_a_blob_broken_every_time_is_a_clear_error_and_writes_nothing(
    fault_proxy: FaultProxy, artifact: str, tmp_path: Path, tmp_home: TmpHome, kind: str
) -> None:
    fault_proxy.add(Fault(kind, BLOBS, keep=100))
    result = _pull(fault_proxy, artifact, tmp_path / "out")
    assert result.exit_code == 1, result
    _no_traceback(result)
    assert _pulled(tmp_path / "out") == {}
    leftovers = [p for p in tmp_home.cache_dir.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == []


@pytest.mark.parametrize(
    ("value", "times"),
    [("²", None), ("\u0661\u0662", None), ("9" * 5000, None), ("999999", 1), ("-1", None)],
    ids=["superscript", "arabic-indic", "5000-digits", "more-than-sent", "negative"],
)
def test_content_length_lies_end_correctly(
    fault_proxy: FaultProxy,
    artifact: str,
    tmp_path: Path,
    tmp_home: TmpHome,
    value: str,
    times: int | None,
) -> None:
    fault_proxy.add(Fault("length", MANIFESTS, method=None, times=times, value=value))
    fault_proxy.add(Fault("length", BLOBS, times=times, value=value))
    result = _pull(fault_proxy, artifact, tmp_path / "out")
    _no_traceback(result)
    if result.exit_code == 0:
        assert _pulled(tmp_path / "out") == {"faults_rules.yaml": RULES}
    else:
        assert result.exit_code == 1 and _pulled(tmp_path / "out") == {}


def test_a_short_content_length_is_a_digest_error_not_a_partial_file(
    fault_proxy: FaultProxy, artifact: str, tmp_path: Path, tmp_home: TmpHome
) -> None:
    fault_proxy.add(Fault("length", BLOBS, value="10"))
    result = _pull(fault_proxy, artifact, tmp_path / "out")
    assert result.exit_code == 1, result
    _no_traceback(result)
    assert _pulled(tmp_path / "out") == {}


def test_registry_error_messages_reach_the_terminal_escaped(
    fault_proxy: FaultProxy, artifact: str, tmp_path: Path, tmp_home: TmpHome
) -> None:
    body = (
        b'{"errors": [{"code": "DENIED", "message": "no \\u001b]0;HACKED\\u0007 \\u001b[2J way"}]}'
    )
    fault_proxy.add(Fault("status", MANIFESTS, status=403, body=body))
    result = _pull(fault_proxy, artifact, tmp_path / "out")
    assert result.exit_code == 1, result
    _no_traceback(result)
    assert "\x1b" not in result.output and "\x07" not in result.output


def test_a_stalled_blob_is_retried_after_the_read_timeout(
    fault_proxy: FaultProxy, artifact: str
) -> None:
    fault_proxy.add(Fault("stall", BLOBS, times=1, keep=50, seconds=5))
    client = _client(fault_proxy, timeout=(2.0, 1.0), backoff=0.1)
    started = time.monotonic()
    remote = inspect_artifact(client, artifact, "1.0.0")
    layer = remote.select(None).layer
    assert client.get_blob_bytes(artifact, layer.digest, max_size=1 << 20)
    assert time.monotonic() - started < 5
    assert sum(1 for r in fault_proxy.requests if r.fault == "stall") == 1


# -- bounded by the transport (issue 12 Found #1-#3) ------------------------------------------


def test_endless_tag_pagination_is_a_clear_error(fault_proxy: FaultProxy, artifact: str) -> None:
    fault_proxy.add(Fault("paginate", r"/tags/list", pages=100_000))
    started = time.monotonic()
    with pytest.raises(FalcopkgError):
        # A tag list gets a few requests' time in all (4 x request_timeout here).
        _client(fault_proxy, request_timeout=0.5).list_tags(artifact)
    assert time.monotonic() - started < 4.0
    assert fault_proxy.count("GET", r"/tags/list") < 100_000


def test_a_dripped_manifest_ends_within_the_deadline(
    fault_proxy: FaultProxy, artifact: str
) -> None:
    fault_proxy.add(Fault("drip", MANIFESTS, seconds=0.05, cap=4.0))
    started = time.monotonic()
    with pytest.raises(FalcopkgError):
        _client(fault_proxy, timeout=(2.0, 1.0), request_timeout=2.0).get_manifest(
            artifact, "1.0.0"
        )
    assert time.monotonic() - started < 3.0


def test_a_retry_after_above_the_cap_is_an_immediate_error(
    fault_proxy: FaultProxy, artifact: str
) -> None:
    fault_proxy.add(Fault("status", MANIFESTS, status=503, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(FalcopkgError, match="Retry-After"):
        _client(fault_proxy, retries=1, max_retry_after=2.0).get_manifest(artifact, "1.0.0")
    assert time.monotonic() - started < 1.0


def test_an_inflated_image_index_fetches_each_digest_once(
    fault_proxy: FaultProxy, artifact: str
) -> None:
    fault_proxy.add(Fault("inflate_index", r"/plugin/manifests/1\.0\.0", entries=300))
    try:
        inspect_artifact(_client(fault_proxy), f"{artifact}/plugin", "1.0.0")
    except FalcopkgError:
        pass  # refusing the index is fine too; fetching 300 manifests is not
    assert fault_proxy.count("GET", r"/plugin/manifests/sha256:") <= 2
