"""Where falcopkg keeps its files: user config, credentials, cache, project manifest.

Environment overrides first (``FALCOPKG_CONFIG``, ``FALCOPKG_CACHE_DIR``), then the
platform's user directories (platformdirs, imported only when needed).
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_NAME = "falco.toml"
LOCKFILE_NAME = "falco.lock"
APP_NAME = "falcopkg"


def user_config_dir() -> Path:
    """The directory of the user config (``config.toml``) and credentials."""
    env = os.environ.get("FALCOPKG_CONFIG")
    if env:
        path = Path(env)
        # FALCOPKG_CONFIG may name the config file itself or its directory.
        return path.parent if path.suffix == ".toml" else path
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def user_config_file() -> Path:
    env = os.environ.get("FALCOPKG_CONFIG")
    if env and Path(env).suffix == ".toml":
        return Path(env)
    return user_config_dir() / "config.toml"


def credentials_file() -> Path:
    env = os.environ.get("FALCOPKG_CREDENTIALS_FILE")
    if env:
        return Path(env)
    return user_config_dir() / "credentials.json"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    if override:
        return Path(override)
    env = os.environ.get("FALCOPKG_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def find_manifest(start: Path) -> Path | None:
    """The nearest falco.toml in ``start`` or its parents, like cargo and uv look."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / MANIFEST_NAME
        if candidate.is_file():
            return candidate
    return None


def is_install_path(path: str) -> bool:
    """Whether ``path`` may name a file inside an install directory: relative POSIX parts,
    none empty, ``.`` or ``..``, no backslash or NUL. The lock's layer files and the install
    state's owned and pending paths are held to it, since installs and removals join them
    to the directory."""
    return (
        bool(path)
        and "\\" not in path
        and "\x00" not in path
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )
