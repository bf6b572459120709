"""`falcopkg artifact install REF…`: options → workflows.artifact_install → render."""

from __future__ import annotations

from pathlib import Path

import click

from falcopkg.cli.commands.install import print_report, raise_if_incomplete
from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.params import install_dir_options, plain_http_option, platform_option
from falcopkg.workflows.noop import DirectoryOverrides


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@platform_option
@click.option(
    "--no-resolve-deps",
    is_flag=True,
    help="Install only the given artifacts, not their dependencies.",
)
@click.option(
    "--force", is_flag=True, help="Replace files that were changed or not installed by falcopkg."
)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@plain_http_option
@install_dir_options
@pass_app
def install(
    app: AppContext,
    refs: tuple[str, ...],
    platform: str,
    no_resolve_deps: bool,
    force: bool,
    dry_run: bool,
    plain_http: bool,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Resolve and install artifacts by reference (name[:tag|@digest] or host/repo[:tag|@digest])."""
    from falcopkg.workflows.artifact_install import install_references

    report = install_references(
        app.load_manifest(),
        refs,
        platform=platform,
        overrides=DirectoryOverrides.of(
            rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
        ),
        cache_dir=app.cache_dir,
        reporter=app.console,
        resolve_dependencies=not no_resolve_deps,
        force=force,
        plain_http=plain_http,
        dry_run=dry_run,
    )
    print_report(app, report, dry_run=dry_run)
    if not dry_run:
        raise_if_incomplete(report)
