"""IndexStore on local indexes and the paths that need no network (offline, http refused)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from falcopkg.core import index as core_index
from falcopkg.core.index_config import IndexConfig
from falcopkg.errors import ConfigError, OfflineError
from falcopkg.services.indexes import (
    IndexStore,
    index_credential,
    index_env_var_names,
    redact_url,
)
from tests.fixtures.home import TmpHome

DATA = Path(__file__).parent.parent / "data" / "index"


@pytest.fixture
def local_index(tmp_path: Path) -> Path:
    path = tmp_path / "project" / "indexes" / "local.yaml"
    path.parent.mkdir(parents=True)
    shutil.copy(DATA / "falcosecurity-like.yaml", path)
    return path


def test_local_index_relative_to_base_dir_and_parsed_form_reused(
    tmp_path: Path, local_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(tmp_path / "cache")
    config = IndexConfig("local", "indexes/local.yaml", base_dir=tmp_path / "project")
    first = store.update(config)
    assert first.changed and len(first.entries) == 40
    info = store.cache_info(config)
    assert info is not None and info.entries == 40
    assert not (store.directory(config) / "index.yaml").exists()  # local files are not copied

    def no_parse(text: str, source: str) -> list[core_index.IndexEntry]:
        raise AssertionError("the cached parsed form should have been used")

    monkeypatch.setattr(core_index, "parse_index", no_parse)
    again = store.update(config)
    assert not again.changed and again.entries == first.entries
    assert store.fetch(config) == first.entries


def test_changed_local_index_is_reparsed(tmp_path: Path, local_index: Path) -> None:
    store = IndexStore(tmp_path / "cache")
    config = IndexConfig("local", str(local_index))
    store.fetch(config)
    local_index.write_text(
        "- name: only\n  type: rulesfile\n  registry: registry.example.com\n  repository: a/b\n"
    )
    result = store.update(config)
    assert result.changed and [e.name for e in result.entries] == ["only"]
    parsed = list(store.directory(config).glob("parsed-*"))
    assert len(parsed) == 1  # the old fast form is gone


def test_file_url(tmp_path: Path, local_index: Path) -> None:
    store = IndexStore(tmp_path / "cache")
    assert len(store.fetch(IndexConfig("f", local_index.as_uri()))) == 40


def test_missing_local_index_names_the_path(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "cache")
    with pytest.raises(ConfigError) as caught:
        store.fetch(IndexConfig("gone", "nope.yaml", base_dir=tmp_path))
    assert (
        f"index gone (nope.yaml): file {tmp_path / 'nope.yaml'} not found" in caught.value.message
    )
    assert caught.value.hint is not None and "index remove gone" in caught.value.hint


def test_invalid_local_index_caches_nothing(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "cache")
    config = IndexConfig("bad", str(DATA / "invalid" / "duplicate_name.yaml"))
    with pytest.raises(ConfigError, match="duplicate entry name 'k8saudit'"):
        store.fetch(config)
    assert not store.directory(config).exists()


def test_offline_without_cache_is_an_error(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "cache")
    config = IndexConfig("acme", "https://acme.invalid/index.yaml")
    with pytest.raises(OfflineError) as caught:
        store.fetch(config, offline=True)
    assert "index acme (https://acme.invalid/index.yaml) is not cached" in caught.value.message
    assert caught.value.hint == "run `falcopkg index update acme` while online"


def test_plain_http_is_refused_unless_allowed(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "cache")
    with pytest.raises(ConfigError) as caught:
        store.fetch(IndexConfig("lab", "http://lab.invalid/index.yaml"))
    assert "plain http:// is not allowed" in caught.value.message
    assert caught.value.hint is not None and "allow_http = true" in caught.value.hint


def test_credentials_from_env(tmp_home: TmpHome, monkeypatch: pytest.MonkeyPatch) -> None:
    user_var, password_var = index_env_var_names("acme-private.idx")
    assert user_var == "FALCOPKG_INDEX_ACME_PRIVATE_IDX_USERNAME"
    assert index_credential("acme-private.idx") is None
    monkeypatch.setenv(user_var, "bob")
    with pytest.raises(ConfigError, match=password_var):
        index_credential("acme-private.idx")
    monkeypatch.setenv(password_var, "s3cret")
    credential = index_credential("acme-private.idx")
    assert credential is not None and credential.username == "bob"
    assert "s3cret" not in repr(credential)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bob:pw@example.com/i.yaml", "https://example.com/i.yaml"),
        ("https://example.com/a@b/i.yaml", "https://example.com/a@b/i.yaml"),
        ("/srv/i.yaml", "/srv/i.yaml"),
        # A password holding '@' is hidden whole, not cut at its first '@'.
        ("https://bob:p@ss@example.com/i.yaml", "https://example.com/i.yaml"),
        ("https://bob:p@ss@example.com:8443/a@b?q=@c", "https://example.com:8443/a@b?q=@c"),
        ("https://bob@example.com", "https://example.com"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
