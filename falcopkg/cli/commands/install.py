"""`sync` and `verify` (alias `check`): options → one workflow call → render.

A no-op sync must cost little more than starting Python, so this module imports only click
and the stdlib at the top; the workflow's no-op check (workflows.noop) is stdlib only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.output import quantity
from falcopkg.cli.params import (
    falco_config_dir_option,
    install_dir_options,
    json_option,
    platform_option,
)
from falcopkg.errors import InstallError
from falcopkg.workflows.noop import DirectoryOverrides, nothing_to_do
from falcopkg.workflows.sync import SyncOptions, SyncResult
from falcopkg.workflows.sync import sync as sync_workflow

if TYPE_CHECKING:
    from falcopkg.core.plan import Action
    from falcopkg.services.installer import SyncReport
    from falcopkg.workflows.project import Project

SNIPPET_VERBS = {
    "written": "Wrote the Falco config snippet",
    "updated": "Updated the Falco config snippet",
    "removed": "Removed the Falco config snippet",
    "kept-modified": "changed since falcopkg wrote it",
    "kept-unowned": "not written by falcopkg",
}
DRY_RUN_SNIPPET_VERBS = {
    "written": "Would write the Falco config snippet",
    "updated": "Would update the Falco config snippet",
    "removed": "Would remove the Falco config snippet",
}
KIND_SYMBOL = {"add": "+", "update": "~", "remove": "-", "keep-modified": "!", "keep-unowned": "!"}


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option("--offline", is_flag=True, help="Use only the blob cache; no network.")
@click.option("--locked", is_flag=True, help="Fail if falco.lock is missing or out of date.")
@click.option("--frozen", is_flag=True, help="Use falco.lock as it is, without checking it.")
@click.option(
    "--force", is_flag=True, help="Replace files that were changed or not installed by falcopkg."
)
@json_option
@platform_option
@install_dir_options
@falco_config_dir_option
@pass_app
def sync(
    app: AppContext,
    dry_run: bool,
    offline: bool,
    locked: bool,
    frozen: bool,
    force: bool,
    as_json: bool,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
    falco_config_dir: Path | None,
) -> None:
    """Make the install directories hold exactly the files locked in falco.lock."""
    options = SyncOptions(
        platform=platform,
        overrides=DirectoryOverrides.of(
            rulesfiles_dir=rulesfiles_dir,
            plugins_dir=plugins_dir,
            assets_dir=assets_dir,
            falco_config_dir=falco_config_dir,
        ),
        dry_run=dry_run,
        offline=offline,
        locked=locked,
        frozen=frozen,
        force=force,
    )
    result = run_sync(app, app.project(), options, as_json=as_json)
    if as_json:
        from falcopkg.cli.results import sync_json

        app.console.json(sync_json(result, platform=platform, dry_run=dry_run))
    if result.report is not None:
        raise_if_incomplete(result.report)


def run_sync(
    app: AppContext, project: Project, options: SyncOptions, *, as_json: bool = False
) -> SyncResult:
    """Run the sync workflow and render its messages (also after `add`/`remove`); with
    ``as_json`` stdout is left to the caller's JSON. The caller then calls
    :func:`raise_if_incomplete`."""
    result = sync_workflow(project, options)
    snippet = result.falco_config
    if snippet is not None and snippet.outcome != "unchanged":
        verb = SNIPPET_VERBS[snippet.outcome]
        if snippet.kept:
            app.console.warn(f"kept {snippet.path}: {verb}")
        else:
            if options.dry_run:
                verb = DRY_RUN_SNIPPET_VERBS[snippet.outcome]
            app.console.info(f"{verb} {snippet.path}")
    if result.report is None:
        app.console.info(nothing_to_do(*result.up_to_date))
    else:
        print_report(app, result.report, dry_run=options.dry_run, data=not as_json)
    if snippet is not None and snippet.kept:
        raise InstallError(
            f"the Falco config snippet {snippet.path} was not updated (see the warning above)",
            hint="run `falcopkg sync --force` to replace it",
        )
    return result


def print_report(app: AppContext, report: SyncReport, *, dry_run: bool, data: bool = True) -> None:
    """Per-file lines (a dry run's on stdout unless ``data`` is off), warnings for kept
    files, one summary."""
    console = app.console
    plan = report.plan
    for artifact, why in report.skipped:
        console.detail(f"Skipped {artifact}: {why}")
    if dry_run:
        if data:
            for action in plan.actions:
                console.data(_action_line(action))
        if not plan.actions:
            console.info(_nothing_to_do(report))
        else:
            console.info(
                f"Would change {quantity(len(plan.changes), 'file')} (dry run: nothing was changed)"
            )
        return
    if not plan.actions:
        console.info(_nothing_to_do(report))
        return
    for action in report.added + report.updated + report.removed:
        console.info(_action_line(action))
    for action in report.adopted:
        console.detail(f"  {_target(action)} already held the locked content; now managed")
    for action in report.kept:
        console.warn(f"kept {_target(action)} ({action.artifact}): {action.reason}")
    if report.changed_files:
        console.success(
            f"Synced: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.removed)} removed ({quantity(plan.up_to_date_files, 'file')} already up to date)"
        )
    elif not report.kept:
        console.info(_nothing_to_do(report))


def raise_if_incomplete(report: SyncReport) -> None:
    """InstallError if locked files were kept out because other content is in the way."""
    incomplete = report.incomplete
    if incomplete:
        raise InstallError(
            f"{quantity(len(incomplete), 'locked file')} could not be installed because other "
            f"content is in the way (see the warnings above)",
            hint="run `falcopkg sync --force` to replace them, or move them away",
        )


def _nothing_to_do(report: SyncReport) -> str:
    return nothing_to_do(report.plan.up_to_date_files, report.plan.up_to_date_artifacts)


def _target(action: Action) -> str:
    return os.path.join(action.directory, action.path)


def _action_line(action: Action) -> str:
    return f" {KIND_SYMBOL[action.kind]} {_target(action)} ({action.reason})"


# --- verify -----------------------------------------------------------------------------


@click.command()
@json_option
@platform_option
@install_dir_options
@falco_config_dir_option
@pass_app
def verify(
    app: AppContext,
    as_json: bool,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
    falco_config_dir: Path | None,
) -> None:
    """Compare the installed files with falco.lock; list any drift (exit 1)."""
    from falcopkg.workflows.verify import verify as verify_workflow

    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir,
        plugins_dir=plugins_dir,
        assets_dir=assets_dir,
        falco_config_dir=falco_config_dir,
    )
    result = verify_workflow(app.project(), platform=platform, overrides=overrides)
    lock_name = result.lock_path.name
    if as_json:
        app.console.json(
            {
                "ok": result.ok,
                "lockfile": str(result.lock_path),
                "platform": result.platform,
                "files": result.files,
                "drift": [
                    {"kind": d.kind, "path": d.path, "artifact": d.artifact, "detail": d.detail}
                    for d in result.drift
                ],
            }
        )
    else:
        for item in result.drift:
            app.console.data(f"{item.kind:<14} {item.path} ({item.artifact}: {item.detail})")
    if result.drift:
        raise InstallError(
            f"{quantity(len(result.drift), 'difference')} between the install directories and {lock_name}",
            hint="run `falcopkg sync` to install the locked files (`--force` replaces changed ones)",
        )
    if not as_json:
        app.console.info(
            f"Verified {quantity(result.files, 'file')} of {quantity(result.artifacts, 'artifact')} against {lock_name}"
        )
