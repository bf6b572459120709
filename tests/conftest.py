"""Shared test setup. The real-service fixtures live in tests/fixtures/ (see its modules)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.home import TmpHome

pytest_plugins = [
    "tests.fixtures.registries",
    "tests.fixtures.index_server",
    "tests.fixtures.faultproxy",
    "tests.fixtures.forward_proxy",
    "tests.fixtures.hostile",
    "tests.fixtures.kills",
    "tests.fixtures.slowserver",
]


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TmpHome:
    """Isolate every per-user location so tests never read or write the real ones."""
    home = tmp_path / "home"
    paths = TmpHome(
        home=home,
        config_dir=home / ".config" / "falcopkg",
        cache_dir=home / ".cache" / "falcopkg",
        docker_config=home / ".docker",
    )
    for p in (paths.config_dir, paths.cache_dir, paths.docker_config):
        p.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("FALCOPKG_CONFIG", str(paths.config_dir))
    monkeypatch.setenv("FALCOPKG_CACHE_DIR", str(paths.cache_dir))
    monkeypatch.setenv("DOCKER_CONFIG", str(paths.docker_config))
    for var in ("FALCOPKG_CREDENTIALS_FILE", "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(var, raising=False)
    # Credentials from the environment (FALCOPKG_REGISTRY_<HOST>_...) must not leak in.
    for var in list(os.environ):
        if var.startswith("FALCOPKG_REGISTRY_"):
            monkeypatch.delenv(var)
    return paths


# Tests must never install into the real default directories of a Falco host.
_REAL_INSTALL_DIRS = (Path("/etc/falco"), Path("/usr/share/falco/plugins"))
_existing_dirs_key = pytest.StashKey[set[Path]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_existing_dirs_key] = {d for d in _REAL_INSTALL_DIRS if d.exists()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_existing_dirs_key, set())
    created = [str(d) for d in _REAL_INSTALL_DIRS if d.exists() and d not in before]
    if created:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nerror: the tests wrote into the host's install directories: {created}")
