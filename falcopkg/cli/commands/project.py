"""`init`, `add`, `remove`, `lock`, `tree`, `outdated` (SPEC §5, §6, §7, §10).

falco.toml is edited with comments and order kept; every command that changes it resolves
first and writes falco.toml and falco.lock only when that succeeded, so a conflict leaves
both files as they were. Messages go to stderr, data (`tree`, `outdated`) to stdout.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from falcopkg import paths
from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.output import quantity
from falcopkg.cli.params import install_dir_options, json_option, platform_option
from falcopkg.errors import ConfigError, UsageError
from falcopkg.workflows.noop import DirectoryOverrides

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock, LockedArtifact
    from falcopkg.core.manifest import Manifest
    from falcopkg.workflows.lock import EditResult

# -- init ---------------------------------------------------------------------------------------


@click.command()
@click.option(
    "--index",
    "indexes",
    multiple=True,
    metavar="NAME=URL",
    help="Index to write instead of the official one (repeatable; URL or local path).",
)
@click.option("--no-index", is_flag=True, help="Write no index (dependencies then need `ref`).")
@install_dir_options
@pass_app
def init(
    app: AppContext,
    indexes: tuple[str, ...],
    no_index: bool,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Create a commented falco.toml (with the official index unless --index/--no-index).

    Install directories given by option or environment are written into [install], so
    later commands use them without the option.
    """
    from falcopkg.core.manifest import init_document_text
    from falcopkg.fsutil import atomic_write_text

    directory = app.project_dir
    path = directory / paths.MANIFEST_NAME
    if path.exists():
        raise ConfigError(
            f"{path} already exists",
            hint="edit it, or add artifacts with `falcopkg add NAME`",
        )
    chosen = _init_indexes(path, indexes, no_index)
    install = {
        key: _stored_directory(value, directory)
        for key, value in DirectoryOverrides.of(
            rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
        ).dirs.items()
    }
    atomic_write_text(path, init_document_text(chosen, install))
    app.console.success(f"Created {path}")
    if chosen:
        app.console.info("Add artifacts with `falcopkg add NAME`, e.g. `falcopkg add falco-rules`")
    else:
        app.console.info("Add artifacts with `falcopkg add HOST/REPO[:TAG]`")


def _init_indexes(path: Path, given: tuple[str, ...], no_index: bool) -> list[tuple[str, str]]:
    """The [[index]] tables of a new falco.toml: --index NAME=URL, none, or the official one."""
    from falcopkg.cli.commands.index import normalize_index_url
    from falcopkg.core.index_config import OFFICIAL_INDEX
    from falcopkg.core.reference import NAME_RE
    from falcopkg.services.userconfig import IndexScope

    if no_index and given:
        raise UsageError("--index and --no-index cannot be used together", hint="pick one")
    if no_index:
        return []
    if not given:
        return [(OFFICIAL_INDEX.name, OFFICIAL_INDEX.url)]
    chosen: dict[str, str] = {}
    for text in given:
        name, sep, url = text.partition("=")
        if not sep or not url or not NAME_RE.match(name):
            raise UsageError(
                f"--index {text!r} is not NAME=URL",
                hint="e.g. `--index corp=https://example.com/index.yaml` (names use letters, "
                "digits, `.`, `_` and `-`)",
            )
        if name in chosen:
            raise UsageError(f"--index names {name!r} twice", hint="give each index once")
        chosen[name] = normalize_index_url(url, IndexScope(path, is_project=True), False)
    return list(chosen.items())


def _stored_directory(directory: Path, project_dir: Path) -> str:
    """An install directory as [install] stores it: relative when inside the project (the
    project can move), else absolute."""
    import os

    if directory.is_relative_to(project_dir):
        return os.path.relpath(directory, project_dir)
    return str(directory)


