"""`export helm|falcoctl|falco-config`: deploy files made from falco.lock (SPEC §11).

Thin on purpose: read falco.toml and a fresh falco.lock, call falcopkg.core.export, print
the YAML to stdout or write it atomically with `-o`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.params import install_dir_options, platform_option
from falcopkg.workflows.noop import DirectoryOverrides, install_directories

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock
    from falcopkg.core.manifest import Manifest


def _output_option(command: Any) -> Any:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write to FILE (atomically) instead of stdout.",
    )(command)


def _mirror_option(command: Any) -> Any:
    return click.option(
        "--mirror",
        metavar="PREFIX",
        help="Point every ref at PREFIX/<repository> (host[:port][/path]), same digests.",
    )(command)


@click.group()
def export() -> None:
    """Make deploy files from falco.lock: Helm values, falcoctl.yaml, a Falco snippet."""


@export.command()
@_output_option
@_mirror_option
@pass_app
def helm(app: AppContext, output: Path | None, mirror: str | None) -> None:
    """Values for the falcosecurity/falco chart installing exactly falco.lock.

    Use it last: `helm upgrade -f ours.yaml -f falcopkg.yaml`; its lists replace the
    chart's (rules_files, load_plugins, plugins, refs).
    """
    from falcopkg.core import export as exports

    manifest, lock = _project(app)
    _warn_skipped(app, lock, manifest, exports.HELM_TYPES)
    _emit(app, exports.helm_values_text(lock, manifest, mirror=mirror), output)


@export.command()
@_output_option
@_mirror_option
@install_dir_options
@pass_app
def falcoctl(
    app: AppContext,
    output: Path | None,
    mirror: str | None,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """A falcoctl.yaml installing exactly falco.lock into the install directories."""
    from falcopkg.core import export as exports

    manifest, lock = _project(app)
    directories = _directories(manifest, rulesfiles_dir, plugins_dir, assets_dir)
    _warn_skipped(app, lock, manifest, None)
    text = exports.falcoctl_config_text(
        lock,
        manifest,
        rulesfiles_dir=directories["rulesfiles_dir"],
        plugins_dir=directories["plugins_dir"],
        assets_dir=directories["assets_dir"],
        mirror=mirror,
    )
    _emit(app, text, output)


@export.command("falco-config")
@_output_option
@platform_option
@install_dir_options
@pass_app
def falco_config(
    app: AppContext,
    output: Path | None,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """A Falco config.d snippet loading what `sync` installs (for --platform)."""
    from falcopkg.core import export as exports

    manifest, lock = _project(app)
    directories = _directories(manifest, rulesfiles_dir, plugins_dir, assets_dir)
    _warn_skipped(app, lock, manifest, None)
    text = exports.falco_config_text(
        lock,
        manifest,
        platform=platform,
        rulesfiles_dir=directories["rulesfiles_dir"],
        plugins_dir=directories["plugins_dir"],
    )
    # Falco loads every file in a config directory, dotfiles included: the temporary file
    # is made next to that directory, not in it.
    _emit(app, text, output, temp_outside=True)


def _project(app: AppContext) -> tuple[Manifest, Lock]:
    """falco.toml and its falco.lock, which must exist and be up to date."""
    from falcopkg.services.project_files import require_fresh_lock

    project = app.project()
    lock = require_fresh_lock(
        project.manifest, project.existing_lock(), hint="run `falcopkg lock`, then export again"
    )
    return project.manifest, lock


def _directories(
    manifest: Manifest,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> dict[str, str]:
    """The absolute install directories, as `sync` computes them (flags, env, [install])."""
    import os

    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
    )
    return {
        key: os.path.normpath(path)
        for key, path in install_directories(manifest, overrides).items()
    }


def _warn_skipped(
    app: AppContext, lock: Lock, manifest: Manifest, supported: tuple[str, ...] | None
) -> None:
    """Locked artifacts left out, and [falco.plugins] tables naming no locked plugin."""
    from falcopkg.core import export as exports

    _, skipped = exports.exported_artifacts(lock, manifest.install.allowed_types, supported)
    for name, reason in skipped:
        app.console.warn(f"{name} is not exported: {reason}")
    for name in exports.unmatched_plugin_settings(manifest, lock):
        app.console.warn(f"falco.toml: [falco.plugins.{name}] matches no locked plugin")


def _emit(app: AppContext, text: str, output: Path | None, *, temp_outside: bool = False) -> None:
    """The data to stdout, or atomically into ``output`` (never half-written); with
    ``temp_outside`` the temporary file is made in the parent of ``output``'s directory."""
    if output is None:
        click.echo(text, nl=False)
        return
    from falcopkg.fsutil import atomic_write_text

    directory = output.absolute().parent
    atomic_write_text(output, text, temp_dir=directory.parent if temp_outside else None)
    app.console.info(f"Wrote {output}")
