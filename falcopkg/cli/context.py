"""State shared by every command: global options, the console, the project location."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from falcopkg import paths
from falcopkg.cli.output import Console
from falcopkg.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from falcopkg.core.manifest import Manifest
    from falcopkg.oci.credentials import Credential
    from falcopkg.services.registries import RegistryAccess
    from falcopkg.workflows.project import Project


@dataclass
class AppContext:
    project_option: Path | None = None  # -C/--project
    cache_dir_option: Path | None = None  # --cache-dir
    console: Console = field(default_factory=Console)

    @property
    def verbose(self) -> bool:
        return self.console.verbosity >= 1

    @property
    def cache_dir(self) -> Path:
        return paths.cache_dir(self.cache_dir_option)

    def _given_manifest(self) -> Path | None:
        """The falco.toml that -C names: DIR/falco.toml, or the path itself when -C is a path
        to a falco.toml (like cargo's --manifest-path)."""
        option = self.project_option
        if option is None:
            return None
        if option.name == paths.MANIFEST_NAME and not option.is_dir():
            return option
        if option.is_file():
            raise UsageError(
                f"-C {option}: not a directory nor a {paths.MANIFEST_NAME}",
                hint=f"pass the project's directory or its {paths.MANIFEST_NAME}",
            )
        return option / paths.MANIFEST_NAME

    def find_manifest(self) -> Path | None:
        """falco.toml of the project, or None outside a project."""
        given = self._given_manifest()
        if given is not None:
            return given if given.is_file() else None
        return paths.find_manifest(Path.cwd())

    def require_manifest(self) -> Path:
        manifest = self.find_manifest()
        if manifest is None:
            given = self._given_manifest()
            if given is not None:  # -C: exactly that place, no parents
                raise ConfigError(
                    f"no {paths.MANIFEST_NAME} at {given} (given by -C)",
                    hint="run `falcopkg -C DIR init` to create one, or pass the directory "
                    f"that holds {paths.MANIFEST_NAME}",
                )
            raise ConfigError(
                f"no {paths.MANIFEST_NAME} found in {Path.cwd()} or its parents",
                hint="run `falcopkg init` to create one, or pass `-C DIR`",
            )
        return manifest

    def load_manifest(self) -> Manifest | None:
        """The parsed falco.toml of the project, or None outside a project."""
        path = self.find_manifest()
        if path is None:
            return None
        from falcopkg.services.project_files import load_manifest

        return load_manifest(path)

    def project(self) -> Project:
        """The project session of this command (falco.toml required)."""
        from falcopkg.workflows.project import Project

        return Project.open(
            self.require_manifest(), cache_dir=self.cache_dir, reporter=self.console
        )

    def registries(
        self,
        *,
        plain_http: bool = False,
        credential_overrides: Mapping[str, Credential] | None = None,
        manifest: Manifest | None = None,
        broken_manifest: Literal["error", "warn"] = "error",
    ) -> RegistryAccess:
        """Registry access with the user's and (in a project) falco.toml's ``[registries]``.

        ``broken_manifest="warn"`` (commands given full references, like `registry push`):
        a falco.toml that does not parse is ignored with a warning instead of failing a
        command that does not need it.
        """
        from falcopkg.services.registries import RegistryAccess

        if manifest is None:
            try:
                manifest = self.load_manifest()
            except ConfigError as exc:
                if broken_manifest == "error":
                    raise
                self.console.warn(f"ignoring falco.toml's [registries]: {exc.message}")
        return RegistryAccess.configured(
            manifest,
            plain_http=plain_http,
            credential_overrides=credential_overrides,
            warn=self.console.warn,
        )

    @property
    def project_dir(self) -> Path:
        """Directory for a new project (init): -C (or the directory of its falco.toml) or
        the current directory."""
        given = self._given_manifest()
        return (given.parent if given is not None else Path.cwd()).resolve()


pass_app = click.make_pass_decorator(AppContext)
