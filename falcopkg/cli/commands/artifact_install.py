"""`falcopkg artifact install REF…`: falcoctl's imperative install, with sync's safety (§8).

The references become the dependencies of an in-memory falco.toml (the project's, when
run inside one, for its [install], [registries], [target] and indexes; else the user's
indexes and falcoctl's default directories). They are resolved by the same resolver as
`lock` (with their dependencies unless ``--no-resolve-deps``) and installed through the
same cache, extraction and installer as `sync`, recording the install state, so a later
`sync` or `verify` sees these files. Nothing else is removed: other artifacts installed in
the same directories stay.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from falcopkg.cli.commands.install import (
    DirectoryOverrides,
    RegistryAccess,
    install_dir_options,
    install_directories,
    platform_option,
    print_report,
)
from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.params import plain_http_option, reference_argument
from falcopkg.errors import UsageError


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
@plain_http_option
@install_dir_options
@pass_app
def install(
    app: AppContext,
    refs: tuple[str, ...],
    platform: str,
    no_resolve_deps: bool,
    force: bool,
    plain_http: bool,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Resolve and install artifacts by reference (name[:tag|@digest] or host/repo[:tag|@digest])."""
    from falcopkg.core.manifest import DependencySpec, Manifest, load_manifest
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.installer import install_artifacts
    from falcopkg.services.locking import lock_project
    from falcopkg.services.userconfig import effective_indexes

    manifest_path = app.find_manifest()
    if manifest_path is not None:
        base = load_manifest(manifest_path)
    else:
        base = Manifest(
            path=Path.cwd() / "falco.toml",  # not written: the references are the manifest
            indexes=tuple(effective_indexes(None).configs),
        )
    dependencies: dict[str, DependencySpec] = {}
    for text in refs:
        reference = reference_argument(text)
        if reference.name in dependencies:
            raise UsageError(
                f"{text!r} and another reference both name an artifact {reference.name!r}",
                hint="install them one at a time",
            )
        dependencies[reference.name] = DependencySpec(
            name=reference.name,
            ref=None if reference.is_index_name else reference.locator,
            tag=reference.tag,
            digest=reference.digest,
        )
    manifest = dataclasses.replace(
        base,
        dependencies=dependencies,
        target=dataclasses.replace(base.target, platforms=(platform,)),
    )
    registries = RegistryAccess(app, manifest, plain_http=plain_http)
    try:
        lock = lock_project(
            manifest,
            existing_lock=None,
            pool=registries.pool(),
            cache=BlobCache(app.cache_dir),
            console=app.console,
            follow_dependencies=not no_resolve_deps,
            requested_by="the command line",  # there may be no falco.toml to name
        )
        overrides = DirectoryOverrides.of(
            rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
        )
        report = install_artifacts(
            lock.artifacts,
            platform=platform,
            directories=install_directories(manifest, overrides),
            allowed_types=manifest.install.allowed_types,
            blobs=registries.blob_access(app, offline=False),
            force=force,
            prune=False,
            console=app.console,
            lock_source="artifact install",
        )
    finally:
        registries.close()
    print_report(app, report, dry_run=False)
