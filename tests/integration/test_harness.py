"""Tests of the test harness itself: real registries, token server, index and helper servers.

Only ``requests`` and ``skopeo`` here — never falcopkg code — so a harness bug is not
mistaken for a product bug.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.fixtures import registries
from tests.fixtures.home import TmpHome
from tests.fixtures.index_server import CallbackHandler, HelperServer, IndexServer
from tests.fixtures.registries import RunningRegistry

CONFIG_MT = "application/vnd.cncf.falco.rulesfile.config.v1+json"
LAYER_MT = "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz"
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(reg: RunningRegistry, repo: str, data: bytes, headers: dict[str, str]) -> str:
    digest = _digest(data)
    auth = None if "Authorization" in headers else reg.auth
    start = requests.post(
        f"{reg.url}/v2/{repo}/blobs/uploads/", headers=headers, auth=auth, verify=reg.verify
    )
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    if location.startswith("/"):
        location = reg.url + location
    put = requests.put(
        location,
        params={"digest": digest},
        data=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
        auth=auth,
        verify=reg.verify,
    )
    assert put.status_code == 201, put.text
    return digest


def push_artifact(
    reg: RunningRegistry, repo: str, tag: str, headers: dict[str, str] | None = None
) -> str:
    """Push a tiny rulesfile-shaped artifact by plain HTTP; returns the manifest digest."""
    headers = headers or {}
    config = b'{"name":"harness","version":"0.1.0"}'
    layer = b"not really a tarball, the registry does not care"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MT,
            "config": {
                "mediaType": CONFIG_MT,
                "digest": _push_blob(reg, repo, config, headers),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": LAYER_MT,
                    "digest": _push_blob(reg, repo, layer, headers),
                    "size": len(layer),
                    "annotations": {"org.opencontainers.image.title": "rules.tar.gz"},
                }
            ],
        }
    ).encode()
    r = requests.put(
        f"{reg.url}/v2/{repo}/manifests/{tag}",
        data=manifest,
        headers={**headers, "Content-Type": MANIFEST_MT},
        auth=None if "Authorization" in headers else reg.auth,
        verify=reg.verify,
    )
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == _digest(manifest)
    return _digest(manifest)


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def token_for(reg: RunningRegistry, scope: str, *, user: bool) -> str:
    ts = reg.token_server
    assert ts is not None
    r = requests.get(
        ts.realm, params={"service": ts.service, "scope": scope}, auth=reg.auth if user else None
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == ts.expires_in
    return str(body["token"])


# -- plain ------------------------------------------------------------------------------


@pytest.mark.registry
def test_plain_registry_push_and_skopeo_copy(
    plain_registry: RunningRegistry, unique_repo: str, tmp_path: Path
) -> None:
    reg = plain_registry
    assert reg.scheme == "http" and reg.username is None and reg.ca_file is None
    assert reg.host.startswith("127.0.0.1:") and reg.port != 5000
    assert requests.get(f"{reg.url}/v2/").status_code == 200

    digest = push_artifact(reg, unique_repo, "1.0.0")
    raw = skopeo("inspect", "--raw", *reg.skopeo_args(), f"docker://{reg.host}/{unique_repo}:1.0.0")
    assert _digest(raw.stdout.encode()) == digest

    # Round trip through an OCI layout with a real client, then read it back by digest.
    layout = tmp_path / "layout"
    skopeo(
        "copy",
        *reg.skopeo_args("src"),
        f"docker://{reg.host}/{unique_repo}:1.0.0",
        f"oci:{layout}:v1",
    )
    assert (layout / "index.json").is_file()
    skopeo(
        "copy",
        *reg.skopeo_args("dest"),
        f"oci:{layout}:v1",
        f"docker://{reg.host}/{unique_repo}-copy:2.0.0",
    )
    r = requests.get(
        f"{reg.url}/v2/{unique_repo}-copy/manifests/{digest}", headers={"Accept": MANIFEST_MT}
    )
    assert r.status_code == 200 and _digest(r.content) == digest

    # Blobs live where RunningRegistry.blob_path says (tamper tests rely on it).
    layer_digest = r.json()["layers"][0]["digest"]
    assert reg.blob_path(layer_digest).read_bytes().startswith(b"not really a tarball")


@pytest.mark.registry
def test_private_registry_stop_start_keeps_port_and_storage(
    registry_factory: Callable[..., RunningRegistry],
) -> None:
    reg = registry_factory("plain")
    digest = push_artifact(reg, "stop/start", "1")
    url = reg.url
    reg.stop()
    assert not reg.is_running
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v2/", timeout=2)
    reg.start()
    assert reg.url == url
    r = requests.head(f"{url}/v2/stop/start/manifests/1", headers={"Accept": MANIFEST_MT})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest


@pytest.mark.registry
def test_tampered_blob_is_served_as_is(registry_factory: Callable[..., RunningRegistry]) -> None:
    # The registry does not re-verify on read: clients must (SPEC §9).
    reg = registry_factory("plain")
    push_artifact(reg, "tamper/me", "1")
    layer = requests.get(f"{reg.url}/v2/tamper/me/manifests/1", headers={"Accept": MANIFEST_MT})
    digest = layer.json()["layers"][0]["digest"]
    reg.blob_path(digest).write_bytes(b"evil")
    r = requests.get(f"{reg.url}/v2/tamper/me/blobs/{digest}")
    assert r.status_code == 200 and r.content == b"evil"


@pytest.mark.registry
def test_session_registry_stopped_context(plain_registry: RunningRegistry) -> None:
    with plain_registry.stopped(), pytest.raises(requests.ConnectionError):
        requests.get(f"{plain_registry.url}/v2/", timeout=2)
    assert requests.get(f"{plain_registry.url}/v2/").status_code == 200


# -- tls + basic ------------------------------------------------------------------------


@pytest.mark.registry
def test_tls_registry_basic_auth(tls_registry: RunningRegistry, unique_repo: str) -> None:
    reg = tls_registry
    assert reg.scheme == "https" and reg.ca_file is not None and reg.username and reg.password
    assert (reg.cert_dir / "ca.crt").is_file()  # type: ignore[operator]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{reg.url}/v2/")  # not trusted without the CA
    anon = requests.get(f"{reg.url}/v2/", verify=str(reg.ca_file))
    assert anon.status_code == 401
    assert anon.headers["WWW-Authenticate"].startswith("Basic ")
    bad = requests.get(f"{reg.url}/v2/", verify=str(reg.ca_file), auth=(reg.username, "wrong"))
    assert bad.status_code == 401
    ok = requests.get(f"{reg.url}/v2/", verify=str(reg.ca_file), auth=(reg.username, reg.password))
    assert ok.status_code == 200

    digest = push_artifact(reg, unique_repo, "1.0.0")
    raw = skopeo("inspect", "--raw", *reg.skopeo_args(), f"docker://{reg.host}/{unique_repo}:1.0.0")
    assert _digest(raw.stdout.encode()) == digest


@pytest.mark.registry
def test_https_works_via_localhost_name(tls_registry: RunningRegistry) -> None:
    r = requests.get(f"https://localhost:{tls_registry.port}/v2/", verify=tls_registry.verify)
    assert r.status_code == 401


# -- token ------------------------------------------------------------------------------


@pytest.mark.registry
def test_token_registry_scopes(token_registry: RunningRegistry, unique_repo: str) -> None:
    reg, ts = token_registry, token_registry.token_server
    assert ts is not None
    challenge = requests.get(f"{reg.url}/v2/")
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        f'Bearer realm="{ts.realm}",service="{ts.service}"'
    )
    ts.reset_requests()
    scope = f"repository:{unique_repo}:pull,push"

    anon = token_for(reg, scope, user=False)
    assert ts.requests[-1].granted == [
        {"type": "repository", "name": unique_repo, "actions": ["pull"]}
    ]
    denied = requests.post(
        f"{reg.url}/v2/{unique_repo}/blobs/uploads/", headers={"Authorization": f"Bearer {anon}"}
    )
    assert denied.status_code == 401
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    # distribution lists the challenge's actions in random order (a Go map): pull,push or push,pull.
    challenged = re.search(r'scope="([^"]+)"', denied.headers["WWW-Authenticate"])
    assert challenged is not None
    typ, name, actions = challenged.group(1).rsplit(":", 2)
    assert (typ, name, set(actions.split(","))) == ("repository", unique_repo, {"pull", "push"})

    user = token_for(reg, scope, user=True)
    assert ts.requests[-1].account == reg.username
    push_artifact(
        reg,
        unique_repo,
        "1.0.0",
        headers={"Authorization": f"Bearer {user}"},
    )
    pulled = requests.get(
        f"{reg.url}/v2/{unique_repo}/manifests/1.0.0",
        headers={"Authorization": f"Bearer {anon}", "Accept": MANIFEST_MT},
    )
    assert pulled.status_code == 200

    bad = requests.get(ts.realm, params={"scope": scope}, auth=(reg.username or "", "wrong"))
    assert bad.status_code == 401
    assert ts.token_count == 2 and [r.status for r in ts.requests] == [200, 200, 401]


@pytest.mark.registry
def test_token_registry_with_skopeo(token_registry: RunningRegistry, unique_repo: str) -> None:
    # A real client doing the challenge dance end to end.
    reg, ts = token_registry, token_registry.token_server
    assert ts is not None
    user = token_for(reg, f"repository:{unique_repo}:pull,push", user=True)
    digest = push_artifact(
        reg,
        unique_repo,
        "1",
        headers={"Authorization": f"Bearer {user}"},
    )
    ts.reset_requests()
    raw = skopeo("inspect", "--raw", *reg.skopeo_args(), f"docker://{reg.host}/{unique_repo}:1")
    assert _digest(raw.stdout.encode()) == digest
    assert ts.token_count >= 1
    assert any(f"repository:{unique_repo}:pull" in s for r in ts.requests for s in r.scopes)


@pytest.mark.registry
def test_token_expired_jwt_is_rejected(registry_factory: Callable[..., RunningRegistry]) -> None:
    reg = registry_factory("token", token_ttl=5)
    ts = reg.token_server
    assert ts is not None and ts.expires_in == 5
    ts.issue_expired = True
    stale = token_for(reg, "repository:x/y:pull", user=False)
    r = requests.get(f"{reg.url}/v2/x/y/tags/list", headers={"Authorization": f"Bearer {stale}"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    ts.issue_expired = False
    fresh = token_for(reg, "repository:x/y:pull", user=False)
    r = requests.get(f"{reg.url}/v2/x/y/tags/list", headers={"Authorization": f"Bearer {fresh}"})
    assert r.status_code == 404  # authorized; the repository just does not exist


@pytest.mark.registry
def test_token_registry_restart_keeps_realm(
    registry_factory: Callable[..., RunningRegistry],
) -> None:
    reg = registry_factory("token")
    ts = reg.token_server
    assert ts is not None
    realm = ts.realm
    reg.stop()
    ts.stop()
    reg.start()  # restarts the token server too, on the same port
    assert ts.realm == realm
    token = token_for(reg, "repository:a/b:pull", user=True)
    r = requests.get(f"{reg.url}/v2/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_missing_binary_is_a_hard_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registries, "REGISTRY_BIN", "docker-registry-not-installed")
    with pytest.raises(pytest.fail.Exception, match="apt-get install docker-registry skopeo"):
        registries.require_binaries()


# -- index server -----------------------------------------------------------------------


def test_index_server_auth_and_conditional_requests(https_index_server: IndexServer) -> None:
    srv = https_index_server
    (srv.root / "index.yaml").write_text("- name: x\n")
    url = srv.url_for("index.yaml")
    assert url.startswith("https://127.0.0.1:")

    assert requests.get(url, verify=str(srv.ca_file)).status_code == 401
    assert requests.get(url, verify=str(srv.ca_file), auth=(srv.username, "bad")).status_code == 401
    ok = requests.get(url, verify=str(srv.ca_file), auth=srv.auth)
    assert ok.status_code == 200 and ok.text == "- name: x\n"
    assert ok.headers["Content-Type"] == "application/yaml"
    etag, modified = ok.headers["ETag"], ok.headers["Last-Modified"]

    again = requests.get(url, verify=srv.ca_file, auth=srv.auth, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    since = requests.get(
        url, verify=srv.ca_file, auth=srv.auth, headers={"If-Modified-Since": modified}
    )
    assert since.status_code == 304

    (srv.root / "index.yaml").write_text("- name: y\n")
    changed = requests.get(url, verify=srv.ca_file, auth=srv.auth, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag

    assert srv.statuses() == [401, 401, 200, 304, 304, 200]
    assert [r.auth_sent for r in srv.requests] == [False, True, True, True, True, True]
    assert srv.requests[2].headers["Authorization"] == "<redacted>"
    srv.reset_requests()
    assert srv.requests == []


def test_index_server_public_paths_missing_files_and_queued_errors(
    index_server_factory: Callable[..., IndexServer],
) -> None:
    srv = index_server_factory(public_paths={"/pub/"})
    (srv.root / "pub").mkdir()
    (srv.root / "pub" / "index.yaml").write_text("[]\n")
    assert requests.get(srv.url_for("pub/index.yaml"), verify=srv.ca_file).status_code == 200
    assert requests.get(srv.url_for("pub/nope.yaml"), verify=srv.ca_file).status_code == 404
    srv.queue_status(503, headers={"Retry-After": "0"})
    assert requests.get(srv.url_for("pub/index.yaml"), verify=srv.ca_file).status_code == 503
    assert requests.get(srv.url_for("pub/index.yaml"), verify=srv.ca_file).status_code == 200

    plain = index_server_factory(tls=False, require_auth=False)
    (plain.root / "i.yaml").write_text("[]\n")
    r = requests.get(plain.url_for("i.yaml"))
    assert plain.url.startswith("http://") and r.status_code == 200
    stamp = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert (
        requests.get(plain.url_for("i.yaml"), headers={"If-Modified-Since": stamp}).status_code
        == 304
    )


def test_redirect_to_other_host_drops_authorization(
    make_http_server: Callable[..., HelperServer],
) -> None:
    # The shape of falcopkg's "no credentials after a cross-host redirect" test.
    def blob(handler: CallbackHandler) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/octet-stream"}, b"blob-bytes"

    other_url, other = make_http_server(blob, host="127.0.0.2")

    def redirect(handler: CallbackHandler) -> tuple[int, dict[str, str], bytes]:
        return 307, {"Location": f"{other_url}/data{handler.path}"}, b""

    front = make_http_server(redirect)
    r = requests.get(f"{front.url}/v2/a/blobs/sha256:00", auth=("user", "secret"))
    assert r.status_code == 200 and r.content == b"blob-bytes"
    assert front.requests[0].auth_sent is True
    assert other.requests[0].auth_sent is False
    assert other.requests[0].path == "/data/v2/a/blobs/sha256:00"


def test_tmp_home_isolates_user_dirs(tmp_home: TmpHome) -> None:
    assert os.environ["HOME"] == str(tmp_home.home)
    assert os.environ["FALCOPKG_CONFIG"] == str(tmp_home.config_dir)
    assert os.environ["FALCOPKG_CACHE_DIR"] == str(tmp_home.cache_dir)
    assert os.environ["DOCKER_CONFIG"] == str(tmp_home.docker_config)
    assert tmp_home.docker_config.is_dir() and not (tmp_home.docker_config / "config.json").exists()
