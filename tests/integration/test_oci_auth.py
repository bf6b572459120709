"""Bearer-token authentication against a real registry and token server (over plain HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from falcopkg.oci.client import RegistryClient, RegistryOptions, RegistryPool
from falcopkg.oci.credentials import Credential, env_var_names
from falcopkg.oci.errors import AuthenticationError, PermissionDeniedError
from tests.fixtures.oci import digest_of
from tests.fixtures.oci import push_artifact as push
from tests.fixtures.registries import RunningRegistry
from tests.fixtures.tokenserver import TokenRequest

PLAIN = RegistryOptions(plain_http=True, backoff=0.01)


def credential_of(registry: RunningRegistry) -> Credential:
    assert registry.username is not None and registry.password is not None
    return Credential(registry.username, registry.password)


def token_requests(registry: RunningRegistry, repository: str) -> list[TokenRequest]:
    assert registry.token_server is not None
    return [
        r for r in list(registry.token_server.requests) if any(repository in s for s in r.scopes)
    ]


def test_anonymous_pull_but_not_push(token_registry: RunningRegistry, unique_repo: str) -> None:
    layer = b"public rules"
    with RegistryClient(token_registry.host, PLAIN, credential_of(token_registry)) as writer:
        digest = push(writer, unique_repo, "1.0.0", layer)
    with RegistryClient(token_registry.host, PLAIN) as anonymous:
        anonymous.ping()
        assert anonymous.list_tags(unique_repo) == ["1.0.0"]
        assert anonymous.get_manifest(unique_repo, "1.0.0").digest == digest
        assert anonymous.get_blob_bytes(unique_repo, digest_of(layer)) == layer
        assert anonymous.auth.scheme == "bearer"
        with pytest.raises(AuthenticationError) as info:
            anonymous.upload_blob(unique_repo, b"new", digest_of(b"new"), 3)
    assert token_registry.host in info.value.message
    assert f"falcopkg registry login {token_registry.host}" in (info.value.hint or "")
    anonymous_requests = [
        r for r in token_requests(token_registry, unique_repo) if r.account is None
    ]
    assert anonymous_requests and not any(r.auth_sent for r in anonymous_requests)


def test_push_to_two_repositories_with_one_client(
    token_registry: RunningRegistry, unique_repo: str
) -> None:
    first, second = f"{unique_repo}/one", f"{unique_repo}/two"
    credential = credential_of(token_registry)
    with RegistryClient(token_registry.host, PLAIN, credential) as client:
        push(client, first, "1.0.0", b"one")
        push(client, second, "1.0.0", b"two")
        assert (
            client.get_manifest(first, "1.0.0").digest
            != client.get_manifest(second, "1.0.0").digest
        )
    for repository in (first, second):
        requests = token_requests(token_registry, repository)
        assert requests, f"no token asked for {repository}"
        assert all(r.account == credential.username and r.status == 200 for r in requests)
        assert f"repository:{repository}:pull,push" in requests[0].scopes
        # One push token serves uploads, manifest PUT and later pulls of that repository.
        assert len(requests) == 1


def test_parallel_pulls_across_repositories(
    token_registry: RunningRegistry, unique_repo: str, tmp_path: Path
) -> None:
    repositories = [f"{unique_repo}/r{i}" for i in range(4)]
    layers = {repo: f"layer of {repo}\n".encode() * 1000 for repo in repositories}
    with RegistryClient(token_registry.host, PLAIN, credential_of(token_registry)) as writer:
        for repo in repositories:
            push(writer, repo, "1.0.0", layers[repo])

    client = RegistryClient(token_registry.host, PLAIN)  # anonymous, shared by all threads

    def pull(job: int) -> bool:
        repo = repositories[job % 4]
        manifest = client.get_manifest(repo, "1.0.0").json()
        layer = manifest["layers"][0]
        dest = tmp_path / f"job{job}" / "layer"
        client.download_blob(repo, layer["digest"], dest, expected_size=layer["size"])
        return dest.read_bytes() == layers[repo]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(pull, range(32)))
    client.close()
    assert all(results)
    anonymous = [
        r
        for repo in repositories
        for r in token_requests(token_registry, repo)
        if r.account is None
    ]
    assert all(r.status == 200 for r in anonymous)
    assert len(anonymous) == 4  # one token per repository, however many threads


def test_token_expiry_is_refreshed(registry_factory: Callable[..., RunningRegistry]) -> None:
    registry = registry_factory("token", token_ttl=1)
    assert registry.token_server is not None
    with RegistryClient(registry.host, PLAIN, credential_of(registry)) as client:
        digest = push(client, "acme/rules", "1.0.0", b"rules")
        issued = registry.token_server.token_count
        time.sleep(1.1)
        assert client.get_manifest("acme/rules", "1.0.0").digest == digest
        assert registry.token_server.token_count == issued + 1
        assert client.get_manifest("acme/rules", digest).digest == digest
        assert registry.token_server.token_count == issued + 1


def test_wrong_password_is_an_authentication_error(
    token_registry: RunningRegistry, unique_repo: str
) -> None:
    assert token_registry.username is not None
    credential = Credential(token_registry.username, "not-the-password-42")
    with RegistryClient(token_registry.host, PLAIN, credential) as client:
        with pytest.raises(AuthenticationError) as ping_error:
            client.ping()  # what `registry login` uses to check credentials
        with pytest.raises(AuthenticationError) as pull_error:
            client.get_manifest(unique_repo, "1.0.0")
    for error in (ping_error.value, pull_error.value):
        assert token_registry.host in error.message
        assert "not-the-password-42" not in error.message + (error.hint or "")
        assert "rejected the credentials" in error.message


def test_insufficient_scope_is_permission_denied(
    registry_factory: Callable[..., RunningRegistry],
) -> None:
    registry = registry_factory("token")
    assert registry.token_server is not None
    registry.token_server.user_actions = frozenset({"pull"})  # a read-only account
    with (
        RegistryClient(registry.host, PLAIN, credential_of(registry)) as client,
        pytest.raises(PermissionDeniedError) as info,
    ):
        client.upload_blob("acme/rules", b"x", digest_of(b"x"), 1)
    assert "pull/push on acme/rules" in info.value.message
    assert registry.host in info.value.message


def test_cross_repository_mount_asks_for_both_scopes(
    token_registry: RunningRegistry, unique_repo: str
) -> None:
    source, target = f"{unique_repo}/src", f"{unique_repo}/dst"
    data = b"mounted layer"
    with RegistryClient(token_registry.host, PLAIN, credential_of(token_registry)) as client:
        client.upload_blob(source, data, digest_of(data), len(data))
        assert client.mount_blob(target, digest_of(data), source) is True
        assert client.head_blob(target, digest_of(data)) == len(data)
    mount_requests = [r for r in token_requests(token_registry, target) if len(r.scopes) == 2]
    assert mount_requests
    assert set(mount_requests[0].scopes) == {
        f"repository:{target}:pull,push",
        f"repository:{source}:pull",
    }


def test_pool_builds_one_client_per_host_with_lazy_credentials(
    token_registry: RunningRegistry,
    plain_registry: RunningRegistry,
    unique_repo: str,
    tmp_home: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credential = credential_of(token_registry)
    user_var, password_var = env_var_names(token_registry.host)
    monkeypatch.setenv(user_var, credential.username)
    monkeypatch.setenv(password_var, credential.password)
    pool = RegistryPool({token_registry.host: PLAIN}, plain_http=False)
    clients: list[RegistryClient] = []

    def get() -> None:
        clients.append(pool.client(token_registry.host))

    threads = [threading.Thread(target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in clients}) == 1
    push(clients[0], unique_repo, "1.0.0", b"pool")  # the env credential was found
    assert pool.options_for(plain_registry.host).plain_http is False
    with RegistryPool(plain_http=True) as forced:
        forced.client(plain_registry.host).ping()
    pool.close()
