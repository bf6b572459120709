"""The user config (``config.toml``) and which file the index commands act on (SPEC §10).

``index add/remove/update/list`` edit the project's falco.toml inside a project and the user
config outside one or with ``--global``. Read-only commands (``artifact search/list/info``)
use the project's indexes, else the user config's, else the official falcosecurity index
(like falcoctl), saying so with a hint.

Editing goes through tomlkit (comments kept); the read-only path uses the stdlib ``tomllib``
so that searching a cached index stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from falcopkg import paths
from falcopkg.core.index_config import OFFICIAL_INDEX, IndexConfig, read_index_configs

if TYPE_CHECKING:
    from tomlkit.toml_document import TOMLDocument

    from falcopkg.core.manifest import RegistrySettings


class IndexScope(NamedTuple):
    """The file whose ``[[index]]`` tables a command edits."""

    path: Path
    is_project: bool

    @property
    def label(self) -> str:
        return str(self.path) if self.is_project else f"user config {self.path}"

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def load(self) -> TOMLDocument:
        from falcopkg.tomlfile import load_document

        return load_document(self.path, missing_ok=not self.is_project)

    def save(self, document: TOMLDocument) -> None:
        from falcopkg.tomlfile import save_document

        save_document(self.path, document)

    def index_configs(self, document: TOMLDocument) -> list[IndexConfig]:
        return read_index_configs(document, self.path, base_dir=self.base_dir)


def index_scope(manifest: Path | None, *, use_global: bool = False) -> IndexScope:
    """The project's falco.toml (``manifest``) unless ``use_global`` or outside a project."""
    if manifest is not None and not use_global:
        return IndexScope(manifest, is_project=True)
    return IndexScope(paths.user_config_file(), is_project=False)


class EffectiveIndexes(NamedTuple):
    """The indexes a read-only command uses and where they were configured."""

    configs: list[IndexConfig]
    source: Path | None  # None: nothing configured, the official index by default
    is_default: bool = False


DEFAULT_INDEX_HINT = (
    f"no index is configured; using the official falcosecurity index ({OFFICIAL_INDEX.url})"
)


def effective_indexes(manifest: Path | None) -> EffectiveIndexes:
    """Project indexes if the project declares any, else the user's, else the official one."""
    if manifest is not None:
        configs = read_index_configs_fast(manifest)
        if configs:
            return EffectiveIndexes(configs, manifest)
    user_file = paths.user_config_file()
    configs = read_index_configs_fast(user_file, missing_ok=True)
    if configs:
        return EffectiveIndexes(configs, user_file)
    return EffectiveIndexes([OFFICIAL_INDEX], None, is_default=True)


def read_index_configs_fast(path: Path, *, missing_ok: bool = False) -> list[IndexConfig]:
    from falcopkg.tomlfile import read_toml_data

    data, text = read_toml_data(path, missing_ok=missing_ok)
    return read_index_configs(data, path, text=text, base_dir=path.parent)


def user_registry_settings() -> dict[str, RegistrySettings]:
    """``[registries."host"]`` of the user config: defaults for every project, and the only
    place to trust a private CA (or allow plain HTTP) outside a project."""
    from falcopkg.core.manifest import parse_registry_settings
    from falcopkg.tomlfile import read_toml_data

    path = paths.user_config_file()
    data, text = read_toml_data(path, missing_ok=True)
    return parse_registry_settings(data, text, path)
