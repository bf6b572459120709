"""`init`, `add`, `remove`, `lock`, `tree`, `outdated` (SPEC §5, §6, §7, §10).

falco.toml is edited with comments and order kept; every command that changes it resolves
first and writes falco.toml and falco.lock only when that succeeded, so a conflict leaves
both files as they were. Messages go to stderr, data (`tree`, `outdated`) to stdout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from falcopkg import paths
from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.output import quantity
from falcopkg.cli.params import json_option, reference_argument
from falcopkg.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from tomlkit.toml_document import TOMLDocument

    from falcopkg.core.lockfile import Lock, LockedArtifact
    from falcopkg.core.manifest import Manifest
    from falcopkg.oci.client import RegistryPool
    from falcopkg.services.cache import BlobCache

# -- init ---------------------------------------------------------------------------------------


@click.command()
@pass_app
def init(app: AppContext) -> None:
    """Create a commented falco.toml with the official index."""
    from falcopkg.core.index_config import OFFICIAL_INDEX
    from falcopkg.core.manifest import init_document_text
    from falcopkg.fsutil import atomic_write_text

    directory = app.project_dir
    path = directory / paths.MANIFEST_NAME
    if path.exists():
        raise ConfigError(
            f"{path} already exists",
            hint="edit it, or add artifacts with `falcopkg add NAME`",
        )
    atomic_write_text(path, init_document_text(OFFICIAL_INDEX.name, OFFICIAL_INDEX.url))
    app.console.success(f"Created {path}")
    app.console.info("Add artifacts with `falcopkg add NAME`, e.g. `falcopkg add falco-rules`")


# -- add / remove -------------------------------------------------------------------------------


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--no-sync", is_flag=True, help="Only update falco.toml and falco.lock.")
@click.option("--offline", is_flag=True, help="Use only cached metadata.")
@pass_app
def add(app: AppContext, refs: tuple[str, ...], no_sync: bool, offline: bool) -> None:
    """Add artifacts (index names or registry references) to falco.toml, lock and sync.

    `NAME` takes the newest release and writes its version like `cargo add` (`"4.1.0"`
    allows 4.x from 4.1.0 on); `NAME:4` writes that constraint; `NAME:main` pins a tag,
    `NAME@sha256:…` a digest; `host/repo[:tag|@digest]` adds a registry reference.
    """
    from falcopkg.core.manifest import add_dependency

    manifest_path = app.require_manifest()
    document, current = _read_manifest(manifest_path)  # a broken falco.toml fails first
    wanted = [_dependency_for(text) for text in refs]
    for name, value, _ in wanted:
        add_dependency(document, name, value)
    manifest, text = _edited(manifest_path, document)
    existing = _read_lock(manifest, app)
    lock = _lock(app, manifest, existing, offline=offline)
    # Like `cargo add`: what resolved becomes the constraint ("4.1.0" = ^4.1.0).
    versions_written = False
    for name, value, needs_version in wanted:
        artifact = lock.artifact(name)
        if needs_version and artifact is not None and artifact.parsed_version is not None:
            from falcopkg.core.versions import caret_for

            add_dependency(document, name, _with_version(value, caret_for(artifact.parsed_version)))
            versions_written = True
    if versions_written:
        manifest, text = _edited(manifest_path, document)
        lock = _with_inputs(lock, manifest)
    _save_text(manifest_path, text)
    added = {name for name, _, _ in wanted}
    # Without a lock to compare with, what the other declared artifacts bring was there
    # before this `add`: report only what the added names bring in.
    baseline = existing or _closure(
        lock, [name for name in current.dependencies if name not in added]
    )
    _write_lock(app, manifest, existing, lock, compare_with=baseline)
    if not no_sync:
        _sync(app, manifest, text, lock, offline=offline)


def _closure(lock: Lock, names: Sequence[str]) -> Lock:
    """``lock`` with only ``names`` and what they depend on, directly or not."""
    from dataclasses import replace

    by_name = lock.by_name
    todo = [name for name in names if name in by_name]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [child for child in by_name[name].dependencies if child in by_name]
    return replace(lock, artifacts=tuple(a for a in lock.artifacts if a.name in seen))


def _dependency_for(text: str) -> tuple[str, str | dict[str, str], bool]:
    """(name, falco.toml value, whether the resolved version should be written in)."""

    reference = reference_argument(text)
    value: dict[str, str] = {} if reference.is_index_name else {"ref": reference.locator}
    constraint = _as_constraint(reference.tag) if reference.tag else None
    needs_version = False
    if reference.digest:
        value["digest"] = reference.digest
    elif constraint is not None:
        value["version"] = constraint
    elif reference.tag and reference.tag != "latest":
        value["tag"] = reference.tag
    else:
        needs_version = True
    return reference.name, _compact(value), needs_version


def _as_constraint(tag: str) -> str | None:
    """A tag like ``4``, ``4.1`` or ``4.1.0`` read as a version constraint (falcoctl's
    floating tags mean "that version line")."""
    from falcopkg.core.versions import Constraint

    if not tag[:1].isdigit():
        return None
    try:
        return str(Constraint.parse(tag))
    except ValueError:
        return None


def _compact(value: dict[str, str]) -> str | dict[str, str]:
    """A bare constraint string when that is all there is, as cargo writes."""
    if set(value) <= {"version"}:
        return value.get("version", "*")
    return value


def _with_version(value: str | dict[str, str], version: str) -> str | dict[str, str]:
    if isinstance(value, str):
        return version
    return {**value, "version": version}


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--no-sync", is_flag=True, help="Only update falco.toml and falco.lock.")
@click.option("--offline", is_flag=True, help="Use only cached metadata.")
@pass_app
def remove(app: AppContext, names: tuple[str, ...], no_sync: bool, offline: bool) -> None:
    """Remove artifacts from falco.toml, relock and sync (their files are uninstalled)."""
    from falcopkg.core.manifest import remove_dependency

    manifest_path = app.require_manifest()
    document, current = _read_manifest(manifest_path)
    for name in names:
        if not remove_dependency(document, name):
            raise ConfigError(
                f"{name} is not a dependency in {manifest_path}",
                hint=_known_hint(name, current.dependencies),
            )
    manifest, text = _edited(manifest_path, document)
    existing = _read_lock(manifest, app)
    lock = _lock(app, manifest, existing, offline=offline)
    _save_text(manifest_path, text)
    _write_lock(app, manifest, existing, lock)
    if not no_sync:
        _sync(app, manifest, text, lock, offline=offline)


def _known_hint(name: str, dependencies: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(dependencies), n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    if dependencies:
        return "falco.toml depends on: " + ", ".join(dependencies)
    return "falco.toml has no dependencies"


# -- lock ---------------------------------------------------------------------------------------


@click.command()
@click.option("--check", is_flag=True, help="Exit 1 if falco.lock is missing or out of date.")
@click.option("--upgrade", "-U", is_flag=True, help="Move every pin to the newest allowed version.")
@click.option(
    "--upgrade-package",
    "-P",
    "upgrade_packages",
    multiple=True,
    metavar="NAME",
    help="Move this artifact's pin (repeatable).",
)
@click.option("--offline", is_flag=True, help="Use only cached metadata; no network.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@pass_app
def lock(
    app: AppContext,
    check: bool,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    offline: bool,
    dry_run: bool,
) -> None:
    """Resolve falco.toml and write falco.lock."""
    from falcopkg.core.manifest import load_manifest

    manifest = load_manifest(app.require_manifest())
    existing = _read_lock(manifest) if check else _read_lock(manifest, app)
    if check:
        from falcopkg.services.lockio import require_fresh_lock

        if upgrade or upgrade_packages:
            raise UsageError("--check cannot be combined with --upgrade or --upgrade-package")
        fresh = require_fresh_lock(manifest, existing)
        app.console.info(
            f"{manifest.lock_path.name} is up to date ({len(fresh.artifacts)} artifacts)"
        )
        return
    new = _lock(
        app,
        manifest,
        existing,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        offline=offline,
    )
    if dry_run:
        from falcopkg.services.locking import describe_changes

        changes = describe_changes(existing, new, dry_run=True)
        for line in changes:
            app.console.info(line)
        app.console.info(
            f"Dry run: {manifest.lock_path.name} not written ({len(new.artifacts)} artifacts)"
            if changes or existing is None
            else f"{manifest.lock_path.name} is up to date"
        )
        return
    _write_lock(app, manifest, existing, new, list_first_lock=False)


# -- shared --------------------------------------------------------------------------------------


def _read_lock(manifest: Manifest, app: AppContext | None = None) -> Lock | None:
    """falco.lock, or None. With ``app`` (commands that write a new lock) a damaged lock is
    only a warning, since locking again is the repair; a lock of a newer format stays an
    error (writing over it would downgrade it)."""
    from falcopkg.services.lockio import read_lock

    try:
        return read_lock(manifest.lock_path)
    except ConfigError as exc:
        if app is None:
            raise
        app.console.warn(f"ignoring the damaged {manifest.lock_path.name}: {exc.message}")
        return None


def _registries(
    app: AppContext, manifest: Manifest, offline: bool
) -> tuple[RegistryPool | None, BlobCache]:
    from falcopkg.services.cache import BlobCache

    pool = None
    if not offline:
        pool = app.registry_pool(manifest=manifest)
    return pool, BlobCache(app.cache_dir)


def _lock(
    app: AppContext,
    manifest: Manifest,
    existing: Lock | None,
    *,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    offline: bool = False,
) -> Lock:
    from falcopkg.services.locking import lock_project

    pool, cache = _registries(app, manifest, offline)
    try:
        return lock_project(
            manifest,
            existing_lock=existing,
            upgrade=upgrade,
            upgrade_packages=upgrade_packages,
            offline=offline,
            pool=pool,
            cache=cache,
            console=app.console,
        )
    finally:
        if pool is not None:
            pool.close()


def _with_inputs(lock: Lock, manifest: Manifest) -> Lock:
    from dataclasses import replace

    from falcopkg.core.lockfile import LockInputs

    return replace(lock, inputs=LockInputs.from_manifest(manifest))


def _read_manifest(path: Path) -> tuple[TOMLDocument, Manifest]:
    """falco.toml as a document to edit (comments and order kept) and as the model, from one
    read of the file."""
    from falcopkg.tomlfile import load_document

    document = load_document(path)
    return document, _edited(path, document)[0]


def _edited(path: Path, document: TOMLDocument) -> tuple[Manifest, str]:
    """The model of an edited falco.toml document and the text to write (validated alike)."""
    import tomlkit

    from falcopkg.core.manifest import parse_manifest

    text = tomlkit.dumps(document)
    return parse_manifest(text, path), text


def _save_text(path: Path, text: str) -> None:
    from falcopkg.fsutil import atomic_write_text

    atomic_write_text(path, text)


def _write_lock(
    app: AppContext,
    manifest: Manifest,
    existing: Lock | None,
    new: Lock,
    *,
    list_first_lock: bool = True,
    compare_with: Lock | None = None,
) -> None:
    """Write falco.lock if it changed and say what changed (a first `lock` of a project
    only says how many artifacts it locked, like uv, instead of listing them all).
    ``compare_with`` replaces ``existing`` as what the changes are relative to."""
    from falcopkg.services.locking import describe_changes
    from falcopkg.services.lockio import write_lock_if_changed

    before = compare_with if compare_with is not None else existing
    if before is not None or list_first_lock:
        for line in describe_changes(before, new):
            app.console.info(line)
    written = write_lock_if_changed(manifest.lock_path, new)
    count = quantity(len(new.artifacts), "artifact")
    if written:
        app.console.success(f"Locked {count} in {manifest.lock_path.name}")
    else:
        app.console.info(f"{manifest.lock_path.name} is up to date ({count})")


def _sync(
    app: AppContext, manifest: Manifest, manifest_text: str, lock: Lock, *, offline: bool
) -> None:
    """Sync what was just written, without reading or checking it again."""
    from falcopkg.cli.commands.install import SyncInputs, run_sync

    run_sync(app, offline=offline, inputs=SyncInputs.written(manifest, manifest_text, lock))


def _require_lock(app: AppContext, manifest: Manifest) -> Lock:
    """falco.lock for a read-only view (`tree`, `outdated`): missing is an error, out of
    date only a warning."""
    from falcopkg.services.lockio import require_fresh_lock

    return require_fresh_lock(manifest, _read_lock(manifest), stale="warn", warn=app.console.warn)


# -- tree ---------------------------------------------------------------------------------------


@click.command()
@json_option
@pass_app
def tree(app: AppContext, as_json: bool) -> None:
    """Show who brings in which artifact and why, from falco.lock."""
    from falcopkg.core.manifest import load_manifest

    manifest = load_manifest(app.require_manifest())
    locked = _require_lock(app, manifest)
    artifacts = locked.by_name
    roots = [name for name in manifest.dependencies if name in artifacts]
    if as_json:
        app.console.json(_tree_json(manifest, locked))
        return
    lines: list[str] = []
    shown: set[str] = set()
    for name in roots:
        spec = manifest.dependencies[name]
        why = f"falco.toml: {_manifest_value(spec.to_input())}"
        _tree_lines(artifacts, name, why, "", "", shown, lines, ())
    app.console.data("\n".join(lines))


def _tree_lines(
    artifacts: Mapping[str, LockedArtifact],
    name: str,
    why: str,
    prefix: str,
    child_prefix: str,
    shown: set[str],
    lines: list[str],
    path: tuple[str, ...],
) -> None:
    artifact = artifacts[name]
    repeated = name in shown
    suffix = " (*)" if repeated and artifact.dependencies else ""
    lines.append(f"{prefix}{artifact.label()} [{artifact.type}] ({why}){suffix}")
    if repeated or name in path:
        return
    shown.add(name)
    children = [child for child in artifact.dependencies if child in artifacts]
    for position, child in enumerate(children):
        last = position == len(children) - 1
        constraint = artifact.dependency_constraints.get(child, "*")
        _tree_lines(
            artifacts,
            child,
            f"{name} requires {constraint}",
            child_prefix + ("└── " if last else "├── "),
            child_prefix + ("    " if last else "│   "),
            shown,
            lines,
            (*path, name),
        )


def _manifest_value(value: str | dict[str, str]) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return "{ " + ", ".join(f'{k} = "{v}"' for k, v in value.items()) + " }"


def _tree_json(manifest: Manifest, locked: Lock) -> dict[str, Any]:
    required_by: dict[str, list[dict[str, str]]] = {a.name: [] for a in locked.artifacts}
    for name, spec in manifest.dependencies.items():
        if name in required_by:
            required_by[name].append(
                {"by": "falco.toml", "constraint": _constraint_text(spec.to_input())}
            )
    for artifact in locked.artifacts:
        for child in artifact.dependencies:
            if child in required_by:
                constraint = artifact.dependency_constraints.get(child, "*")
                required_by[child].append({"by": artifact.name, "constraint": constraint})
    return {
        "roots": [name for name in manifest.dependencies if name in required_by],
        "artifacts": [
            {
                "name": artifact.name,
                "version": artifact.version,
                "type": artifact.type,
                "source": artifact.source,
                "digest": artifact.digest,
                "required_by": required_by[artifact.name],
                "dependencies": [
                    {"name": child, "constraint": artifact.dependency_constraints.get(child, "*")}
                    for child in artifact.dependencies
                ],
            }
            for artifact in locked.artifacts
        ],
    }


def _constraint_text(value: str | dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    return ", ".join(f"{k} {v}" for k, v in value.items())


# -- outdated -----------------------------------------------------------------------------------


@click.command()
@json_option
@click.option("--offline", is_flag=True, help="Use only cached metadata.")
@pass_app
def outdated(app: AppContext, as_json: bool, offline: bool) -> None:
    """Show locked versions, the newest falco.toml allows, and the newest published."""
    from falcopkg.core.manifest import load_manifest
    from falcopkg.services.locking import find_outdated

    manifest = load_manifest(app.require_manifest())
    locked = _require_lock(app, manifest)
    pool, cache = _registries(app, manifest, offline)
    try:
        rows = find_outdated(
            manifest, locked, offline=offline, pool=pool, cache=cache, console=app.console
        )
    finally:
        if pool is not None:
            pool.close()
    if as_json:
        app.console.json(
            [
                {
                    "name": row.name,
                    "type": row.type,
                    "locked": row.locked,
                    "allowed": row.allowed,
                    "latest": row.latest,
                    "outdated": row.is_outdated,
                }
                for row in rows
            ]
        )
        return
    stale = [row for row in rows if row.is_outdated]
    if not stale:
        app.console.info(f"All {quantity(len(rows), 'artifact')} are up to date")
        return
    table = [("name", "type", "locked", "allowed", "latest")]
    table += [(r.name, r.type, r.locked or "-", r.allowed or "-", r.latest or "-") for r in stale]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        app.console.data(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if any(r.locked != r.allowed for r in stale):
        app.console.info("hint: `falcopkg lock --upgrade` moves to the allowed versions")
