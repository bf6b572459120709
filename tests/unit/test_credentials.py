"""Credential lookup (SPEC §9): order, env names, the credentials file, Docker config."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from falcopkg.errors import ConfigError
from falcopkg.oci.credentials import (
    Credential,
    CredentialStore,
    credential_from_docker_config,
    env_var_names,
    lookup_credential,
)

DATA = Path(__file__).parent.parent / "data" / "credentials"
DOCKER_CASES: list[dict[str, Any]] = json.loads((DATA / "docker_config.json").read_text())

# A fake `docker-credential-falcopkgtest`: knows reg.example.com, holds an identity token for
# token.example.com, and answers like the real helpers ("not found", exit 1) otherwise.
FAKE_HELPER = """#!/bin/sh
read -r server || true
case "$server" in
  reg.example.com)
    printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret-for-%s"}' \
      "$server" "$server";;
  token.example.com)
    printf '{"ServerURL":"%s","Username":"<token>","Secret":"identity"}' "$server";;
  *) echo "credentials not found in native keychain"; exit 1;;
esac
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real user config, Docker config or FALCOPKG_REGISTRY_* variable leaks in."""
    for name in list(os.environ):
        if name.startswith("FALCOPKG_REGISTRY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("FALCOPKG_CREDENTIALS_FILE", str(tmp_path / "config" / "credentials.json"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-falcopkgtest"
    helper.write_text(FAKE_HELPER)
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return tmp_path


def write_docker_config(tmp_path: Path, config: object) -> Path:
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


# -- Credential ------------------------------------------------------------------------------


def test_credential_repr_and_str_hide_the_password() -> None:
    credential = Credential("alice", "hunter2-secret")
    assert "hunter2-secret" not in repr(credential)
    assert "hunter2-secret" not in str(credential)
    assert "alice" in repr(credential)


@pytest.mark.parametrize(
    ("host", "user_var"),
    [
        ("127.0.0.1:5000", "FALCOPKG_REGISTRY_127_0_0_1_5000_USERNAME"),
        ("ghcr.io", "FALCOPKG_REGISTRY_GHCR_IO_USERNAME"),
        ("my-registry.example.com:443", "FALCOPKG_REGISTRY_MY_REGISTRY_EXAMPLE_COM_443_USERNAME"),
        ("[::1]:5000", "FALCOPKG_REGISTRY____1__5000_USERNAME"),
    ],
)
def test_env_var_names(host: str, user_var: str) -> None:
    username_var, password_var = env_var_names(host)
    assert username_var == user_var
    assert password_var == user_var.removesuffix("_USERNAME") + "_PASSWORD"


# -- the lookup order -------------------------------------------------------------------------

HOST = "reg.example.com"
SOURCES = ["explicit", "env", "store", "docker"]


def _install_sources(sources: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if "env" in sources:
        user_var, password_var = env_var_names(HOST)
        monkeypatch.setenv(user_var, "env-user")
        monkeypatch.setenv(password_var, "env-pw")
    if "store" in sources:
        CredentialStore().set_registry(HOST, Credential("store-user", "store-pw"))
    if "docker" in sources:
        write_docker_config(
            tmp_path, {"auths": {HOST: {"username": "docker-user", "password": "pw"}}}
        )


@pytest.mark.parametrize(
    ("present", "winner"),
    [
        (["explicit", "env", "store", "docker"], "explicit"),
        (["env", "store", "docker"], "env"),
        (["store", "docker"], "store"),
        (["docker"], "docker"),
        ([], None),
    ],
)
def test_first_match_wins(
    present: list[str], winner: str | None, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    _install_sources(present, monkeypatch, isolated)
    explicit = Credential("explicit-user", "pw") if "explicit" in present else None
    found = lookup_credential(HOST, explicit)
    assert (found.username if found else None) == (f"{winner}-user" if winner else None)


def test_incomplete_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    user_var, password_var = env_var_names(HOST)
    monkeypatch.setenv(user_var, "only-user")
    with pytest.raises(ConfigError) as info:
        lookup_credential(HOST)
    assert password_var in info.value.message
    assert info.value.hint


# -- the credentials file -----------------------------------------------------------------------


def test_store_round_trip_mode_and_sections(isolated: Path) -> None:
    store = CredentialStore()
    store.set_registry("ghcr.io", Credential("u1", "p1"))
    store.set_index("https://example.com/index.yaml", Credential("u2", "p2"))
    path = isolated / "config" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document == {
        "indexes": {"https://example.com/index.yaml": {"password": "p2", "username": "u2"}},
        "registries": {"ghcr.io": {"password": "p1", "username": "u1"}},
    }
    fresh = CredentialStore()
    assert fresh.get_registry("ghcr.io") == Credential("u1", "p1")
    assert fresh.get_index("https://example.com/index.yaml") == Credential("u2", "p2")
    assert fresh.get_registry("https://example.com/index.yaml") is None
    assert fresh.remove_registry("ghcr.io") is True
    assert fresh.remove_registry("ghcr.io") is False
    assert CredentialStore().get_registry("ghcr.io") is None
    assert CredentialStore().get_index("https://example.com/index.yaml") == Credential("u2", "p2")
    assert CredentialStore().remove_index("https://example.com/index.yaml") is True
    assert not list(path.parent.glob("*.tmp"))


def test_store_keeps_entries_written_by_another_process(isolated: Path) -> None:
    first, second = CredentialStore(), CredentialStore()
    assert first.get_registry("a.example.com") is None  # loads (empty) state
    second.set_registry("b.example.com", Credential("b", "pw"))
    first.set_registry("a.example.com", Credential("a", "pw"))
    assert CredentialStore().registry_hosts() == ["a.example.com", "b.example.com"]


def test_group_readable_store_warns_with_the_fix(isolated: Path) -> None:
    path = isolated / "config" / "credentials.json"
    CredentialStore().set_registry(HOST, Credential("u", "secret-pw"))
    path.chmod(0o644)
    warnings: list[str] = []
    assert CredentialStore(warn=warnings.append).get_registry(HOST) == Credential("u", "secret-pw")
    assert len(warnings) == 1
    assert "chmod 600" in warnings[0] and str(path) in warnings[0]
    assert "secret-pw" not in warnings[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"registries": {"h": {"username": "u"', ":1: credentials file is not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"registries": []}', "`registries` must be an object"),
        ('{"registries": {"h": {"username": "u"}}}', "entry registries.h needs"),
        ('{"indexes": {"k": {"username": 1, "password": "p"}}}', "entry indexes.k needs"),
    ],
)
def test_malformed_store_names_the_file(isolated: Path, content: str, fragment: str) -> None:
    path = isolated / "config" / "credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        CredentialStore().get_registry("h")
    assert str(path) in info.value.message
    assert fragment in info.value.message
    assert info.value.hint


def test_failed_write_keeps_the_old_file(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CredentialStore()
    store.set_registry("a.example.com", Credential("a", "pw"))
    path = isolated / "config" / "credentials.json"
    before = path.read_bytes()

    def broken_dumps(*args: object, **kwargs: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr("falcopkg.oci.credentials.json.dumps", broken_dumps)
    with pytest.raises(OSError):
        store.set_registry("b.example.com", Credential("b", "pw"))
    assert path.read_bytes() == before


# -- Docker config ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", DOCKER_CASES, ids=[c["id"] for c in DOCKER_CASES])
def test_docker_config(case: dict[str, Any], isolated: Path) -> None:
    write_docker_config(isolated, case["config"])
    warnings: list[str] = []
    found = credential_from_docker_config(case["host"], warn=warnings.append)
    expected = case["expected"]
    assert found == (Credential(*expected) if expected else None)
    assert len(warnings) == case["warnings"], warnings
    for warning in warnings:
        assert "secret" not in warning and 'identity"' not in warning


def test_docker_config_defaults_to_home(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    monkeypatch.delenv("DOCKER_CONFIG")
    path = isolated / "home" / ".docker" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"auths": {HOST: {"username": "home-user", "password": "pw"}}}))
    assert lookup_credential(HOST) == Credential("home-user", "pw")


def test_missing_docker_config_is_anonymous(isolated: Path) -> None:
    assert credential_from_docker_config(HOST) is None


def test_invalid_docker_config_json_warns(isolated: Path) -> None:
    path = isolated / "docker" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    warnings: list[str] = []
    assert credential_from_docker_config(HOST, warn=warnings.append) is None
    assert len(warnings) == 1 and str(path) in warnings[0]
