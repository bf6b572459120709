"""`sync` (SPEC §8): the no-op check, the lock policy, then plan, fetch and apply.

`add` and `remove` run the same :func:`sync` on the session they wrote
(:meth:`Project.written`); `follow` runs it after each lock change. The CLI renders the
:class:`SyncResult` (including the error for files kept because other content is in the way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from falcopkg.errors import UsageError
from falcopkg.workflows.noop import (
    DirectoryOverrides,
    falco_config_dir,
    install_directories,
    quick_noop,
    sync_fingerprint,
)

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock
    from falcopkg.services.installer import BlobAccess, SyncReport
    from falcopkg.services.registries import RegistryAccess
    from falcopkg.workflows.falco_config import SnippetChange
    from falcopkg.workflows.project import Project


@dataclass(frozen=True)
class SyncOptions:
    platform: str
    overrides: DirectoryOverrides = field(default_factory=DirectoryOverrides)
    dry_run: bool = False
    offline: bool = False
    locked: bool = False
    frozen: bool = False
    force: bool = False


@dataclass(frozen=True)
class SyncResult:
    """What a sync did: ``report`` is None when the no-op check answered alone."""

    report: SyncReport | None
    up_to_date: tuple[int, int] = (0, 0)  # (files, artifacts) when report is None
    lock_changed: bool = False
    falco_config: SnippetChange | None = None  # the [install] falco_config_dir snippet


def sync(project: Project, options: SyncOptions) -> SyncResult:
    """Make the install directories hold exactly the locked files (or say what would change).

    Raises FalcopkgError on failure; a stale lock is locked again first unless ``locked``
    (an error) or ``frozen`` (used as it is).
    """
    if options.locked and options.frozen:
        raise UsageError("--locked and --frozen cannot be used together", hint="pick one")
    quick = quick_noop(project, options.platform, options.overrides, frozen=options.frozen)
    if quick is not None:
        return SyncResult(None, quick)

    from falcopkg.services.installer import install_artifacts

    manifest = project.manifest
    with project.registries(offline=options.offline) as registries:
        if project.fresh_lock is not None:
            lock, lock_changed = project.fresh_lock, False
        else:
            lock, lock_changed = current_lock(project, registries, options)
        if lock_changed and not options.dry_run:
            project.write_lock(lock)  # also the session's lock_bytes, fingerprinted below
        lock_bytes = project.lock_bytes
        directories = install_directories(manifest, options.overrides)
        stamp = None
        if not options.dry_run and project.manifest_bytes is not None and lock_bytes is not None:
            stamp = sync_fingerprint(
                project.manifest_bytes,
                lock_bytes,
                options.platform,
                directories,
                options.overrides,
                frozen=options.frozen,
            )
        report = install_artifacts(
            lock.artifacts,
            platform=options.platform,
            directories=directories,
            allowed_types=manifest.install.allowed_types,
            blobs=blob_access(project, registries, offline=options.offline),
            force=options.force,
            dry_run=options.dry_run,
            prune=True,
            console=project.reporter,
            lock_source=str(project.lock_path),
            stamp=stamp,
        )
    from falcopkg.workflows.falco_config import apply_snippet, snippet_text

    # After the files it names are in place: a watching Falco reloads a consistent set.
    # Rendered only when there is a snippet to keep (the YAML renderer is not free); without
    # a config dir apply_snippet only removes one an earlier setting left.
    config_dir = falco_config_dir(manifest, options.overrides)
    wanted = config_dir is not None and lock.artifacts
    text = snippet_text(lock, manifest, options.platform, directories) if wanted else None
    snippet = apply_snippet(
        config_dir,
        text,
        directories["rulesfiles_dir"],
        force=options.force,
        dry_run=options.dry_run,
    )
    return SyncResult(report, lock_changed=lock_changed, falco_config=snippet)


def current_lock(
    project: Project, registries: RegistryAccess, options: SyncOptions
) -> tuple[Lock, bool]:
    """The lock to install (§8): as is (--frozen), checked (--locked), or locked again if
    stale; and whether it changed."""
    from falcopkg.core.lockfile import stale_reasons
    from falcopkg.services.project_files import require_fresh_lock

    manifest = project.manifest
    existing = project.existing_lock()
    if options.locked or options.frozen:
        checked = require_fresh_lock(
            manifest,
            existing,
            stale="ignore" if options.frozen else "error",
            flag="--frozen" if options.frozen else "--locked",
            hint="run `falcopkg lock` and commit falco.lock",
        )
        return checked, False
    reasons = (
        ["falco.lock does not exist"] if existing is None else stale_reasons(manifest, existing)
    )
    if existing is not None and not reasons:
        return existing, False
    from falcopkg.services.resolution import describe_changes, resolve_lock

    reporter = project.reporter
    action = "Would update" if options.dry_run else "Updating"
    reporter.info(f"{action} {project.lock_path.name}: {reasons[0]}")
    lock = resolve_lock(
        manifest,
        existing_lock=existing,
        offline=options.offline,
        stores=registries,
        cache=project.cache,
        console=reporter,
    )
    for line in describe_changes(existing, lock, dry_run=options.dry_run):
        reporter.info(f"  {line}")
    return lock, True


def blob_access(project: Project, registries: RegistryAccess, *, offline: bool) -> BlobAccess:
    """The installer's way to layers: the cache, then the registries (or their mirrors)."""
    from falcopkg.services.installer import BlobAccess

    return BlobAccess(
        cache=project.cache,
        stores=registries,
        offline=offline,
        progress=project.reporter.download_progress(),
    )
