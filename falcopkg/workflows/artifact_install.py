"""`artifact install REF…`: falcoctl's imperative install, with sync's safety (SPEC §8).

The references become the dependencies of an in-memory falco.toml (the project's, when run
inside one, for its [install], [registries], [target] and indexes; else the user's indexes
and falcoctl's default directories). They are resolved by the same resolver as `lock` (with
their dependencies unless ``resolve_dependencies`` is off) and installed through the same
cache, extraction and installer as `sync`, recording the install state, so a later `sync` or
`verify` sees these files. Nothing else is removed: other artifacts installed in the same
directories stay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from falcopkg.errors import UsageError
from falcopkg.workflows.noop import DirectoryOverrides, install_directories
from falcopkg.workflows.sync import blob_access

if TYPE_CHECKING:
    from falcopkg.core.manifest import Manifest
    from falcopkg.services.installer import SyncReport
    from falcopkg.workflows.reporter import Reporter


def references_manifest(base: Manifest | None, refs: Sequence[str], platform: str) -> Manifest:
    """An in-memory falco.toml whose dependencies are ``refs`` (usage errors for bad ones)."""
    from falcopkg.core.manifest import DependencySpec, Manifest
    from falcopkg.core.reference import parse_argument
    from falcopkg.services.userconfig import effective_indexes

    if base is None:
        base = Manifest(
            path=Path.cwd() / "falco.toml",  # not written: the references are the manifest
            indexes=tuple(effective_indexes(None).configs),
        )
    dependencies: dict[str, DependencySpec] = {}
    for text in refs:
        reference = parse_argument(text)
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
    return dataclasses.replace(
        base,
        dependencies=dependencies,
        target=dataclasses.replace(base.target, platforms=(platform,)),
    )


def install_references(
    base: Manifest | None,
    refs: Sequence[str],
    *,
    platform: str,
    overrides: DirectoryOverrides,
    cache_dir: Path,
    reporter: Reporter,
    resolve_dependencies: bool = True,
    force: bool = False,
    plain_http: bool = False,
    dry_run: bool = False,
) -> SyncReport:
    """Resolve ``refs`` and install them for ``platform``; the installer's report."""
    from falcopkg.services.installer import install_artifacts
    from falcopkg.services.resolution import resolve_lock
    from falcopkg.workflows.project import Project

    manifest = references_manifest(base, refs, platform)
    project = Project.of_manifest(manifest, cache_dir=cache_dir, reporter=reporter)
    with project.registries(plain_http=plain_http) as registries:
        lock = resolve_lock(
            manifest,
            existing_lock=None,
            stores=registries,
            cache=project.cache,
            console=reporter,
            follow_dependencies=resolve_dependencies,
            requested_by="the command line",  # there may be no falco.toml to name
        )
        return install_artifacts(
            lock.artifacts,
            platform=platform,
            directories=install_directories(manifest, overrides),
            allowed_types=manifest.install.allowed_types,
            blobs=blob_access(project, registries, offline=False),
            force=force,
            dry_run=dry_run,
            prune=False,
            console=reporter,
            lock_source="artifact install",
        )