# -- add / remove -------------------------------------------------------------------------------


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--no-sync", is_flag=True, help="Only update falco.toml and falco.lock.")
@click.option("--offline", is_flag=True, help="Use only cached metadata.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@json_option
@platform_option
@install_dir_options
@pass_app
def add(
    app: AppContext,
    refs: tuple[str, ...],
    no_sync: bool,
    offline: bool,
    dry_run: bool,
    as_json: bool,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Add artifacts (index names or registry references) to falco.toml, lock and sync.

    `NAME` takes the newest release and writes its version like `cargo add` (`"4.1.0"`
    allows 4.x from 4.1.0 on); `NAME:4` writes that constraint; `NAME:main` pins a tag,
    `NAME@sha256:…` a digest; `host/repo[:tag|@digest]` adds a registry reference.
    """
    from falcopkg.workflows import lock as lock_workflows

    edited = lock_workflows.add(app.project(), refs, offline=offline, dry_run=dry_run)
    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
    )
    _after_edit(
        app, "falcopkg add", edited, no_sync, offline, dry_run, as_json, platform, overrides
    )


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--no-sync", is_flag=True, help="Only update falco.toml and falco.lock.")
@click.option("--offline", is_flag=True, help="Use only cached metadata.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@json_option
@platform_option
@install_dir_options
@pass_app
def remove(
    app: AppContext,
    names: tuple[str, ...],
    no_sync: bool,
    offline: bool,
    dry_run: bool,
    as_json: bool,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Remove artifacts from falco.toml, relock and sync (their files are uninstalled)."""
    from falcopkg.workflows import lock as lock_workflows

    edited = lock_workflows.remove(app.project(), names, offline=offline, dry_run=dry_run)
    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
    )
    _after_edit(
        app, "falcopkg remove", edited, no_sync, offline, dry_run, as_json, platform, overrides
    )


def _after_edit(
    app: AppContext,
    command: str,
    edited: EditResult,
    no_sync: bool,
    offline: bool,
    dry_run: bool,
    as_json: bool,
    platform: str,
    overrides: DirectoryOverrides,
) -> None:
    """Sync what `add`/`remove` just wrote (without reading or checking it again), render."""
    from falcopkg.cli.commands.install import raise_if_incomplete, run_sync
    from falcopkg.workflows.lock import unfinished_sync_explained
    from falcopkg.workflows.sync import SyncOptions

    synced = None
    explained = unfinished_sync_explained(command) if not dry_run else nullcontext()
    if not no_sync:
        options = SyncOptions(
            platform=platform, overrides=overrides, offline=offline, dry_run=dry_run
        )
        with explained:
            synced = run_sync(app, edited.project, options, as_json=as_json)
    if dry_run:
        app.console.info("Dry run: falco.toml and falco.lock not written")
    if as_json:
        from falcopkg.cli.results import edit_json

        app.console.json(edit_json(edited, synced, platform=platform, dry_run=dry_run))
    if synced is not None and synced.report is not None:
        with unfinished_sync_explained(command):
            raise_if_incomplete(synced.report)


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
@json_option
@pass_app
def lock(
    app: AppContext,
    check: bool,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    offline: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Resolve falco.toml and write falco.lock."""
    from falcopkg.workflows import lock as lock_workflows

    project = app.project()
    if check:
        if upgrade or upgrade_packages:
            raise UsageError("--check cannot be combined with --upgrade or --upgrade-package")
        fresh = lock_workflows.check_lock(project)
        if as_json:
            from falcopkg.cli.results import artifacts_json

            app.console.json(
                {
                    "lockfile": str(project.lock_path),
                    "fresh": True,
                    "artifacts": artifacts_json(fresh),
                }
            )
        app.console.info(
            f"{project.lock_path.name} is up to date ({len(fresh.artifacts)} artifacts)"
        )
        return
    result = lock_workflows.lock(
        project,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        offline=offline,
        dry_run=dry_run,
    )
    if as_json:
        from falcopkg.cli.results import lock_json

        app.console.json(lock_json(result, str(project.lock_path), dry_run=dry_run))
    if dry_run:
        for line in result.changes:
            app.console.info(line)
        app.console.info(
            f"Dry run: {project.lock_path.name} not written ({len(result.lock.artifacts)} artifacts)"
            if result.changes or project.lock_bytes is None
            else f"{project.lock_path.name} is up to date"
        )


# -- tree ---------------------------------------------------------------------------------------


@click.command()
@json_option
@pass_app
def tree(app: AppContext, as_json: bool) -> None:
    """Show who brings in which artifact and why, from falco.lock."""
    from falcopkg.workflows.lock import require_lock, warn_if_no_dependencies

    project = app.project()
    warn_if_no_dependencies(project)
    manifest, locked = project.manifest, require_lock(project)
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
    from falcopkg.workflows.lock import outdated as outdated_workflow

    rows = outdated_workflow(app.project(), offline=offline)
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
    from falcopkg.cli.output import render_table

    rows_shown = [
        (r.name, r.type, r.locked or "-", r.allowed or "-", r.latest or "-") for r in stale
    ]
    app.console.data(render_table(("name", "type", "locked", "allowed", "latest"), rows_shown))
    if any(r.locked != r.allowed for r in stale):
        app.console.info("hint: `falcopkg lock --upgrade` moves to the allowed versions")
